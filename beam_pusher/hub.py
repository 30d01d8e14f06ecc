"""Talks to the Hub about Spaces: push one, read their runtime stages, roll a repository back to an earlier commit.

The commit itself (plan against the remote tree, one ``create_commit`` with ``parent_commit``, re-plan on 412,
retries) is ``beam_pusher.commit.Committer``; this module adds what is particular to Spaces. One ``SpacePusher``
lives in one worker (built in ``DoFn.setup``, where the token is resolved). A push is:

1. validate and resolve everything local first (secret references), so a bad Space fails before any network call;
2. one commit through the committer, which creates the Space first when it is missing;
3. Space settings (secrets, variables, hardware), then optionally wait for the Space to run.

``rollback`` and ``space_status`` are the Hub side of the CLI's ``rollback`` and ``status`` commands: they return
data and print nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from beam_pusher.auth import resolve_secret, scrub
from beam_pusher.commit import CommitOutcome, Committer, HubSettings, RemoteFile, plan_changes, push_result
from beam_pusher.errors import BeamPusherError, PushError, SpecError
from beam_pusher.rules import FAILED_STAGES, validate_repo_id
from beam_pusher.selection import PathPatterns, check_patterns
from beam_pusher.spec import AppFile, ChangeAction, PushResult, SpaceSpec

__all__ = ["HubSettings", "RollbackOutcome", "SpacePusher", "SpaceStatus", "rollback", "space_status"]

logger = logging.getLogger(__name__)


class SpacePusher:
    """Pushes Spaces to the Hub. Build one per worker; it is not picklable (it holds the resolved token)."""

    def __init__(self, settings: HubSettings):
        self._settings = settings
        self.committer = Committer.connect(settings)  # resolves the token, here on the worker
        self.api = self.committer.api

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
            outcome = self.committer.commit(
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
            return self._failed(spec, repo_url, self.committer.describe(exc, spec.repo_id))
        error = None
        if stage in FAILED_STAGES:
            error = f"{spec.repo_id}: the Space was pushed but does not run (stage {stage}); see its logs on the Hub."
        return push_result(outcome, repo_id=spec.repo_id, repo_url=repo_url, pushed_version=version,
                           dry_run=s.dry_run, runtime_stage=stage, error=error)  # fmt: skip

    def _failed(self, spec: SpaceSpec, repo_url: str, message: str) -> PushResult:
        message = self.committer.scrub(message, *self._secret_values(spec))
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
        create = functools.partial(self.api.create_repo, spec.repo_id, repo_type="space", space_sdk=spec.space_sdk,
                                   private=spec.private, space_hardware=spec.hardware, exist_ok=True)  # fmt: skip
        self.committer.call(spec.repo_id, "create the Space", create)

    def _apply_settings(self, spec: SpaceSpec, secrets: dict[str, str]) -> None:
        rid, api, call = spec.repo_id, self.api, self.committer.call
        for key, value in secrets.items():
            call(rid, f"set the secret {key}", functools.partial(api.add_space_secret, rid, key, value))
        if spec.variables:
            current = call(rid, "read the variables", functools.partial(api.get_space_variables, rid))
            for key, value in spec.variables.items():
                if key not in current or current[key].value != value:
                    call(rid, f"set the variable {key}", functools.partial(api.add_space_variable, rid, key, value))
        if spec.hardware:
            runtime = call(rid, "read the runtime", functools.partial(api.get_space_runtime, rid))
            if spec.hardware not in (runtime.requested_hardware, runtime.hardware):
                call(rid, "request hardware", functools.partial(api.request_space_hardware, rid, spec.hardware))

    def _wait_until_running(self, repo_id: str) -> str:
        deadline = time.monotonic() + self._settings.wait_timeout
        delay = 0.2
        read = functools.partial(self.api.get_space_runtime, repo_id)
        while True:
            runtime = self.committer.call(repo_id, "read the runtime", read)
            stage = str(getattr(runtime.stage, "value", runtime.stage))
            if stage == "RUNNING" or stage in FAILED_STAGES:
                return stage
            if time.monotonic() >= deadline:
                raise PushError(
                    f"{repo_id}: pushed, but still {stage} after {self._settings.wait_timeout:g} s; "
                    "raise wait_timeout or check the Space's build logs."
                )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


# -- rollback --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RollbackOutcome:
    """What ``rollback`` did, or in a dry run would do.

    Attributes:
      repo_id: The repository.
      target: The full id of the commit whose files are restored.
      commit: The changes against the current head and, when ``commit.committed``, the new commit (``commit.head``).
        No changes: the repository already holds the target's files and nothing was committed.
      dry_run: Nothing was written.
    """

    repo_id: str
    target: str
    commit: CommitOutcome
    dry_run: bool = False


def rollback(
    committer: Committer,
    repo_id: str,
    to: str,
    *,
    repo_type: str = "space",
    message: str | None = None,
    dry_run: bool = False,
    keep: Sequence[str] = (),
) -> RollbackOutcome:
    """Makes the files of ``repo_id`` equal to those at commit ``to`` again, in one new commit (history is kept).

    Plans the tree at ``to`` against the current head and downloads only the files that differ (streamed to a
    temporary folder, LFS files included); the commit goes through ``committer``, so it has a push's guarantees:
    ``parent_commit``, a re-plan on 412, retries of transient errors.

    A rollback restores the old tree exactly, with two exceptions: ``.gitattributes`` is never deleted (it tells
    the Hub which files are LFS), and paths matching ``keep`` (.gitignore patterns, as a config's ``keep:``) are
    left as they are now: not deleted, not changed, not brought back. A rollback has no config, so ``keep`` is
    given here (the CLI's ``--keep``), typically the Space's ``keep`` patterns.

    Raises:
      SpecError: ``repo_id`` is not a repository id, or the repository or the commit does not exist (or the token
        cannot see it).
      PushError: reading, a download or the commit failed.
    """
    validate_repo_id(repo_id)
    keep = check_patterns(keep, field="keep")
    kept = PathPatterns(keep)
    target, old = _tree_at(committer, repo_id, repo_type, to)
    head, current = _tree_at(committer, repo_id, repo_type, None)
    with tempfile.TemporaryDirectory(prefix="beam-pusher-rollback-") as tmp:
        files = [AppFile(repo_id, f.path, f.size, source=os.path.join(tmp, f.path), sha256=f.sha256,
                         git_sha1=f.git_sha1) for f in old.values() if not kept.matches(f.path)]  # fmt: skip
        changes, unchanged = plan_changes(files, current, keep=keep)
        if dry_run or not changes:
            return RollbackOutcome(repo_id, target, CommitOutcome(head, False, tuple(changes), unchanged), dry_run)
        for change in changes:
            if change.action is not ChangeAction.DELETE:
                download = functools.partial(committer.api.hf_hub_download, repo_id, change.path, repo_type=repo_type,
                                             revision=target, local_dir=tmp)  # fmt: skip
                committer.call(repo_id, f"download {change.path}", download)
        outcome = committer.commit(repo_id, files, repo_type=repo_type, keep=keep,
                                   commit_message=message or f"Roll back to {target[:7]}")  # fmt: skip
    return RollbackOutcome(repo_id, target, outcome)


def _tree_at(
    committer: Committer, repo_id: str, repo_type: str, revision: str | None
) -> tuple[str, dict[str, RemoteFile]]:
    """The commit id at ``revision`` (None: the head) and its files."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    def read() -> tuple[str | None, dict[str, RemoteFile]]:
        return committer.remote_state(repo_id, repo_type=repo_type, revision=revision)

    try:
        sha, tree = committer.retry.call(f"{repo_id}: read {revision or 'the head'}", read)
    except RepositoryNotFoundError:
        raise SpecError(f"{repo_id}: no such {repo_type} on {committer.api.endpoint} (or the token cannot see it); "
                        "check the repository id and its type ('space', 'model' or 'dataset').") from None  # fmt: skip
    except RevisionNotFoundError:
        raise SpecError(f"{repo_id}: no commit {revision!r}; list the commits with "
                        "HfApi().list_repo_commits() or on the repository's history page.") from None  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - enriched and re-raised
        raise PushError(f"cannot read {revision or 'the head'}: {committer.describe(exc, repo_id)}") from None
    if sha is None:
        raise SpecError(f"{repo_id}: the {repo_type} has no commit yet; there is nothing to roll back to.")
    return sha, tree


# -- status ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SpaceStatus:
    """One Space's runtime, as ``space_status`` read it.

    Attributes:
      repo_id: The Space.
      url: Its page on the Hub.
      stage: The runtime stage (``RUNNING``, ``BUILDING``, ``BUILD_ERROR``, ...); None when it could not be read.
      hardware: The hardware it runs on, else the requested one; None when unknown.
      found: False when the Space does not exist (or the token cannot see it).
      error: Why the stage could not be read, when it could not.
    """

    repo_id: str
    url: str
    stage: str | None = None
    hardware: str | None = None
    found: bool = True
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the Space does not run and will not without a change: a failed stage, or no stage at all."""
        return self.stage is None or self.stage in FAILED_STAGES


def space_status(api: Any, repo_ids: Sequence[str], *, max_workers: int = 8) -> list[SpaceStatus]:
    """The runtime of each Space in ``repo_ids`` (in that order), read in parallel with ``api`` (an ``HfApi``).

    A Space that cannot be read gets a status with its ``error``; it never hides the others.
    """
    if not repo_ids:
        return []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(repo_ids)), thread_name_prefix="status") as pool:
        return list(pool.map(lambda repo_id: _status_of(api, repo_id), repo_ids))


def _status_of(api: Any, repo_id: str) -> SpaceStatus:
    from huggingface_hub.errors import RepositoryNotFoundError

    url = f"{api.endpoint}/spaces/{repo_id}"
    try:
        runtime = api.get_space_runtime(repo_id)
    except RepositoryNotFoundError:
        return SpaceStatus(repo_id, url, found=False, error="the Space does not exist (deploy it first)")
    except Exception as exc:  # noqa: BLE001 - one unreachable Space does not hide the others
        first = (str(exc).splitlines() or [""])[0]
        token = api.token if isinstance(getattr(api, "token", None), str) else None
        return SpaceStatus(repo_id, url, error=scrub(f"{type(exc).__name__}: {first}", token))
    hardware = runtime.hardware or runtime.requested_hardware
    return SpaceStatus(
        repo_id,
        url,
        stage=str(getattr(runtime.stage, "value", runtime.stage)),
        hardware=str(getattr(hardware, "value", hardware)) if hardware else None,
    )
