"""Deploys as pull requests: find the open pull request this tool opened on a repository, and merge it.

A deploy with ``create_pr`` (``beam-pusher deploy --pr``) opens at most one pull request per repository and keeps
using it: its description carries ``DEPLOY_MARKER``, and ``find_pull_request`` looks for that marker among the
repository's open pull requests (``get_repo_discussions`` then ``get_discussion_details``; the Hub lists no
descriptions). The commit to a pull request is ``beam_pusher.commit.Committer``'s; ``merge_pull_requests`` is the
Hub side of ``beam-pusher merge``: it merges those pull requests (``merge_pull_request``) and returns, for each
repository, what happened. Nothing here prints.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from typing import Any

from beam_pusher.errors import PushError
from beam_pusher.settings import SettingChange
from beam_pusher.spec import PushResult

__all__ = ["DEPLOY_MARKER", "MergeResult", "PullRequest", "find_pull_request", "merge_pull_requests",
           "no_space_for_pull_request", "proposed_result", "pull_request_description"]

logger = logging.getLogger(__name__)

DEPLOY_MARKER = "<!-- beam-pusher:deploy -->"
"""In the description of every pull request a deploy opens (an HTML comment: the Hub's page does not show it)."""


@dataclasses.dataclass(frozen=True)
class PullRequest:
    """An open pull request: its number, its page on the Hub and its git revision (``refs/pr/N``)."""

    num: int
    url: str

    @property
    def revision(self) -> str:
        """The git reference that holds the pull request's commits, a revision for every Hub call."""
        return f"refs/pr/{self.num}"


def pull_request_description(summary: str) -> str:
    """The description of a pull request a deploy opens: ``summary``, how to update and merge it, the marker."""
    return (
        f"{summary}\n\nOpened by beam_pusher. Deploying again with `--pr` (create_pr) adds a commit here instead of "
        f"opening another pull request; `beam-pusher merge CONFIG` merges it. Space settings are not part of a pull "
        f"request: a plain deploy after the merge writes them.\n\n{DEPLOY_MARKER}"
    )


def _page(api: Any, repo_id: str, repo_type: str, num: int) -> str:
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    return f"{api.endpoint.rstrip('/')}/{prefix}{repo_id}/discussions/{num}"


def find_pull_request(api: Any, repo_id: str, *, repo_type: str = "space") -> PullRequest | None:
    """The newest open pull request on ``repo_id`` whose description holds ``DEPLOY_MARKER``; None when there is none.

    Pull requests that people opened are never chosen, open or not. Errors are the client's (the caller retries).
    """
    candidates = sorted(
        (d.num for d in api.get_repo_discussions(repo_id, repo_type=repo_type, discussion_type="pull_request",
                                                 discussion_status="open")),
        reverse=True,
    )
    for num in candidates:
        details = api.get_discussion_details(repo_id, num, repo_type=repo_type)
        first = next((e for e in details.events if e.type == "comment"), None)
        if first is not None and DEPLOY_MARKER in (first.content or ""):
            return PullRequest(num, _page(api, repo_id, repo_type, num))
    return None


def no_space_for_pull_request(repo_id: str) -> None:
    """Refuses to create a Space in a deploy as pull requests: a new Space has nothing to review a change against.

    Raises:
      PushError: always, saying how to create it.
    """
    raise PushError(
        f"{repo_id}: the Space does not exist, and a pull request needs a Space to be opened on; deploy it once "
        "without --pr (create_pr=False), then deploy changes to it as pull requests."
    )


def proposed_result(result: PushResult, settings: Sequence[SettingChange]) -> PushResult:
    """``result`` of a push as a pull request, with the Space ``settings`` that differ listed as not written.

    Settings take effect at once, before anyone reviews the pull request, so they are not part of it.
    """
    warnings = ()
    if settings:
        warnings = (f"{len(settings)} Space setting(s) differ and were not written: settings are not part of a pull "
                    f"request ({'; '.join(map(str, settings))}); deploy without --pr after the merge to write them.",)
    return dataclasses.replace(result, settings_planned=tuple(settings), warnings=result.warnings + warnings)


@dataclasses.dataclass(frozen=True)
class MergeResult:
    """What ``merge_pull_requests`` did to one repository.

    Attributes:
      repo_id: The repository.
      pr_num: The pull request merged (or that failed to merge); None when there was no open one.
      pr_url: Its page on the Hub.
      merged: Whether it was merged.
      commit_id: ``main``'s head after the merge.
      error: Why it was not merged, when it should have been.
    """

    repo_id: str
    pr_num: int | None = None
    pr_url: str | None = None
    merged: bool = False
    commit_id: str | None = None
    error: str | None = None


def merge_pull_requests(
    committer: Any, repo_ids: Sequence[str], *, repo_type: str = "space", comment: str | None = None
) -> list[MergeResult]:
    """Merges the open pull request a deploy opened on each of ``repo_ids`` (in that order); never raises for one.

    Args:
      committer: A ``beam_pusher.commit.Committer``: its ``HfApi`` and retry policy are used for every call.
      repo_ids: The repositories.
      repo_type: Their type.
      comment: Posted on each pull request as it is merged.
    """
    return [_merge_one(committer, repo_id, repo_type, comment) for repo_id in repo_ids]


def _merge_one(committer: Any, repo_id: str, repo_type: str, comment: str | None) -> MergeResult:
    api = committer.api
    pr = None
    try:
        pr = committer.call(repo_id, "list the open pull requests",
                            lambda: find_pull_request(api, repo_id, repo_type=repo_type))
        if pr is None:
            return MergeResult(repo_id)
        merge = functools.partial(api.merge_pull_request, repo_id, pr.num, repo_type=repo_type, comment=comment)
        committer.call(repo_id, f"merge pull request #{pr.num}", merge)
        head = committer.call(repo_id, "read the head", lambda: api.repo_info(repo_id, repo_type=repo_type).sha)
    except PushError as exc:
        logger.warning("%s: not merged: %s", repo_id, exc)
        return MergeResult(repo_id, pr and pr.num, pr and pr.url, error=str(exc))
    logger.info("%s: merged pull request #%d at %s", repo_id, pr.num, head)
    return MergeResult(repo_id, pr.num, pr.url, merged=True, commit_id=head)
