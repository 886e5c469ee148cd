"""The Prometheus metrics as TF Serving writes them: request_latency in microseconds on its
buckets (servables/tensorflow/util.cc), the API label from a closed set of TF Serving's values
(prediction_service_impl.cc, http_server.cc), never the path as typed."""

import pytest

from serving import api, metrics as serving_metrics
from serving.http_server import Request
from serving.metrics import Metrics
from serving.model_store import ModelStore
from serving.rest import RestApi


def test_request_latency_is_in_microseconds_on_tf_serving_s_buckets():
    metrics = Metrics("fer")
    metrics.record("predict", "REST", "OK", 0.0025)
    labels = {"model_name": "fer", "API": "predict", "entrypoint": "REST"}
    sample = metrics.registry.get_sample_value
    assert sample(":tensorflow:serving:request_latency_sum", labels) == 2500
    bounds = [s.labels["le"] for f in metrics.registry.collect() if f.name == ":tensorflow:serving:request_latency"
              for s in f.samples if s.name.endswith("_bucket")]
    assert len(bounds) == 34 and bounds[-1] == "+Inf"  # Exponential(10, 1.8, 33), then +Inf
    assert float(bounds[0]) == 10 and float(bounds[32]) == pytest.approx(10 * 1.8 ** 32)
    assert sample(":tensorflow:serving:request_latency_bucket", {**labels, "le": bounds[9]}) == 0  # 1984 µs
    assert sample(":tensorflow:serving:request_latency_bucket", {**labels, "le": bounds[10]}) == 1  # 3570 µs


@pytest.mark.parametrize("method, path, label", [
    ("GET", "/v1/models/fer", "status"),
    ("GET", "/v1/models/fer/METADATA", "status"),  # TF Serving answers it as a status request
    ("GET", "/v1/models/fer/metadata", "metadata"),
    ("GET", "/V1/MODELS/fer/versions/1", "status"),
    ("POST", "/v1/models/fer:predict", "predict"),
    ("POST", "/v1/models/fer/labels/x:classify", "classify"),
    ("POST", "/v1/models/fer:regress", "regress"),
    ("POST", "/v1/models/fer:PREDICT", ""),  # matched, then no such verb: a malformed request
    ("GET", "/v1/foo", ""),
    ("PUT", "/v1/models/fer", ""),
])
def test_the_rest_api_label_is_the_handler_s_not_the_path_as_typed(tmp_path, method, path, label):
    metrics = Metrics("fer")
    handler = RestApi(api.Service(ModelStore("fer", str(tmp_path))), metrics)
    handler(Request(method, path, [], b"{}" if method != "GET" else b""))
    (sample,) = [s for f in metrics.registry.collect() if f.name == ":tensorflow:serving:request_count"
                 for s in f.samples if s.name.endswith("_total")]
    assert sample.labels["API"] == label and sample.labels["API"] in serving_metrics.REST_APIS + ("",)
