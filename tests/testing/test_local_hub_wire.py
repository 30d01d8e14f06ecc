"""Exact statuses, headers and bodies of the local Hub (what the client relies on without saying so)."""

from __future__ import annotations

import hashlib
import re
import urllib.parse

from huggingface_hub import CommitOperationAdd


def test_download_headers_match_the_hub(local_hub, hub_api, raw):
    repo_id = f"{local_hub.username}/wire"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    lfs_content = b"\x00" + bytes(range(256)) * 40
    text_path = "dir with space/é.txt"
    hub_api.create_commit(repo_id, [CommitOperationAdd(text_path, b"hello\n"), CommitOperationAdd("w.bin", lfs_content)],
                          commit_message="files", repo_type="space")  # fmt: skip
    head = local_hub.head(repo_id)
    base = f"{local_hub.endpoint}/spaces/{repo_id}/resolve/main"

    text = raw("HEAD", f"{base}/{urllib.parse.quote(text_path)}")
    assert text.status == 200
    assert text.headers["X-Repo-Commit"] == head
    assert text.headers["ETag"] == f'"{local_hub.list_files(repo_id)[text_path].blob_id}"'
    assert text.headers["Content-Length"] == "6"
    assert re.fullmatch(r"[0-9a-f]{32}", text.headers["X-Request-Id"])

    lfs = raw("HEAD", f"{base}/w.bin")
    oid = hashlib.sha256(lfs_content).hexdigest()
    assert (lfs.headers["ETag"], lfs.headers["X-Linked-Etag"]) == (f'"{oid}"', f'"{oid}"')
    assert lfs.headers["X-Linked-Size"] == lfs.headers["Content-Length"] == str(len(lfs_content))
    assert "X-Xet-Hash" not in lfs.headers
    assert raw("GET", f"{base}/w.bin").body == lfs_content
    part = raw("GET", f"{base}/w.bin", headers={"Range": "bytes=10-19"})
    assert (part.status, part.body) == (206, lfs_content[10:20])

    missing = raw("HEAD", f"{base}/nope.txt")
    assert (missing.status, missing.headers["X-Error-Code"], missing.headers["X-Repo-Commit"]) == (
        404, "EntryNotFound", head)  # fmt: skip
    assert raw("GET", f"{local_hub.endpoint}/spaces/{repo_id}/resolve/v9/w.bin").headers["X-Error-Code"] == (
        "RevisionNotFound")  # fmt: skip
    assert raw("GET", f"{local_hub.endpoint}/api/spaces/{local_hub.username}/nope").headers["X-Error-Code"] == (
        "RepoNotFound")  # fmt: skip


def test_preupload_modes_and_oids(local_hub, hub_api, raw):
    repo_id = f"{local_hub.username}/modes"
    hub_api.create_repo(repo_id, repo_type="model")
    hub_api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a\n")], commit_message="a")
    answer = raw("POST", f"{local_hub.endpoint}/api/models/{repo_id}/preupload/main", local_hub.token, {"files": [
        {"path": "a.txt", "sample": "YQo=", "size": 2},
        {"path": "big.txt", "sample": "YQo=", "size": 10 * 1024 * 1024 + 1},
        {"path": "bin.dat", "sample": "AAE=", "size": 2},
        {"path": "empty.txt", "sample": "", "size": 0},
    ]})  # fmt: skip
    files = {item["path"]: item for item in answer.json()["files"]}
    assert {path: item["uploadMode"] for path, item in files.items()} == {
        "a.txt": "regular", "big.txt": "lfs", "bin.dat": "lfs", "empty.txt": "regular"}  # fmt: skip
    assert files["a.txt"]["oid"] == local_hub.list_files(repo_id, repo_type="model")["a.txt"].blob_id
    assert "oid" not in files["big.txt"] and all(item["shouldIgnore"] is False for item in files.values())


def test_answers_use_the_callers_host_and_telemetry_probe_is_answered(local_hub, raw):
    port = local_hub.endpoint.rsplit(":", 1)[1]
    created = raw("POST", f"http://localhost:{port}/api/repos/create", local_hub.token,
                  {"name": "hosted", "type": "space", "sdk": "static"})  # fmt: skip
    assert created.json()["url"] == f"http://localhost:{port}/spaces/{local_hub.username}/hosted"
    again = raw("POST", f"{local_hub.endpoint}/api/repos/create", local_hub.token,
                {"name": "hosted", "type": "space", "sdk": "static"})  # fmt: skip
    assert again.status == 409 and again.json()["url"] == f"{local_hub.endpoint}/spaces/{local_hub.username}/hosted"
    probe = raw("GET", f"{local_hub.endpoint}/api/agent-harnesses")
    assert probe.json() == {"standardEnvVars": [], "harnesses": {}}
    assert raw("GET", f"{local_hub.endpoint}/api/no-such-endpoint").status == 404
