"""The two commit endpoints: ``preupload`` (regular or LFS, ignored or not, and the remote oid) and ``commit``."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any

from beam_pusher.localhub import discussion_api, spaces
from beam_pusher.localhub.gitpatterns import GitAttributes, GitIgnore
from beam_pusher.localhub.lfs import is_oid, pointer_file
from beam_pusher.localhub.names import PathError, validate_path
from beam_pusher.localhub.protocol import HubError, Request, Response, json_response, repo_url, resolve_revision
from beam_pusher.localhub.repo_api import author_of, note_new_head
from beam_pusher.localhub.storage import AddFile, DeletePath, Repository, Snapshot, StorageError

__all__ = ["commit", "preupload"]

_SAMPLE_SIZE = 512


def _branch(revision: str) -> str:
    return revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision


def is_binary(sample: bytes) -> bool:
    """The Hub's test on the first 512 bytes of a file: a NUL byte means binary (stored with LFS)."""
    return b"\0" in sample[:_SAMPLE_SIZE]


def preupload(request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
    """``uploadMode`` and ``shouldIgnore`` per file, as the Hub decides them at the target revision.

    A file is ``lfs`` when it is larger than the threshold, binary (a NUL in its sample), or marked ``filter=lfs`` by
    the revision's ``.gitattributes``; empty files are always regular. ``shouldIgnore`` follows the ``gitIgnore``
    text of the request (the client sends it when the commit adds a ``.gitignore``), else the revision's own.
    """
    repo, _ = discussion_api.commit_target(request, repo_type, repo_id, revision, request.flag("create_pr"))
    sha = resolve_revision(repo, _branch(revision))
    snapshot = repo.snapshot(sha)
    body = request.json_object()
    files = body.get("files")
    if not isinstance(files, list):
        raise HubError(400, "preupload expects a JSON body {'files': [{'path', 'sample', 'size'}, ...]}")
    gitignore = body.get("gitIgnore")
    if gitignore is not None and not isinstance(gitignore, str):
        raise HubError(400, f"preupload 'gitIgnore' must be the text of a .gitignore file, got {gitignore!r}")
    attributes = _attributes(_root_text(repo, snapshot, ".gitattributes"))
    ignore = _ignore_rules(gitignore if gitignore is not None else _root_text(repo, snapshot, ".gitignore"))
    threshold = request.state.config.lfs_threshold
    answers = []
    for item in files:
        path, size, sample = _preupload_entry(item)
        lfs = size > 0 and (size > threshold or is_binary(sample) or attributes.is_lfs(path))
        answer: dict[str, Any] = {"path": path, "uploadMode": "lfs" if lfs else "regular",
                                  "shouldIgnore": ignore.ignores(path)}
        blob = snapshot.files.get(path)
        if blob is not None:
            info = repo.file_info(path, blob)
            answer["oid"] = info.lfs_oid or info.blob_id
        answers.append(answer)
    return json_response({"files": answers, "commit": sha})


def _preupload_entry(item: Any) -> tuple[str, int, bytes]:
    if not isinstance(item, dict):
        raise HubError(400, f"preupload file entries must be objects, got {item!r}")
    path = _path(item.get("path"))
    size = item.get("size")
    if not isinstance(size, int) or size < 0:
        raise HubError(400, f"preupload entry {path!r} needs a non-negative integer 'size', got {size!r}")
    try:
        sample = base64.b64decode(item.get("sample") or "", validate=True)
    except (binascii.Error, ValueError):
        raise HubError(400, f"preupload entry {path!r}: 'sample' must be base64") from None
    return path, size, sample


def _root_text(repo: Repository, snapshot: Snapshot, name: str) -> str:
    blob = snapshot.files.get(name)
    return "" if blob is None else repo.read_blob(blob).decode("utf-8", "replace")


# A repository's few pattern files are parsed once, not on every preupload batch.
_attributes = functools.lru_cache(maxsize=256)(GitAttributes.parse)
_ignore_rules = functools.lru_cache(maxsize=256)(GitIgnore.parse)


def _path(value: Any) -> str:
    try:
        return validate_path(value)
    except PathError as err:
        raise HubError(err.status, str(err)) from None


def commit(request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
    """Commits to a branch, opens a pull request (``?create_pr=1``) or adds a commit to one (``refs/pr/N``).

    The ndjson body is read line by line: file contents are written as git blobs as they arrive. With a commit
    quota, a commit to a repository whose quota is used up is answered 429 before its body is read; a commit that
    fails afterwards (bad body, stale parent) gives its count back.
    """
    create_pr = request.flag("create_pr")
    repo, pull_request = discussion_api.commit_target(request, repo_type, repo_id, revision, create_pr)
    branch = _branch(revision)
    if pull_request is None and repo.branch_head(branch) is None:
        if repo.resolve(revision) is not None:
            raise HubError(400, f"Cannot commit to {revision!r}: it is a tag or a commit, commit to a branch instead")
        resolve_revision(repo, revision)  # raises RevisionNotFound
    quota, quota_key = request.state.commit_quota, f"{repo_type}/{repo.repo_id}"
    if quota is not None:
        refusal = quota.take(quota_key)
        if refusal is not None:
            raise HubError(429, quota.message(refusal), headers={"Retry-After": str(refusal.reset_in)})
    try:
        sha, pull_request = _commit_body(request, repo, branch, pull_request, create_pr)
    except BaseException:
        if quota is not None:
            quota.give_back(quota_key)
        raise
    base = repo_url(request.base_url, repo_type, repo.repo_id)
    pr_url = f"{base}/discussions/{pull_request.num}" if pull_request is not None else None
    return json_response({"success": True, "commitOid": sha, "commitUrl": f"{base}/commit/{sha}", "hookOutput": "",
                          "pullRequestUrl": pr_url})


def _commit_body(
    request: Request, repo: Repository, branch: str, pull_request: Any, create_pr: bool
) -> tuple[str, Any]:
    """Reads the operations and makes the commit, or the pull request; returns the commit id and the pull request."""
    header, operations = _read_operations(request, repo)
    message = header["summary"].strip() or "Update files"
    if header.get("description"):
        message += "\n\n" + str(header["description"]).strip()
    if create_pr:
        return discussion_api.open_pull_request(request, repo, branch, operations, header, message)
    try:
        sha = repo.commit(branch, operations, message, author_of(request), header.get("parentCommit"))
    except StorageError as err:
        raise HubError.from_storage(err) from None
    if pull_request is not None:
        discussion_api.record_commit(repo, pull_request, sha, message, request.require_identity().name)
    note_new_head(repo, branch)
    return sha, pull_request


def _read_operations(request: Request, repo: Repository) -> tuple[dict[str, Any], list[AddFile | DeletePath]]:
    """The header and the operations of an ndjson commit body, checked (README.md metadata included)."""
    header: dict[str, Any] | None = None
    operations: list[AddFile | DeletePath] = []
    readme: bytes | None = None
    for number, line in enumerate(request.body.lines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key, value = item["key"], item["value"]
        except (ValueError, KeyError, TypeError):
            raise HubError(400, f"Commit body line {number} is not a {{'key', 'value'}} JSON object") from None
        if key == "header":
            header = value
        elif key == "file":
            operation, content = _regular_file(request, repo, value)
            operations.append(operation)
            if operation.path == "README.md":
                readme = content
        elif key == "lfsFile":
            operations.append(_lfs_file(request, repo, value))
        elif key in ("deletedFile", "deletedFolder"):
            operations.append(DeletePath(_path(value.get("path", "").rstrip("/")), folder=key == "deletedFolder"))
        else:
            raise HubError(400, f"Unknown commit operation {key!r} on line {number}: use header, file, lfsFile, "
                           "deletedFile or deletedFolder")
    if not isinstance(header, dict) or not isinstance(header.get("summary"), str):
        raise HubError(400, "The commit body must start with {'key': 'header', 'value': {'summary': ...}}")
    if readme is not None:
        errors = spaces.validate_front_matter(readme.decode("utf-8", "replace"), repo.repo_type)
        if errors:
            raise HubError(400, "Invalid metadata in README.md: " + "; ".join(errors))
    return header, operations


def _regular_file(request: Request, repo: Repository, value: dict[str, Any]) -> tuple[AddFile, bytes]:
    path = _path(value.get("path"))
    if value.get("encoding", "base64") != "base64":
        raise HubError(400, f"File {path!r}: only base64 encoding is supported")
    try:
        content = base64.b64decode(value.get("content") or "", validate=True)
    except (binascii.Error, ValueError):
        raise HubError(400, f"File {path!r}: 'content' is not valid base64") from None
    limit = request.state.config.lfs_threshold
    if len(content) > limit:
        raise HubError(400, f"File {path!r} is {len(content)} bytes, larger than {limit}: files that large must be "
                       "uploaded with LFS (preupload answers 'lfs' for them)")
    if is_binary(content):
        raise HubError(400, f"File {path!r} is binary: binary files must be uploaded with LFS "
                       "(preupload answers 'lfs' for them)")
    return AddFile(path, repo.git.write_blob(content)), content


def _lfs_file(request: Request, repo: Repository, value: dict[str, Any]) -> AddFile:
    path = _path(value.get("path"))
    oid, size = value.get("oid"), value.get("size")
    if value.get("algo", "sha256") != "sha256" or not is_oid(oid):
        raise HubError(400, f"LFS file {path!r}: 'oid' must be a sha256 hex digest with algo 'sha256', got {oid!r}")
    stored = request.state.lfs.size(oid)
    if stored is None:
        raise HubError(400, f"LFS object {oid} for {path!r} was never uploaded: upload it through the LFS batch "
                       "API (batch, PUT, verify) before committing it")
    if size is not None and size != stored:
        raise HubError(400, f"LFS file {path!r}: announced size {size} differs from the uploaded object's {stored}")
    return AddFile(path, repo.git.write_blob(pointer_file(oid, stored)))
