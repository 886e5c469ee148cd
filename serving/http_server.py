"""The HTTP/1.1 transport of the REST API: connections on one asyncio event loop (h11 parses
the protocol), request handling on a bounded pool of worker threads, as TF Serving's libevent
server does it. A connection never holds a worker: only a complete request does. So:

- a body is read only when its declared length is within the bound: no Content-Length on a
  body → 411, a negative or non-numeric one → 400, one above the bound → 413 (the body is not
  read and the connection is closed); chunked bodies are read up to the bound, then 413;
- a new connection must send its first byte within `first_byte_timeout_s` (else it is closed
  quietly), a request must arrive whole within `read_timeout_s` once begun (408), and an idle
  kept-alive connection is closed after `idle_timeout_s`;
- at most `max_connections` are open. A new connection beyond that evicts one that has no
  request in flight, in this order: one that has not sent a byte yet (the longest-open
  first), then one whose request is still arriving (the least recently active first; it is
  answered 503), then a kept-alive one between requests (the longest idle first; closed as an
  idle timeout would, so HTTP clients reconnect). Only when every connection has a request in
  flight is the new one answered 503. Silent or trickling connections so never lock out a
  valid client, and a request in flight is never cut;
- at most `workers` requests run and `queued` wait; beyond that the answer is 503 at once;
- a handler that does not finish within `request_timeout_s` is answered 504 (its worker
  finishes the call; the slot is freed then);
- every answer is JSON with a Content-Length, and an error inside a handler is a 500 with
  {"error"}: a request never ends in a dropped connection or a traceback.
"""

import asyncio
import concurrent.futures
import fcntl
import json
import logging
import struct
import termios
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from typing import Callable, List, Optional, Tuple

import h11

from serving.defaults import (DEFAULT_FIRST_BYTE_TIMEOUT_S, DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS,
                              DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_QUEUED_REQUESTS, DEFAULT_READ_TIMEOUT_S,
                              DEFAULT_REQUEST_TIMEOUT_S, DEFAULT_WORKERS)

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
    first_byte_timeout_s: float = DEFAULT_FIRST_BYTE_TIMEOUT_S


# A connection's state, for eviction: the evictable ones in the order they go first.
_SILENT, _ARRIVING, _IDLE, _IN_FLIGHT = range(4)
_EVICTION_LOG_INTERVAL_S = 60.0


class _Slot:
    """One open connection in the table. `since`: when it entered its state (loop time)."""
    __slots__ = ("task", "state", "evicted", "since", "reader", "fd")

    def __init__(self, task, now: float, reader: asyncio.StreamReader, fd: int):
        self.task, self.state, self.evicted, self.since, self.reader, self.fd = task, _SILENT, False, now, reader, fd

    def has_bytes(self) -> bool:
        """Whether bytes have arrived that its task has not looked at yet: in the kernel's
        buffer, or read by the event loop but not yet by the task. Such a connection is not
        silent or idle whatever its state says (a client that has just connected and sent its
        request, a kept-alive client sending its next one), and is not evicted as one."""
        if getattr(self.reader, "_buffer", None):
            return True
        try:
            return struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"))[0] > 0
        except (OSError, ValueError):
            return False


