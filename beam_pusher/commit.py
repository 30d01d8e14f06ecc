"""Plans files against a repository's remote tree and makes at most one atomic commit: the engine under every push.

A ``Committer`` lives in one worker (built in ``DoFn.setup``, or once by a CLI command) from ``HubSettings``, which
resolves the token there, or from an ``HfApi`` the caller already has. One ``Committer.commit`` is, as in
huggingface_hub's ``_commit_api``, a few small steps:

1. read the head commit and its files in one request (``remote_state``, or the ``read_state`` the caller made
   anyway); a missing repository is created first when the caller says how;
2. ``plan_changes`` (``beam_pusher.planning``), a pure function: compare the local files with the remote ones
   (git blob sha1 for regular files, sha256 for LFS files); unchanged files are not uploaded, files the caller no
   longer has are deleted (mirror), except ``.gitattributes`` and the ``keep`` patterns (.gitignore syntax, as
   ``exclude``: see ``beam_pusher.selection``);
3. one ``create_commit`` with ``parent_commit`` = the planned head. A 412 (someone committed in between) re-plans;
   429/5xx and dropped connections wait as ``RetryPolicy`` says (``Retry-After`` first) and try again. Either way
   at most one commit lands, all or nothing.

With ``create_pr`` the plan is still made against the branch (``main``), but the commit goes to a pull request: a
new one (``create_commit(create_pr=True)``), or, when a deploy opened one before and it is still open
(``beam_pusher.pullrequests.find_pull_request``), a commit to its ``refs/pr/N`` that makes the pull request's files
equal the local ones, so its diff against ``main`` is exactly the planned change. No change against ``main``: no
pull request is opened.

``push_result`` turns what a commit did into the ``PushResult`` every pusher reports, with its one INFO line.
Errors name the repository, the Hub's answer and a hint for the status; they never hold the token. Sorting,
retrying and describing failed calls is ``beam_pusher.retries``; its names are re-exported here.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from beam_pusher.auth import resolve_token, scrub
from beam_pusher.errors import PushError, SpecError
from beam_pusher.pullrequests import PullRequest, find_pull_request, pull_request_description
from beam_pusher.retries import (
    RetryPolicy, commit_quota_retry_after, describe_error, http_status, install_request_budget, is_rate_limited,
    is_transient, unreachable_message, unreachable_reason,
)
from beam_pusher.planning import RemoteFile, RemoteState, plan_changes, remote_tree
from beam_pusher.sharedlfs import shared_uploads
from beam_pusher.spec import AppFile, ChangeAction, PlannedChange, PushResult
from beam_pusher.uploads import add_operation

__all__ = [
    "CommitOutcome", "CommitQuotaExceeded", "Committer", "HubSettings", "RemoteFile", "RemoteState", "RetryPolicy",
    "describe_error", "http_status", "is_transient", "plan_changes", "push_result", "remote_tree",
    "unreachable_message", "unreachable_reason",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_MAX_RATE_LIMIT_WAITS = 20


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
      create_pr: Commit to a pull request (opened, or the open one of an earlier deploy updated) instead of ``main``;
        Space settings are then not written.
    """

    endpoint: str | None = None
    token: str | None = None
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    dry_run: bool = False
    wait: bool = False
    wait_timeout: float = 600.0
    create_pr: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.create_pr, bool):
            raise SpecError(f"create_pr={self.create_pr!r} must be true or false (true: deploy as a pull request).")


class CommitQuotaExceeded(PushError):
    """The Hub refused a commit for the repository's commit quota; nothing was committed.

    Not worth waiting for in a run (the quota resets in about an hour): the Space is deferred, and ``retry_after``
    says in how many seconds a deploy may commit to it again.
    """

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


def describe_wait(seconds: float) -> str:
    """``about 1 hour``, ``about 12 minutes``, ``about 8 seconds``: a wait as people say it."""
    if seconds >= 3000:
        hours = max(1, round(seconds / 3600))
        return "about 1 hour" if hours == 1 else f"about {hours} hours"
    if seconds >= 120:
        return f"about {round(seconds / 60)} minutes"
    return f"about {max(1, round(seconds))} seconds"


@dataclasses.dataclass(frozen=True)
class CommitOutcome:
    """What one plan-and-commit did: the head after it, whether it committed, and the planned changes.

    ``pull_request`` is the pull request that holds the change (``create_pr``); ``head`` is then its head.
    """

    head: str | None
    committed: bool
    changes: tuple[PlannedChange, ...]
    unchanged: int
    pull_request: PullRequest | None = None

    def count(self, action: ChangeAction) -> int:
        """How many files the commit adds, updates or deletes."""
        return sum(1 for c in self.changes if c.action is action)

    @property
    def upload_bytes(self) -> int:
        """Bytes of the files the commit adds or updates."""
        return sum(c.size for c in self.changes if c.action is not ChangeAction.DELETE)


