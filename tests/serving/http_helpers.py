"""Plain HTTP against the local server: http.client for whole requests, a raw socket for
what http.client will not send (a bad Content-Length, a half-sent request)."""

import http.client
import json
import socket
import time
from typing import Dict, Optional, Tuple


def call(port: int, method: str, path: str, body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None,
         timeout: float = 30) -> Tuple[int, Dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def call_json(port: int, method: str, path: str, body=None, raw: Optional[bytes] = None):
    """(status, parsed JSON body); `body` is JSON-encoded, `raw` sent as is."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    status, headers, payload = call(port, method, path, data)
    assert headers.get("content-type") == "application/json", (status, headers, payload[:200])
    return status, json.loads(payload)


def raw_exchange(port: int, data: bytes, timeout: float = 10, wait_for_close: bool = True) -> bytes:
    """Sends bytes as they are and returns what comes back until the server closes (or the
    first complete response, when not waiting for the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:  # the server answered early (413, 411) and closed: its answer is still there to read
            pass
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            if not wait_for_close and _complete(received):
                break
        return received


def request_bytes(method: str, path: str, body: Optional[bytes], headers: Optional[Dict[str, str]] = None) -> bytes:
    """An HTTP/1.1 request as http.client would frame it (Content-Length: 0 on a POST, PUT or
    PATCH without a body), closing the connection after the answer."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse_response(data: bytes) -> Tuple[int, Dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body
