"""URL routing of the local Hub: which endpoint function answers a method and path, and the route's name.

Paths are split on ``/`` *before* percent-decoding each segment, because the client URL-encodes revisions and tree
paths (``refs%2Fpr%2F1``, ``folder%2Fsub``) into one segment. Route names are what fault injection and request
counting refer to (``preupload``, ``commit``, ``lfs-upload``, ``tree``, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from beam_pusher.localhub import commit_api, discussion_api, file_api, manage_api, repo_api, space_api, web

__all__ = ["Route", "match"]

_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_SPACE_SETTINGS = {
    ("secrets", "GET"): space_api.secrets, ("secrets", "POST"): space_api.secrets,
    ("secrets", "DELETE"): space_api.secrets, ("variables", "GET"): space_api.variables,
    ("variables", "POST"): space_api.variables, ("variables", "DELETE"): space_api.variables,
    ("hardware", "POST"): space_api.hardware, ("runtime", "GET"): space_api.runtime,
    ("restart", "POST"): space_api.restart, ("pause", "POST"): space_api.pause,
    ("sleeptime", "POST"): space_api.sleep_time,
}


_DISCUSSION_CHANGES = {
    "comment": discussion_api.comment, "title": discussion_api.rename, "status": discussion_api.change_status,
    "merge": discussion_api.merge,
}


@dataclasses.dataclass(frozen=True)
class Route:
    """A matched route: its ``name`` and the call that answers it."""

    name: str
    call: Callable[..., Any]


def _route(name: str, function: Callable[..., Any], *args: Any) -> Route:
    def call(request: Any) -> Any:
        return function(request, *args)

    return Route(name, call)


def match(method: str, segments: list[str]) -> Route | None:
    """The route for ``method`` and the decoded path ``segments``, or None (404).

    Web pages (``web``) take the paths no API, git or file route has: ``/``, ``/login``, ``/logout`` and a
    repository's own URL (``/spaces/ns/name``, ``/ns/name``), which git and ``resolve`` only ever extend.
    """
    reading = method in ("GET", "HEAD")
    if not segments and reading:
        return _route("page", web.index)
    if segments in (["login"], ["logout"]) and method == "POST":
        return _route("page", web.sign_in if segments == ["login"] else web.sign_out)
    if segments[:1] == ["api"]:
        return _match_api(method, segments[1:])
    if segments[:1] == ["lfs-objects"] and len(segments) == 2:
        if method == "PUT":
            return _route("lfs-upload", file_api.lfs_upload, segments[1])
        if method in ("GET", "HEAD"):
            return _route("lfs-download", file_api.lfs_download, segments[1])
        return None
    repo_type = "model"
    if segments[:1] in (["spaces"], ["datasets"]):
        repo_type, segments = _PLURALS[segments[0]], segments[1:]
    if len(segments) == 2 and reading and not segments[1].endswith(".git"):
        return _route("page", web.repo_page, repo_type, "/".join(segments))
    if len(segments) < 3:
        return None
    if segments[1] == "resolve" and segments[2] != "resolve" and method in ("GET", "HEAD"):
        return _route("resolve", repo_api.missing_repo, repo_type, segments[0])  # a repo id without namespace
    namespace, name, tail = segments[0], segments[1], segments[2:]
    if name.endswith(".git"):
        name = name[: -len(".git")]
    repo_id = f"{namespace}/{name}"
    if tail[:3] == ["info", "lfs", "objects"] and len(tail) == 4 and method == "POST":
        if tail[3] == "batch":
            return _route("lfs-batch", file_api.lfs_batch, repo_type, repo_id)
        if tail[3] == "verify":
            return _route("lfs-verify", file_api.lfs_verify, repo_type, repo_id)
        return None
    if tail[0] == "resolve" and len(tail) >= 3 and method in ("GET", "HEAD"):
        return _route("resolve", file_api.resolve, repo_type, repo_id, tail[1], "/".join(tail[2:]))
    if method in ("GET", "HEAD") and (tail[0] in ("HEAD", "objects") or tail[:2] == ["info", "refs"]):
        return _route("git", file_api.git_file, repo_type, repo_id, "/".join(tail))
    return None


def _discussion_route(method: str, args: tuple[str, str], more: list[str]) -> Route | None:
    """``/api/{type}s/{id}/discussions[/N[/comment|title|status|merge|comment/ID/edit|comment/ID/hide]]``."""
    if not more:
        function = {"GET": discussion_api.list_discussions, "POST": discussion_api.create_discussion}.get(method)
        return _route("discussions", function, *args) if function else None
    if len(more) == 1 and method == "GET":
        return _route("discussion", discussion_api.discussion_details, *args, more[0])
    if len(more) == 2 and method == "POST" and more[1] in _DISCUSSION_CHANGES:
        return _route(f"discussion-{more[1]}", _DISCUSSION_CHANGES[more[1]], *args, more[0])
    if len(more) == 4 and method == "POST" and more[1] == "comment" and more[3] in ("edit", "hide"):
        function = discussion_api.edit_comment if more[3] == "edit" else discussion_api.hide_comment
        return _route(f"discussion-comment-{more[3]}", function, *args, more[0], more[2])
    return None


def _match_api(method: str, rest: list[str]) -> Route | None:
    if rest == ["whoami-v2"] and method == "GET":
        return _route("whoami", repo_api.whoami)
    if rest == ["agent-harnesses"] and method == "GET":
        return _route("agent-harnesses", repo_api.agent_harnesses)
    if rest == ["validate-yaml"] and method == "POST":
        return _route("validate-yaml", repo_api.validate_yaml)
    if rest == ["repos", "create"] and method == "POST":
        return _route("create-repo", repo_api.create_repo)
    if rest == ["repos", "delete"] and method == "DELETE":
        return _route("delete-repo", repo_api.delete_repo)
    if rest == ["repos", "move"] and method == "POST":
        return _route("move-repo", manage_api.move_repo)
    if len(rest) == 1 and rest[0] in _PLURALS and method == "GET":
        return _route("list-repos", repo_api.list_repos, _PLURALS[rest[0]])
    if len(rest) == 2 and rest[0] in _PLURALS:
        return _route("repo-info", repo_api.missing_repo, _PLURALS[rest[0]], rest[1])  # a repo id without namespace
    if len(rest) < 3 or rest[0] not in _PLURALS:
        return None
    repo_type, repo_id, tail = _PLURALS[rest[0]], f"{rest[1]}/{rest[2]}", rest[3:]
    args = (repo_type, repo_id)
    if not tail:
        return _route("repo-info", repo_api.repo_info, *args) if method == "GET" else None
    head, more = tail[0], tail[1:]
    if head == "revision" and more and method == "GET":
        return _route("repo-info", repo_api.repo_info, *args, "/".join(more))
    if head == "tree" and more and method == "GET":
        return _route("tree", repo_api.list_tree, *args, more[0], "/".join(more[1:]))
    if head == "paths-info" and len(more) == 1 and method == "POST":
        return _route("paths-info", repo_api.paths_info, *args, more[0])
    if head == "commits" and len(more) == 1 and method == "GET":
        return _route("commits", repo_api.list_commits, *args, more[0])
    if tail == ["refs"] and method == "GET":
        return _route("refs", repo_api.list_refs, *args)
    if head == "branch" and more and method in ("POST", "DELETE"):
        function = repo_api.create_branch if method == "POST" else repo_api.delete_branch
        return _route("branch", function, *args, "/".join(more))
    if head == "tag" and more and method in ("POST", "DELETE"):
        function = repo_api.create_tag if method == "POST" else repo_api.delete_tag
        return _route("tag", function, *args, "/".join(more))
    if head == "preupload" and len(more) == 1 and method == "POST":
        return _route("preupload", commit_api.preupload, *args, more[0])
    if head == "commit" and len(more) == 1 and method == "POST":
        return _route("commit", commit_api.commit, *args, more[0])
    if head == "auth-check" and more in ([], ["write"]) and method == "GET":
        return _route("auth-check", repo_api.auth_check, *args, *more)
    if head == "discussions":
        return _discussion_route(method, args, more) or _route("unknown", repo_api.missing_repo, *args)
    if tail == ["settings"] and method == "PUT":
        return _route("settings", manage_api.update_settings, *args)
    if head == "super-squash" and len(more) == 1 and method == "POST":
        return _route("super-squash", manage_api.super_squash, *args, more[0])
    if repo_type == "space" and head == "logs" and more in (["build"], ["run"]) and method == "GET":
        return _route("space-logs", space_api.logs, repo_id, more[0])
    if repo_type == "space" and len(tail) == 1 and (head, method) in _SPACE_SETTINGS:
        return _route(f"space-{head}", _SPACE_SETTINGS[(head, method)], repo_id)
    return _route("unknown", repo_api.missing_repo, *args)  # RepoNotFound unless the repository exists
