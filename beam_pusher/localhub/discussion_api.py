"""Discussion and pull request endpoints, and the access rules of commits that open or update a pull request.

The Hub's rules: anyone who can see a repository may read its threads; anyone signed in with a write token may
open a discussion or a pull request on it (``create_commit(create_pr=True)`` included), comment, and push to the
pull requests they opened; the thread's author or a member of the repository's namespace may rename it or change its
status; only members with a write token merge, and only an open pull request without conflicts. Merging is a real
git merge of ``refs/pr/N`` into its target branch (``Repository.merge``).
"""

from __future__ import annotations

import dataclasses
import html
import time
from typing import Any

from beam_pusher.localhub.accounts import Identity
from beam_pusher.localhub.discussions import Discussion, DiscussionStore, Event, comment_event, new_event
from beam_pusher.localhub.protocol import (
    HubError,
    Request,
    Response,
    find_repo,
    iso_date,
    json_response,
    repo_url,
    resolve_revision,
)
from beam_pusher.localhub.repo_api import author_of, note_new_head
from beam_pusher.localhub.storage import AddFile, DeletePath, Repository

__all__ = [
    "change_status", "comment", "commit_target", "create_discussion", "discussion_details", "edit_comment",
    "hide_comment", "list_discussions", "merge", "open_pull_request", "record_commit", "rename",
]

PAGE_SIZE = 50
_DEFAULT_DESCRIPTION = "{} opened with the local Hub"


# Access --------------------------------------------------------------------------------------------------------------


def _participant(request: Request, repo_type: str, repo_id: str) -> tuple[Repository, Identity]:
    """The repository, for a caller who may take part in its threads: signed in, can see it, write token."""
    request.require_identity()
    repo = find_repo(request, repo_type, repo_id)
    identity = request.require_identity()
    if identity.role != "write":
        raise HubError(403, f"This token of {identity.name!r} has read access only: use a write token to open, "
                       f"comment on or update discussions and pull requests of {repo.repo_id!r}")
    return repo, identity


def _is_maintainer(identity: Identity, repo: Repository) -> bool:
    return identity.can_write(repo.namespace, repo.settings.get("created_by"))


def _thread(repo: Repository, num: str | int) -> Discussion:
    if isinstance(num, str) and not num.isdigit():
        raise HubError(404, f"Discussion {num!r} not found: discussion numbers are positive integers")
    return DiscussionStore(repo).get(int(num))


def _require_author_or_maintainer(identity: Identity, repo: Repository, thread: Discussion, action: str) -> None:
    if identity.name != thread.author and not _is_maintainer(identity, repo):
        raise HubError(403, f"Only the author of #{thread.num} ({thread.author!r}) or a member of {repo.namespace!r} "
                       f"with a write token may {action}; {identity.name!r} is neither")


def commit_target(request: Request, repo_type: str, repo_id: str, revision: str,
                  create_pr: bool) -> tuple[Repository, Discussion | None]:
    """The repository a preupload or commit goes to, checked as the Hub does, and the pull request it updates.

    A commit to a branch needs write access to the namespace; one that opens a pull request (``create_pr``) needs
    only a write token and sight of the repository; one to ``refs/pr/N`` needs the pull request's author or a member,
    and an open (or draft) pull request.
    """
    if not create_pr and not revision.startswith("refs/pr/"):
        return find_repo(request, repo_type, repo_id, write=True), None
    repo, identity = _participant(request, repo_type, repo_id)
    if create_pr:
        return repo, None
    resolve_revision(repo, revision)  # RevisionNotFound for a pull request that does not exist
    num = revision[len("refs/pr/") :]
    thread = _thread(repo, num)
    if not thread.is_pull_request:
        raise HubError(404, f"Invalid rev id: {revision!r}: #{num} is a discussion, not a pull request",
                       "RevisionNotFound")
    _require_author_or_maintainer(identity, repo, thread, f"push to {revision}")
    if not thread.is_open:
        raise HubError(403, f"Pull request #{num} is {thread.status}: reopen it (change_discussion_status) before "
                       "pushing to it")
    return repo, thread


