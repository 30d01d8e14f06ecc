"""Repository management endpoints: settings (visibility, gating), moving (renaming) and super-squashing history.

``PUT /api/{type}s/{id}/settings`` (``HfApi.update_repo_settings``), ``POST /api/repos/move`` (``HfApi.move_repo``)
and ``POST /api/{type}s/{id}/super-squash/{branch}`` (``HfApi.super_squash_history``, which ``CommitScheduler``
uses), with the Hub's permission rules: the same as deleting the repository (a write token of a ``write`` or
``admin`` member of its namespace, or a contributor on the repos it created).
"""

from __future__ import annotations

from beam_pusher.localhub import spaces
from beam_pusher.localhub.gitobjects import valid_ref_name
from beam_pusher.localhub.names import NAME_RULE, valid_name
from beam_pusher.localhub.protocol import (
    GATED_VALUES,
    HubError,
    Request,
    Response,
    find_repo,
    json_response,
    resolve_revision,
)
from beam_pusher.localhub.repo_api import author_of
from beam_pusher.localhub.storage import REPO_TYPES, StorageError

__all__ = ["move_repo", "super_squash", "update_settings"]

_VISIBILITIES = ("public", "private", "protected")


def update_settings(request: Request, repo_type: str, repo_id: str) -> Response:
    """Changes visibility (``visibility`` or ``private``) and gating (``gated``: "auto", "manual" or false).

    A gated repository serves its files only to members of its namespace (``protocol.check_gate``); the Hub's access
    requests (``grant_access`` and the request lists) are not modelled here, so "auto" and "manual" gate alike.
    Every value is checked before anything is stored.
    """
    repo = find_repo(request, repo_type, repo_id, write=True)
    body = request.json_object()
    changes = {}
    visibility = body.get("visibility")
    if visibility is None and isinstance(body.get("private"), bool):
        visibility = "private" if body["private"] else "public"
    if visibility is not None:
        if visibility not in _VISIBILITIES:
            raise HubError(400, f"Invalid visibility {visibility!r}: use public, private or protected")
        changes.update(private=visibility == "private", visibility=visibility)
    if "gated" in body:
        gated = body["gated"]
        if not any(gated is value or (gated == value and isinstance(gated, str)) for value in GATED_VALUES):
            raise HubError(400, f'Invalid gated value {gated!r}: "gated" must be one of "auto", "manual" or false '
                           '(not gated)')
        changes["gated"] = gated
    with repo.lock:
        repo.settings.update(changes)
        repo.save_settings()
    return json_response({})


def _repo_id(value: object, field: str) -> str:
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 2 or not all(valid_name(part) for part in parts):
        raise HubError(400, f"Invalid {field} {value!r}: expected 'namespace/name', each part a name the Hub "
                       f"accepts ({NAME_RULE})")
    return str(value)


def move_repo(request: Request) -> Response:
    """Renames ``fromRepo`` to ``toRepo`` (a new name, or another namespace the caller may write to).

    The git data, settings and discussions move together; the old id answers 404 afterwards. 409 when ``toRepo``
    exists (in any case of letters, as the Hub compares ids).
    """
    identity = request.require_identity()
    body = request.json_object()
    repo_type = body.get("type") or "model"
    if repo_type not in REPO_TYPES:
        raise HubError(400, f"Invalid repo type {repo_type!r}: use one of {', '.join(REPO_TYPES)}")
    source, target = _repo_id(body.get("fromRepo"), "fromRepo"), _repo_id(body.get("toRepo"), "toRepo")
    repo = find_repo(request, repo_type, source, write=True)
    namespace = target.split("/", 1)[0]
    if not identity.can_create(namespace):
        raise HubError(403, f"You don't have the rights to move {repo_type} {repo.repo_id!r} to {target!r}: "
                       f"{identity.name!r} cannot create repos in the namespace {namespace!r}")
    try:
        moved = request.state.store.move(repo_type, repo.repo_id, target)
    except StorageError as err:
        raise HubError.from_storage(err) from None
    if repo_type == "space":
        with moved.lock:
            moved.settings["subdomain"] = spaces.subdomain_of(moved.repo_id)
            moved.save_settings()
    return json_response({})


def super_squash(request: Request, repo_type: str, repo_id: str, branch: str) -> Response:
    """Replaces the history of ``branch`` (or ``refs/pr/N``) by one commit holding its current tree.

    The older commits are no longer in the branch's history; other branches, tags and pull requests keep theirs.
    A tag or a commit id is answered 400, a branch that does not exist 404 ``RevisionNotFound``.
    """
    repo = find_repo(request, repo_type, repo_id, write=True)
    message = request.json_object().get("message") or f"Super-squash branch '{branch}'"
    if not isinstance(message, str):
        raise HubError(400, f"Invalid message {message!r}: the squashed commit's message must be a string")
    if branch.startswith(("refs/pr/", "refs/heads/")):
        ref = branch
    elif branch.startswith("refs/"):
        raise HubError(400, f"Invalid reference for a branch: {branch!r}: super-squash a branch or a refs/pr/N ref")
    else:
        ref = f"refs/heads/{branch}"
    if not valid_ref_name(ref) or repo.git.read_ref(ref) is None:
        resolve_revision(repo, branch)  # RevisionNotFound when it is nothing at all
        raise HubError(400, f"Invalid reference for a branch: {branch!r} is a tag or a commit, not a branch; "
                       "super-squash a branch")
    sha = repo.squash(ref, message, author_of(request))
    return json_response({"commitId": sha})
