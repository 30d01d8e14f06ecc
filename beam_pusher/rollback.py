"""Rolling a repository back to an earlier commit: one new commit restoring the old tree (history is kept).

The Hub side of ``beam-pusher rollback``: it returns what it did or raises, and prints nothing. The commit goes
through ``beam_pusher.commit.Committer``, so it has a push's guarantees.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from typing import TypeVar

from beam_pusher.commit import CommitOutcome, Committer, RemoteFile, plan_changes
from beam_pusher.errors import PushError, SpecError
from beam_pusher.rules import validate_repo_id
from beam_pusher.selection import PathPatterns, check_patterns
from beam_pusher.spec import AppFile, ChangeAction

__all__ = ["MIN_COMMIT_PREFIX", "RollbackOutcome", "match_commit", "rollback"]

_T = TypeVar("_T")
_HEX = re.compile(r"^[0-9a-f]+$")

MIN_COMMIT_PREFIX = 4
"""The fewest characters of a commit id that ``rollback`` looks up (as git's shortest abbreviation)."""


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

    ``to`` is a commit id, an unambiguous prefix of one on the main branch (at least ``MIN_COMMIT_PREFIX``
    characters, such as the 7 this tool prints), or a branch or tag. Plans the tree at ``to`` against the current
    head and downloads only the files that differ (streamed to a temporary folder, LFS files included); the commit
    goes through ``committer``, so it has a push's guarantees: ``parent_commit``, a re-plan on 412, retries of
    transient errors.

    A rollback restores the old tree exactly, with two exceptions: ``.gitattributes`` is never deleted (it tells
    the Hub which files are LFS), and paths matching ``keep`` (.gitignore patterns, as a config's ``keep:``) are
    left as they are now: not deleted, not changed, not brought back. A rollback has no config, so ``keep`` is
    given here (the CLI's ``--keep``), typically the Space's ``keep`` patterns.

    Raises:
      SpecError: ``repo_id`` is not a repository id, the repository or the commit does not exist (or the token
        cannot see it), or ``to`` is a prefix that is too short or matches several commits.
      PushError: reading, a download or the commit failed.
    """
    validate_repo_id(repo_id)
    if _HEX.match(to.lower()) and len(to) < 40:
        commits = _read(committer, repo_id, repo_type, "the commits", lambda: [
            (c.commit_id, c.title) for c in committer.api.list_repo_commits(repo_id, repo_type=repo_type)])
        to = match_commit(repo_id, to, commits) or to
    keep = check_patterns(keep, field="keep")
    kept = PathPatterns(keep)
    target, old = _tree_at(committer, repo_id, repo_type, to)
    head, current = _tree_at(committer, repo_id, repo_type, None)
    with tempfile.TemporaryDirectory(prefix="beam-pusher-rollback-") as tmp:
        files = [AppFile(repo_id, f.path, f.size, source=os.path.join(tmp, f.path), sha256=f.sha256,
                         git_sha1=f.git_sha1) for f in old.values() if not kept.matches(f.path)]
        changes, unchanged = plan_changes(files, current, keep=keep)
        if dry_run or not changes:
            return RollbackOutcome(repo_id, target, CommitOutcome(head, False, tuple(changes), unchanged), dry_run)
        for change in changes:
            if change.action is not ChangeAction.DELETE:
                download = functools.partial(committer.api.hf_hub_download, repo_id, change.path, repo_type=repo_type,
                                             revision=target, local_dir=tmp)
                committer.call(repo_id, f"download {change.path}", download)
        outcome = committer.commit(repo_id, files, repo_type=repo_type, keep=keep,
                                   commit_message=message or f"Roll back to {target[:7]}")
    return RollbackOutcome(repo_id, target, outcome)


def match_commit(repo_id: str, prefix: str, commits: Sequence[tuple[str, str]]) -> str | None:
    """The full id of the one commit whose id starts with ``prefix``; None when none does.

    Args:
      repo_id: The repository, for messages.
      prefix: At least ``MIN_COMMIT_PREFIX`` hex characters (any case).
      commits: (commit id, title) of the candidate commits, newest first.

    Raises:
      SpecError: ``prefix`` is shorter than ``MIN_COMMIT_PREFIX``, or several commits match (all are named).
    """
    if len(prefix) < MIN_COMMIT_PREFIX:
        raise SpecError(f"{repo_id}: {prefix!r} is too short to name a commit; give at least {MIN_COMMIT_PREFIX} "
                        "characters of the commit id (this tool prints 7).")
    matches = [(sha, title) for sha, title in commits if sha.startswith(prefix.lower())]
    if len(matches) > 1:
        listed = ", ".join(f"{sha[:12]} ({title})" for sha, title in matches)
        raise SpecError(f"{repo_id}: the commit prefix {prefix!r} matches {len(matches)} commits: {listed}; "
                        "give more characters of the commit id.")
    return matches[0][0] if matches else None


def _read(committer: Committer, repo_id: str, repo_type: str, what: str, fn: Callable[[], _T]) -> _T:
    """``fn()`` under the retry policy; a missing repository or revision is a ``SpecError``, the rest ``PushError``."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return committer.retry.call(f"{repo_id}: read {what}", fn, transient=committer.is_transient)
    except RepositoryNotFoundError:
        raise SpecError(f"{repo_id}: no such {repo_type} on {committer.api.endpoint} (or the token cannot see it); "
                        "check the repository id and its type ('space', 'model' or 'dataset').") from None
    except RevisionNotFoundError:
        raise SpecError(f"{repo_id}: no commit {what!r}; list the commits with "
                        "HfApi().list_repo_commits() or on the repository's history page.") from None
    except Exception as exc:  # noqa: BLE001 - enriched and re-raised
        raise PushError(committer.describe(exc, repo_id, f"cannot read {what}")) from None


def _tree_at(
    committer: Committer, repo_id: str, repo_type: str, revision: str | None
) -> tuple[str, dict[str, RemoteFile]]:
    """The commit id at ``revision`` (None: the head) and its files."""
    sha, tree = _read(committer, repo_id, repo_type, revision or "the head",
                      lambda: committer.remote_state(repo_id, repo_type=repo_type, revision=revision))
    if sha is None:
        raise SpecError(f"{repo_id}: the {repo_type} has no commit yet; there is nothing to roll back to.")
    return sha, tree


# -- before a run ----------------------------------------------------------------------------------------------------
