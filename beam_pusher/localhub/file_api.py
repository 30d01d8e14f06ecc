"""File transfer endpoints: downloads (``resolve``), the classic LFS protocol, and git's dumb HTTP protocol.

LFS uploads are streamed to disk in chunks; downloads are streamed from disk. ``git clone ENDPOINT/spaces/NS/NAME``
works because the repositories keep ``info/refs`` current and the server answers git's smart-protocol probe with the
plain ref list, which makes git fall back to the dumb protocol (loose objects over GET).
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

from beam_pusher.localhub.lfs import LfsError, is_oid
from beam_pusher.localhub.protocol import (
    URL_PREFIXES,
    HubError,
    Request,
    Response,
    check_gate,
    find_repo,
    json_response,
    resolve_revision,
)

__all__ = ["git_file", "lfs_batch", "lfs_download", "lfs_upload", "lfs_verify", "resolve"]

LFS_CONTENT_TYPE = "application/vnd.git-lfs+json"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_GIT_FILE = re.compile(r"^(HEAD|info/refs|objects/info/packs|objects/[0-9a-f]{2}/[0-9a-f]{38}|"
                       r"objects/pack/pack-[0-9a-f]{40,64}\.(pack|idx))$")


def resolve(request: Request, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
    """``HEAD``/``GET`` of a file: ``X-Repo-Commit``, ``ETag`` (git sha1 or LFS sha256) and the exact length."""
    repo = find_repo(request, repo_type, repo_id)
    check_gate(request, repo)
    sha = resolve_revision(repo, revision)
    snapshot = repo.snapshot(sha)
    blob = snapshot.files.get(path)
    if blob is None:
        raise HubError(404, f"Entry Not Found: {path!r} is not a file of {repo_id!r} at {revision!r}",
                       "EntryNotFound", headers={"X-Repo-Commit": sha})
    info = repo.file_info(path, blob)
    headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
    if info.lfs_oid:
        headers.update({"ETag": f'"{info.lfs_oid}"', "X-Linked-Etag": f'"{info.lfs_oid}"',
                        "X-Linked-Size": str(info.size)})
        stream = request.state.lfs.open(info.lfs_oid) if request.method == "GET" else None
    else:
        headers["ETag"] = f'"{info.blob_id}"'
        stream = io.BytesIO(repo.read_blob(blob)) if request.method == "GET" else None
    start, end = 0, info.size
    status = 200
    match = _RANGE.match(request.headers.get("Range") or "")
    if match and info.size and (match.group(1) or match.group(2)):
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)) + 1, info.size) if match.group(2) else info.size
        else:
            start = max(info.size - int(match.group(2)), 0)
        if start >= info.size or start >= end:
            if stream is not None:
                stream.close()
            raise HubError(416, f"Range {request.headers.get('Range')!r} is outside the file ({info.size} bytes)",
                           headers={"Content-Range": f"bytes */{info.size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
    if stream is not None and start:
        stream.seek(start)
    return Response(status, content_type="application/octet-stream", headers=headers, stream=stream,
                    length=end - start)


def lfs_batch(request: Request, repo_type: str, repo_id: str) -> Response:
    body = request.json_object()
    operation = body.get("operation")
    if operation not in ("upload", "download"):
        raise HubError(400, f"Invalid LFS operation {operation!r}: use 'upload' or 'download'")
    if operation == "upload":
        _upload_target(request, repo_type, repo_id)
    else:
        check_gate(request, find_repo(request, repo_type, repo_id))
    objects = body.get("objects")
    if not isinstance(objects, list):
        raise HubError(400, "LFS batch expects 'objects': [{'oid', 'size'}, ...]")
    endpoint = request.base_url
    answers = []
    for item in objects:
        oid, size = (item.get("oid"), item.get("size")) if isinstance(item, dict) else (None, None)
        answer: dict[str, Any] = {"oid": str(oid), "size": size if isinstance(size, int) else 0}
        stored = request.state.lfs.size(oid) if is_oid(oid) else None
        if not is_oid(oid) or not isinstance(size, int) or size < 0:
            answer["error"] = {"code": 422, "message": f"Invalid object: oid must be a sha256 hex digest and size a "
                               f"non-negative integer, got oid={oid!r} size={size!r}"}
        elif operation == "download":
            if stored is None:
                answer["error"] = {"code": 404, "message": f"Object {oid} does not exist"}
            else:
                signature = request.state.sign("download", oid)
                answer["actions"] = {"download": {"href": f"{endpoint}/lfs-objects/{oid}?sig={signature}"}}
        elif stored is not None and stored != size:
            answer["error"] = {"code": 422, "message": f"Object {oid} is stored with size {stored}, not {size}"}
        elif stored is None:
            signature = request.state.sign("upload", oid, str(size))
            verify = f"{endpoint}/{URL_PREFIXES[repo_type]}{repo_id}.git/info/lfs/objects/verify"
            answer["authenticated"] = True
            answer["actions"] = {
                "upload": {"href": f"{endpoint}/lfs-objects/{oid}?size={size}&sig={signature}", "expires_in": 3600},
                "verify": {"href": verify, "expires_in": 3600},
            }
        answers.append(answer)
    return json_response({"transfer": "basic", "objects": answers, "hash_algo": "sha256"},
                         content_type=LFS_CONTENT_TYPE)


def lfs_upload(request: Request, oid: str) -> Response:
    """``PUT`` of an LFS object's bytes: no credentials, the signed URL from the batch answer authorizes it."""
    size = request.param("size") or ""
    if not is_oid(oid) or not size.isdigit() or not request.state.check_signature(request.param("sig") or "", "upload",
                                                                                  oid, size):
        raise HubError(403, "Invalid or expired LFS upload URL: ask the LFS batch endpoint for a new one")
    try:
        request.state.lfs.receive(oid, int(size), request.body.chunks())
    except LfsError as err:
        raise HubError(400, str(err)) from None
    return Response(200, content_type="text/plain")


