"""Account and repository endpoints: whoami, create/delete, repo info, tree, commits, refs, branches and tags."""

from __future__ import annotations

import re
import time
import urllib.parse
from typing import Any

from beam_pusher.localhub import spaces
from beam_pusher.localhub.gitobjects import Signature
from beam_pusher.localhub.names import NAME_RULE, valid_name
from beam_pusher.localhub.protocol import (
    HubError,
    Request,
    Response,
    can_see,
    check_gate,
    find_repo,
    iso_date,
    json_response,
    repo_not_found,
    repo_url,
    resolve_revision,
)
from beam_pusher.localhub.runtime import space_runtime, start_build
from beam_pusher.localhub.storage import REPO_TYPES, Repository, Snapshot, StorageError, default_gitattributes

__all__ = [
    "agent_harnesses", "auth_check", "create_branch", "create_repo", "create_tag", "delete_branch", "delete_repo",
    "delete_tag", "list_commits", "list_refs", "list_repos", "list_tree", "missing_repo", "note_new_head",
    "paths_info", "repo_info", "validate_yaml", "whoami",
]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def author_of(request: Request) -> Signature:
    """Commit author for the caller: ``NAME <NAME@users.noreply.local>``, dated now."""
    name = request.require_identity().name
    return Signature(name, f"{name}@users.noreply.local", int(time.time()))


def note_new_head(repo: Repository, branch: str) -> None:
    """A new head of a Space's ``main`` (a commit or a merged pull request) starts a new build, as on the Hub."""
    if repo.repo_type == "space" and branch == "main":
        with repo.lock:
            start_build(repo.settings)
            repo.save_settings()


def auth_check(request: Request, repo_type: str, repo_id: str, mode: str = "") -> Response:
    """200 if the caller may read the repository's files (``/write``: write to it).

    Else the error ``find_repo`` gives, or for a gated repository the ``GatedRepo`` one of ``check_gate``.
    """
    repo = find_repo(request, repo_type, repo_id, write=mode == "write")
    check_gate(request, repo)
    return json_response({})


def whoami(request: Request) -> Response:
    identity = request.require_identity()
    user = identity.user
    return json_response({
        "type": "user",
        "id": user.name,
        "name": user.name,
        "fullname": user.name,
        "email": f"{user.name}@users.noreply.local",
        "emailVerified": True,
        "canPay": request.state.config.free_account_policy == "off",
        "isPro": False,
        "orgs": [{"type": "org", "name": org, "fullname": org, "roleInOrg": role} for org, role in user.org_roles],
        "auth": {"type": "access_token", "accessToken": {"displayName": f"local-{identity.role}", "role": identity.role}},
    })


def missing_repo(request: Request, repo_type: str, repo_id: str) -> Response:
    """A path under a repository that no endpoint answers: ``RepoNotFound`` unless the repository exists.

    The Hub answers a repo id without a namespace (``/api/models/name``), or a repository that does not exist, with
    ``X-Error-Code: RepoNotFound``, so ``repo_exists``/``file_exists``/``revision_exists`` return False.
    """
    repo = request.state.store.get(repo_type, repo_id) if "/" in repo_id else None
    if repo is None or not can_see(request.identity, repo):
        raise repo_not_found(repo_type, repo_id)
    raise HubError(404, f"Not found: {request.method} {request.path}")


def agent_harnesses(request: Request) -> Response:
    return json_response({"standardEnvVars": [], "harnesses": {}})


def validate_yaml(request: Request) -> Response:
    body = request.json_object()
    content = body.get("content")
    if not isinstance(content, str):
        raise HubError(400, "validate-yaml expects a JSON body {'content': <README.md text>, 'repoType': ...}")
    errors = spaces.validate_front_matter(content, str(body.get("repoType") or "model"))
    return json_response({"errors": [{"message": message} for message in errors], "warnings": []},
                         status=400 if errors else 200)


