"""The HTTP transport of the local Hub: a threading HTTP/1.1 server with keep-alive and always a Content-Length.

Each request is routed (``routes.match``), may be delayed, failed or dropped by the fault injector, then answered by
an endpoint function. Every answer carries ``X-Request-Id``; errors carry the Hub's ``X-Error-Code`` and
``X-Error-Message``. A request body the endpoint did not read is drained (or the connection closed) so keep-alive
connections stay in sync.
"""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time
import urllib.parse
import uuid

from beam_pusher.localhub import routes
from beam_pusher.localhub.accounts import InvalidToken
from beam_pusher.localhub.protocol import BodyReader, HubError, HubState, Request, Response, json_response
from beam_pusher.localhub.storage import StorageError

__all__ = ["HubHTTPServer"]

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_DRAIN_LIMIT = 16 * 1024 * 1024
_STATUS_TEXT = {429: "Too many requests: slow down and retry", 500: "Internal Error (injected)",
                503: "Service temporarily unavailable (injected)"}  # fmt: skip


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
            elif route is None:
                response = HubError(404, f"Not found: {self.command} {raw_path}").to_response()
            else:
                response = self._call(route, Request(self.command, raw_path, urllib.parse.parse_qs(query), self.headers,
                                                     body, state, None))  # fmt: skip
            self._send(response, body)
            state.record(name, started, time.time())
        finally:
            state.finish()

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
        length = response.length if response.length is not None else len(response.body)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(length))
            self.send_header("X-Request-Id", uuid.uuid4().hex)
            for key, value in response.headers.items():
                self.send_header(key, value)
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                if response.stream is not None:
                    left = length
                    while left > 0:
                        data = response.stream.read(min(_CHUNK, left))
                        if not data:
                            break
                        self.wfile.write(data)
                        left -= len(data)
                else:
                    self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if response.stream is not None:
                response.stream.close()

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
