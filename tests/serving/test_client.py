"""client/: the TF Serving client against the local server (plain TF Serving API): batched
Predict, no retry for a request that is wrong, retries with backoff for an unreachable
server, and the same client working again after the server restarts."""


import numpy as np
import pytest
import tensorflow as tf

from client import tensors
from client.tfserving import FerClient, RestClient, ServingError, as_batch
from serving import server as local_server
from tests.serving.conftest import free_port


@pytest.fixture(scope="module")
def running(model_base):
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=0)
    yield server
    server.stop()


def faces(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48)).astype(np.uint8)


@pytest.mark.parametrize("array", [np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
                                   np.linspace(0, 1, 14, dtype=np.float32).reshape(2, 7)])
def test_tensor_protos_match_tensorflow(array):
    proto = tensors.to_tensor_proto(array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    np.testing.assert_array_equal(tensors.to_ndarray(tf.make_tensor_proto(array)), array)
    assert proto.dtype == tf.make_tensor_proto(array).dtype
    np.testing.assert_array_equal(tensors.to_ndarray(tf.make_tensor_proto(np.float32(0.5), shape=[3])), [0.5] * 3)


def test_batch_shapes():
    assert as_batch(faces(1)[0]).shape == (1, 48, 48, 1) and as_batch(faces(3)).shape == (3, 48, 48, 1)
    with pytest.raises(TypeError):
        as_batch(faces(1).astype(np.float32))
    with pytest.raises(ValueError):
        as_batch(np.zeros((2, 64, 64), np.uint8))


def test_one_batched_predict_for_all_faces(running, model_base):
    with FerClient(f"127.0.0.1:{running.grpc_port}") as client:
        batch = faces(5)
        probabilities = client.predict(batch)
        assert probabilities.shape == (5, 7)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        local = tf.saved_model.load(running.store.get("fer").path).signatures["serving_default"]
        np.testing.assert_allclose(probabilities, local(image=tf.constant(batch[..., None]))["probabilities"], rtol=1e-5)
        assert client.last_version == running.store.get("fer").version
        assert client.status()[0][1] == "AVAILABLE"


@pytest.mark.parametrize("kwargs, code", [({"signature": "classify"}, "INVALID_ARGUMENT"),
                                          ({"model_name": "other"}, "NOT_FOUND")])
def test_a_wrong_request_is_not_retried(running, kwargs, code):
    sleeps = []
    with FerClient(f"127.0.0.1:{running.grpc_port}", sleep=sleeps.append, **kwargs) as client:
        with pytest.raises(ServingError) as raised:
            client.predict(faces(1))
    assert raised.value.code == code and raised.value.attempts == 1 and not sleeps


def test_unreachable_server_is_retried_with_backoff_then_reported():
    sleeps = []
    with FerClient(f"127.0.0.1:{free_port()}", retries=3, backoff_s=0.01, max_backoff_s=0.02, timeout_s=0.5,
                   sleep=sleeps.append) as client:
        with pytest.raises(ServingError) as raised:
            client.predict(faces(1))
    assert raised.value.unavailable and raised.value.attempts == 4
    assert len(sleeps) == 3 and all(0 < s <= 0.02 for s in sleeps)


def test_client_works_again_after_a_server_restart(model_base):
    port = free_port()
    server = local_server.start(model_base_path=str(model_base), grpc_port=port, rest_port=None)
    client = FerClient(f"127.0.0.1:{port}", retries=1, timeout_s=1.0, backoff_s=0.1)
    try:
        before = client.predict(faces(2))
        server.stop()
        with pytest.raises(ServingError) as raised:
            client.predict(faces(2))
        assert raised.value.unavailable
        server = local_server.start(model_base_path=str(model_base), grpc_port=port, rest_port=None)
        client.retries = 10  # the channel reconnects on its own within a few backoff rounds
        np.testing.assert_allclose(client.predict(faces(2)), before, rtol=1e-5)
    finally:
        client.close()
        server.stop()


def test_rest_client(running):
    batch = faces(3, seed=1)
    with FerClient(f"127.0.0.1:{running.grpc_port}") as grpc_client:
        expected = grpc_client.predict(batch)
    np.testing.assert_allclose(RestClient(f"http://127.0.0.1:{running.rest_port}").predict(batch), expected, rtol=1e-5)
    sleeps = []
    with pytest.raises(ServingError) as raised:
        RestClient(f"http://127.0.0.1:{running.rest_port}", model_name="other", sleep=sleeps.append).predict(batch)
    assert raised.value.code == "NOT_FOUND" and not sleeps
    with pytest.raises(ServingError) as raised:
        RestClient(f"http://127.0.0.1:{free_port()}", retries=2, sleep=sleeps.append).predict(batch)
    assert raised.value.unavailable and raised.value.attempts == 3 and len(sleeps) == 2