def _key_values(value: Any, field: str) -> dict[str, dict[str, Any]]:
    """Secrets or variables of a create request, ``[{key, value, description?}]``, validated."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise HubError(400, f"{field} must be a list of {{key, value, description}} objects")
    found = {}
    for item in value:
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str) or not _KEY.match(key):
            raise HubError(400, f"Invalid {field} key {key!r}: use letters, digits and '_', not starting with a digit")
        if not isinstance(item.get("value", ""), str):
            raise HubError(400, f"The value of {field} {key!r} must be a string")
        found[key] = {"value": item.get("value", ""), "description": item.get("description"), "updatedAt": iso_date(time.time())}
    return found


def create_repo(request: Request) -> Response:
    identity = request.require_identity()
    body = request.json_object()
    name, organization = body.get("name"), body.get("organization")
    repo_type = body.get("type") or "model"
    namespace = organization or identity.name
    if repo_type not in REPO_TYPES:
        raise HubError(400, f"Invalid repo type {repo_type!r}: use one of {', '.join(REPO_TYPES)}")
    for label, value in (("name", name), ("organization", namespace)):
        if not valid_name(value):
            raise HubError(400, f"Invalid {label} {value!r}: {NAME_RULE}")
    if not identity.is_member(namespace):
        raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace {namespace!r}")
    if identity.role != "write":
        raise HubError(403, f"This token of {identity.name!r} has read access only: use a write token to create repos")
    if not identity.can_create(namespace):
        raise HubError(403, f"{identity.name!r} is a {identity.role_in(namespace)} member of {namespace!r}, which "
                       f"may not create repos there: ask an admin of {namespace!r} for the contributor role or more")
    repo_id = f"{namespace}/{name}"
    url = repo_url(request.base_url, repo_type, repo_id)
    existing = request.state.store.get(repo_type, repo_id)  # in any case of letters, as on the Hub
    if existing is not None:
        url = repo_url(request.base_url, repo_type, existing.repo_id)
        raise HubError(409, f"You already created this {repo_type} repo: {existing.repo_id}", extra={"url": url})
    visibility = body.get("visibility") or ("private" if body.get("private") else "public")
    if visibility not in ("public", "private", "protected"):
        raise HubError(400, f"Invalid visibility {visibility!r}: use public, private or protected")
    settings: dict[str, Any] = {"private": visibility == "private", "visibility": visibility,
                                "created_by": identity.name}
    files = {".gitattributes": default_gitattributes(repo_type)}
    if repo_type == "space":
        settings.update(_space_settings(request, body, namespace, name))
        files["README.md"] = spaces.initial_readme(name, settings["sdk"])
    try:
        request.state.store.create(repo_type, repo_id, settings, files, author_of(request))
    except StorageError as err:
        raise HubError(err.status, str(err), extra={"url": url}) from None
    return json_response({"url": url, "name": repo_id, "id": repo_id})


def _space_settings(request: Request, body: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    sdk = body.get("sdk")
    if sdk not in spaces.SDKS:
        raise HubError(400, f"Invalid sdk {sdk!r} for a Space: use one of {', '.join(spaces.SDKS)}")
    hardware = body.get("hardware")
    if hardware is not None and hardware not in spaces.HARDWARE_FLAVORS:
        raise HubError(400, f"Invalid hardware {hardware!r}: use one of {', '.join(spaces.HARDWARE_FLAVORS)}")
    refusal = spaces.payment_required(request.state.config.free_account_policy, sdk, hardware)
    if refusal is not None:
        raise HubError(402, refusal)
    sleep_time = body.get("sleepTimeSeconds")
    if sleep_time is not None and (not isinstance(sleep_time, int) or sleep_time < -1):
        raise HubError(400, f"Invalid sleepTimeSeconds {sleep_time!r}: use a number of seconds, or -1 for never")
    return {
        "sdk": sdk,
        "hardware": hardware or spaces.FREE_HARDWARE,
        "sleep_time": sleep_time,
        "secrets": _key_values(body.get("secrets"), "secret"),
        "variables": _key_values(body.get("variables"), "variable"),
        "subdomain": spaces.subdomain_of(f"{namespace}/{name}"),
        "build_started_at": time.time(),
        "paused": False,
    }


def delete_repo(request: Request) -> Response:
    identity = request.require_identity()
    body = request.json_object()
    repo_type = body.get("type") or "model"
    repo_id = f"{body.get('organization') or identity.name}/{body.get('name')}"
    if repo_type not in REPO_TYPES:
        raise HubError(400, f"Invalid repo type {repo_type!r}: use one of {', '.join(REPO_TYPES)}")
    find_repo(request, repo_type, repo_id, write=True)
    request.state.store.delete(repo_type, repo_id)
    return json_response({})


def card_data(repo: Repository, snapshot: Snapshot) -> dict[str, Any] | None:
    blob = snapshot.files.get("README.md")
    if blob is None:
        return None
    data, _ = spaces.parse_front_matter(repo.read_blob(blob).decode("utf-8", "replace"))
    return data or None


def _summary(request: Request, repo: Repository, sha: str) -> dict[str, Any]:
    commit = repo.git.read_commit(sha)
    info: dict[str, Any] = {
        "_id": repo.settings.get("id"),
        "id": repo.repo_id,
        "author": repo.namespace,
        "sha": sha,
        "lastModified": iso_date(commit.author.timestamp),
        "createdAt": iso_date(repo.settings.get("created_at") or commit.author.timestamp),
        "private": repo.private,
        "gated": repo.settings.get("gated", False),
        "disabled": False,
        "likes": 0,
        "tags": [],
    }
    if repo.repo_type == "model":
        info["modelId"] = repo.repo_id
    if repo.repo_type == "space":
        info["sdk"] = repo.settings.get("sdk")
        info["subdomain"] = repo.settings.get("subdomain")
        info["host"] = f"https://{repo.settings.get('subdomain')}.hf.space"
    return info


def repo_info(request: Request, repo_type: str, repo_id: str, revision: str | None = None) -> Response:
    repo = find_repo(request, repo_type, repo_id)
    sha = resolve_revision(repo, revision)
    snapshot = repo.snapshot(sha)
    info = _summary(request, repo, sha)
    blobs = request.flag("blobs")
    siblings = []
    for path in sorted(snapshot.files):
        sibling: dict[str, Any] = {"rfilename": path}
        if blobs:
            file = repo.file_info(path, snapshot.files[path])
            sibling.update(size=file.size, blobId=file.blob_id)
            if file.lfs_oid:
                sibling["lfs"] = {"size": file.size, "sha256": file.lfs_oid, "pointerSize": file.pointer_size}
        siblings.append(sibling)
    info["siblings"] = siblings
    info["cardData"] = card_data(repo, snapshot)
    if repo_type == "space":
        info["runtime"] = space_runtime(repo, request.state.config.runtime_delay)
    return json_response(info)


def list_repos(request: Request, repo_type: str) -> Response:
    author, search = request.param("author"), (request.param("search") or "").lower()
    limit = request.int_param("limit", 1000)
    found = []
    for repo in request.state.store.all(repo_type):
        if author and repo.namespace != author or search and search not in repo.repo_id.lower():
            continue
        if repo.private and (request.identity is None or not request.identity.is_member(repo.namespace)):
            continue
        head = repo.branch_head("main")
        if head is not None:
            found.append(_summary(request, repo, head))
        if len(found) >= limit:
            break
    return json_response(found)


def _tree_entry(repo: Repository, snapshot: Snapshot, path: str) -> dict[str, Any]:
    if path in snapshot.dirs:
        return {"type": "directory", "oid": snapshot.dirs[path], "size": 0, "path": path}
    file = repo.file_info(path, snapshot.files[path])
    entry: dict[str, Any] = {"type": "file", "oid": file.blob_id, "size": file.size, "path": path}
    if file.lfs_oid:
        entry["lfs"] = {"oid": file.lfs_oid, "size": file.size, "pointerSize": file.pointer_size}
    return entry


def _entries(repo: Repository, snapshot: Snapshot, paths: list[str], expand: bool) -> list[dict[str, Any]]:
    """Tree entries of ``paths``; with ``expand``, each names its ``lastCommit`` as the Hub's do."""
    entries = [_tree_entry(repo, snapshot, path) for path in paths]
    if expand:
        last = repo.last_commits(snapshot.commit, paths)
        for entry in entries:
            commit = repo.git.read_commit(last[entry["path"]])
            entry["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": iso_date(commit.author.timestamp)}
    return entries


