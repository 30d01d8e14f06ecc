"""The HTTP transport of the local Hub: a threading HTTP/1.1 server with keep-alive and always a Content-Length.

Each request is routed (``routes.match``), may be delayed, failed or dropped by the fault injector, then answered by
an endpoint function. Every answer carries ``X-Request-Id``; errors carry the Hub's ``X-Error-Code`` and
``X-Error-Message``. A request body the endpoint did not read is drained (or the connection closed) so keep-alive
connections stay in sync.
"""

from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from beam_pusher.localhub import routes
from beam_pusher.localhub.accounts import InvalidToken
from beam_pusher.localhub.protocol import BodyReader, HubError, HubState, Request, Response, json_response
from beam_pusher.localhub.ratelimit import UNCOUNTED_ROUTES
from beam_pusher.localhub.storage import StorageError

__all__ = ["HubHTTPServer"]

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_DRAIN_LIMIT = 16 * 1024 * 1024
_STATUS_TEXT = {429: "Too many requests: slow down and retry", 500: "Internal Error (injected)",
                503: "Service temporarily unavailable (injected)"}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalHub/1.0"
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    # Headers and body leave in separate writes; with Nagle's algorithm the body would wait for the client's delayed
    # ACK of the headers, 40 ms per request on Linux loopback, which the real Hub does not cost. (TCP_NODELAY)
    disable_nagle_algorithm = True
    server: HubHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - names are http.server's
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        logger.debug("%s %s", self.address_string(), format % args)

    def _handle(self) -> None:
        state = self.server.state
        raw_path, _, query = self.path.partition("?")
        segments = [urllib.parse.unquote(part) for part in raw_path.split("/")[1:]]
        while segments and segments[-1] == "":
            segments.pop()
        route = routes.match(self.command, segments)
        name = route.name if route else "unknown"
        state.count(name)
        try:
            started = time.time()
            body = BodyReader(self.rfile, self.headers)
            fault = state.faults.decide(name)
            if state.faults.latency:
                time.sleep(state.faults.latency)
            if fault is not None and fault.kind == "drop":
                logger.debug("dropping the connection of %s %s (injected fault)", self.command, raw_path)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault is not None:
                headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                response = HubError(fault.status, _STATUS_TEXT.get(fault.status, "Injected fault"), headers=headers)
                response = response.to_response()
            else:
                quota_headers, refusal = self._take_quota(name)
                if refusal is not None:
                    response = HubError(429, refusal).to_response()
                elif route is None:
                    response = HubError(404, f"Not found: {self.command} {raw_path}").to_response()
                else:
                    response = self._call(route, Request(self.command, raw_path, urllib.parse.parse_qs(query),
                                                         self.headers, body, state, None))
                response.headers.update(quota_headers)
            self._send(response, body)
            state.record(name, started, time.time())
        finally:
            state.finish()

    def _take_quota(self, route_name: str) -> tuple[dict[str, str], str | None]:
        """Counts an API request against the caller's quota: its ``RateLimit`` headers, and the 429 message if any.

        Requests are counted per token, as the Hub does (the header is hashed, so no token is kept), and per client
        address when anonymous; git reads, downloads and LFS transfers are not API requests.
        """
        quota = self.server.state.request_quota
        if quota is None or route_name in UNCOUNTED_ROUTES:
            return {}, None
        authorization = self.headers.get("Authorization")
        if authorization:
            key = "token:" + hashlib.sha256(authorization.strip().encode()).hexdigest()
        else:
            key = "address:" + self.client_address[0]
        headers, refusal = quota.take(key)
        return headers, None if refusal is None else quota.message(refusal)

    def _call(self, route: routes.Route, request: Request) -> Response:
        try:
            request.identity = request.state.accounts.authenticate(self.headers.get("Authorization"))
            return route.call(request)
        except InvalidToken:
            message = "Invalid credentials in Authorization header"
            return HubError(401, message).to_response()
        except HubError as err:
            return err.to_response()
        except StorageError as err:
            return HubError.from_storage(err).to_response()
        except (ConnectionError, TimeoutError):
            raise
        except Exception as err:  # answer 500 rather than drop the connection, and keep the server up
            logger.exception("local Hub endpoint %s failed", route.name)
            return json_response({"error": f"Internal error in the local Hub: {type(err).__name__}: {err}"}, 500)

    def _send(self, response: Response, body: BodyReader) -> None:
        close = False
        if not body.finished and not body.drain(_DRAIN_LIMIT):
            close = True  # the unread rest of the body would be taken for the next request
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            if response.events is not None:
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Cache-Control", "no-cache")
            else:
                length = response.length if response.length is not None else len(response.body)
                self.send_header("Content-Length", str(length))
            self.send_header("X-Request-Id", uuid.uuid4().hex)
            for key, value in response.headers.items():
                self.send_header(key, value)
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                pass
            elif response.events is not None:
                self._write_chunked(response.events)
            elif response.stream is not None:
                self._write_stream(response.stream, length)
            else:
                self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if response.stream is not None:
                response.stream.close()

    def _write_stream(self, stream: BinaryIO, length: int) -> None:
        left = length
        while left > 0:
            data = stream.read(min(_CHUNK, left))
            if not data:
                break
            self.wfile.write(data)
            left -= len(data)

    def _write_chunked(self, events: Iterator[bytes]) -> None:
        """Sends each item as it comes (server-sent events), in HTTP/1.1 chunks so the connection stays usable."""
        try:
            for data in events:
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, socket.timeout):
            self.close_connection = True


class HubHTTPServer(http.server.ThreadingHTTPServer):
    """A thread per connection; ``stop()`` also closes idle keep-alive connections.

    Args:
        address: ``(host, port)``; port 0 picks a free port.
        state: what the endpoints share.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], state: HubState):
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
