"""Exact statuses, headers and bodies of the local Hub (what the client relies on without saying so)."""

from __future__ import annotations

import hashlib
import re
import socket
import urllib.parse

from huggingface_hub import CommitOperationAdd, HfApi


def test_download_headers_match_the_hub(local_hub, hub_api, raw):
    repo_id = f"{local_hub.username}/wire"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    lfs_content = b"\x00" + bytes(range(256)) * 40
    text_path = "dir with space/é.txt"
    hub_api.create_commit(repo_id, [CommitOperationAdd(text_path, b"hello\n"), CommitOperationAdd("w.bin", lfs_content)],
                          commit_message="files", repo_type="space")
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
        404, "EntryNotFound", head)
    assert raw("GET", f"{local_hub.endpoint}/spaces/{repo_id}/resolve/v9/w.bin").headers["X-Error-Code"] == (
        "RevisionNotFound")
    assert raw("GET", f"{local_hub.endpoint}/api/spaces/{local_hub.username}/nope").headers["X-Error-Code"] == (
        "RepoNotFound")


def test_preupload_modes_and_oids(local_hub, hub_api, raw):
    repo_id = f"{local_hub.username}/modes"
    hub_api.create_repo(repo_id, repo_type="model")
    hub_api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a\n")], commit_message="a")
    answer = raw("POST", f"{local_hub.endpoint}/api/models/{repo_id}/preupload/main", local_hub.token, {"files": [
        {"path": "a.txt", "sample": "YQo=", "size": 2},
        {"path": "big.txt", "sample": "YQo=", "size": 10 * 1024 * 1024 + 1},
        {"path": "bin.dat", "sample": "AAE=", "size": 2},
        {"path": "empty.txt", "sample": "", "size": 0},
    ]})
    files = {item["path"]: item for item in answer.json()["files"]}
    assert {path: item["uploadMode"] for path, item in files.items()} == {
        "a.txt": "regular", "big.txt": "lfs", "bin.dat": "lfs", "empty.txt": "regular"}
    assert files["a.txt"]["oid"] == local_hub.list_files(repo_id, repo_type="model")["a.txt"].blob_id
    assert "oid" not in files["big.txt"] and all(item["shouldIgnore"] is False for item in files.values())


def test_answers_use_the_callers_host_and_telemetry_probe_is_answered(local_hub, raw):
    port = local_hub.endpoint.rsplit(":", 1)[1]
    created = raw("POST", f"http://localhost:{port}/api/repos/create", local_hub.token,
                  {"name": "hosted", "type": "space", "sdk": "static"})
    assert created.json()["url"] == f"http://localhost:{port}/spaces/{local_hub.username}/hosted"
    again = raw("POST", f"{local_hub.endpoint}/api/repos/create", local_hub.token,
                {"name": "hosted", "type": "space", "sdk": "static"})
    assert again.status == 409 and again.json()["url"] == f"{local_hub.endpoint}/spaces/{local_hub.username}/hosted"
    probe = raw("GET", f"{local_hub.endpoint}/api/agent-harnesses")
    assert probe.json() == {"standardEnvVars": [], "harnesses": {}}
    assert raw("GET", f"{local_hub.endpoint}/api/no-such-endpoint").status == 404


def test_paths_info_existence_checks_and_visibility_change(local_hub, hub_api):
    repo_id = f"{local_hub.username}/paths"
    hub_api.create_repo(repo_id, repo_type="model")
    hub_api.create_commit(repo_id, [CommitOperationAdd("cfg/a.json", b"{}"), CommitOperationAdd("w.bin", b"\x00w")],
                          commit_message="files")
    infos = {info.path: info for info in hub_api.get_paths_info(repo_id, ["cfg", "w.bin", "missing.txt"])}
    assert set(infos) == {"cfg", "w.bin"}
    assert infos["w.bin"].lfs.sha256 == hashlib.sha256(b"\x00w").hexdigest()
    assert hub_api.file_exists(repo_id, "cfg/a.json") and not hub_api.file_exists(repo_id, "cfg/b.json")
    assert hub_api.repo_exists(repo_id) and not hub_api.repo_exists(f"{local_hub.username}/other")
    hub_api.update_repo_settings(repo_id, private=True)
    assert hub_api.repo_info(repo_id).private is True
    assert not HfApi(endpoint=local_hub.endpoint, token=False).repo_exists(repo_id)


def test_request_timeline_lists_each_answered_request_in_order(local_hub, hub_api):
    repo_id = f"{local_hub.username}/timeline"
    before = len(local_hub.request_timeline())
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    hub_api.create_commit(repo_id, [CommitOperationAdd("w.bin", b"\x00" * 2048)], commit_message="lfs",
                          repo_type="space")
    timeline = local_hub.request_timeline()[before:]
    routes = [route for route, _, _ in timeline]
    assert routes[0] == "create-repo" and "lfs-upload" in routes and routes[-1] == "commit"
    assert all(started <= finished for _, started, finished in timeline)
    assert [started for _, started, _ in timeline] == sorted(started for _, started, _ in timeline)


def test_answers_are_sent_without_waiting_for_delayed_acks(local_hub, hub_api):
    # Headers and body leave in two writes: with Nagle's algorithm on, every answer waited 40 ms for an ACK.
    hub_api.whoami()  # the client keeps this connection open for its next request
    connections = list(local_hub._server._connections)  # noqa: SLF001 - the server's own sockets
    assert connections
    assert all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in connections)