def _git_order(item: tuple[str, bool]) -> list[bytes]:
    # Depth-first, a folder before its content, siblings in git's order (a folder sorts as "name/").
    path, is_dir = item
    parts = path.split("/")
    return [part.encode() + b"/" for part in parts[:-1]] + [parts[-1].encode() + (b"/" if is_dir else b"")]


def list_tree(request: Request, repo_type: str, repo_id: str, revision: str, path: str = "") -> Response:
    repo = find_repo(request, repo_type, repo_id)
    sha = resolve_revision(repo, revision)
    snapshot = repo.snapshot(sha)
    path = path.strip("/")
    if path and path not in snapshot.dirs:
        raise HubError(404, f"Folder {path!r} not found in {repo_id!r} at {revision!r}", "EntryNotFound",
                       headers={"X-Repo-Commit": sha})
    recursive = request.flag("recursive")
    prefix = path + "/" if path else ""
    depth = prefix.count("/")
    items = [(p, True) for p in snapshot.dirs if p.startswith(prefix)]
    items += [(p, False) for p in snapshot.files if p.startswith(prefix)]
    if not recursive:
        items = [item for item in items if item[0].count("/") == depth]
    items.sort(key=_git_order)
    start = request.int_param("cursor", 0)
    page_size = request.state.config.tree_page_size
    page = items[start : start + page_size]
    headers = {}
    if start + page_size < len(items):
        quoted = "/" + urllib.parse.quote(path, safe="") if path else ""
        query = urllib.parse.urlencode({"recursive": str(recursive).lower(), "expand": request.param("expand") or "false",
                                        "cursor": start + page_size})
        next_url = f"{request.base_url}/api/{repo_type}s/{repo_id}/tree/{sha}{quoted}?{query}"
        headers["Link"] = f'<{next_url}>; rel="next"'
    return json_response(_entries(repo, snapshot, [p for p, _ in page], request.flag("expand")), headers=headers)


