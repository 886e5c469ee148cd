"""The HTTP/1.1 transport of the REST API: connections on one asyncio event loop (h11 parses
the protocol), request handling on a bounded pool of worker threads, as TF Serving's libevent
server does it. A connection never holds a worker: only a complete request does. So:

- a body is read only when its declared length is within the bound: no Content-Length on a
  body → 411, a negative or non-numeric one → 400, one above the bound → 413 (the body is not
  read and the connection is closed); chunked bodies are read up to the bound, then 413;
- a request must arrive within `read_timeout_s` once begun (408), an idle kept-alive
  connection is closed after `idle_timeout_s`, and at most `max_connections` are open (503);
- at most `workers` requests run and `queued` wait; beyond that the answer is 503 at once;
- a handler that does not finish within `request_timeout_s` is answered 504 (its worker
  finishes the call; the slot is freed then);
- every answer is JSON with a Content-Length, and an error inside a handler is a 500 with
  {"error"}: a request never ends in a dropped connection or a traceback.
"""

import asyncio
import concurrent.futures
import json
import logging
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Callable, List, Optional, Tuple

import h11

from serving.defaults import (DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_BYTES,
                              DEFAULT_QUEUED_REQUESTS, DEFAULT_READ_TIMEOUT_S, DEFAULT_REQUEST_TIMEOUT_S,
                              DEFAULT_WORKERS)

log = logging.getLogger("fer.serving.http")

MAX_HEADER_BYTES = 16 * 1024  # h11's default: a request line and headers larger than this get 431
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: List[Tuple[str, str]]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Tuple[Tuple[str, str], ...] = ()


def json_error(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message}).encode())


@dataclass(frozen=True)
class HttpLimits:
    max_body_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    workers: int = DEFAULT_WORKERS
    queued: int = DEFAULT_QUEUED_REQUESTS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S


