"""A local Hub server in a process of its own, controlled from the benchmark process.

Timing a client against a server that shares its interpreter measures the GIL as much as the client, so the
benchmarks run ``LocalHub`` in a child process and talk to it over a ``multiprocessing.connection`` socket: the
child answers calls of ``LocalHub`` methods (``commit_count``, ``list_files``, ``request_counts``, ...) and of
its fault injector (``faults.configure``, ``faults.counts``), so the benchmark can check what the client did
without trusting it.

Example::

    with HubProcess(latency=0.1) as hub:
        run_something(hub.endpoint, hub.token)
        print(hub.call("commit_count", "user/demo"), hub.faults("counts"))
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Client, Listener
from typing import Any

__all__ = ["HubProcess"]

_AUTHKEY_ENV = "BENCH_HUB_AUTHKEY"


def _serve(address: str, settings: dict[str, Any]) -> None:
    from beam_pusher.localhub import HubUser, LocalHub

    conn = Client(address, authkey=bytes.fromhex(os.environ[_AUTHKEY_ENV]))
    hub = LocalHub(settings["data_dir"], users=[HubUser(settings["user"], settings["token"])],
                   latency=settings["latency"], lfs_threshold=settings["lfs_threshold"],
                   rate_limit=settings.get("rate_limit"), commit_quota=settings.get("commit_quota")).start()
    conn.send(hub.endpoint)
    try:
        while True:
            try:
                kind, name, args, kwargs = conn.recv()
            except (EOFError, OSError):
                return
            if kind == "stop":
                conn.send(None)
                return
            target = hub.faults if kind == "faults" else hub
            try:
                value = getattr(target, name)
                value = value(*args, **kwargs) if callable(value) else value
                conn.send(("ok", value))
            except Exception as exc:  # noqa: BLE001 - sent back and raised in the caller
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        hub.stop()


class HubProcess:
    """Starts ``LocalHub`` in a child process (a plain ``python hubproc.py`` subprocess, controlled over a socket)."""

    def __init__(self, *, latency: float = 0.0, data_dir: str | None = None, user: str = "user",
                 lfs_threshold: int = 10 * 1024 * 1024, rate_limit: str | None = None,
                 commit_quota: str | None = None):
        self.user = user
        self.token = "hf_" + secrets.token_hex(16)
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-hub-")
        self.data_dir = data_dir or os.path.join(self._tmp.name, "data")
        self._lock = threading.Lock()
        authkey = secrets.token_bytes(16)
        listener = Listener(os.path.join(self._tmp.name, "control.sock"), "AF_UNIX", authkey=authkey)
        settings = {"data_dir": self.data_dir, "user": user, "token": self.token, "latency": latency,
                    "lfs_threshold": lfs_threshold, "rate_limit": rate_limit, "commit_quota": commit_quota}
        env = dict(os.environ, **{_AUTHKEY_ENV: authkey.hex()})
        self._process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), listener.address, json.dumps(settings)], env=env
        )
        accepted: list[Any] = []
        thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
        thread.start()
        thread.join(60)
        listener.close()
        if not accepted or not accepted[0].poll(60):
            self._process.kill()
            raise RuntimeError("the local Hub process did not start within 60 s")
        self._conn = accepted[0]
        self.endpoint: str = self._conn.recv()

    @property
    def pid(self) -> int:
        return self._process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        import psutil

        times = psutil.Process(self._process.pid).cpu_times()
        return times.user + times.system

    def _request(self, kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._conn.send((kind, name, args, kwargs))
            status, value = self._conn.recv()
        if status == "error":
            raise RuntimeError(f"local Hub {name}: {value}")
        return value

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Calls ``LocalHub.<name>(*args, **kwargs)`` in the server process (or reads the attribute)."""
        return self._request("hub", name, *args, **kwargs)

    def faults(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Calls ``LocalHub.faults.<name>(...)`` in the server process (or reads the attribute)."""
        return self._request("faults", name, *args, **kwargs)

    def stop(self) -> None:
        if self._process.poll() is None:
            try:
                with self._lock:
                    self._conn.send(("stop", "", (), {}))
                    if self._conn.poll(30):
                        self._conn.recv()
            except (OSError, EOFError):
                pass
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> HubProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


if __name__ == "__main__":
    _serve(sys.argv[1], json.loads(sys.argv[2]))
