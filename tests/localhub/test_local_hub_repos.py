"""Repositories and commits on the local Hub, driven by the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

from beam_pusher.localhub import LocalHub

BIG = 11 * 1024 * 1024  # above the Hub's 10 MiB limit for regular files


def _files() -> dict[str, bytes]:
    return {
        "app.py": b"import gradio as gr\nprint('hello')\n",
        "README.md": b"---\ntitle: Demo\nsdk: gradio\napp_file: app.py\n---\n# Demo\n",
        "src/pkg/util.py": b"VALUE = 1\n",
        "model/weights.bin": os.urandom(BIG),
        "model/tiny.bin": b"\x00\x01\x02binary",
        "empty.txt": b"",
    }


def _add(files: dict[str, bytes]) -> list[CommitOperationAdd]:
    return [CommitOperationAdd(path, content) for path, content in files.items()]


def test_space_settings_read_back_and_exist_ok(local_hub, hub_api):
    repo_id = f"{local_hub.username}/settings-demo"
    url = hub_api.create_repo(
        repo_id,
        repo_type="space",
        space_sdk="streamlit",
        private=True,
        space_hardware="cpu-upgrade",
        space_sleep_time=3600,
        space_secrets=[{"key": "API_KEY", "value": "s3cr3t-value", "description": "key"}],
        space_variables=[{"key": "MODEL_ID", "value": "user/model"}],
    )
    assert url == f"{local_hub.endpoint}/spaces/{repo_id}"

    info = hub_api.space_info(repo_id)
    assert (info.sdk, info.private) == ("streamlit", True)
    assert info.runtime.requested_hardware == "cpu-upgrade"
    assert info.runtime.sleep_time == 3600
    assert info.sha == local_hub.head(repo_id)
    assert {key: var.value for key, var in hub_api.get_space_variables(repo_id).items()} == {"MODEL_ID": "user/model"}
    secrets = hub_api.get_space_secrets(repo_id)
    assert list(secrets) == ["API_KEY"] and secrets["API_KEY"].description == "key"
    assert local_hub.space_state(repo_id).secrets == {"API_KEY": "s3cr3t-value"}

    again = hub_api.create_repo(repo_id, repo_type="space", space_sdk="streamlit", exist_ok=True)
    assert again == url
    with pytest.raises(HfHubHTTPError) as err:
        hub_api.create_repo(repo_id, repo_type="space", space_sdk="streamlit")
    assert err.value.response.status_code == 409
    assert local_hub.commit_count(repo_id) == 1  # the Hub's initial commit only


def test_commit_regular_lfs_and_deletes_download_byte_identical(local_hub, hub_api, tmp_path):
    repo_id = f"{local_hub.username}/files-demo"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    files = _files()
    info = hub_api.create_commit(repo_id, _add(files), commit_message="Add app", repo_type="space")
    assert info.oid == local_hub.head(repo_id)
    assert info.commit_url == f"{local_hub.endpoint}/spaces/{repo_id}/commit/{info.oid}"

    stored = local_hub.list_files(repo_id)
    assert {path for path, file in stored.items() if file.is_lfs} == {"model/weights.bin", "model/tiny.bin"}
    assert stored["model/weights.bin"].lfs_sha256 == hashlib.sha256(files["model/weights.bin"]).hexdigest()
    for path, content in files.items():
        assert local_hub.read_file(repo_id, path) == content
        local = hf_hub_download(repo_id, path, repo_type="space", endpoint=local_hub.endpoint, token=local_hub.token,
                                cache_dir=tmp_path / "cache")
        assert Path(local).read_bytes() == content, path
    snapshot = Path(snapshot_download(repo_id, repo_type="space", endpoint=local_hub.endpoint, token=local_hub.token,
                                      cache_dir=tmp_path / "snap"))
    for path, content in files.items():
        assert (snapshot / path).read_bytes() == content, path

    hub_api.create_commit(
        repo_id,
        [CommitOperationDelete("empty.txt"), CommitOperationDelete("model/")],
        commit_message="Remove model",
        repo_type="space",
    )
    remaining = set(hub_api.list_repo_files(repo_id, repo_type="space"))
    assert remaining == {".gitattributes", "README.md", "app.py", "src/pkg/util.py"}
    assert set(local_hub.list_files(repo_id)) == remaining
    assert local_hub.commit_count(repo_id) == 3


def test_commit_that_changes_nothing_makes_no_commit(local_hub, hub_api):
    repo_id = f"{local_hub.username}/noop-demo"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    files = _files()
    first = hub_api.create_commit(repo_id, _add(files), commit_message="v1", repo_type="space")
    uploads = local_hub.request_count("lfs-upload")
    second = hub_api.create_commit(repo_id, _add(files), commit_message="v1 again", repo_type="space")
    assert second.oid == first.oid
    assert local_hub.commit_count(repo_id) == 2
    assert local_hub.request_count("commit") == 1
    assert local_hub.request_count("lfs-upload") == uploads  # the 11 MB file was not sent again


def test_stale_parent_commit_gets_412(local_hub, hub_api):
    repo_id = f"{local_hub.username}/race-demo"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    planned = hub_api.repo_info(repo_id, repo_type="space").sha
    hub_api.create_commit(repo_id, [CommitOperationAdd("index.html", b"<p>a</p>")], commit_message="a",
                          repo_type="space", parent_commit=planned)
    with pytest.raises(HfHubHTTPError) as err:
        hub_api.create_commit(repo_id, [CommitOperationAdd("index.html", b"<p>b</p>")], commit_message="b",
                              repo_type="space", parent_commit=planned)
    assert err.value.response.status_code == 412
    assert "updated since" in str(err.value)
    assert local_hub.read_file(repo_id, "index.html") == b"<p>a</p>"


def test_tree_and_commits_are_paginated(tmp_path):
    with LocalHub(tmp_path / "hub", tree_page_size=4, commits_page_size=2) as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        repo_id = f"{hub.username}/many"
        api.create_repo(repo_id, repo_type="model")
        paths = [f"d{i % 3}/file{i}.txt" for i in range(11)]
        for start in (0, 6):
            ops = [CommitOperationAdd(p, p.encode()) for p in paths[start : start + 6]]
            api.create_commit(repo_id, ops, commit_message=f"batch {start}")
        entries = list(api.list_repo_tree(repo_id, recursive=True))
        assert sorted(e.path for e in entries) == sorted(paths + [".gitattributes", "d0", "d1", "d2"])
        assert hub.request_count("tree") == 4  # 15 entries in pages of 4
        top = [e.path for e in api.list_repo_tree(repo_id, path_in_repo="d1")]
        assert top == sorted(p for p in paths if p.startswith("d1/"))
        commits = api.list_repo_commits(repo_id)
        assert [c.title for c in commits] == ["batch 6", "batch 0", "initial commit"]
        assert hub.request_count("commits") == 2


def test_branches_tags_and_revisions(local_hub, hub_api, tmp_path):
    repo_id = f"{local_hub.username}/refs-demo"
    hub_api.create_repo(repo_id, repo_type="dataset")
    v1 = hub_api.create_commit(repo_id, [CommitOperationAdd("data.csv", b"a,b\n1,2\n")], commit_message="v1",
                               repo_type="dataset").oid
    hub_api.create_tag(repo_id, tag="v1.0", repo_type="dataset")
    hub_api.create_branch(repo_id, branch="dev/next", repo_type="dataset")
    hub_api.create_commit(repo_id, [CommitOperationAdd("data.csv", b"a,b\n3,4\n")], commit_message="dev",
                          repo_type="dataset", revision="dev/next")
    refs = hub_api.list_repo_refs(repo_id, repo_type="dataset")
    assert {b.name for b in refs.branches} == {"main", "dev/next"}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", v1)]
    assert hub_api.repo_info(repo_id, repo_type="dataset", revision="v1.0").sha == v1
    assert hub_api.repo_info(repo_id, repo_type="dataset", revision=v1).sha == v1
    dev = hf_hub_download(repo_id, "data.csv", repo_type="dataset", revision="dev/next", endpoint=local_hub.endpoint,
                          token=local_hub.token, cache_dir=tmp_path)
    assert Path(dev).read_bytes() == b"a,b\n3,4\n"
    assert local_hub.read_file(repo_id, "data.csv", repo_type="dataset") == b"a,b\n1,2\n"
    with pytest.raises(HfHubHTTPError) as err:
        hub_api.create_tag(repo_id, tag="v1.0", repo_type="dataset")
    assert err.value.response.status_code == 409
    with pytest.raises(RevisionNotFoundError):
        hub_api.repo_info(repo_id, repo_type="dataset", revision="no-such-branch")


def test_invalid_readme_front_matter_is_rejected(local_hub, hub_api, raw):
    repo_id = f"{local_hub.username}/yaml-demo"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        hub_api.create_commit(repo_id, [CommitOperationAdd("README.md", b"---\nsdk: [gradio\n---\n")],
                              commit_message="bad", repo_type="space")
    answer = raw("POST", f"{local_hub.endpoint}/api/validate-yaml", local_hub.token,
                 {"content": "---\nsdk: flask\n---\n", "repoType": "space"})
    assert answer.status == 400
    assert "sdk" in answer.json()["errors"][0]["message"]
    assert local_hub.commit_count(repo_id) == 1


def test_lfs_file_never_uploaded_is_refused(local_hub, hub_api, raw):
    repo_id = f"{local_hub.username}/lfs-demo"
    hub_api.create_repo(repo_id, repo_type="model")
    oid = hashlib.sha256(b"never sent").hexdigest()
    body = (b'{"key":"header","value":{"summary":"x","description":""}}\n'
            + f'{{"key":"lfsFile","value":{{"path":"w.bin","algo":"sha256","oid":"{oid}","size":10}}}}\n'.encode())
    answer = raw("POST", f"{local_hub.endpoint}/api/models/{repo_id}/commit/main", local_hub.token, body,
                 {"Content-Type": "application/x-ndjson"})
    assert answer.status == 400
    assert oid in answer.json()["error"] and "never uploaded" in answer.headers["X-Error-Message"]
    assert answer.headers["X-Request-Id"]
    assert local_hub.commit_count(repo_id, repo_type="model") == 1


def test_concurrent_commits_all_land(local_hub, hub_api):
    names = [f"{local_hub.username}/space-{i}" for i in range(6)]
    for name in names:
        hub_api.create_repo(name, repo_type="space", space_sdk="static")
    errors: list[BaseException] = []

    def push(repo_id: str, rounds: int, writer: str = "") -> None:
        try:
            for n in range(rounds):
                ops = [CommitOperationAdd(f"page{writer}{n}.html", f"{repo_id} {n}".encode()),
                       CommitOperationAdd(f"blob{writer}{n}.bin", b"\x00" + repo_id.encode() + bytes([n]))]
                hub_api.create_commit(repo_id, ops, commit_message=f"round {n}", repo_type="space")
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    # Six Spaces in parallel, and two writers racing on the first one (commits to one repo are serialized).
    threads = [threading.Thread(target=push, args=(name, 3)) for name in names]
    threads.append(threading.Thread(target=push, args=(names[0], 3, "-b")))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert local_hub.commit_count(names[0]) == 1 + 6
    assert len(local_hub.list_files(names[0])) == 2 + 12  # .gitattributes, README.md and both writers' files
    for name in names[1:]:
        assert local_hub.commit_count(name) == 1 + 3
        assert local_hub.read_file(name, "blob2.bin") == b"\x00" + name.encode() + b"\x02"