# Commits that open or update a pull request ---------------------------------------------------------------------------


def open_pull_request(request: Request, repo: Repository, branch: str, operations: list[AddFile | DeletePath],
                      header: dict[str, Any], message: str) -> tuple[str, Discussion]:
    """Commits ``operations`` to a new ``refs/pr/N`` made from ``branch`` and opens pull request ``N`` for it."""
    author = author_of(request)
    store = DiscussionStore(repo)
    with repo.lock:  # the number is taken and used under the same lock
        num = store.next_number()
        sha = repo.commit(branch, operations, message, author, header.get("parentCommit"), new_ref=f"refs/pr/{num}")
        description = str(header.get("description") or "").strip() or _DEFAULT_DESCRIPTION.format("Pull Request")
        events = (comment_event(author.name, description), _commit_event(author.name, sha, message))
        title = message.split("\n", 1)[0][:200]  # the commit's summary, as the Hub titles it
        thread = Discussion(num, title, author.name, time.time(), "open", True, events, target_branch=branch)
        store.create(thread)
    return sha, thread


def record_commit(repo: Repository, thread: Discussion, sha: str, message: str, author: str) -> Discussion:
    """Adds a pushed commit to pull request ``thread``; a draft becomes open with its first commit."""
    status = "open" if thread.status == "draft" else thread.status
    return DiscussionStore(repo).add_events(thread.num, _commit_event(author, sha, message), status=status)


def _commit_event(author: str, sha: str, message: str) -> Event:
    return new_event("commit", author, subject=message.split("\n", 1)[0], oid=sha)


def _title(value: Any) -> str:
    title = value.strip() if isinstance(value, str) else ""
    if not 3 <= len(title) <= 200:
        raise HubError(400, f"Invalid title {value!r}: a title has 3 to 200 characters (leading and trailing spaces "
                       "are not counted)")
    return title


# Wire format ---------------------------------------------------------------------------------------------------------


def _user(name: str) -> dict[str, Any]:
    return {"name": name, "fullname": name, "type": "user", "avatarUrl": "", "isPro": False}


def _event_json(event: Event) -> dict[str, Any]:
    found: dict[str, Any] = {"id": event.id, "type": event.type, "createdAt": iso_date(event.created_at),
                             "author": _user(event.author)}
    if event.type != "comment":
        found["data"] = event.data
        return found
    data = event.data
    raw = "This comment has been hidden" if data["hidden"] else data["raw"]
    editor = data.get("editor", event.author)
    found["data"] = {
        "edited": data["edited"], "hidden": data["hidden"], "numEdits": len(data["history"]),
        "editors": sorted({event.author, editor}), "history": data["history"], "reactions": [],
        "latest": {"raw": raw, "html": f"<p>{html.escape(raw)}</p>", "author": _user(editor),
                   "updatedAt": iso_date(data.get("updated_at", event.created_at))},
    }
    return found


def _summary_json(request: Request, repo: Repository, thread: Discussion) -> dict[str, Any]:
    return {
        "num": thread.num, "title": thread.title, "status": thread.status, "author": _user(thread.author),
        "createdAt": iso_date(thread.created_at), "isPullRequest": thread.is_pull_request, "pinned": False,
        "numComments": sum(event.type == "comment" for event in thread.events), "topReactions": [],
        "repo": {"name": repo.repo_id, "type": repo.repo_type},
        "url": f"{repo_url(request.base_url, repo.repo_type, repo.repo_id)}/discussions/{thread.num}",
    }


