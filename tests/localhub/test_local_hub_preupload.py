"""Preupload decides LFS and ignored files as the Hub does: size, binary sample, .gitattributes and .gitignore."""

from __future__ import annotations

import hashlib
import subprocess

from huggingface_hub import CommitOperationAdd

from beam_pusher.localhub.gitpatterns import GitAttributes, GitIgnore

GITIGNORE = "# build output\n*.log\n!keep.log\nbuild/\n/root-only.txt\ndocs/**/*.tmp\n**/cache\n[abc].md\n\\#hash\n"
GITATTRIBUTES = ("*.bin filter=lfs diff=lfs merge=lfs -text\nsaved_model/**/* filter=lfs\n*.tar.* filter=lfs\n"
                 "docs/*.png filter=lfs\nspecial.bin -filter\ndata/ filter=lfs\nsub/**/deep.txt filter=lfs\n")
PATHS = [
    "a.log", "dir/a.log", "keep.log", "dir/keep.log", "build/out.txt", "src/build/x.txt", "root-only.txt",
    "dir/root-only.txt", "docs/a.tmp", "docs/x/y/a.tmp", "cache/f", "x/y/cache/f", "a.md", "d.md", "#hash",
    "model.bin", "x/model.bin", "saved_model/a", "saved_model/v/variables.data", "x/saved_model/a", "f.tar.gz",
    "docs/i.png", "docs/x/i.png", "special.bin", "data/f.csv", "sub/deep.txt", "sub/a/b/deep.txt",
]


def test_patterns_match_what_git_itself_decides(tmp_path):
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(GITIGNORE)
    (tmp_path / ".gitattributes").write_text(GITATTRIBUTES)
    stdin = "\n".join(PATHS) + "\n"
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=tmp_path, input=stdin, text=True,
                             capture_output=True).stdout.split("\n")
    attrs = subprocess.run(["git", "check-attr", "--stdin", "filter"], cwd=tmp_path, input=stdin, text=True,
                           capture_output=True, check=True).stdout.splitlines()
    lfs = {line.rsplit(": filter: ", 1)[0] for line in attrs if line.endswith(": filter: lfs")}
    assert {p for p in PATHS if GitIgnore.parse(GITIGNORE).ignores(p)} == set(ignored) - {""}
    assert {p for p in PATHS if GitAttributes.parse(GITATTRIBUTES).is_lfs(p)} == lfs
    assert len(lfs) >= 8 and len(set(ignored)) >= 10  # both sides really decided something


def test_small_files_matching_gitattributes_are_stored_with_lfs(local_hub, hub_api):
    repo_id = f"{local_hub.username}/lfs-rules"
    hub_api.create_repo(repo_id)
    files = {"weights.bin": b"tiny text weights\n", "model.safetensors": b"{}", "saved_model/v/vars.data": b"v\n",
             "notes.txt": b"plain text\n", "empty.bin": b""}
    hub_api.create_commit(repo_id, [CommitOperationAdd(p, c) for p, c in files.items()], commit_message="files")
    stored = local_hub.list_files(repo_id, repo_type="model")
    assert {p for p in files if stored[p].is_lfs} == {"weights.bin", "model.safetensors", "saved_model/v/vars.data"}
    assert stored["weights.bin"].lfs_sha256 == hashlib.sha256(files["weights.bin"]).hexdigest()
    siblings = {s.rfilename: s for s in hub_api.model_info(repo_id, files_metadata=True).siblings}
    assert siblings["weights.bin"].lfs.sha256 == stored["weights.bin"].lfs_sha256
    assert siblings["notes.txt"].lfs is None and siblings["empty.bin"].lfs is None  # empty files stay regular
    infos = {i.path: i for i in hub_api.get_paths_info(repo_id, ["model.safetensors", "notes.txt"])}
    assert infos["model.safetensors"].lfs.size == 2 and infos["notes.txt"].lfs is None
    assert local_hub.read_file(repo_id, "weights.bin", repo_type="model") == files["weights.bin"]


def test_rules_come_from_the_target_revisions_gitattributes(local_hub, hub_api, raw):
    model, dataset = f"{local_hub.username}/attrs", f"{local_hub.username}/media"
    hub_api.create_repo(model)
    hub_api.create_repo(dataset, repo_type="dataset")
    hub_api.create_branch(model, branch="plain")
    hub_api.create_commit(model, [CommitOperationAdd(".gitattributes", b"*.txt filter=lfs diff=lfs merge=lfs -text\n")],
                          commit_message="txt in LFS")

    def modes(repo_type: str, repo_id: str, revision: str) -> dict[str, str]:
        body = {"files": [{"path": p, "sample": "dGV4dA==", "size": 4} for p in ("a.txt", "img.png", "w.bin")]}
        answer = raw("POST", f"{local_hub.endpoint}/api/{repo_type}s/{repo_id}/preupload/{revision}", local_hub.token,
                     body)
        return {item["path"]: item["uploadMode"] for item in answer.json()["files"]}

    assert modes("model", model, "main") == {"a.txt": "lfs", "img.png": "regular", "w.bin": "regular"}
    assert modes("model", model, "plain") == {"a.txt": "regular", "img.png": "regular", "w.bin": "lfs"}
    assert modes("dataset", dataset, "main") == {"a.txt": "regular", "img.png": "lfs", "w.bin": "lfs"}
    hub_api.create_commit(model, [CommitOperationAdd("a.txt", b"text")], commit_message="a")
    assert local_hub.list_files(model, repo_type="model")["a.txt"].is_lfs


def test_gitignore_of_the_repository_or_of_the_commit_decides_should_ignore(local_hub, hub_api, raw):
    repo_id = f"{local_hub.username}/ignoring"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    hub_api.create_commit(repo_id, [CommitOperationAdd(".gitignore", b"*.log\nbuild/\n")], commit_message="ignore",
                          repo_type="space")
    ops = [CommitOperationAdd(p, b"x\n") for p in ("index.html", "debug.log", "build/out.js", "src/build.js")]
    ops.append(CommitOperationAdd("build/w.bin", b"\x00binary"))
    hub_api.create_commit(repo_id, ops, commit_message="site", repo_type="space")
    assert set(local_hub.list_files(repo_id)) == {".gitattributes", ".gitignore", "README.md", "index.html",
                                                  "src/build.js"}
    assert local_hub.request_count("lfs-upload") == 0  # an ignored LFS file is not even uploaded

    # A commit that brings its own .gitignore is judged by that one (the client sends it as gitIgnore).
    ops = [CommitOperationAdd(".gitignore", b"*.tmp\n"), CommitOperationAdd("a.tmp", b"t\n"),
           CommitOperationAdd("b.log", b"l\n")]
    hub_api.create_commit(repo_id, ops, commit_message="new rules", repo_type="space")
    files = local_hub.list_files(repo_id)
    assert "b.log" in files and "a.tmp" not in files
    answer = raw("POST", f"{local_hub.endpoint}/api/spaces/{repo_id}/preupload/main", local_hub.token,
                 {"files": [{"path": "x.tmp", "sample": "", "size": 0}, {"path": "x.log", "sample": "", "size": 0}]})
    assert [item["shouldIgnore"] for item in answer.json()["files"]] == [True, False]