class _Refused(Exception):
    """A request answered without running its handler (then the connection is closed)."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


class HttpServer:
    """serve(handler) on host:port; handler(Request) -> Response runs on a worker thread."""

    def __init__(self, handler: Callable[[Request], Response], host: str, port: int, limits: HttpLimits = HttpLimits(),
                 on_transport_error: Optional[Callable[[int], None]] = None):
        self.handler, self.limits = handler, limits
        self.on_transport_error = on_transport_error  # status -> None, for metrics
        self._pool = concurrent.futures.ThreadPoolExecutor(limits.workers, thread_name_prefix="rest")
        self._admitted = 0  # requests running or waiting for a worker (loop thread only)
        self._connections = 0
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: List[BaseException] = []

        async def open_socket():
            return await asyncio.start_server(self._connection, host, port, limit=_READ_CHUNK, backlog=512)

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(open_socket())
            except BaseException as e:  # a port in use: reported by the constructor
                failure.append(e)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="rest-io", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._loop.close()
            self._pool.shutdown(wait=False)
            raise OSError(f"cannot serve REST on {host}:{port}: {failure[0]}")
        self.server_address = self._server.sockets[0].getsockname()[:2]

    def stop(self) -> None:
        async def close():
            self._server.close()
            await self._server.wait_closed()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- one connection -----------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        try:
            if self._connections > self.limits.max_connections:
                await self._send_and_close(writer, h11.Connection(h11.SERVER), json_error(
                    503, f"Too many connections (the server holds at most {self.limits.max_connections}); "
                         "retry later"))
                return
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        except Exception:  # a bug here must not take the event loop down
            log.exception("REST connection failed")
        finally:
            self._connections -= 1
            writer.close()

    async def _serve_connection(self, reader, writer) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        while True:
            try:
                request = await self._read_request(conn, reader, writer)
            except _Refused as refused:
                self._transport_error(refused.response.status)
                await self._send_and_close(writer, conn, refused.response)
                return
            if request is None:  # the client closed, or stayed idle past the timeout
                return
            response = await self._dispatch(request)
            keep_alive = await self._send(writer, conn, response, head=request.method == "HEAD")
            if not keep_alive or conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:  # the client had not finished its request
                return

    async def _receive(self, conn, reader, timeout: float, idle: bool):
        """The next h11 event. `idle`: waiting for a request to begin, so a timeout is a quiet
        None; once a byte of it arrives, the rest must follow within read_timeout_s (a client
        trickling bytes cannot keep a connection for ever)."""
        loop = asyncio.get_running_loop()
        deadline = None if idle else loop.time() + timeout
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            wait = timeout if deadline is None else deadline - loop.time()
            try:
                if wait <= 0:
                    raise asyncio.TimeoutError
                data = await asyncio.wait_for(reader.read(_READ_CHUNK), wait)
            except asyncio.TimeoutError:
                if deadline is None:
                    return None
                raise _Refused(json_error(408, f"Request not received within {self.limits.read_timeout_s:g} s")) \
                    from None
            conn.receive_data(data)
            if deadline is None:
                deadline = loop.time() + self.limits.read_timeout_s

    async def _read_request(self, conn, reader, writer) -> Optional[Request]:
        loop = asyncio.get_running_loop()
        try:
            event = await self._receive(conn, reader, self.limits.idle_timeout_s, idle=True)
            if event is None or isinstance(event, h11.ConnectionClosed):
                return None
            deadline = loop.time() + self.limits.read_timeout_s
            if not isinstance(event, h11.Request):
                event = await self._receive(conn, reader, self.limits.read_timeout_s, idle=False)
            assert isinstance(event, h11.Request), event
            headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers]
            method, target = event.method.decode("latin-1"), event.target.decode("latin-1")
            self._check_length(method, dict(headers))
            if conn.they_are_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            body = bytearray()
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise _Refused(json_error(408, f"Request not received within {self.limits.read_timeout_s:g} s"))
                part = await self._receive(conn, reader, remaining, idle=False)
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > self.limits.max_body_bytes:
                        raise _Refused(self._too_large(f"more than {self.limits.max_body_bytes} bytes"))
                elif isinstance(part, h11.EndOfMessage):
                    return Request(method, target, headers, bytes(body))
                elif isinstance(part, h11.ConnectionClosed):
                    return None
        except h11.RemoteProtocolError as e:
            raise _Refused(json_error(e.error_status_hint, f"Malformed HTTP request: {e}")) from None

    def _check_length(self, method: str, headers: dict) -> None:
        """Content-Length is checked before the body is read (h11 has checked that it is a
        non-negative number)."""
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if length is None:
            if method == "POST" and not chunked:
                raise _Refused(json_error(411, "A POST needs a Content-Length header (or a chunked body)"))
            return
        if int(length) > self.limits.max_body_bytes:
            raise _Refused(self._too_large(f"{int(length)} bytes"))

    def _too_large(self, size: str) -> Response:
        return json_error(413, f"Request body of {size} exceeds the limit of {self.limits.max_body_bytes} bytes "
                               "(--max_message_mb)")

    def _transport_error(self, status: int) -> None:
        if self.on_transport_error is not None:
            self.on_transport_error(status)

    async def _dispatch(self, request: Request) -> Response:
        limit = self.limits.workers + self.limits.queued
        if self._admitted >= limit:
            self._transport_error(503)
            return json_error(503, f"Server busy: {limit} requests running or queued "
                                   f"(--rest_api_num_threads {self.limits.workers}); retry later")
        self._admitted += 1
        future = self._loop.run_in_executor(self._pool, self._handle, request)
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.limits.request_timeout_s)
        except asyncio.TimeoutError:
            self._transport_error(504)
            return json_error(504, f"Request did not finish within {self.limits.request_timeout_s:g} s "
                                   "(--rest_api_timeout_in_ms)")

    def _release(self, _future) -> None:
        self._admitted -= 1

    def _handle(self, request: Request) -> Response:
        try:
            return self.handler(request)
        except Exception as e:  # the catch-all: logged here with its traceback, a one-line JSON there
            log.exception("REST %s %s failed", request.method, request.target)
            return json_error(500, f"Internal error: {type(e).__name__}")

    @staticmethod
    def _response_events(response: Response, close: bool, head: bool):
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))]
        headers += list(response.headers)
        if close:
            headers.append(("Connection", "close"))
        try:
            reason = HTTPStatus(response.status).phrase.encode()
        except ValueError:  # 499, TF Serving's CLIENT_CLOSED_REQUEST, has no standard phrase
            reason = b""
        events = [h11.Response(status_code=response.status, headers=headers, reason=reason)]
        if not head:  # a HEAD answer has the headers of the GET one and no body
            events.append(h11.Data(data=response.body))
        return events + [h11.EndOfMessage()]

    async def _send(self, writer, conn, response: Response, close: bool = False, head: bool = False) -> bool:
        """Writes the response; False when the connection is to be closed after it."""
        try:
            for event in self._response_events(response, close, head):
                data = conn.send(event)
                if data:
                    writer.write(data)
            await asyncio.wait_for(writer.drain(), self.limits.read_timeout_s)
        except (h11.LocalProtocolError, asyncio.TimeoutError):
            return False
        return not close

    async def _send_and_close(self, writer, conn, response: Response) -> None:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await self._send(writer, conn, response, close=True)
        else:  # h11 cannot frame a response now (one was begun): plain bytes, then close
            body = response.body
            writer.write(f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            try:
                await asyncio.wait_for(writer.drain(), self.limits.read_timeout_s)
            except asyncio.TimeoutError:
                pass
