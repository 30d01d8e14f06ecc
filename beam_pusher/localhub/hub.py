"""``LocalHub``: start, stop and inspect a local Hub server in-process.

The server is what the real ``huggingface_hub`` client talks to in tests, the demo and benchmarks. The inspection
helpers (``head``, ``commit_count``, ``read_file``, ``list_files``, ``space_state``) read the repositories directly
from disk, not over HTTP, so a test can check what the client did without trusting the client.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from beam_pusher.localhub import spaces
from beam_pusher.localhub.accounts import Accounts, HubUser
from beam_pusher.localhub.faults import FaultInjector
from beam_pusher.localhub.lfs import LfsStore
from beam_pusher.localhub.protocol import URL_PREFIXES, HubConfig, HubState
from beam_pusher.localhub.ratelimit import RateLimit, parse_rate_limit
from beam_pusher.localhub.runtime import space_runtime, space_timeline
from beam_pusher.localhub.server import HubHTTPServer
from beam_pusher.localhub.repostore import RepoStore
from beam_pusher.localhub.spacerun import SpaceRunner
from beam_pusher.localhub.storage import Repository
from beam_pusher.localhub.users_file import load_users

__all__ = ["LocalHub", "SpaceState", "StoredFile"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StoredFile:
    """A file of a repository: content size, git blob id, and the LFS sha256 when stored with LFS."""

    path: str
    size: int
    blob_id: str
    lfs_sha256: str | None = None

    @property
    def is_lfs(self) -> bool:
        return self.lfs_sha256 is not None


@dataclasses.dataclass(frozen=True)
class SpaceState:
    """Server-side settings of a Space. ``secrets`` holds the values, which no HTTP endpoint ever returns."""

    sdk: str
    private: bool
    hardware: str
    sleep_time: int | None
    secrets: dict[str, str]
    variables: dict[str, str]
    paused: bool
    runtime: dict[str, Any]


class LocalHub:
    """A local Hub server that the real ``huggingface_hub`` client cannot tell from the Hub.

    Args:
        data_dir: where repositories and LFS objects live; re-opening the same directory serves the same repositories.
            None: a fresh temporary directory made by ``start()`` and removed by ``stop()``.
        host: interface to listen on; URLs the server returns use exactly this host.
        port: 0 picks a free port.
        users: the accounts; default one user ``"user"`` with a random write token.
        users_file: a YAML or JSON file of users, their tokens and organisation roles (``users_file``), instead of
            ``users``; its first user is the default user (``username``, ``token``).
        runtime_delay: seconds a Space stays ``BUILDING`` after a commit, restart or hardware change.
        latency: seconds added to every request (also settable later with ``faults.configure``).
        free_account_policy: False, ``"paid-hardware"`` (402 for Gradio/Docker Spaces on hardware other than
            cpu-basic) or True/``"all"`` (402 for every Gradio/Docker Space, as the Hub does for free accounts).
        tree_page_size: entries per page of tree listings (the Hub: 1000).
        commits_page_size: commits per page of commit listings.
        lfs_threshold: size in bytes above which preupload answers ``lfs`` (the Hub: 10 MiB).
        seed: seed of the fault injector.
        rate_limit: API requests allowed per token (per client address when anonymous) in each window, as
            ``"COUNT/SECONDS"`` or a ``RateLimit``: the Hub's free tier is ``"1000/300"``, a test may use ``"20/2"``.
            Over it, requests are answered 429 with the Hub's ``RateLimit``, ``RateLimit-Policy`` and ``Retry-After``
            headers, which the client waits out by itself on the calls it retries. None (default): no limit.
        commit_quota: commits allowed per repository in each window, ``"COUNT/SECONDS"`` (the Hub: about
            ``"128/3600"``); over it a commit is answered 429 with the Hub's message. None (default): no quota.
        run_spaces: build and really run each Space after each commit, restart or settings change (``spacerun``):
            an environment from its requirements.txt, then its app on a free loopback port, with real stages and
            logs. False (default): the stages and logs are simulated (``runtime``) and nothing runs.
        app_start_timeout: with ``run_spaces``, seconds an app may take to answer HTTP before ``RUNTIME_ERROR``.

    Example::

        with LocalHub() as hub:
            api = HfApi(endpoint=hub.endpoint, token=hub.token)
            api.create_repo("user/demo", repo_type="space", space_sdk="gradio")
            assert hub.commit_count("user/demo") == 1
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Iterable[HubUser] | None = None,
        users_file: str | os.PathLike | None = None,
        runtime_delay: float = 0.0,
        latency: float = 0.0,
        free_account_policy: bool | str = False,
        tree_page_size: int = 1000,
        commits_page_size: int = 50,
        lfs_threshold: int = 10 * 1024 * 1024,
        seed: int = 0,
        rate_limit: RateLimit | str | None = None,
        commit_quota: RateLimit | str | None = None,
        run_spaces: bool = False,
        app_start_timeout: float = 300.0,
    ):
        for name, value in (("tree_page_size", tree_page_size), ("commits_page_size", commits_page_size)):
            if value < 1:
                raise ValueError(f"{name}={value!r} must be at least 1")
        self._temporary = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.host = host
        self.port = port
        if users_file is not None and users is not None:
            raise ValueError("LocalHub takes users or users_file, not both: put every user in the file")
        if users_file is not None:
            users = load_users(users_file)
        self.accounts = Accounts(list(users) if users else [HubUser.generate("user")])
        self.config = HubConfig(
            runtime_delay=runtime_delay,
            free_account_policy=spaces.normalize_policy(free_account_policy),
            tree_page_size=tree_page_size,
            commits_page_size=commits_page_size,
            lfs_threshold=lfs_threshold,
            rate_limit=parse_rate_limit(rate_limit),
            commit_quota=parse_rate_limit(commit_quota),
        )
        self.faults = FaultInjector(latency=latency, seed=seed)
        self.run_spaces = run_spaces
        self.app_start_timeout = app_start_timeout
        self._server: HubHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._state: HubState | None = None

    # Lifecycle ---------------------------------------------------------------------------------------------------

    def start(self) -> LocalHub:
        """Binds the port and serves in a background thread; returns self."""
        if self._server is not None:
            return self
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="local-hub-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = HubState(RepoStore(self.data_dir), LfsStore(self.data_dir / "lfs"), self.accounts, self.faults,
                         self.config, self._signing_key())
        self._server = HubHTTPServer((self.host, self.port), state)
        # A server on all interfaces is advertised on the loopback address, which every local client can reach.
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else f"[{self.host}]" if ":" in self.host else self.host
        state.endpoint = f"http://{host}:{self._server.server_address[1]}"
        self._state = state
        if self.run_spaces:
            state.runner = SpaceRunner(state, self.data_dir / "space-apps", start_timeout=self.app_start_timeout)
            state.runner.start()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"local-hub-{self._server.server_address[1]}", daemon=True)
        self._thread.start()
        logger.info("local Hub serving %s from %s", state.endpoint, self.data_dir)
        return self

    def stop(self) -> None:
        """Stops the Spaces' apps and builds, then serving; removes the data directory if it was temporary."""
        if self._server is not None:
            if self._state is not None:
                self._state.stopping.set()  # log streams waiting for their next line end now
                if self._state.runner is not None:
                    self._state.runner.stop()
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = self._state = None
        if self._temporary and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _signing_key(self) -> bytes:
        # Persisted so LFS upload URLs handed out before a restart stay valid after it.
        path = self.data_dir / "server.json"
        if path.exists():
            return bytes.fromhex(json.loads(path.read_text())["signing_key"])
        key = secrets.token_bytes(32)
        path.write_text(json.dumps({"signing_key": key.hex()}))
        return key

    # Identity ----------------------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``http://HOST:PORT``, the value for ``HfApi(endpoint=...)`` or ``HF_ENDPOINT``."""
        return self._running().endpoint

    @property
    def users(self) -> list[HubUser]:
        return list(self.accounts.users)

    @property
    def username(self) -> str:
        """Name of the default (first) user."""
        return self.accounts.users[0].name

    @property
    def token(self) -> str:
        """Write token of the default (first) user."""
        return self.accounts.users[0].token

    def url(self, repo_id: str, repo_type: str = "space") -> str:
        """The repository's URL, e.g. for ``git clone``, and its web page: ``http://HOST:PORT/spaces/user/demo``."""
        return f"{self.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"

    def app_url(self, repo_id: str) -> str | None:
        """Where the Space's app answers (``http://127.0.0.1:PORT/``) while it runs for real, else None."""
        runner = self._running().runner
        run = runner.run_of(self._repo(repo_id, "space")) if runner is not None else None
        return None if run is None or run.simulated else run.status().url

    # Inspection --------------------------------------------------------------------------------------------------

    def _running(self) -> HubState:
        if self._state is None:
            raise RuntimeError("the local Hub is not started: call start() or use it as a context manager")
        return self._state

    def _repo(self, repo_id: str, repo_type: str) -> Repository:
        repo = self._running().store.get(repo_type, repo_id)
        if repo is None:
            raise LookupError(f"no {repo_type} {repo_id!r} on this local Hub")
        return repo

    def repo_exists(self, repo_id: str, repo_type: str = "space") -> bool:
        return self._running().store.get(repo_type, repo_id) is not None

    def head(self, repo_id: str, repo_type: str = "space", revision: str = "main") -> str | None:
        """Commit SHA of ``revision``, or None when the repository or revision does not exist."""
        repo = self._running().store.get(repo_type, repo_id)
        return None if repo is None else repo.resolve(revision)

    def commit_count(self, repo_id: str, repo_type: str = "space", revision: str = "main") -> int:
        """Number of commits in the history of ``revision`` (1 right after create: the Hub's initial commit)."""
        repo = self._repo(repo_id, repo_type)
        sha = repo.resolve(revision)
        return 0 if sha is None else len(repo.history(sha))

    def list_files(self, repo_id: str, repo_type: str = "space", revision: str = "main") -> dict[str, StoredFile]:
        """Every file at ``revision``, sorted by path."""
        repo = self._repo(repo_id, repo_type)
        sha = repo.resolve(revision)
        if sha is None:
            raise LookupError(f"{repo_type} {repo_id!r} has no revision {revision!r}")
        found = {}
        for path, blob in sorted(repo.snapshot(sha).files.items()):
            info = repo.file_info(path, blob)
            found[path] = StoredFile(path, info.size, info.blob_id, info.lfs_oid)
        return found

    def read_file(self, repo_id: str, path: str, repo_type: str = "space", revision: str = "main") -> bytes:
        """Content of a file at ``revision`` (an LFS file's real content, not its pointer)."""
        repo = self._repo(repo_id, repo_type)
        file = self.list_files(repo_id, repo_type, revision).get(path)
        if file is None:
            raise LookupError(f"{repo_type} {repo_id!r} has no file {path!r} at {revision!r}")
        if file.lfs_sha256:
            with self._running().lfs.open(file.lfs_sha256) as handle:
                return handle.read()
        return repo.read_blob(file.blob_id)

    def space_state(self, repo_id: str) -> SpaceState:
        """Settings and runtime of a Space, secrets' values included (for assertions in tests)."""
        repo = self._repo(repo_id, "space")
        with repo.lock:
            settings = json.loads(json.dumps(repo.settings))
        runtime = space_runtime(repo, self.config.runtime_delay, runner=self._running().runner)
        return SpaceState(
            sdk=settings.get("sdk", ""),
            private=bool(settings.get("private")),
            hardware=settings.get("hardware") or spaces.FREE_HARDWARE,
            sleep_time=settings.get("sleep_time"),
            secrets={key: item["value"] for key, item in settings.get("secrets", {}).items()},
            variables={key: item["value"] for key, item in settings.get("variables", {}).items()},
            paused=bool(settings.get("paused")),
            runtime=runtime,
        )

    def space_logs(self, repo_id: str, *, build: bool = False) -> list[str]:
        """The lines of a Space's run log (its build log with ``build=True``) written so far, without newlines."""
        repo = self._repo(repo_id, "space")
        timeline = space_timeline(repo, self.config.runtime_delay)
        runner = self._running().runner
        if runner is not None and runner.status(repo, timeline) is not None:
            run = runner.run_of(repo)
            return [] if run is None else [line.text for line in run.lines("build" if build else "run")]
        now = time.time()
        if build:
            lines = runner.build_log(repo, timeline) if runner is not None else timeline.build_log()
        else:
            lines = timeline.run_log()
        return [line.text for line in lines if line.at <= now]

    def fail_space_run(self, repo_id: str, message: str = "RuntimeError: the app crashed (LocalHub.fail_space_run)",
                       ) -> None:
        """Makes the Space's app crash: ``RUNTIME_ERROR`` now (or when its build ends), ``message`` in its run log.

        The crash belongs to the current build: the next commit, restart or settings change builds and runs the
        Space again. For an app that crashes on every start, commit a file named ``LOCAL_HUB_RUNTIME_ERROR``.
        """
        repo = self._repo(repo_id, "space")
        with repo.lock:
            repo.settings["run_failure"] = {"message": message, "at": time.time()}
            repo.save_settings()

    def quota_refusals(self) -> dict[str, int]:
        """Requests answered 429: by the rate limit (``"api"``), and commits refused by the quota (``"commit"``)."""
        state = self._running()
        return {
            "api": state.request_quota.refused if state.request_quota else 0,
            "commit": state.commit_quota.refused if state.commit_quota else 0,
        }

    def request_count(self, route: str | None = None) -> int:
        """Requests received for ``route`` (``"preupload"``, ``"commit"``, ``"lfs-upload"``, ...), or all of them."""
        counts = self._running().request_counts()
        return sum(counts.values()) if route is None else counts.get(route, 0)

    def request_counts(self) -> dict[str, int]:
        return self._running().request_counts()

    def request_timeline(self) -> list[tuple[str, float, float]]:
        """The last 10,000 answered requests as ``(route, started, finished)``, in ``time.time()`` seconds."""
        return self._running().request_timeline()