class _ConnectionTable:
    """The open connections (event-loop thread only). Evictable ones are kept in one ordered
    dict per state, oldest first, so a state change, the choice of a victim and finding the
    ones past their deadline are O(1) each."""

    def __init__(self):
        self._evictable = (OrderedDict(), OrderedDict(), OrderedDict())  # _SILENT, _ARRIVING, _IDLE
        self.open = 0

    def add(self, slot: _Slot) -> None:
        self.open += 1
        self._evictable[_SILENT][slot] = None

    def move(self, slot: _Slot, state: int, now: float) -> None:
        """Into `state`, at the end of its order (a byte arriving again moves it to the end)."""
        if slot.evicted:
            return
        if slot.state != _IN_FLIGHT:
            self._evictable[slot.state].pop(slot, None)
        slot.state, slot.since = state, now
        if state != _IN_FLIGHT:
            self._evictable[state][slot] = None

    def remove(self, slot: _Slot) -> None:
        if slot.evicted:  # its place was freed when it was evicted
            return
        if slot.state != _IN_FLIGHT:
            self._evictable[slot.state].pop(slot, None)
        self.open -= 1

    def _take(self, slot: _Slot, now: float) -> bool:
        """Takes a _SILENT or _IDLE slot out of the table, unless bytes have arrived on it:
        then it is moved to _ARRIVING (its task will read them) and False."""
        if slot.has_bytes():
            self.move(slot, _ARRIVING, now)
            return False
        del self._evictable[slot.state][slot]
        slot.evicted = True
        self.open -= 1
        return True

    def pop_expired(self, state: int, before: float, now: float) -> List[_Slot]:
        """The connections in `state` (_SILENT or _IDLE) since before `before`, taken out."""
        ordered, expired = self._evictable[state], []
        while ordered:
            slot = next(iter(ordered))
            if slot.since > before:
                break
            if self._take(slot, now):
                expired.append(slot)
        return expired

    def pop_victim(self, now: float) -> Optional[_Slot]:
        """The connection to evict, taken out of the table; None when every one has a request
        in flight. Each slot looked at is either taken or leaves its state, so this is O(1)
        amortized."""
        for state in (_SILENT, _ARRIVING, _IDLE, _ARRIVING):  # (kept-alive ones with bytes waiting become arriving)
            ordered = self._evictable[state]
            while ordered:
                slot = next(iter(ordered))
                if state == _ARRIVING:
                    del ordered[slot]
                    slot.evicted = True
                    self.open -= 1
                    return slot
                if self._take(slot, now):
                    return slot
        return None


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
        self._table = _ConnectionTable()  # loop thread only
        self._tasks = set()  # every connection's task, to end them at stop (loop thread only)
        self.evictions = 0  # connections evicted to admit new ones (read by tests and logs)
        self._last_eviction_log = -_EVICTION_LOG_INTERVAL_S
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: List[BaseException] = []

        async def open_socket():
            self._sweeper = asyncio.ensure_future(self._sweep())
            return await asyncio.start_server(self._connection, host, port, limit=_READ_CHUNK, backlog=1024)

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
            self._sweeper.cancel()
            for task in list(self._tasks):  # open connections end with the server (their sockets closed)
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)
            await self._server.wait_closed()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def open_connections(self) -> int:
        return self._table.open

    # -- one connection -----------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        slot = _Slot(asyncio.current_task(), self._loop.time(), reader, writer.get_extra_info("socket").fileno())
        self._tasks.add(slot.task)
        try:
            if self._table.open >= self.limits.max_connections and not self._evict():
                self._transport_error(503)
                await self._send_and_close(writer, h11.Connection(h11.SERVER), json_error(
                    503, f"Too many connections: all {self.limits.max_connections} have a request in flight "
                         "(--rest_max_connections); retry later"))
                return
            self._table.add(slot)
            try:
                await self._serve_connection(reader, writer, slot)
            finally:
                self._table.remove(slot)
        except asyncio.CancelledError:
            if slot.evicted and slot.state == _ARRIVING:  # a request begun: told why, in a line
                self._transport_error(503)
                writer.write(self._raw_response(json_error(
                    503, "Connection closed to admit another: the server's connections are all in use and this "
                         "request was not complete; retry")))
        except (ConnectionError, OSError):
            pass
        except Exception:  # a bug here must not take the event loop down
            log.exception("REST connection failed")
        finally:
            writer.close()
            self._tasks.discard(slot.task)

    async def _sweep(self) -> None:
        """Closes connections past their first-byte or idle deadline: one timer for all of them,
        not one per connection (a silent one then costs its accept and its close only)."""
        tick = max(0.01, min(0.25, self.limits.first_byte_timeout_s / 8, self.limits.idle_timeout_s / 8))
        while True:
            await asyncio.sleep(tick)
            now = self._loop.time()
            try:
                for state, timeout in ((_SILENT, self.limits.first_byte_timeout_s),
                                       (_IDLE, self.limits.idle_timeout_s)):
                    for slot in self._table.pop_expired(state, now - timeout, now):
                        slot.task.cancel()  # closed quietly, as after an idle timeout
            except Exception:  # a bug here must not end the deadlines
                log.exception("REST connection sweep failed")

    def _evict(self) -> bool:
        """Frees a place for a new connection; False when none can be freed."""
        victim = self._table.pop_victim(self._loop.time())
        if victim is None:
            return False
        victim.task.cancel()
        self.evictions += 1
        now = time.monotonic()
        if now - self._last_eviction_log >= _EVICTION_LOG_INTERVAL_S:
            self._last_eviction_log = now
            log.warning("REST connection table full (%d, --rest_max_connections): evicting connections with no "
                        "request in flight, silent ones first (%d so far)", self.limits.max_connections,
                        self.evictions)
        return True

    async def _serve_connection(self, reader, writer, slot: _Slot) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        while True:
            try:
                request = await self._read_request(conn, reader, writer, slot)
            except _Refused as refused:
                self._transport_error(refused.response.status)
                self._table.move(slot, _IN_FLIGHT, 0.0)  # its answer is being written
                await self._send_and_close(writer, conn, refused.response)
                return
            if request is None:  # the client closed, or stayed idle past the timeout
                return
            self._table.move(slot, _IN_FLIGHT, 0.0)
            response = await self._dispatch(request)
            keep_alive = await self._send(writer, conn, response, head=request.method == "HEAD")
            if not keep_alive or conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:  # the client had not finished its request
                return
            self._table.move(slot, _IDLE, self._loop.time())

    async def _receive(self, conn, reader, timeout: float, idle: bool, slot: _Slot):
        """The next h11 event. `idle`: waiting for a request to begin, with no timer of its own:
        the sweeper closes the connection at its first-byte or idle deadline. Once a byte
        arrives, the rest must follow within read_timeout_s (`timeout` when not idle; a
        client trickling bytes cannot keep a connection for ever)."""
        loop = self._loop
        deadline = None if idle else loop.time() + timeout
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                if deadline is None:
                    data = await reader.read(_READ_CHUNK)
                else:
                    wait = deadline - loop.time()
                    if wait <= 0:
                        raise asyncio.TimeoutError
                    data = await asyncio.wait_for(reader.read(_READ_CHUNK), wait)
            except asyncio.TimeoutError:
                raise _Refused(json_error(408, f"Request not received within {self.limits.read_timeout_s:g} s")) \
                    from None
            if slot.evicted:  # wait_for (3.10) can return a read that completed as the task was cancelled
                raise asyncio.CancelledError
            conn.receive_data(data)
            now = loop.time()
            if data:
                self._table.move(slot, _ARRIVING, now)
            if deadline is None:
                deadline = now + self.limits.read_timeout_s

    async def _read_request(self, conn, reader, writer, slot: _Slot) -> Optional[Request]:
        loop = asyncio.get_running_loop()
        try:
            event = await self._receive(conn, reader, 0.0, idle=True, slot=slot)
            if event is None or isinstance(event, h11.ConnectionClosed):
                return None
            deadline = loop.time() + self.limits.read_timeout_s
            if not isinstance(event, h11.Request):
                event = await self._receive(conn, reader, self.limits.read_timeout_s, idle=False, slot=slot)
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
                part = await self._receive(conn, reader, remaining, idle=False, slot=slot)
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
            # one write: head and body leave in one segment (not one send() per h11 event)
            writer.write(b"".join(conn.send(event) or b"" for event in self._response_events(response, close, head)))
            await asyncio.wait_for(writer.drain(), self.limits.read_timeout_s)
        except (h11.LocalProtocolError, asyncio.TimeoutError):
            return False
        return not close

    async def _send_and_close(self, writer, conn, response: Response) -> None:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await self._send(writer, conn, response, close=True)
        else:  # h11 cannot frame a response now (one was begun): plain bytes, then close
            writer.write(self._raw_response(response))
            try:
                await asyncio.wait_for(writer.drain(), self.limits.read_timeout_s)
            except asyncio.TimeoutError:
                pass

    @staticmethod
    def _raw_response(response: Response) -> bytes:
        """A closing response as bytes, whatever state h11 is in."""
        body = response.body
        return (f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode() + body