# -- the committer ----------------------------------------------------------------------------------------------


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
        operations.append(add_operation(f))
    return operations


class Committer:
    """Plans files against a repository and commits them once. Not picklable: its ``HfApi`` holds the token.

    Args:
      api: A ``huggingface_hub.HfApi``; its token (if any) is scrubbed from every error message.
      retry: The policy for transient errors; ``max_attempts`` also bounds re-plans after a 412.
      before_commit: Called with the repo id right before a commit is sent; it may raise to send none (a stopped
        run). An exception that is not an ``Exception`` passes through the retry loop unchanged.

    Example::

        committer = Committer.connect(HubSettings(token="env:HF_TOKEN"))
        outcome = committer.commit("alice/penguins", files, commit_message="Deploy penguins")
    """

    def __init__(self, api: Any, retry: RetryPolicy | None = None,
                 before_commit: Callable[[str], None] | None = None):
        self.api = api
        self.retry = retry or RetryPolicy()
        self.before_commit = before_commit
        self._token = api.token if isinstance(getattr(api, "token", None), str) else None
        self._reached = False  # whether the Hub ever answered this committer

    @classmethod
    def connect(cls, settings: HubSettings) -> Committer:
        """Resolves ``settings.token`` here (on the worker) and builds the ``HfApi`` and the retry policy."""
        from huggingface_hub import HfApi

        retry = RetryPolicy.from_settings(settings)  # checked before the token is read
        install_request_budget()  # every push of this worker shares the Hub's request quota
        return cls(HfApi(endpoint=settings.endpoint, token=resolve_token(settings.token)), retry)

    def __getstate__(self):
        raise TypeError("Committer holds a resolved token and must not be pickled; pickle HubSettings instead.")

    def scrub(self, text: str, *secrets: str | None) -> str:
        """``text`` without the token or any of ``secrets``."""
        return scrub(text, self._token, *secrets)

    def describe(self, exc: BaseException | None, repo_id: str, context: str | None = None) -> str:
        """One line for a failed Hub call (see ``describe_error``), without the token."""
        return describe_error(exc, repo_id, self._token, endpoint=self.api.endpoint, token_sent=self._token is not None,
                              context=context)

    def is_transient(self, exc: BaseException) -> bool:
        """``is_transient``, except for a Hub this committer never reached: a refused connection or an unknown
        host on the first contact is a wrong endpoint or a Hub that is down, which retrying for seconds won't fix.
        Once the Hub has answered, a refused connection is a restart and is retried."""
        if http_status(exc) is not None:
            self._reached = True
        return is_transient(exc) and (self._reached or unreachable_reason(exc) is None)

    def call(self, repo_id: str, what: str, fn: Callable[[], _T]) -> _T:
        """Runs one Hub call under the retry policy; a failure becomes a ``PushError`` saying what could not be done."""
        try:
            result = self.retry.call(f"{repo_id}: {what}", fn, transient=self.is_transient)
        except Exception as exc:  # noqa: BLE001 - enriched and re-raised
            # An unreachable Hub is no single call's fault: the message names the endpoint, not the call.
            context = None if unreachable_reason(exc) else f"cannot {what}"
            raise PushError(self.describe(exc, repo_id, context)) from None
        self._reached = True
        return result

    def remote_state(
        self, repo_id: str, *, repo_type: str = "space", revision: str | None = None
    ) -> tuple[str | None, dict[str, RemoteFile]]:
        """The head commit at ``revision`` and its files, from one ``repo_info`` call: one consistent snapshot.

        Raises:
          huggingface_hub.errors.RepositoryNotFoundError, RevisionNotFoundError: as ``HfApi.repo_info`` does.
        """
        state = self._read(repo_id, repo_type, revision)
        return state.head, state.files

    def read_state(self, repo_id: str, *, repo_type: str = "space", revision: str | None = None) -> RemoteState:
        """``remote_state`` with the info it came from; a repository that does not exist is a ``RemoteState``
        whose ``exists`` is False. A pusher reads this once and hands it to ``commit``, which then plans without
        reading the repository again.

        Raises:
          huggingface_hub.errors.RevisionNotFoundError: as ``HfApi.repo_info`` does.
        """
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        try:
            return self._read(repo_id, repo_type, revision)
        except RevisionNotFoundError:
            raise
        except RepositoryNotFoundError:
            return RemoteState(None, {})

    def _read(self, repo_id: str, repo_type: str, revision: str | None) -> RemoteState:
        info = self.api.repo_info(repo_id, repo_type=repo_type, revision=revision, files_metadata=True)
        if info.sha is None:
            return RemoteState(None, {}, info)
        return RemoteState(info.sha, {
            s.rfilename: RemoteFile(s.rfilename, s.size or 0, s.blob_id or "", s.lfs.sha256 if s.lfs else None)
            for s in info.siblings or ()
        }, info)

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
        create_pr: bool = False,
        state: RemoteState | None = None,
    ) -> CommitOutcome:
        """Plans ``files`` against the remote tree and makes at most one commit, re-planning on 412.

        ``state``: the repository as the caller just read it (``read_state``); the first plan uses it instead of
        reading again. A re-plan always reads.

        ``create_repo`` is called when the repository does not exist yet (never in a dry run, which then plans
        against an empty tree), so an existing repository costs no create request. When it created the repository
        in this call, it may return the paths of the Hub's first commit (a tuple; a Space: README.md and
        .gitattributes): they are all there is, so the commit is planned against them and sent without
        ``parent_commit``, sparing a second read (nobody can have planned against a repository that did not exist;
        a writer that raced to create it got a 409 and reads it). Any other return value: the new repository is
        read first. Either way the outcome counts the changes against the empty tree that was there before, as a
        dry run does.

        ``create_pr``: the changes are planned against ``revision`` as always, then committed to a pull request
        (see the module docstring); the outcome's ``pull_request`` names it.

        Raises:
          PushError: the Hub refused the commit, or it kept failing after ``retry.max_attempts`` attempts.
        """
        last_error: BaseException | None = None
        created = False
        attempt = rate_limited = 0
        while attempt < self.retry.max_attempts:
            attempt += 1
            try:
                known, state = state, None  # the caller's state serves the first plan only
                head, remote, created_now = self._state_or_create(repo_id, repo_type, revision, dry_run, create_repo,
                                                                  known)
                created, self._reached = created or created_now, True
                changes, unchanged = plan_changes(files, remote, keep=keep, mirror=mirror)
                if dry_run or not changes:
                    return CommitOutcome(head, False, tuple(changes), unchanged)
                if self.before_commit is not None:
                    self.before_commit(repo_id)
                if create_pr:
                    oid, committed, pr = self._propose(repo_id, files, changes, repo_type, revision, commit_message,
                                                       head, keep=keep, mirror=mirror)
                    return CommitOutcome(oid, committed, tuple(changes), unchanged, pr)
                oid = self._create_commit(repo_id, files, changes, repo_type, revision, commit_message, head).oid
                if created:  # counted from the empty tree the caller planned against, not the Hub's initial files
                    changes, unchanged = plan_changes(files, {}, keep=keep, mirror=mirror)
                return CommitOutcome(oid, True, tuple(changes), unchanged)
            except PushError:
                raise  # a call inside already said what failed
            except Exception as exc:  # noqa: BLE001 - sorted into re-plan / retry / give up
                if is_rate_limited(exc) and rate_limited < _MAX_RATE_LIMIT_WAITS:
                    attempt, rate_limited = attempt - 1, rate_limited + 1  # a wait for the reset is no failed try
                    self.retry.pause(repo_id, 1, exc)
                    continue
                self._after_failure(exc, repo_id, attempt)
                last_error = exc
        raise PushError(self.describe(last_error, repo_id, f"gave up after {self.retry.max_attempts} attempts; "
                                                           "last error"))

    def _after_failure(self, exc: Exception, repo_id: str, attempt: int) -> None:
        """Re-plans after a 412, waits before retrying a transient error; raises for anything else.

        Raises:
          CommitQuotaExceeded: the repository's commit quota is spent (its window is an hour: defer the Space).
          PushError: the error is not worth another try.
        """
        quota_reset = commit_quota_retry_after(exc)
        if quota_reset is not None:
            raise CommitQuotaExceeded(
                f"{repo_id}: deferred: commit quota, retry after {describe_wait(quota_reset)} (the Hub "
                f"refused the commit: {self.describe(exc, repo_id).replace(f'{repo_id}: ', '')}); nothing "
                "was committed. Deploy again after that, or commit to this Space less often.",
                quota_reset,
            ) from None
        if http_status(exc) == 412:
            logger.info("%s: the repository changed since it was planned; re-planning (attempt %d)", repo_id, attempt)
        elif not self.is_transient(exc):
            raise PushError(self.describe(exc, repo_id)) from None
        elif attempt < self.retry.max_attempts:
            self.retry.pause(repo_id, attempt, exc)

    def _state_or_create(
        self, repo_id: str, repo_type: str, revision: str | None, dry_run: bool,
        create_repo: Callable[[], Any] | None, known: RemoteState | None,
    ) -> tuple[str | None, dict[str, RemoteFile], bool]:
        """The head and files at ``revision``, and whether the repository was created here to read them."""
        from huggingface_hub.errors import RepositoryNotFoundError

        if known is not None and known.exists:
            return known.head, known.files, False
        if known is None or create_repo is None:
            try:
                return (*self.remote_state(repo_id, repo_type=repo_type, revision=revision), False)
            except RepositoryNotFoundError:
                if create_repo is None and not dry_run:
                    raise
        if dry_run:
            return None, {}, False  # a dry run of a new repository: everything is an addition
        first_files = create_repo()
        if isinstance(first_files, tuple):  # created here: the Hub's first files, their hashes unknown (never equal)
            return None, {path: RemoteFile(path, 0, "") for path in first_files}, True
        return (*self.remote_state(repo_id, repo_type=repo_type, revision=revision), True)

    def _propose(
        self, repo_id: str, files: Sequence[AppFile], changes: Sequence[PlannedChange], repo_type: str,
        revision: str | None, commit_message: str, head: str | None, *, keep: Sequence[str], mirror: bool,
    ) -> tuple[str | None, bool, PullRequest]:
        """Puts ``changes`` (planned against ``revision``) into this tool's open pull request, or a new one.

        Returns the pull request's head, whether a commit was made, and the pull request. An open pull request gets
        a commit planned against its own files, so that afterwards it holds exactly the local files; when it already
        does (the same change deployed twice), nothing is committed.
        """
        pr = find_pull_request(self.api, repo_id, repo_type=repo_type)
        if pr is None:
            info = self._create_commit(repo_id, files, changes, repo_type, revision, commit_message, head,
                                       create_pr=True, commit_description=pull_request_description(commit_message))
            pr = PullRequest(int(info.pr_num), info.pr_url)
            logger.info("%s: opened pull request #%d", repo_id, pr.num)
            return info.oid, True, pr
        pr_head, pr_files = self.remote_state(repo_id, repo_type=repo_type, revision=pr.revision)
        pr_changes, _ = plan_changes(files, pr_files, keep=keep, mirror=mirror)
        if not pr_changes:
            return pr_head, False, pr
        info = self._create_commit(repo_id, files, pr_changes, repo_type, pr.revision, commit_message, pr_head)
        logger.info("%s: updated pull request #%d", repo_id, pr.num)
        return info.oid, True, pr

    def _create_commit(
        self, repo_id: str, files: Sequence[AppFile], changes: Sequence[PlannedChange], repo_type: str,
        revision: str | None, commit_message: str, parent: str | None, **options: Any,
    ) -> Any:
        """One ``create_commit`` of ``changes``; ``options`` go to it (``create_pr``, ``commit_description``)."""
        operations = _operations(files, changes)
        try:
            self._preupload(repo_id, files, changes, operations, repo_type, revision, options.get("create_pr", False))
            return self.api.create_commit(repo_id, operations, commit_message=commit_message, repo_type=repo_type,
                                          revision=revision, parent_commit=parent, **options)
        finally:
            for op in operations:  # streams opened on remote sources (gs://, s3://, ...)
                if isinstance(getattr(op, "path_or_fileobj", None), io.IOBase):
                    op.path_or_fileobj.close()


    def _preupload(
        self, repo_id: str, files: Sequence[AppFile], changes: Sequence[PlannedChange], operations: Sequence[Any],
        repo_type: str, revision: str | None, create_pr: bool,
    ) -> None:
        """Uploads the commit's LFS objects before the commit, one upload per object among this worker's pushes.

        ``create_commit`` would upload them itself; doing it here, inside a ``SharedUploads`` claim, lets Spaces
        pushed at once that share a model upload it once (see ``beam_pusher.sharedlfs``). ``create_commit`` then
        finds every object uploaded and sends only the commit.
        """
        from huggingface_hub import CommitOperationAdd

        additions = [op for op in operations if isinstance(op, CommitOperationAdd)]
        if not additions:
            return
        by_path = {f.path: f for f in files}
        sha256s = [by_path[c.path].sha256 for c in changes if c.action is not ChangeAction.DELETE]
        with shared_uploads(self.api.endpoint).claim(sha for sha in sha256s if sha):
            self.api.preupload_lfs_files(repo_id, additions=additions, repo_type=repo_type, revision=revision,
                                         create_pr=create_pr, free_memory=False)


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
    pr = outcome.pull_request
    what = "planned" if dry_run else ("committed" if outcome.committed else "unchanged")
    if pr is not None:
        what = f"proposed in pull request #{pr.num}"
    logger.info("%s: %s at %s (+%d ~%d -%d =%d)", label or repo_id, what, outcome.head, added, updated, deleted,
                outcome.unchanged)
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
        bytes_uploaded=0 if dry_run or not outcome.committed else outcome.upload_bytes,
        error=error,
        dry_run=dry_run,
        planned=outcome.changes if dry_run else (),
        runtime_stage=runtime_stage,
        pr_num=pr.num if pr else None,
        pr_url=pr.url if pr else None,
    )
