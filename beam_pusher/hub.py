"""Talks to the Hub: plan a commit against the remote tree, make it atomically, then apply Space settings.

One ``SpacePusher`` lives in one worker (built in ``DoFn.setup``, where the token is resolved). A push is:

1. validate and resolve everything local first (secret references), so a bad Space fails before any network call;
2. create the Space if needed;
3. plan: compare the local files with the remote tree at the head commit (git blob sha1 for regular files, sha256
   for LFS files); unchanged files are not uploaded, files the template no longer has are deleted (mirror), except
   ``.gitattributes`` and the ``keep`` patterns;
4. one ``create_commit`` with ``parent_commit`` = the planned head. A 412 (someone committed in between) re-plans;
   429/5xx and dropped connections back off and retry. Either way at most one commit lands, all or nothing;
5. Space settings (secrets, variables, hardware), then optionally wait for the Space to run.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import io
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from beam_pusher import templates
from beam_pusher.auth import resolve_secret, resolve_token, scrub
from beam_pusher.errors import BeamPusherError, PushError
from beam_pusher.spec import AppFile, PlannedChange, PushResult, SpaceSpec

__all__ = ["CommitOutcome", "HubSettings", "RemoteFile", "SpacePusher", "plan_changes", "remote_tree"]

logger = logging.getLogger(__name__)

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_NEVER_DELETED = frozenset({".gitattributes"})
_FAILED_STAGES = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "DELETING"})


@dataclasses.dataclass(frozen=True)
class HubSettings:
    """How to reach the Hub. Picklable and token-free: ``token`` is a reference resolved on the worker.

    Attributes:
      endpoint: Hub URL; None means huggingface_hub's default (``HF_ENDPOINT`` or huggingface.co).
      token: ``None`` (HF_TOKEN or the cached login), ``env:NAME`` or ``file:PATH``.
      max_attempts: Plan-and-commit attempts per Space across 412 conflicts and transient errors.
      backoff_seconds: First back-off after a transient error; doubles on each retry.
      dry_run: Plan only; nothing is written to the Hub.
      wait: After pushing, wait until the Space runs (or fails to).
      wait_timeout: Seconds to wait for that.
    """

    endpoint: str | None = None
    token: str | None = None
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    dry_run: bool = False
    wait: bool = False
    wait_timeout: float = 600.0


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """A file of the remote tree, with the hash the Hub keeps for it."""

    path: str
    size: int
    git_sha1: str
    sha256: str | None = None  # set for LFS files


@dataclasses.dataclass(frozen=True)
class CommitOutcome:
    """What one plan-and-commit did."""

    head: str | None
    committed: bool
    changes: tuple[PlannedChange, ...]
    unchanged: int


def _is_kept(path: str, keep: Sequence[str]) -> bool:
    return path in _NEVER_DELETED or any(
        fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("/") + "/") for pattern in keep
    )


def plan_changes(
    local: Iterable[AppFile], remote: dict[str, RemoteFile], *, keep: Sequence[str] = (), mirror: bool = True
) -> tuple[list[PlannedChange], int]:
    """Compares local files with the remote tree; returns (changes, number of unchanged files).

    A file is unchanged when its hash equals the remote one: sha256 for LFS files, the git blob sha1 otherwise. A
    local file above ``GIT_BLOB_LIMIT`` has no sha1; should the remote keep such a file as a regular blob, which the
    Hub does not allow, it is uploaded again (as LFS) rather than compared.
    """
    changes: list[PlannedChange] = []
    unchanged = 0
    local_paths = set()
    for f in sorted(local, key=lambda f: f.path):
        local_paths.add(f.path)
        r = remote.get(f.path)
        if r is None:
            changes.append(PlannedChange("add", f.path, f.size))
        elif (r.sha256 is not None and r.sha256 == f.sha256) or (r.sha256 is None and r.git_sha1 == f.git_sha1):
            unchanged += 1
        else:
            changes.append(PlannedChange("update", f.path, f.size))
    if mirror:
        for path in sorted(set(remote) - local_paths):
            if not _is_kept(path, keep):
                changes.append(PlannedChange("delete", path, remote[path].size))
    return changes, unchanged


class _StreamedFile(io.BufferedIOBase):
    """Adapts an fsspec file to the ``io.BufferedIOBase`` huggingface_hub wants, streaming instead of loading."""

    def __init__(self, url: str):
        import fsspec

        self._file = fsspec.open(url, "rb").open()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._file.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_source(url: str):
    import fsspec

    return fsspec.open(url, "rb").open()


def _local_path(url: str) -> str | None:
    if url.startswith("file://"):
        return url[len("file://") :]
    if "://" not in url and "::" not in url:
        return url
    return None


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_transport_error(exc: BaseException) -> bool:
    # httpx2 (huggingface_hub 2.x) and httpx/requests (1.x) name their network errors differently.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectionError", "RemoteProtocolError", "ReadError", "TimeoutException"})


_STATUS_HINTS = {
    401: "the Hub rejected the token: check HF_TOKEN, the huggingface_hub login, or the token reference",
    402: "the Hub asks for a paid plan for this Space (free accounts: static Spaces, or cpu-basic only): "
    "use space_sdk 'static', an account with a paid plan, or drop the hardware request",
    403: "the token may not write there: use a token with write access to that namespace, or a repo_id in your own",
    404: "the repository or revision does not exist, or the token cannot see it",
    409: "the Hub reported a conflict",
    412: "the Space kept changing while this deploy was planning; retry when other deploys are done",
}


class SpacePusher:
    """Pushes Spaces to the Hub. Build one per worker; it is not picklable (it holds the resolved token)."""

    def __init__(self, settings: HubSettings):
        from huggingface_hub import HfApi

        self._settings = settings
        self._token = resolve_token(settings.token)
        self.api = HfApi(endpoint=settings.endpoint, token=self._token)

    def __getstate__(self):
        raise TypeError("SpacePusher holds a resolved token and must not be pickled; pickle HubSettings instead.")

    # -- one Space ------------------------------------------------------------------------------------------------

    def push(self, spec: SpaceSpec, files: Sequence[AppFile], *, pushed_version: str | None = None) -> PushResult:
        """Deploys ``files`` to ``spec.repo_id``; never raises for Hub problems, reports them in the result."""
        s = self._settings
        repo_url = f"{self.api.endpoint}/spaces/{spec.repo_id}"
        version = pushed_version or spec.model_hub_repo_branch or str(int(time.time()))
        try:
            secrets = {name: resolve_secret(name, ref) for name, ref in spec.secrets.items()}
            outcome = self.commit_files(
                spec.repo_id,
                files,
                repo_type="space",
                commit_message=spec.commit_message or f"Deploy {spec.name} with beam_pusher",
                keep=spec.keep,
                dry_run=s.dry_run,
                create_repo=lambda: self._create_space(spec),
            )
            stage = None
            if not s.dry_run:
                self._apply_settings(spec, secrets)
                if s.wait:
                    stage = self._wait_until_running(spec.repo_id)
        except BeamPusherError as exc:
            return self._failed(spec, repo_url, str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed Space must never stop the others
            return self._failed(spec, repo_url, self._describe(exc, spec.repo_id))
        counts = {a: sum(1 for c in outcome.changes if c.action == a) for a in ("add", "update", "delete")}
        error = None
        if stage in _FAILED_STAGES:
            error = f"{spec.repo_id}: the Space was pushed but does not run (stage {stage}); see its logs on the Hub."
        result = PushResult(
            repo_id=spec.repo_id,
            pushed=not s.dry_run,
            commit_id=outcome.head,
            repo_url=repo_url,
            pushed_version=version,
            committed=outcome.committed,
            files_added=counts["add"],
            files_updated=counts["update"],
            files_deleted=counts["delete"],
            files_unchanged=outcome.unchanged,
            bytes_uploaded=0 if s.dry_run else sum(c.size for c in outcome.changes if c.action != "delete"),
            error=error,
            dry_run=s.dry_run,
            planned=outcome.changes if s.dry_run else (),
            runtime_stage=stage,
        )
        logger.info(
            "%s: %s at %s (+%d ~%d -%d =%d)",
            spec.repo_id,
            "planned" if s.dry_run else ("committed" if outcome.committed else "unchanged"),
            outcome.head,
            counts["add"],
            counts["update"],
            counts["delete"],
            outcome.unchanged,
        )
        return result

    def _failed(self, spec: SpaceSpec, repo_url: str, message: str) -> PushResult:
        message = scrub(message, self._token, *self._secret_values(spec))
        logger.warning("%s: not pushed: %s", spec.repo_id, message)
        return PushResult(repo_id=spec.repo_id, pushed=False, repo_url=repo_url, error=message)

    @staticmethod
    def _secret_values(spec: SpaceSpec) -> list[str]:
        values = []
        for name, ref in spec.secrets.items():
            try:
                values.append(resolve_secret(name, ref))
            except BeamPusherError:
                pass
        return values

    def _create_space(self, spec: SpaceSpec) -> None:
        self.call_with_retries(
            spec.repo_id,
            "create the Space",
            lambda: self.api.create_repo(
                spec.repo_id,
                repo_type="space",
                space_sdk=spec.space_sdk,
                private=spec.private,
                space_hardware=spec.hardware,
                exist_ok=True,
            ),
        )

    def _apply_settings(self, spec: SpaceSpec, secrets: dict[str, str]) -> None:
        rid = spec.repo_id
        for key, value in secrets.items():
            self.call_with_retries(rid, f"set the secret {key}", lambda k=key, v=value: self.api.add_space_secret(rid, k, v))
        if spec.variables:
            current = self.call_with_retries(rid, "read the variables", lambda: self.api.get_space_variables(rid))
            for key, value in spec.variables.items():
                if key not in current or current[key].value != value:
                    self.call_with_retries(
                        rid, f"set the variable {key}", lambda k=key, v=value: self.api.add_space_variable(rid, k, v)
                    )
        if spec.hardware:
            runtime = self.call_with_retries(rid, "read the runtime", lambda: self.api.get_space_runtime(rid))
            if spec.hardware not in (runtime.requested_hardware, runtime.hardware):
                self.call_with_retries(
                    rid, "request hardware", lambda: self.api.request_space_hardware(rid, spec.hardware)
                )

    def _wait_until_running(self, repo_id: str) -> str:
        deadline = time.monotonic() + self._settings.wait_timeout
        delay = 0.2
        while True:
            runtime = self.call_with_retries(repo_id, "read the runtime", lambda: self.api.get_space_runtime(repo_id))
            stage = str(getattr(runtime.stage, "value", runtime.stage))
            if stage == "RUNNING" or stage in _FAILED_STAGES:
                return stage
            if time.monotonic() >= deadline:
                raise PushError(
                    f"{repo_id}: pushed, but still {stage} after {self._settings.wait_timeout:g} s; "
                    "raise wait_timeout or check the Space's build logs."
                )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    # -- any repository -------------------------------------------------------------------------------------------

    def commit_files(
        self,
        repo_id: str,
        files: Sequence[AppFile],
        *,
        repo_type: str = "space",
        revision: str | None = None,
        commit_message: str,
        keep: Sequence[str] = (),
        mirror: bool = True,
        dry_run: bool = False,
        create_repo: Callable[[], Any] | None = None,
    ) -> CommitOutcome:
        """Plans ``files`` against the remote tree and makes at most one commit, re-planning on 412.

        ``create_repo`` is called when the repository does not exist yet (never in a dry run, which then plans
        against an empty tree), so an existing repository costs no create request.

        Raises:
          PushError: the Hub refused the commit, or it kept failing after ``max_attempts`` attempts.
        """
        s = self._settings
        last_error: BaseException | None = None
        for attempt in range(1, s.max_attempts + 1):
            try:
                head, remote = self._remote_state(repo_id, repo_type, revision, dry_run, create_repo)
                changes, unchanged = plan_changes(files, remote, keep=keep, mirror=mirror)
                if dry_run or not changes:
                    return CommitOutcome(head, False, tuple(changes), unchanged)
                operations = self._operations(files, changes)
                try:
                    info = self.api.create_commit(
                        repo_id,
                        operations,
                        commit_message=commit_message,
                        repo_type=repo_type,
                        revision=revision,
                        parent_commit=head,
                    )
                finally:
                    for op in operations:  # streams opened on remote sources (gs://, s3://, ...)
                        if isinstance(getattr(op, "path_or_fileobj", None), io.IOBase):
                            op.path_or_fileobj.close()
                return CommitOutcome(info.oid, True, tuple(changes), unchanged)
            except Exception as exc:  # noqa: BLE001 - sorted into retry / give up below
                status = _http_status(exc)
                if status == 412:
                    logger.info("%s: the Space changed since it was planned; re-planning (attempt %d)", repo_id, attempt)
                elif status in _TRANSIENT_STATUS or (status is None and _is_transport_error(exc)):
                    self._back_off(exc, attempt, repo_id)
                else:
                    raise PushError(self._describe(exc, repo_id)) from None
                last_error = exc
        raise PushError(
            f"{repo_id}: gave up after {s.max_attempts} attempts; last error: {self._describe(last_error, repo_id)}"
        )

    def _remote_state(
        self,
        repo_id: str,
        repo_type: str,
        revision: str | None,
        dry_run: bool,
        create_repo: Callable[[], Any] | None,
    ) -> tuple[str | None, dict[str, RemoteFile]]:
        """The head commit and its files, from one ``repo_info`` call: one request, one consistent snapshot."""
        from huggingface_hub.errors import RepositoryNotFoundError

        def read():
            return self.api.repo_info(repo_id, repo_type=repo_type, revision=revision, files_metadata=True)

        try:
            info = read()
        except RepositoryNotFoundError:
            if dry_run:
                return None, {}  # a dry run of a new repository: everything is an addition
            if create_repo is None:
                raise
            create_repo()
            info = read()
        if info.sha is None:
            return None, {}
        return info.sha, {
            s.rfilename: RemoteFile(s.rfilename, s.size or 0, s.blob_id or "", s.lfs.sha256 if s.lfs else None)
            for s in info.siblings or ()
        }

    @staticmethod
    def _operations(files: Sequence[AppFile], changes: Sequence[PlannedChange]) -> list[Any]:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        by_path = {f.path: f for f in files}
        operations: list[Any] = []
        for change in changes:
            if change.action == "delete":
                operations.append(CommitOperationDelete(path_in_repo=change.path))
                continue
            f = by_path[change.path]
            if f.content is not None:
                operations.append(CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.content))
                continue
            local = _local_path(f.source)
            if f.rendering is not None:  # a large text file, rendered again as it streams up
                fileobj = templates.RenderedStream(
                    functools.partial(_open_source, f.source), f.size, f.rendering, path=f.path
                )
            else:
                fileobj = local if local else _StreamedFile(f.source)
            op = CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=fileobj)
            if f.sha256 and not op.upload_info.is_hashed:
                op.upload_info.sha256 = bytes.fromhex(f.sha256)  # already hashed while rendering: don't read it again
            operations.append(op)
        return operations

    def _back_off(self, exc: BaseException, attempt: int, repo_id: str) -> None:
        if attempt >= self._settings.max_attempts:
            return
        response = getattr(exc, "response", None)
        retry_after = None
        if response is not None:
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except (TypeError, ValueError):
                retry_after = None
        delay = retry_after if retry_after is not None else self._settings.backoff_seconds * 2 ** (attempt - 1)
        delay = min(delay, 30.0) * (1 + random.random() * 0.1)
        logger.info("%s: transient error (%s); retrying in %.1f s", repo_id, type(exc).__name__, delay)
        time.sleep(delay)

    def call_with_retries(self, repo_id: str, what: str, fn):
        """Runs one settings call with the same transient-error policy as commits."""
        for attempt in range(1, self._settings.max_attempts + 1):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001
                status = _http_status(exc)
                transient = status in _TRANSIENT_STATUS or (status is None and _is_transport_error(exc))
                if not transient or attempt == self._settings.max_attempts:
                    raise PushError(f"cannot {what}: {self._describe(exc, repo_id)}") from None
                self._back_off(exc, attempt, repo_id)
        raise AssertionError("unreachable")

    def _describe(self, exc: BaseException | None, repo_id: str) -> str:
        if exc is None:
            return f"{repo_id}: unknown error"
        status = _http_status(exc)
        server = getattr(exc, "server_message", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        hint = _STATUS_HINTS.get(status or 0)
        text = f"{repo_id}: {'HTTP %d: ' % status if status else ''}{server}"
        if hint:
            text += f" ({hint})"
        return scrub(text, self._token)


def remote_tree(api: Any, repo_id: str, *, repo_type: str = "space", revision: str | None = None) -> dict[str, RemoteFile]:
    """The remote files of a repository at ``revision`` (for tests and the CLI's status views)."""
    from huggingface_hub.hf_api import RepoFile

    return {
        e.path: RemoteFile(e.path, e.size, e.blob_id, e.lfs.sha256 if e.lfs else None)
        for e in api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
        if isinstance(e, RepoFile)
    }
