"""The local Hub's repositories are real git repositories: clone them, restart the server, run it from the CLI."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from beam_pusher.localhub import HubUser, LocalHub

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def test_git_clone_shows_the_same_files_and_commits(local_hub, hub_api, tmp_path):
    repo_id = f"{local_hub.username}/cloned"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    weights = b"\x00" + os.urandom(4096)  # a NUL in the first 512 bytes: binary, so LFS
    hub_api.create_commit(repo_id, [CommitOperationAdd("app.py", b"print('v1')\n"),
                                    CommitOperationAdd("model/weights.bin", weights),
                                    CommitOperationAdd("a/b/c/deep.txt", b"deep\n")],
                          commit_message="v1", commit_description="first version", repo_type="space")
    hub_api.create_commit(repo_id, [CommitOperationAdd("app.py", b"print('v2')\n")], commit_message="v2",
                          repo_type="space")

    clone = tmp_path / "clone"
    _git("clone", "--quiet", local_hub.url(repo_id), str(clone))
    api_commits = [c.commit_id for c in hub_api.list_repo_commits(repo_id, repo_type="space")]
    assert _git("log", "--format=%H", cwd=clone).split() == api_commits
    assert _git("log", "-1", "--format=%an <%ae>", "HEAD~1", cwd=clone).strip() == (
        f"{local_hub.username} <{local_hub.username}@users.noreply.local>"
    )
    assert _git("log", "-1", "--format=%B", "HEAD~1", cwd=clone).strip() == "v1\n\nfirst version"
    cloned = {p.relative_to(clone).as_posix() for p in clone.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert cloned == set(hub_api.list_repo_files(repo_id, repo_type="space"))
    assert (clone / "app.py").read_bytes() == b"print('v2')\n"
    oid = hashlib.sha256(weights).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(weights)}\n".encode()
    assert (clone / "model/weights.bin").read_bytes() == pointer

    # Tree oids from the API are git's own object ids.
    git_ids = {}
    for line in _git("ls-tree", "-r", "-t", "HEAD", cwd=clone).splitlines():
        mode_type_sha, path = line.split("\t", 1)
        git_ids[path] = mode_type_sha.split()[2]
    api_ids = {entry.path: entry.blob_id if hasattr(entry, "blob_id") else entry.tree_id
               for entry in hub_api.list_repo_tree(repo_id, repo_type="space", recursive=True)}
    assert api_ids == git_ids
    _git("-C", str(local_hub.data_dir / "repos/spaces" / repo_id) + ".git", "fsck", "--strict")


def test_private_space_clones_only_with_a_token(local_hub, hub_api, tmp_path):
    repo_id = f"{local_hub.username}/private-clone"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static", private=True)
    anonymous = subprocess.run(["git", "clone", "--quiet", local_hub.url(repo_id), str(tmp_path / "anon")],
                               capture_output=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    assert anonymous.returncode != 0
    url = local_hub.url(repo_id).replace("http://", f"http://{local_hub.username}:{local_hub.token}@")
    _git("clone", "--quiet", url, str(tmp_path / "auth"))
    assert (tmp_path / "auth" / "README.md").exists()


def test_data_survives_a_restart(tmp_path):
    user = HubUser("keeper", "hf_keeper_token")
    data_dir = tmp_path / "hub-data"
    big = os.urandom(11 * 1024 * 1024)
    with LocalHub(data_dir, users=[user]) as hub:
        api = HfApi(endpoint=hub.endpoint, token=user.token)
        api.create_repo("keeper/kept", repo_type="space", space_sdk="gradio",
                        space_secrets=[{"key": "K", "value": "v"}])
        head = api.create_commit("keeper/kept", [CommitOperationAdd("big.bin", big)], commit_message="big",
                                 repo_type="space").oid
    with LocalHub(data_dir, users=[user]) as hub:
        api = HfApi(endpoint=hub.endpoint, token=user.token)
        assert api.space_info("keeper/kept").sha == head
        assert list(api.get_space_secrets("keeper/kept")) == ["K"]
        path = hf_hub_download("keeper/kept", "big.bin", repo_type="space", endpoint=hub.endpoint, token=user.token,
                               cache_dir=tmp_path / "cache")
        assert Path(path).read_bytes() == big
        api.create_commit("keeper/kept", [CommitOperationAdd("app.py", b"x = 1\n")], commit_message="more",
                          repo_type="space", parent_commit=head)
        assert hub.commit_count("keeper/kept") == 3


def test_cli_prints_the_endpoint_first_and_serves(tmp_path):
    command = [sys.executable, "-m", "beam_pusher.localhub.serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
               "--user", "alice", "--token", "hf_cli_token", "--org", "acme"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        me = HfApi(endpoint=endpoint, token="hf_cli_token").whoami()
        assert me["name"] == "alice" and [org["name"] for org in me["orgs"]] == ["acme"]
        HfApi(endpoint=endpoint, token="hf_cli_token").create_repo("acme/cli-space", repo_type="space",
                                                                    space_sdk="static")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert (tmp_path / "d" / "repos" / "spaces" / "acme" / "cli-space.git").is_dir()