def _details_json(request: Request, repo: Repository, thread: Discussion) -> dict[str, Any]:
    found = _summary_json(request, repo, thread)
    found["events"] = [_event_json(event) for event in thread.events]
    if thread.is_pull_request:
        head = repo.resolve(thread.git_reference)
        target = repo.branch_head(thread.target_branch or "main")
        changes: dict[str, Any] = {"base": f"refs/heads/{thread.target_branch}"}
        if thread.merge_commit:
            changes["mergeCommitId"] = thread.merge_commit
        found["changes"] = changes
        open_with_both = thread.is_open and head is not None and target is not None
        found["filesWithConflicts"] = list(repo.conflicts(thread.target_branch, head)) if open_with_both else []
        base = repo.git.merge_base(target, head) if head and target else None
        found["diff"] = repo.git.diff(base, head) if base and head and base != head else ""
    return found


# Endpoints -----------------------------------------------------------------------------------------------------------


def list_discussions(request: Request, repo_type: str, repo_id: str) -> Response:
    """Newest first, 50 a page (``p``), filtered by ``type``, ``status`` (open: with drafts) and ``author``."""
    repo = find_repo(request, repo_type, repo_id)
    kind, status, author = request.param("type") or "all", request.param("status") or "all", request.param("author")
    if kind not in ("all", "discussion", "pull_request") or status not in ("all", "open", "closed"):
        raise HubError(400, f"Invalid filter type={kind!r} status={status!r}: use type all, discussion or "
                       "pull_request and status all, open or closed")
    threads = DiscussionStore(repo).all()
    closed = sum(not thread.is_open for thread in threads)
    threads = [t for t in threads if (kind == "all" or t.is_pull_request == (kind == "pull_request"))
               and (status == "all" or t.is_open == (status == "open")) and (not author or t.author == author)]
    start = request.int_param("p", 0) * PAGE_SIZE
    page = [_summary_json(request, repo, thread) for thread in threads[start : start + PAGE_SIZE]]
    return json_response({"discussions": page, "count": len(threads), "start": start, "numClosedDiscussions": closed})


def discussion_details(request: Request, repo_type: str, repo_id: str, num: str) -> Response:
    repo = find_repo(request, repo_type, repo_id)
    return json_response(_details_json(request, repo, _thread(repo, num)))


def create_discussion(request: Request, repo_type: str, repo_id: str) -> Response:
    """A discussion, or an empty pull request (a ``draft`` whose ``refs/pr/N`` starts at ``main``'s head)."""
    repo, identity = _participant(request, repo_type, repo_id)
    body = request.json_object()
    title, is_pr = _title(body.get("title")), bool(body.get("pullRequest"))
    kind = "Pull Request" if is_pr else "Discussion"
    description = str(body.get("description") or "").strip() or _DEFAULT_DESCRIPTION.format(kind)
    store = DiscussionStore(repo)
    with repo.lock:
        num = store.next_number()
        if is_pr:
            head = repo.branch_head("main")
            if head is None:
                raise HubError(404, f"Invalid rev id: {repo.repo_id!r} has no branch 'main' to open a pull request "
                               "against", "RevisionNotFound")
            repo.create_ref(f"refs/pr/{num}", head)
        thread = Discussion(num, title, identity.name, time.time(), "draft" if is_pr else "open", is_pr,
                            (comment_event(identity.name, description),), "main" if is_pr else None)
        store.create(thread)
    return json_response({"num": num, "pullRequest": is_pr, **_summary_json(request, repo, thread)})


def comment(request: Request, repo_type: str, repo_id: str, num: str) -> Response:
    repo, identity = _participant(request, repo_type, repo_id)
    thread = _thread(repo, num)
    text = request.json_object().get("comment")
    if not isinstance(text, str) or not text.strip():
        raise HubError(400, "A comment needs a non-empty JSON field 'comment'")
    event = comment_event(identity.name, text)
    DiscussionStore(repo).add_events(thread.num, event)
    return json_response({"newMessage": _event_json(event)})


def rename(request: Request, repo_type: str, repo_id: str, num: str) -> Response:
    repo, identity = _participant(request, repo_type, repo_id)
    thread = _thread(repo, num)
    _require_author_or_maintainer(identity, repo, thread, "rename it")
    title = _title(request.json_object().get("title"))
    event = new_event("title-change", identity.name, **{"from": thread.title, "to": title})
    DiscussionStore(repo).add_events(thread.num, event, title=title)
    return json_response({"newTitle": _event_json(event)})