def lfs_download(request: Request, oid: str) -> Response:
    if not is_oid(oid) or not request.state.check_signature(request.param("sig") or "", "download", oid):
        raise HubError(403, "Invalid LFS download URL: ask the LFS batch endpoint for a new one")
    size = request.state.lfs.size(oid)
    if size is None:
        raise HubError(404, f"LFS object {oid} does not exist")
    stream = request.state.lfs.open(oid) if request.method == "GET" else None
    return Response(200, content_type="application/octet-stream", stream=stream, length=size)


def _upload_target(request: Request, repo_type: str, repo_id: str) -> None:
    """Who may upload LFS objects: whoever may open a pull request (a write token and sight of the repository).

    An uploaded object joins a repository only through a commit, and commits are checked as the Hub checks them.
    """
    identity = request.require_identity()
    repo = find_repo(request, repo_type, repo_id)
    if identity.role != "write":
        raise HubError(403, f"This token of {identity.name!r} has read access only: use a write token to upload to "
                       f"{repo.repo_id!r}")


def lfs_verify(request: Request, repo_type: str, repo_id: str) -> Response:
    _upload_target(request, repo_type, repo_id)
    body = request.json_object()
    oid, size = body.get("oid"), body.get("size")
    stored = request.state.lfs.size(oid) if is_oid(oid) else None
    if stored is None:
        raise HubError(404, f"LFS object {oid!r} was not uploaded: PUT its content to the upload href first")
    if size != stored:
        raise HubError(422, f"LFS object {oid} has {stored} bytes, not the {size!r} announced")
    return json_response({"message": "Object verified"}, content_type=LFS_CONTENT_TYPE)


def git_file(request: Request, repo_type: str, repo_id: str, path: str) -> Response:
    """A file of the bare repository for git's dumb HTTP protocol (``info/refs``, ``HEAD``, loose objects)."""
    repo = request.state.store.get(repo_type, repo_id)
    if request.identity is None and repo is not None and repo.private:
        # Ask git for credentials (it sends them as Basic user:token).
        raise HubError(401, "Authentication required for this private repository",
                       headers={"WWW-Authenticate": 'Basic realm="local Hub"'})
    repo = find_repo(request, repo_type, repo_id)
    check_gate(request, repo)
    if not _GIT_FILE.match(path):
        raise HubError(404, f"{path!r} is not served")
    try:
        handle = open(repo.git.path / path, "rb")
    except FileNotFoundError:
        raise HubError(404, f"{path!r} not found") from None
    length = os.fstat(handle.fileno()).st_size  # of the file opened: info/refs may be replaced meanwhile
    content_type = "text/plain" if path in ("HEAD", "info/refs") else "application/octet-stream"
    if request.method == "HEAD":
        handle.close()
        handle = None
    return Response(200, content_type=content_type, stream=handle, length=length)
