"""Plans files against a repository's remote tree and makes at most one atomic commit: the engine under every push.

A ``Committer`` lives in one worker (built in ``DoFn.setup``, or once by a CLI command) from ``HubSettings``, which
resolves the token there, or from an ``HfApi`` the caller already has. One ``Committer.commit`` is, as in
huggingface_hub's ``_commit_api``, a few small steps:

1. read the head commit and its files in one request (``remote_state``); a missing repository is created first
   when the caller says how;
2. ``plan_changes``, a pure function: compare the local files with the remote ones (git blob sha1 for regular files,
   sha256 for LFS files); unchanged files are not uploaded, files the caller no longer has are deleted (mirror),
   except ``.gitattributes`` and the ``keep`` patterns;
3. one ``create_commit`` with ``parent_commit`` = the planned head. A 412 (someone committed in between) re-plans;
   429/5xx and dropped connections wait as ``RetryPolicy`` says (``Retry-After`` first) and try again. Either way
   at most one commit lands, all or nothing.

``push_result`` turns what a commit did into the ``PushResult`` every pusher reports, with its one INFO line.
Errors name the repository, the Hub's answer and a hint for the status; they never hold the token.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from beam_pusher.auth import resolve_token, scrub
from beam_pusher.errors import PushError, SpecError
from beam_pusher.spec import AppFile, ChangeAction, PlannedChange, PushResult

__all__ = [
    "CommitOutcome", "Committer", "HubSettings", "RemoteFile", "RetryPolicy", "describe_error", "http_status",
    "is_transient", "plan_changes", "push_result", "remote_tree",
]  # fmt: skip

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_NEVER_DELETED = frozenset({".gitattributes"})
_STATUS_HINTS = {
    401: "the Hub rejected the token: check HF_TOKEN, the huggingface_hub login, or the token reference",
    402: "the Hub asks for a paid plan for this Space (free accounts: static Spaces, or cpu-basic only): "
    "use space_sdk 'static', an account with a paid plan, or drop the hardware request",
    403: "the token may not write there: use a token with write access to that namespace, or a repo_id in your own",
    404: "the repository or revision does not exist, or the token cannot see it",
    409: "the Hub reported a conflict",
    412: "the Space kept changing while this deploy was planning; retry when other deploys are done",
}


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
    """What one plan-and-commit did: the head after it, whether it committed, and the planned changes."""

    head: str | None
    committed: bool
    changes: tuple[PlannedChange, ...]
    unchanged: int

    def count(self, action: ChangeAction) -> int:
        """How many files the commit adds, updates or deletes."""
        return sum(1 for c in self.changes if c.action is action)

    @property
    def upload_bytes(self) -> int:
        """Bytes of the files the commit adds or updates."""
        return sum(c.size for c in self.changes if c.action is not ChangeAction.DELETE)


# -- planning ---------------------------------------------------------------------------------------------------


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
            changes.append(PlannedChange(ChangeAction.ADD, f.path, f.size))
        elif (r.sha256 is not None and r.sha256 == f.sha256) or (r.sha256 is None and r.git_sha1 == f.git_sha1):
            unchanged += 1
        else:
            changes.append(PlannedChange(ChangeAction.UPDATE, f.path, f.size))
    if mirror:
        for path in sorted(set(remote) - local_paths):
            if not _is_kept(path, keep):
                changes.append(PlannedChange(ChangeAction.DELETE, path, remote[path].size))
    return changes, unchanged


def remote_tree(
    api: Any, repo_id: str, *, repo_type: str = "space", revision: str | None = None
) -> dict[str, RemoteFile]:
    """The remote files of a repository at ``revision``, listed with ``list_repo_tree`` (for tests and views)."""
    from huggingface_hub.hf_api import RepoFile

    return {
        e.path: RemoteFile(e.path, e.size, e.blob_id, e.lfs.sha256 if e.lfs else None)
        for e in api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
        if isinstance(e, RepoFile)
    }


# -- errors and retries -----------------------------------------------------------------------------------------


def http_status(exc: BaseException | None) -> int | None:
    """The HTTP status of a failed Hub call, or None (no answer, or not an HTTP error)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_transport_error(exc: BaseException) -> bool:
    # httpx2 (huggingface_hub 2.x) and httpx/requests (1.x) name their network errors differently.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectionError", "RemoteProtocolError", "ReadError", "TimeoutException"})


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may help: 408/429/5xx answers and dropped connections."""
    status = http_status(exc)
    return status in _TRANSIENT_STATUS or (status is None and _is_transport_error(exc))


def describe_error(exc: BaseException | None, repo_id: str, *secrets: str | None) -> str:
    """One line for a failed Hub call: the repository, the status, the Hub's message and a hint; secrets scrubbed."""
    if exc is None:
        return f"{repo_id}: unknown error"
    status = http_status(exc)
    server = getattr(exc, "server_message", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    hint = _STATUS_HINTS.get(status or 0)
    text = f"{repo_id}: {'HTTP %d: ' % status if status else ''}{server}"
    if hint:
        text += f" ({hint})"
    return scrub(text, *secrets)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try a Hub call again after a transient error.

    Attributes:
      max_attempts: Attempts in all, the first included (1: never retry).
      backoff_seconds: Wait after the first failure; doubles after each further one, up to ``max_backoff_seconds``.
        A ``Retry-After`` header, when the Hub sends one, is honoured instead.
      max_backoff_seconds: The longest single wait.

    Example::

        RetryPolicy(max_attempts=3, backoff_seconds=0.5).call("alice/x: read the runtime", read_runtime)
    """

    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise SpecError(f"max_attempts={self.max_attempts!r} must be a whole number >= 1 (1: never retry).")
        for name in ("backoff_seconds", "max_backoff_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SpecError(f"{name}={value!r} must be a number of seconds >= 0 (for example 1.0).")

    @classmethod
    def from_settings(cls, settings: HubSettings) -> RetryPolicy:
        """The policy ``HubSettings`` asks for."""
        return cls(max_attempts=settings.max_attempts, backoff_seconds=settings.backoff_seconds)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with up to 10% jitter."""
        retry_after = None
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except (AttributeError, TypeError, ValueError):
                retry_after = None
        delay = retry_after if retry_after is not None else self.backoff_seconds * 2 ** (attempt - 1)
        return min(delay, self.max_backoff_seconds) * (1 + random.random() * 0.1)

    def pause(self, what: str, attempt: int, exc: BaseException) -> None:
        """Waits before the next attempt of ``what`` (logged at INFO)."""
        delay = self.delay(attempt, exc)
        logger.info("%s: transient error (%s); retrying in %.1f s", what, type(exc).__name__, delay)
        time.sleep(delay)

    def call(self, what: str, fn: Callable[[], _T]) -> _T:
        """Returns ``fn()``, trying again after transient errors; any other error, or the last one, is raised as is."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - sorted into retry / raise
                if not is_transient(exc) or attempt == self.max_attempts:
                    raise
                self.pause(what, attempt, exc)
        raise AssertionError("unreachable")


# -- the committer ----------------------------------------------------------------------------------------------


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


def _local_path(url: str) -> str | None:
    if url.startswith("file://"):
        return url[len("file://") :]
    if "://" not in url and "::" not in url:
        return url
    return None


def _operations(files: Sequence[AppFile], changes: Sequence[PlannedChange]) -> list[Any]:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    by_path = {f.path: f for f in files}
    operations: list[Any] = []
    for change in changes:
        if change.action is ChangeAction.DELETE:
            operations.append(CommitOperationDelete(path_in_repo=change.path))
            continue
        f = by_path[change.path]
        if f.content is not None:
            operations.append(CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.content))
            continue
        local = _local_path(f.source)
        op = CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=local if local else _StreamedFile(f.source))
        if f.sha256 and not op.upload_info.is_hashed:
            op.upload_info.sha256 = bytes.fromhex(f.sha256)  # already hashed while rendering: don't read it again
        operations.append(op)
    return operations


class Committer:
    """Plans files against a repository and commits them once. Not picklable: its ``HfApi`` holds the token.

    Args:
      api: A ``huggingface_hub.HfApi``; its token (if any) is scrubbed from every error message.
      retry: The policy for transient errors; ``max_attempts`` also bounds re-plans after a 412.

    Example::

        committer = Committer.connect(HubSettings(token="env:HF_TOKEN"))
        outcome = committer.commit("alice/penguins", files, commit_message="Deploy penguins")
    """

    def __init__(self, api: Any, retry: RetryPolicy | None = None):
        self.api = api
        self.retry = retry or RetryPolicy()
        self._token = api.token if isinstance(getattr(api, "token", None), str) else None

    @classmethod
    def connect(cls, settings: HubSettings) -> Committer:
        """Resolves ``settings.token`` here (on the worker) and builds the ``HfApi`` and the retry policy."""
        from huggingface_hub import HfApi

        retry = RetryPolicy.from_settings(settings)  # checked before the token is read
        return cls(HfApi(endpoint=settings.endpoint, token=resolve_token(settings.token)), retry)

    def __getstate__(self):
        raise TypeError("Committer holds a resolved token and must not be pickled; pickle HubSettings instead.")

    def scrub(self, text: str, *secrets: str | None) -> str:
        """``text`` without the token or any of ``secrets``."""
        return scrub(text, self._token, *secrets)

    def describe(self, exc: BaseException | None, repo_id: str) -> str:
        """One line for a failed Hub call (see ``describe_error``), without the token, naming the endpoint when the
        Hub could not be reached and saying so when a 401 came without any token."""
        text = describe_error(exc, repo_id, self._token)
        status = http_status(exc)
        if status is None and exc is not None and _is_transport_error(exc):
            endpoint = self.api.endpoint
            text += f" (no answer from the Hub at {endpoint}: check the endpoint or HF_ENDPOINT, and the network)"
        elif status == 401 and self._token is None:
            text = text.replace(_STATUS_HINTS[401], "no token was sent: set HF_TOKEN, log in with `hf auth login`, "
                                "or give a token reference")  # fmt: skip
        return text

    def call(self, repo_id: str, what: str, fn: Callable[[], _T]) -> _T:
        """Runs one Hub call under the retry policy; a failure becomes a ``PushError`` saying what could not be done."""
        try:
            return self.retry.call(f"{repo_id}: {what}", fn)
        except Exception as exc:  # noqa: BLE001 - enriched and re-raised
            raise PushError(f"cannot {what}: {self.describe(exc, repo_id)}") from None

    def remote_state(
        self, repo_id: str, *, repo_type: str = "space", revision: str | None = None
    ) -> tuple[str | None, dict[str, RemoteFile]]:
        """The head commit at ``revision`` and its files, from one ``repo_info`` call: one consistent snapshot.

        Raises:
          huggingface_hub.errors.RepositoryNotFoundError, RevisionNotFoundError: as ``HfApi.repo_info`` does.
        """
        info = self.api.repo_info(repo_id, repo_type=repo_type, revision=revision, files_metadata=True)
        if info.sha is None:
            return None, {}
        return info.sha, {
            s.rfilename: RemoteFile(s.rfilename, s.size or 0, s.blob_id or "", s.lfs.sha256 if s.lfs else None)
            for s in info.siblings or ()
        }

    def commit(
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
          PushError: the Hub refused the commit, or it kept failing after ``retry.max_attempts`` attempts.
        """
        last_error: BaseException | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                head, remote = self._state_or_create(repo_id, repo_type, revision, dry_run, create_repo)
                changes, unchanged = plan_changes(files, remote, keep=keep, mirror=mirror)
                if dry_run or not changes:
                    return CommitOutcome(head, False, tuple(changes), unchanged)
                oid = self._create_commit(repo_id, files, changes, repo_type, revision, commit_message, head)
                return CommitOutcome(oid, True, tuple(changes), unchanged)
            except Exception as exc:  # noqa: BLE001 - sorted into re-plan / retry / give up below
                if http_status(exc) == 412:
                    logger.info("%s: the repository changed since it was planned; re-planning (attempt %d)",
                                repo_id, attempt)  # fmt: skip
                elif not is_transient(exc):
                    raise PushError(self.describe(exc, repo_id)) from None
                elif attempt < self.retry.max_attempts:
                    self.retry.pause(repo_id, attempt, exc)
                last_error = exc
        raise PushError(
            f"{repo_id}: gave up after {self.retry.max_attempts} attempts; "
            f"last error: {self.describe(last_error, repo_id)}"
        )

    def _state_or_create(
        self, repo_id: str, repo_type: str, revision: str | None, dry_run: bool, create_repo: Callable[[], Any] | None
    ) -> tuple[str | None, dict[str, RemoteFile]]:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            return self.remote_state(repo_id, repo_type=repo_type, revision=revision)
        except RepositoryNotFoundError:
            if dry_run:
                return None, {}  # a dry run of a new repository: everything is an addition
            if create_repo is None:
                raise
        create_repo()
        return self.remote_state(repo_id, repo_type=repo_type, revision=revision)

    def _create_commit(
        self, repo_id: str, files: Sequence[AppFile], changes: Sequence[PlannedChange], repo_type: str,
        revision: str | None, commit_message: str, parent: str | None,
    ) -> str:  # fmt: skip
        operations = _operations(files, changes)
        try:
            info = self.api.create_commit(repo_id, operations, commit_message=commit_message, repo_type=repo_type,
                                          revision=revision, parent_commit=parent)  # fmt: skip
        finally:
            for op in operations:  # streams opened on remote sources (gs://, s3://, ...)
                if isinstance(getattr(op, "path_or_fileobj", None), _StreamedFile):
                    op.path_or_fileobj.close()
        return info.oid


def push_result(
    outcome: CommitOutcome,
    *,
    repo_id: str,
    repo_url: str,
    pushed_version: str | None,
    dry_run: bool = False,
    runtime_stage: str | None = None,
    error: str | None = None,
    label: str | None = None,
) -> PushResult:
    """The ``PushResult`` of one plan-and-commit, logged once at INFO as ``label`` (default: ``repo_id``).

    A dry run reports the planned changes and no upload; otherwise the counts and bytes of what was committed.
    """
    added, updated, deleted = (outcome.count(a) for a in (ChangeAction.ADD, ChangeAction.UPDATE, ChangeAction.DELETE))
    what = "planned" if dry_run else ("committed" if outcome.committed else "unchanged")
    logger.info("%s: %s at %s (+%d ~%d -%d =%d)", label or repo_id, what, outcome.head, added, updated, deleted,
                outcome.unchanged)  # fmt: skip
    return PushResult(
        repo_id=repo_id,
        pushed=not dry_run,
        commit_id=outcome.head,
        repo_url=repo_url,
        pushed_version=pushed_version,
        committed=outcome.committed,
        files_added=added,
        files_updated=updated,
        files_deleted=deleted,
        files_unchanged=outcome.unchanged,
        bytes_uploaded=0 if dry_run else outcome.upload_bytes,
        error=error,
        dry_run=dry_run,
        planned=outcome.changes if dry_run else (),
        runtime_stage=runtime_stage,
    )
