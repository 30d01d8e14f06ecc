"""A local Google Secret Manager for tests: ``AccessSecretVersion`` over plain gRPC on 127.0.0.1.

The real ``google-cloud-secret-manager`` client reaches it through ``BEAM_PUSHER_SECRET_MANAGER_EMULATOR_HOST``
(``beam_pusher.secretstores``): ``client_options={"api_endpoint": ...}`` with anonymous credentials. The library
ships its request and response messages but no servicer classes, so the one method is served by a generic handler
with those messages::

    with LocalSecretManager() as store:
        store.add("projects/p/secrets/hf-token/versions/1", "hf_...")
        store.deny("projects/p/secrets/other/versions/latest")
        os.environ[GCP_EMULATOR_ENV] = store.host

Like the real service: an unknown version is NOT_FOUND, a denied one PERMISSION_DENIED; ``latest`` is the highest
numbered version of a secret. ``calls`` counts the requests served.
"""

from __future__ import annotations

import re
import threading
from concurrent import futures
from typing import Any

__all__ = ["LocalSecretManager"]

_SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
_VERSION = re.compile(r"^(?P<secret>projects/[^/]+/secrets/[^/]+)/versions/(?P<version>[^/]+)$")


class LocalSecretManager:
    """Secret versions in memory, served on ``host`` (``127.0.0.1:PORT``) until ``stop``."""

    def __init__(self) -> None:
        self._versions: dict[str, bytes] = {}
        self._denied: set[str] = set()
        self._lock = threading.Lock()
        self._server: Any = None
        self.host = ""
        self.calls = 0

    def add(self, name: str, value: str | bytes) -> None:
        """Stores ``value`` as the version ``name`` (``projects/P/secrets/S/versions/N``)."""
        if not _VERSION.match(name):
            raise ValueError(f"{name!r} is not projects/P/secrets/S/versions/N")
        with self._lock:
            self._versions[name] = value.encode() if isinstance(value, str) else value

    def deny(self, name: str) -> None:
        """Makes every request for the version (or the secret) ``name`` fail with PERMISSION_DENIED."""
        with self._lock:
            self._denied.add(name)

    def _lookup(self, name: str) -> tuple[str, bytes | None, bool]:
        match = _VERSION.match(name)
        with self._lock:
            self.calls += 1
            if match is None:
                return name, None, False
            secret = match.group("secret")
            denied = name in self._denied or secret in self._denied
            if match.group("version") == "latest":
                numbered = [v for v in self._versions if v.startswith(secret + "/versions/")]
                numbered = [v for v in numbered if v.rsplit("/", 1)[1].isdigit()]
                name = max(numbered, key=lambda v: int(v.rsplit("/", 1)[1]), default=name)
            return name, self._versions.get(name), denied

    def _access(self, request: Any, context: Any) -> Any:
        import grpc
        from google.cloud.secretmanager_v1.types import AccessSecretVersionResponse, SecretPayload

        name, data, denied = self._lookup(request.name)
        if denied:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"Permission denied on resource {request.name}")
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{request.name}] not found.")
        return AccessSecretVersionResponse(name=name, payload=SecretPayload(data=data))

    def start(self) -> LocalSecretManager:
        """Starts serving on a free port of 127.0.0.1; sets ``host``."""
        import grpc
        from google.cloud.secretmanager_v1.types import AccessSecretVersionRequest, AccessSecretVersionResponse

        handler = grpc.method_handlers_generic_handler(_SERVICE, {
            "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                self._access,
                request_deserializer=AccessSecretVersionRequest.deserialize,
                response_serializer=AccessSecretVersionResponse.serialize,
            ),
        })
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((handler,))
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.host = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        """Stops serving (at once: requests under way are cancelled)."""
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> LocalSecretManager:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