def change_status(request: Request, repo_type: str, repo_id: str, num: str) -> Response:
    """Closes or reopens a thread; a merged pull request stays merged."""
    repo, identity = _participant(request, repo_type, repo_id)
    thread = _thread(repo, num)
    _require_author_or_maintainer(identity, repo, thread, "change its status")
    body = request.json_object()
    status = body.get("status")
    if status not in ("open", "closed"):
        raise HubError(400, f"Invalid status {status!r}: use 'open' or 'closed' (merge_pull_request merges)")
    if thread.status == "merged":
        raise HubError(400, f"Pull request #{thread.num} is merged: its status cannot change any more")
    events = _optional_comment(identity, body) + (new_event("status-change", identity.name, status=status),)
    DiscussionStore(repo).add_events(thread.num, *events, status=status)
    return json_response({"newStatus": _event_json(events[-1])})


def merge(request: Request, repo_type: str, repo_id: str, num: str) -> Response:
    """Merges ``refs/pr/N`` into its target branch with a real git merge commit; 409 on conflicts."""
    repo = find_repo(request, repo_type, repo_id, write=True)
    identity = request.require_identity()
    thread = _thread(repo, num)
    if not thread.is_pull_request:
        raise HubError(400, f"#{thread.num} is a discussion, not a pull request: there is nothing to merge")
    if thread.status != "open":
        hint = "push a commit to it first" if thread.status == "draft" else "reopen it first"
        raise HubError(400, f"Pull request #{thread.num} is {thread.status}: only open pull requests merge; {hint}")
    events = _optional_comment(identity, request.json() or {})
    message = f"{thread.title} (#{thread.num})"
    with repo.lock:
        head = repo.resolve(thread.git_reference)
        sha = repo.merge(thread.target_branch or "main", head, message, author_of(request))  # 409 on conflicts
        events += (new_event("status-change", identity.name, status="merged"),)
        DiscussionStore(repo).add_events(thread.num, *events, status="merged", merge_commit=sha)
    note_new_head(repo, thread.target_branch or "main")
    return json_response({"mergeCommitId": sha})


def _optional_comment(identity: Identity, body: Any) -> tuple[Event, ...]:
    text = body.get("comment") if isinstance(body, dict) else None
    return (comment_event(identity.name, text.strip()),) if isinstance(text, str) and text.strip() else ()


def edit_comment(request: Request, repo_type: str, repo_id: str, num: str, comment_id: str) -> Response:
    repo, identity = _participant(request, repo_type, repo_id)
    event = _thread(repo, num).comment(comment_id)
    if identity.name != event.author:
        raise HubError(403, f"Only the author of a comment ({event.author!r}) may edit it; {identity.name!r} may not")
    content = request.json_object().get("content")
    if not isinstance(content, str) or not content.strip():
        raise HubError(400, "Editing a comment needs a non-empty JSON field 'content'")
    old = {"raw": event.data["raw"], "updatedAt": iso_date(event.data.get("updated_at", event.created_at))}
    data = {**event.data, "raw": content, "edited": True, "history": [*event.data["history"], old],
            "updated_at": time.time(), "editor": identity.name}
    edited = dataclasses.replace(event, data=data)
    DiscussionStore(repo).replace_event(int(num), edited)
    return json_response({"updatedComment": _event_json(edited)})


def hide_comment(request: Request, repo_type: str, repo_id: str, num: str, comment_id: str) -> Response:
    repo, identity = _participant(request, repo_type, repo_id)
    event = _thread(repo, num).comment(comment_id)
    if identity.name != event.author and not _is_maintainer(identity, repo):
        raise HubError(403, f"Only the comment's author ({event.author!r}) or a member of {repo.namespace!r} may hide "
                       "it")
    hidden = dataclasses.replace(event, data={**event.data, "hidden": True})
    DiscussionStore(repo).replace_event(int(num), hidden)
    return json_response({"updatedComment": _event_json(hidden)})
