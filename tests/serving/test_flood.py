"""Connection floods against the local server's REST port (issue 26): connections that never
send a byte, or trickle one at a time, must not lock out a valid client. The table holds
MAX_CONNECTIONS; more silent or trickling sockets than that are opened, and a valid Predict on
a new connection is still answered 200 (before eviction it was a 503 at once). Kept-alive
clients whose idle connection is evicted reconnect, as `requests` and `urllib3` do. Loopback
only; each test holds at most ~50 sockets for a few seconds."""

import json
import socket
import threading
import time

import numpy as np
import pytest
import requests
import urllib3

from core import features
from serving import server as local_server
from tests.serving.http_helpers import _complete, call_json, parse_response

MAX_CONNECTIONS = 32
FLOOD = 40  # sockets, more than the table holds
IMAGE = np.full((1,) + features.IMAGE_SHAPE, 5, np.uint8)
PREDICT = {"instances": IMAGE.tolist()}


@pytest.fixture(scope="module")
def capped(model_base):
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=0, poll_seconds=0,
                                max_connections=MAX_CONNECTIONS, first_byte_timeout_s=2.0, read_timeout_s=3.0,
                                idle_timeout_s=4.0)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def drained(capped):
    """Each test starts with the table empty (the sockets a test closed have left it)."""
    _wait_for(lambda: capped.rest.open_connections == 0)


def _wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _open(port, n):
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]


def _close(sockets):
    for s in sockets:
        s.close()


def _assert_predict_answered(server):
    start = time.monotonic()
    status, body = call_json(server.rest_port, "POST", "/v1/models/fer:predict", PREDICT)
    assert status == 200, body
    assert len(body["predictions"]) == 1 and time.monotonic() - start < 5


def test_silent_connections_beyond_the_cap_do_not_lock_out_a_predict(capped):
    rest = capped.rest
    evicted_before = rest.evictions
    silent = _open(capped.rest_port, FLOOD)
    try:
        time.sleep(0.3)  # all accepted: the table is full of silent sockets
        assert rest.open_connections == MAX_CONNECTIONS
        _assert_predict_answered(capped)  # before eviction: 503 at once
        assert rest.evictions - evicted_before == FLOOD - MAX_CONNECTIONS + 1  # the Predict's connection evicted one
        # the evicted ones were closed without an answer: silent sockets read EOF at once
        silent[0].settimeout(2)
        assert silent[0].recv(100) == b""
    finally:
        _close(silent)


def test_trickling_connections_do_not_lock_out_a_predict(capped):
    rest = capped.rest
    stop = threading.Event()
    sockets = _open(capped.rest_port, FLOOD)
    header = b"POST /v1/models/fer:predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000

    def trickle():  # one header byte a socket every 0.1 s
        for i in range(len(header)):
            for s in sockets:
                try:
                    s.send(header[i:i + 1])
                except OSError:
                    pass
            if stop.wait(0.1):
                return

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        time.sleep(0.5)  # every table connection has sent bytes: none is silent
        assert rest.open_connections == MAX_CONNECTIONS
        _assert_predict_answered(capped)
        _assert_predict_answered(capped)
        # a trickler evicted mid-request is told why, in JSON, before the close
        answers = []
        for s in sockets:
            s.setblocking(False)
            try:
                answers.append(s.recv(65536))
            except OSError:
                pass
        told = [parse_response(a) for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert told, answers
        status, headers, body = told[0]
        assert headers["connection"] == "close" and "retry" in json.loads(body)["error"]
    finally:
        stop.set()
        sender.join(10)
        _close(sockets)


def test_a_silent_connection_has_its_own_short_deadline(capped):
    port = capped.rest_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
        kept.sendall(b"GET /v1/models/fer HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not _complete(answer):  # the whole answer: nothing of it is left to read later
            answer += kept.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        assert silent.recv(100) == b""  # closed after the 2 s first-byte deadline
        assert 1.8 < time.monotonic() - start < 3.5
        kept.settimeout(0.5)
        with pytest.raises(socket.timeout):  # the kept-alive one has the 4 s idle timeout
            kept.recv(100)


def test_kept_alive_clients_whose_idle_connection_is_evicted_reconnect(capped):
    """More kept-alive clients than the table holds, taking turns: each new connection evicts
    the longest-idle one, whose client finds it closed and reconnects (no error surfaces)."""
    rest = capped.rest
    url = f"http://127.0.0.1:{capped.rest_port}/v1/models/fer:predict"
    sessions = [requests.Session() for _ in range(MAX_CONNECTIONS // 2 + 2)]
    pools = [urllib3.PoolManager(maxsize=1) for _ in range(MAX_CONNECTIONS // 2 + 2)]
    body = json.dumps(PREDICT).encode()
    evicted_before = rest.evictions
    try:
        for _ in range(2):
            for session, pool in zip(sessions, pools):
                response = session.post(url, data=body, timeout=10)
                assert response.status_code == 200 and len(response.json()["predictions"]) == 1
                response = pool.request("POST", url, body=body, timeout=10, retries=False)
                assert response.status == 200 and len(json.loads(response.data)["predictions"]) == 1
        # 36 clients with 32 places: the second round reconnected evicted clients
        assert rest.evictions - evicted_before >= 4
    finally:
        for session in sessions:
            session.close()
        for pool in pools:
            pool.clear()


def test_a_connection_with_bytes_waiting_is_not_evicted_as_silent_or_idle():
    """Bytes that have arrived but not been read yet (a new client's request, a kept-alive
    client's next one) make a connection 'arriving': under churn it is not taken as silent."""
    import types

    from serving.http_server import _ARRIVING, _IDLE, _SILENT, _ConnectionTable, _Slot

    def slot(pending: bytes, now: float):  # fd -1: the kernel has nothing; the loop's buffer says
        return _Slot(task=None, now=now, reader=types.SimpleNamespace(_buffer=bytearray(pending)), fd=-1)

    table = _ConnectionTable()
    sent, silent, idle = slot(b"POST /v1", 0.0), slot(b"", 1.0), slot(b"GET", 2.0)
    for s in (sent, silent, idle):
        table.add(s)
    table.move(idle, _IDLE, 2.0)
    assert table.pop_victim(now=3.0) is silent  # the older connection had sent its request
    assert sent.state == _ARRIVING and not sent.evicted and table.open == 2
    assert table.pop_victim(now=3.0) is sent  # then the arriving one (answered 503), before the kept-alive one
    assert table.pop_victim(now=3.0) is idle  # whose next request had come: taken as arriving, not idle
    assert idle.state == _ARRIVING
    assert table.pop_victim(now=3.0) is None and table.open == 0
    assert table.pop_expired(_SILENT, before=10.0, now=10.0) == []
