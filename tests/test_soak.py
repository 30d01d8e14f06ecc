"""Fault soak: deploys under injected faults, a deploy killed mid-upload, and two deploys racing on one Space.

Seeded and bounded; everything runs against the local Hub on the loopback interface. What must hold, whatever
happens on the wire: every Space holds exactly the old tree or exactly the new one (never a mix), each deploy adds at
most one commit, and the commit history stays a clean parent chain.
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from huggingface_hub import HfApi

from beam_pusher import frontmatter, templates
from beam_pusher.hashing import hash_bytes
from beam_pusher.hub import HubSettings, SpacePusher
from beam_pusher.runner import run_deploy
from beam_pusher.sources import list_source_files
from beam_pusher.spec import AppFile, SpaceSpec

TOKEN_ENV = "BEAM_PUSHER_SOAK_TOKEN"
# Every route a deploy uses, so faults also hit the requests huggingface_hub does not retry itself (repo info,
# create, the commit): beam_pusher's own retry loop must absorb those.
DEPLOY_ROUTES = ("create-repo", "repo-info", "tree", "validate-yaml", "preupload", "lfs-batch", "lfs-upload",
                 "lfs-verify", "commit")
_CHILD = """
import json, os, sys
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
from beam_pusher.runner import run_deploy
from beam_pusher.spec import SpaceSpec
(result,) = run_deploy([SpaceSpec(**json.loads(sys.argv[1]))], endpoint=sys.argv[2], token="env:" + sys.argv[3])
print(json.dumps(result.to_dict()))
sys.exit(0 if result.error is None else 1)
"""


def write_space_sources(root: Path, repo_id: str, rng: random.Random, *, version: int = 1,
                        model_size: int = 0) -> tuple[SpaceSpec, dict[str, bytes]]:
    """A template (+ a model folder when ``model_size``) under ``root``; returns the spec and the expected files.

    Expected bytes are written out by hand here (placeholders replaced, binaries unchanged); README.md and
    model_loader.py are what ``beam_pusher.templates`` generates for the Space.
    """
    template, model = root / "template", root / "model"
    sources = {
        "app.py": f"SPACE = '$SPACE_REPO_ID'\nVERSION = {version}\n".encode(),
        "requirements.txt": b"gradio\n",
        "README.md": b"---\ntitle: Soak\n---\n# $SPACE_REPO_ID\n",
        f"src/v{version}.py": f"# only in version {version} of ${{SPACE_REPO_ID}}\n".encode(),
        "assets/logo.png": b"\x89PNG\r\n\x1a\n\x00" + rng.randbytes(2048),
    }
    for path, data in sources.items():
        (template / path).parent.mkdir(parents=True, exist_ok=True)
        (template / path).write_bytes(data)
    expected = {p: d.replace(b"$SPACE_REPO_ID", repo_id.encode()).replace(b"${SPACE_REPO_ID}", repo_id.encode())
                if p.endswith((".py", ".txt")) else d for p, d in sources.items() if p != "README.md"}
    spec = SpaceSpec(repo_id, str(template), "gradio")
    if model_size:
        model.mkdir(parents=True, exist_ok=True)
        with open(model / "weights.bin", "wb") as f:
            for start in range(0, model_size, 1 << 22):
                f.write(rng.randbytes(min(1 << 22, model_size - start)))
        spec = SpaceSpec(repo_id, str(template), "gradio", model_path=str(model))
    template_files = list_source_files(str(template))
    model_files = list_source_files(str(model), prefix="model/") if model_size else None
    readme = templates.render_text(sources["README.md"].decode(), {"SPACE_REPO_ID": repo_id}, path="README.md",
                                   strict=False)
    expected.update(frontmatter.generated_files(spec, template_files, model_files, readme))
    if model_size:
        expected["model/weights.bin"] = (model / "weights.bin").read_bytes()
    return spec, expected


def tree_signature(hub, repo_id: str, revision: str = "main") -> dict[str, str]:
    """``path -> content id`` (LFS sha256 or git blob id), ``.gitattributes`` aside."""
    files = hub.list_files(repo_id, revision=revision)
    return {p: f.lfs_sha256 or f.blob_id for p, f in files.items() if p != ".gitattributes"}


def assert_holds_exactly(hub, repo_id: str, expected: dict[str, bytes]) -> None:
    files = {p for p in hub.list_files(repo_id) if p != ".gitattributes"}
    assert files == set(expected), f"{repo_id}: files differ: {sorted(files ^ set(expected))}"
    for path, data in expected.items():
        assert hub.read_file(repo_id, path) == data, f"{repo_id}: {path} differs"


def git_history(hub, repo_id: str, tmp_path: Path) -> list[tuple[str, list[str]]]:
    """``(commit, parents)`` newest first, read by git itself from a bare clone, after ``git fsck`` passed."""
    clone = tmp_path / f"clone-{repo_id.replace('/', '-')}-{time.monotonic_ns()}"
    subprocess.run(["git", "clone", "--quiet", "--bare", hub.url(repo_id), str(clone)], check=True,
                   env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1"})
    subprocess.run(["git", "--git-dir", str(clone), "fsck", "--strict", "--no-progress"], check=True,
                   capture_output=True)
    out = subprocess.run(["git", "--git-dir", str(clone), "rev-list", "--parents", "HEAD"], check=True,
                         capture_output=True, text=True).stdout
    return [(line.split()[0], line.split()[1:]) for line in out.splitlines()]


def test_twenty_spaces_survive_injected_faults_with_exactly_one_commit_each(local_hub, monkeypatch, tmp_path):
    hub = local_hub
    monkeypatch.setenv(TOKEN_ENV, hub.token)
    rng = random.Random(20)
    specs, expected = [], {}
    for i in range(20):
        spec, files = write_space_sources(tmp_path / f"s{i:02d}", f"{hub.username}/soak-{i:02d}", rng,
                                          model_size=64 * 1024 if i % 2 else 0)
        specs.append(spec)
        expected[spec.repo_id] = files
    hub.faults.configure(error_rate=0.20, drop_rate=0.05, seed=6, routes=DEPLOY_ROUTES)

    # 25% of requests fail here, far above real rates, so the retry budget is raised and its back-off shortened.
    results = run_deploy(specs, endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", max_attempts=20,
                         backoff_seconds=0.05)
    counts, injected = hub.faults.counts, hub.faults.total
    hub.faults.reset()
    errors = {kind: n for kind, n in counts.items() if kind.isdigit()}
    # Shown by `pytest -rA` (captured stdout of passed tests) and by `pytest -s`.
    print(f"soak: {injected} faults injected and survived over {hub.request_count()} requests: HTTP errors "
          f"{errors}, {counts.get('drop', 0)} dropped connections; "
          f"{sum(r.error is None for r in results)}/{len(specs)} Spaces deployed intact")

    assert sum(errors.values()) > 0 and counts.get("drop", 0) > 0, counts
    assert [r.error for r in results if r.error] == []
    assert all(r.committed for r in results)
    for spec in specs:
        assert hub.commit_count(spec.repo_id) == 2, f"{spec.repo_id}: creation + exactly one deploy commit"
        assert_holds_exactly(hub, spec.repo_id, expected[spec.repo_id])


def test_a_deploy_killed_during_a_large_upload_leaves_the_old_tree_and_a_rerun_converges(
    local_hub, monkeypatch, tmp_path
):
    hub = local_hub
    monkeypatch.setenv(TOKEN_ENV, hub.token)
    repo_id = f"{hub.username}/killed"
    rng = random.Random(7)
    old_spec, old_files = write_space_sources(tmp_path / "old", repo_id, rng, version=1, model_size=4096)
    (result,) = run_deploy([old_spec], endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    assert result.committed and result.error is None
    old_head, old_tree, old_count = hub.head(repo_id), tree_signature(hub, repo_id), hub.commit_count(repo_id)
    new_spec, new_files = write_space_sources(tmp_path / "new", repo_id, rng, version=2, model_size=64 * 1024 * 1024)

    seen: dict[str, dict[str, str]] = {}
    stop = threading.Event()

    def watch() -> None:
        # At every moment: what the Space's head holds. Trees are read at the head that was read, so a commit
        # landing between the two reads cannot show a mix that never existed.
        while not stop.is_set():
            head = hub.head(repo_id)
            if head not in seen:
                seen[head] = tree_signature(hub, repo_id, revision=head)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    env = {**os.environ, TOKEN_ENV: hub.token}
    command = [sys.executable, "-c", _CHILD, json.dumps({"repo_id": repo_id, "app_path": new_spec.app_path,
               "model_path": new_spec.model_path}), hub.endpoint, TOKEN_ENV]
    try:
        # Latency keeps the PUT of the 64 MiB file open long enough to kill the deploy in the middle of it.
        hub.faults.configure(latency=0.5)
        puts, verifies = hub.request_count("lfs-upload"), hub.request_count("lfs-verify")
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while hub.request_count("lfs-upload") == puts and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        child.kill()
        _, stderr = child.communicate(timeout=60)
        assert hub.request_count("lfs-upload") > puts, f"the deploy never started its LFS upload: {stderr[-2000:]!r}"
        assert hub.request_count("lfs-verify") == verifies, "the upload finished before the kill: nothing was tested"
        assert hub.head(repo_id) == old_head and hub.commit_count(repo_id) == old_count
        assert tree_signature(hub, repo_id) == old_tree

        hub.faults.configure(latency=0.02)
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
    finally:
        stop.set()
        watcher.join(10)
        hub.faults.reset()

    assert hub.commit_count(repo_id) == old_count + 1, "the rerun adds exactly one commit"
    assert_holds_exactly(hub, repo_id, new_files)
    new_tree = tree_signature(hub, repo_id)
    assert all(tree in (old_tree, new_tree) for tree in seen.values()), "the Space held a tree that was neither"
    assert set(seen) == {old_head, hub.head(repo_id)}


def _content_files(repo_id: str, files: dict[str, bytes]) -> list[AppFile]:
    out = []
    for path, data in files.items():
        hashes = hash_bytes(data)
        out.append(AppFile(repo_id, path, hashes.size, content=data, sha256=hashes.sha256, git_sha1=hashes.git_sha1))
    return out


def test_two_deploys_racing_on_one_space_lose_no_update(local_hub, monkeypatch, tmp_path, caplog):
    hub = local_hub
    monkeypatch.setenv(TOKEN_ENV, hub.token)
    repo_id = f"{hub.username}/race"
    spec = SpaceSpec(repo_id, "unused-template", "static")
    base = {"index.html": b"<h1>base</h1>\n", "shared.txt": b"base\n", "only-base.txt": b"base\n"}
    configs = {
        "a": {"index.html": b"<h1>A</h1>\n", "shared.txt": b"from A\n", "a/logo.png": b"\x00A" * 500},
        "b": {"index.html": b"<h1>B</h1>\n", "shared.txt": b"from B\n", "b.txt": b"only B\n"},
    }
    settings = HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", backoff_seconds=0.05)
    first = SpacePusher(settings).push(spec, _content_files(repo_id, base))
    assert first.committed and first.error is None
    base_head, base_count = hub.head(repo_id), hub.commit_count(repo_id)

    # Both deploys send the same requests with the same latency, so both plan against the same head and their
    # commits reach the Hub together: one lands, the other gets 412 and must re-plan on top of it.
    hub.faults.configure(latency=0.2)
    barrier = threading.Barrier(2)
    results = {}

    def deploy(name: str) -> None:
        pusher = SpacePusher(settings)
        barrier.wait()
        results[name] = pusher.push(spec, _content_files(repo_id, configs[name]))

    caplog.set_level(logging.INFO, logger="beam_pusher.commit")
    threads = [threading.Thread(target=deploy, args=(name,)) for name in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    hub.faults.reset()

    assert sorted(results) == ["a", "b"]
    assert [r.error for r in results.values()] == [None, None]
    assert all(r.committed for r in results.values())
    assert "re-planning" in caplog.text, "the deploys did not collide: the race was not exercised"
    head = hub.head(repo_id)
    last = next(name for name, r in results.items() if r.commit_id == head)  # the one that re-planned
    first_in = "b" if last == "a" else "a"
    # Mirror semantics, last writer wins whole: the top commit's config, nothing of the other one left over.
    assert_holds_exactly(hub, repo_id, configs[last])
    assert hub.commit_count(repo_id) == base_count + 2
    history = git_history(hub, repo_id, tmp_path)
    assert history[0] == (head, [results[first_in].commit_id])
    assert history[1] == (results[first_in].commit_id, [base_head])
    assert all(len(parents) == 1 for _, parents in history[:-1]) and history[-1][1] == []
    assert HfApi(endpoint=hub.endpoint, token=hub.token).space_info(repo_id).sha == head