def paths_info(request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
    repo = find_repo(request, repo_type, repo_id)
    sha = resolve_revision(repo, revision)
    snapshot = repo.snapshot(sha)
    if "json" in (request.headers.get("Content-Type") or ""):
        body = request.json_object()
        paths, expand = body.get("paths") or [], str(body.get("expand", "")).lower() == "true"
    else:
        form = request.form()
        paths, expand = form.get("paths", []), (form.get("expand") or [""])[-1].lower() == "true"
    paths = [paths] if isinstance(paths, str) else paths
    found = [str(path).strip("/") for path in paths]
    found = [path for path in found if path in snapshot.files or path in snapshot.dirs]
    return json_response(_entries(repo, snapshot, found, expand))


def list_commits(request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
    repo = find_repo(request, repo_type, repo_id)
    sha = resolve_revision(repo, revision)
    history = repo.history(sha)
    page_number = request.int_param("p", 0)
    page_size = request.state.config.commits_page_size
    start = page_number * page_size
    page = []
    for commit_sha in history[start : start + page_size]:
        commit = repo.git.read_commit(commit_sha)
        page.append({
            "id": commit.sha,
            "title": commit.title,
            "message": commit.description,
            "date": iso_date(commit.author.timestamp),
            "authors": [{"user": commit.author.name, "avatar": ""}],
        })
    headers = {}
    if start + page_size < len(history):
        next_url = f"{request.base_url}/api/{repo_type}s/{repo_id}/commits/{sha}?p={page_number + 1}"
        headers["Link"] = f'<{next_url}>; rel="next"'
    return json_response(page, headers=headers)


def list_refs(request: Request, repo_type: str, repo_id: str) -> Response:
    repo = find_repo(request, repo_type, repo_id)

    def refs(kind: str, found: dict[str, str]) -> list[dict[str, str]]:
        return [{"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha} for name, sha in found.items()]

    pull_requests = [{"name": name[len("refs/"):], "ref": name, "targetCommit": sha}
                     for name, sha in repo.pull_requests().items()] if request.flag("include_prs") else []
    return json_response({"branches": refs("heads", repo.branches()), "tags": refs("tags", repo.tags()),
                          "converts": [], "pullRequests": pull_requests})


def create_branch(request: Request, repo_type: str, repo_id: str, branch: str) -> Response:
    repo = find_repo(request, repo_type, repo_id, write=True)
    start = request.json_object().get("startingPoint")
    sha = resolve_revision(repo, start or "main")
    try:
        repo.create_ref(f"refs/heads/{branch}", sha)
    except StorageError as err:
        raise HubError.from_storage(err) from None
    return json_response({})


def delete_branch(request: Request, repo_type: str, repo_id: str, branch: str) -> Response:
    repo = find_repo(request, repo_type, repo_id, write=True)
    if branch == "main":
        raise HubError(403, "Cannot delete refs/heads/main: it is the repository's default branch")
    try:
        repo.delete_ref(f"refs/heads/{branch}")
    except StorageError as err:
        raise HubError.from_storage(err) from None
    return json_response({})


def create_tag(request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
    repo = find_repo(request, repo_type, repo_id, write=True)
    tag = request.json_object().get("tag")
    if not isinstance(tag, str) or not tag:
        raise HubError(400, "create tag expects a JSON body {'tag': <name>, 'message': <optional text>}")
    sha = resolve_revision(repo, revision)
    try:
        repo.create_ref(f"refs/tags/{tag}", sha)
    except StorageError as err:
        raise HubError.from_storage(err) from None
    return json_response({})


def delete_tag(request: Request, repo_type: str, repo_id: str, tag: str) -> Response:
    repo = find_repo(request, repo_type, repo_id, write=True)
    try:
        repo.delete_ref(f"refs/tags/{tag}")
    except StorageError as err:
        raise HubError.from_storage(err) from None
    return json_response({})
