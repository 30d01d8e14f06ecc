"""A local S3 for tests and benchmarks: moto's server on 127.0.0.1, counting the object bytes it serves.

s3fs (and so ``s3://`` URLs through fsspec) reaches it through ``AWS_ENDPOINT_URL_S3``; ``environ`` holds the
variables to set, with dummy credentials. ``bytes_served(key)`` is what GET requests of that object sent back, so a
test can say how much of a model a deploy read, as the storage saw it::

    with LocalS3() as s3:
        os.environ.update(s3.environ)
        s3.put("model/weights.bin", data)
        ...
        assert s3.bytes_served("model/weights.bin") < 1024 * 1024

moto keeps its state per process, not per server: ``start`` resets it, so only one ``LocalS3`` (or other moto
server) should be in use at a time.
"""

from __future__ import annotations

import collections
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

from beam_pusher.testing import free_port

__all__ = ["LocalS3"]


class LocalS3:
    """moto's S3 in a thread, with one bucket, counting the body bytes of every GET per object path.

    Args:
      bucket: The bucket created on start.
    """

    def __init__(self, bucket: str = "bucket"):
        self.bucket = bucket
        self.endpoint = ""
        self._served: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._server: Any = None

    @property
    def environ(self) -> dict[str, str]:
        """What boto3 and s3fs need to reach this server (set it before they make a client)."""
        return {"AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def start(self) -> LocalS3:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        count = self._count

        class _CountingRequests(MotoRequestHandler):
            def log_request(self, *args: Any) -> None:  # one line per request on stderr drowns a test's output
                pass

        class _Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                app = DomainDispatcherApplication(create_backend_app)
                self._server = make_server(self._ip_address, self._port, _counted(app, count), True,
                                           request_handler=_CountingRequests)
                self._server_ready_event.set()
                self._server.serve_forever()

        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self._server = _Server(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST"),
                               timeout=10).read()
        self._client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def put(self, key: str, data: bytes) -> str:
        """Writes an object (replacing any); returns its ``s3://`` URL."""
        self._client().put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def upload(self, key: str, path: str) -> str:
        """Writes an object from a local file, in parts when it is large; returns its ``s3://`` URL."""
        self._client().upload_file(path, self.bucket, key)
        return f"s3://{self.bucket}/{key}"

    def bytes_served(self, key: str) -> int:
        """Body bytes that GET requests of ``key`` in the bucket received so far."""
        with self._lock:
            return self._served[f"/{self.bucket}/{key}"]

    def reset_counts(self) -> None:
        with self._lock:
            self._served.clear()

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self._served[path] += n


def _counted(app: Any, count: Any) -> Any:
    """``app`` as a WSGI application that reports the body bytes of each GET response by path."""

    def counted(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "GET":
            return body
        return _CountedBody(body, environ.get("PATH_INFO", ""), count)

    return counted


class _CountedBody:
    """A WSGI response body that counts what it yields, and closes the one it wraps as WSGI asks."""

    def __init__(self, body: Iterable[bytes], path: str, count: Any):
        self._body, self._path, self._count = body, path, count

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._count(self._path, len(chunk))
            yield chunk

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
