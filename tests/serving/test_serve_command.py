"""`fer-pipeline serve` as an operator runs it: TF Serving's own command line from
serving/docker-compose.yml with the config files of serving/ unchanged, an empty base path
waited on, a version that fails to load shown in the status, Prometheus metrics, and one-line
errors for what cannot be served."""

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from serving import server as local_server
from tests.serving.conftest import free_port
from tests.serving.http_helpers import call, call_json

ROOT = Path(__file__).resolve().parents[2]
SERVING = ROOT / "serving"
# A user's environment: the test suite's own TF_CPP_MIN_LOG_LEVEL (tests/conftest.py) left out.
USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def _serve(args, **popen):
    return subprocess.Popen([sys.executable, "-m", "cli.main", "serve", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def _wait_for_line(process, pattern, timeout=120):
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r}:\n{''.join(lines[-30:])}")


def test_the_docker_compose_command_line_runs_this_server_unchanged():
    command = yaml.safe_load((SERVING / "docker-compose.yml").read_text())["services"]["tfserving"]["command"]
    grpc_port, rest_port = free_port(), free_port()
    args = [a.replace("/config/", f"{SERVING}/").replace("=8500", f"={grpc_port}").replace("=8501", f"={rest_port}")
            for a in command]
    process = _serve(args)
    try:
        lines = _wait_for_line(process, "Running gRPC ModelServer")
        # serving/models.config names /models/fer, the containers' mount: absent here, so waited on
        assert any("No versions of servable fer found under base path /models/fer" in line for line in lines)
        assert any("Open-file limit (RLIMIT_NOFILE): soft" in line for line in lines)
        status, body = call_json(rest_port, "GET", "/v1/models/fer")
        assert (status, body) == (404, {"error": "Could not find any versions of model fer"})
        status, headers, page = call(rest_port, "GET", "/monitoring/prometheus/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        text = page.decode()
        assert ':tensorflow:serving:request_count_total{API="status",entrypoint="REST",model_name="fer",' \
               'status="NOT_FOUND"} 1.0' in text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0


def _compose_mounts(model_dir):
    """The compose file's volumes as {container path: host path}, its model folder given as
    FER_SERVING_MODEL_DIR (the variable the compose file reads)."""
    service = yaml.safe_load((SERVING / "docker-compose.yml").read_text())["services"]["tfserving"]
    mounts = {}
    for volume in service["volumes"]:
        volume = re.sub(r"\$\{FER_SERVING_MODEL_DIR:-[^}]*\}", str(model_dir), volume)
        source, target = volume.split(":")[:2]
        mounts[target] = str((SERVING / source).resolve())
    return service["command"], mounts


def test_the_docker_compose_command_line_with_its_mounts_loads_the_model_and_answers_predict(tmp_path):
    """The compose command with each container path replaced by the host path its volume
    mounts there (the shipped model as the model folder; models.config, which names the
    container's /models/fer, copied with that one path replaced) and free ports: the model
    loads and one gRPC Predict is answered through the batching the command enables."""
    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from core import features

    command, mounts = _compose_mounts(features.SHIPPED_MODEL_BASE_PATH)
    config = Path(mounts.pop("/config/models.config"))
    text = config.read_text()
    assert 'base_path: "/models/fer"' in text
    translated = tmp_path / "models.config"
    translated.write_text(text.replace('"/models/fer"', f'"{mounts.pop("/models/fer")}"'))
    mounts["/config/models.config"] = str(translated)
    grpc_port, rest_port = free_port(), free_port()
    args = []
    for a in command:
        for target, source in mounts.items():
            a = a.replace(f"={target}", f"={source}")
        args.append(a.replace("=8500", f"={grpc_port}").replace("=8501", f"={rest_port}"))
    assert not any("/config/" in a or "/models/" in a for a in args), args
    process = _serve(args)
    try:
        _wait_for_line(process, r"Successfully loaded servable version \{name: fer")
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "fer"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(np.full((1, 48, 48, 1), 128, np.uint8)))
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        probabilities = tf.make_ndarray(response.outputs["probabilities"])
        assert probabilities.shape == (1, features.NUM_CLASSES)
        np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-5)
        card = json.loads(Path(features.SHIPPED_MODEL_BASE_PATH, "model_card.json").read_text())
        assert response.model_spec.version.value == int(card["version"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0


def test_an_empty_base_path_is_waited_on_and_a_failed_version_shows_in_the_status(model_base, tmp_path):
    base = tmp_path / "fer"
    server = local_server.start(model_base_path=str(base), grpc_port=0, rest_port=0, poll_seconds=0.2)
    try:
        status, body = call_json(server.rest_port, "POST", "/v1/models/fer:predict", {"instances": [[0]]})
        assert (status, body) == (404, {"error": "Servable not found for request: Latest(fer)"})
        shutil.copytree(model_base / "1", base / "1")
        deadline = time.monotonic() + 60
        while server.store.current() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        status, body = call_json(server.rest_port, "GET", "/v1/models/fer")
        assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
        (base / "2").mkdir()
        (base / "2" / "saved_model.pb").write_bytes(b"not a saved model")
        deadline = time.monotonic() + 60
        while len(server.store.states()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        status, body = call_json(server.rest_port, "GET", "/v1/models/fer")
        assert status == 200
        failed, served = body["model_version_status"]
        assert (failed["version"], failed["state"]) == ("2", "END")
        assert failed["status"]["error_code"] != "OK" and failed["status"]["error_message"]
        assert (served["version"], served["state"]) == ("1", "AVAILABLE")
        status, body = call_json(server.rest_port, "POST", "/v1/models/fer:predict",
                                 {"instances": [[[[0]] * 48] * 48]})
        assert status == 200  # the loaded version keeps serving
        metrics = server.metrics.page().decode()
        assert re.search(r':tensorflow:cc:saved_model:load_attempt_count_total\{model_path=".*/2",status="fail"\} 1',
                         metrics)
        assert 'fer_serving_served_version{model_name="fer"} 1.0' in metrics
        assert ':tensorflow:serving:request_latency_count{API="predict",entrypoint="REST",model_name="fer"} 1.0' \
            in metrics
    finally:
        server.stop()


def _one_line_error(result):
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    return lines[0]


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "cli.main", "serve", "--model_base_path", str(tmp_path),
                                 f"--port={port}", "--rest_api_port=0"], cwd=ROOT, capture_output=True, text=True,
                                timeout=120, env=USER_ENV)
    assert f"127.0.0.1:{port}" in _one_line_error(result)


@pytest.mark.parametrize("text, expected", [
    ("model_config_list { config { name: 'a' base_path: '/x' } config { name: 'b' base_path: '/y' } }", "2 models"),
    ("model_config_list { config { name: 'fer' base_path: '/x' model_version_policy { all {} } } }", "latest"),
    ("model_config_list { confg {} }", "not a ModelServerConfig text proto"),
])
def test_a_config_this_server_cannot_serve_is_a_one_line_error(tmp_path, text, expected):
    config = tmp_path / "models.config"
    config.write_text(text)
    result = subprocess.run([sys.executable, "-m", "cli.main", "serve", f"--model_config_file={config}",
                             "--port=0", "--rest_api_port=0"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=USER_ENV)
    line = _one_line_error(result)
    assert str(config) in line and expected in line


@pytest.mark.parametrize("flag", ["--port=99999", "--rest_api_port=-1", "--enable_batching=maybe",
                                  "--max_batch_rows=0", "--rest_max_connections=0", "--rest_max_connections=many"])
def test_out_of_range_flags_are_refused_by_the_parser(flag):
    result = subprocess.run([sys.executable, "-m", "cli.main", "serve", flag], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert flag.split("=")[0] in result.stderr


def test_a_missing_base_path_is_said_to_be_missing_and_waited_on(tmp_path, caplog):
    """One line naming the path and saying it does not exist (not TF Serving's leaf-directory
    guess); once the folder exists but is empty, that guess."""
    import logging

    from serving.model_store import ModelStore

    base = tmp_path / "no" / "fer"
    store = ModelStore("fer", str(base), poll_seconds=0)
    with caplog.at_level(logging.WARNING, logger="fer.serving"):
        store.refresh()
        store.refresh()  # said once
        base.mkdir(parents=True)
        store.refresh()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"No versions of servable fer found under base path {base}: the path does not exist; waiting "
                     "for it",
                     f"No versions of servable fer found under base path {base}. Did you forget to name your leaf "
                     "directory as a number (eg. '/1/')?"]


def test_a_version_folder_given_as_the_base_path_is_told_to_give_its_parent(tmp_path):
    version = tmp_path / "fer" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")  # refused before anything reads it
    result = subprocess.run([sys.executable, "-m", "cli.main", "serve", f"--model_base_path={version}", "--port=0",
                             "--rest_api_port=0"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=USER_ENV)
    line = _one_line_error(result)
    assert f"--model_base_path {version} is a SavedModel version folder" in line
    assert line.endswith(f"give its parent, {tmp_path / 'fer'}")


def test_one_port_for_grpc_and_rest_is_refused_before_the_model_loads(tmp_path):
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "cli.main", "serve", "--model_base_path", str(tmp_path),
                             "--port", str(port), "--rest-port", str(port)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=USER_ENV)
    line = _one_line_error(result)  # one line: no version lookup, no load, no bind was logged
    assert f"--port and --rest_api_port are both {port}" in line


def test_serve_raises_the_open_file_limit_and_keeps_the_connection_cap_within_it(model_base):
    """The soft RLIMIT_NOFILE is raised to the hard one at start-up (logged), and a REST
    connection cap above what that leaves is lowered to it, with a warning."""
    def low_limits():
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 1024))

    process = _serve([f"--model_base_path={model_base}", "--port=0", f"--rest_api_port={free_port()}",
                      "--rest_max_connections=5000", "--file_system_poll_wait_seconds=0"], preexec_fn=low_limits)
    try:
        lines = "".join(_wait_for_line(process, "REST connections: at most"))
        assert "Open-file limit (RLIMIT_NOFILE): soft 512 -> 1024 (hard 1024)" in lines
        assert "--rest_max_connections 5000 is above what the open-file limit 1024 leaves (768" in lines
        assert "REST connections: at most 768 open" in lines
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        assert re.search(r"Max open files\s+1024\s+1024", limits)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
