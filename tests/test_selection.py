"""Files chosen the way git would choose them: the rules (pure), then a real user's folder deployed to the local Hub.

The folder is what a user's app folder looks like after a few days of work: a ``.env`` with an API key, a
virtualenv, ``node_modules``, caches, OS litter, logs, a ``.gitignore`` listing some of it, and a 12 MB binary.
``plan`` and ``deploy`` run through the CLI; the Space's files are read back with the real huggingface_hub client.
"""

from __future__ import annotations

import json
import logging
import os
import re
import textwrap

import pytest

from beam_pusher import PushResult, SpaceSpec, cli
from beam_pusher.errors import SpecError
from beam_pusher.runner import run_deploy
from beam_pusher.selection import DEFAULT_EXCLUDES, Exclusion, PathPatterns, Selector, check_patterns
from beam_pusher.selection import describe_exclusions
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV

FAKE_KEY = "sk-fake-0123456789abcdef"
BIG = 12 * 1024 * 1024


# -- the rules ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (".env", "secret"), ("config/.env", "secret"), (".env.local", "secret"), (".env.example", "secret"),
        (".git/HEAD", "git"), ("sub/.git", "git"), (".venv/", "virtualenv"), ("venv/bin/python", "virtualenv"),
        ("node_modules/x.js", "node_modules"), ("web/node_modules/", "node_modules"),
        ("__pycache__/", "cache"), ("lib/m.pyc", "cache"), (".pytest_cache/", "cache"), (".mypy_cache/", "cache"),
        (".ruff_cache/", "cache"), ("nb/.ipynb_checkpoints/", "cache"), (".DS_Store", "OS file"),
        ("img/Thumbs.db", "OS file"), ("debug.log", "log"), ("logs/app.log", "log"),
    ],
)
def test_default_exclusions_name_their_reason(path, reason):
    assert Selector().reason(path, path) == reason


@pytest.mark.parametrize("path", ["app.py", "environment.yml", ".envrc", "my.env", "env/", "venv.py", "logs/",
                                  "node_modules.txt", ".gitignore", ".gitattributes", "catalog.md"])
def test_ordinary_files_are_not_excluded(path):
    assert Selector().reason(path, path) is None


def test_every_default_exclusion_has_a_reason():
    assert all(pattern and reason for pattern, reason in DEFAULT_EXCLUDES)
    assert {p for p, r in DEFAULT_EXCLUDES if r == "secret"} == {".env", ".env.*"}


def test_gitignore_files_nest_and_the_deeper_one_decides():
    selector = Selector()
    selector.add_gitignore("", "*.tmp\nbuild/\n/only-root.txt\n")
    selector.add_gitignore("sub/", "!keep.tmp\nlocal.txt\n")
    assert selector.reason("a.tmp", "a.tmp") == ".gitignore"
    assert selector.reason("sub/x.tmp", "sub/x.tmp") == ".gitignore"
    assert selector.reason("sub/keep.tmp", "sub/keep.tmp") is None  # re-included by sub/.gitignore
    assert selector.reason("sub/local.txt", "sub/local.txt") == "sub/.gitignore"
    assert selector.reason("local.txt", "local.txt") is None  # sub/.gitignore says nothing about the root
    assert selector.reason("build/", "build/") == ".gitignore"
    assert selector.reason("only-root.txt", "only-root.txt") == ".gitignore"
    assert selector.reason("sub/only-root.txt", "sub/only-root.txt") is None


def test_a_gitignore_negation_never_brings_back_a_default_exclusion():
    selector = Selector()
    selector.add_gitignore("", "!.env\n")
    assert selector.reason(".env", ".env") == "secret"


def test_exclude_and_include_match_space_paths():
    selector = Selector(exclude=["*.ipynb", "/notebooks/"], include=[".env.example", "keep.log"])
    assert selector.reason("a/b.ipynb", "a/b.ipynb") == "exclude"
    assert selector.reason("notebooks/", "notebooks/") == "exclude"
    assert selector.reason("x/notebooks/", "x/notebooks/") is None  # anchored at the root
    assert selector.reason(".env.example", ".env.example") is None
    assert selector.reason("keep.log", "keep.log") is None and selector.reason("other.log", "other.log") == "log"
    assert selector.included_secret(".env.example", ".env.example") and not selector.prunes
    assert Selector(exclude=["*.ipynb"]).prunes
    # Space paths for a model listed under model/: exclude and include see the prefix, .gitignore files do not.
    model = Selector(exclude=["model/assets/"])
    model.add_gitignore("", "*.ckpt\n")
    assert model.reason("assets/", "model/assets/") == "exclude"
    assert model.reason("w.ckpt", "model/w.ckpt") == ".gitignore"


def test_a_folder_holding_pyvenv_cfg_is_a_virtualenv():
    selector = Selector()
    selector.add_virtualenv("tools/py/")
    assert selector.reason("tools/py/", "tools/py/") == "virtualenv"
    assert selector.reason("tools/py/lib/site.py", "tools/py/lib/site.py") == "virtualenv"
    assert selector.reason("tools/other.py", "tools/other.py") is None


def test_patterns_are_gitignore_patterns():
    data = PathPatterns(["data/*.csv"])
    assert data.matches("data/a.csv") and not data.matches("data/sub/deep.csv")
    everything = PathPatterns(["data/*"])  # as in a .gitignore: data/* matches the folder data/sub, and so its files
    assert everything.matches("data/a.csv") and everything.matches("data/sub/deep.csv")
    top_only = PathPatterns(["data/*", "!data/*/"])
    assert top_only.matches("data/a.csv") and not top_only.matches("data/sub/deep.csv")
    deep = PathPatterns(["data/**/*.csv"])
    assert deep.matches("data/a.csv") and deep.matches("data/x/y/z.csv") and not deep.matches("data/a.txt")
    assert not PathPatterns() and not PathPatterns().matches("anything")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "exclude=5 must be a list of glob patterns in .gitignore syntax, such as '*.ipynb'"),
        ([""], "exclude=[''] must be a list of glob patterns"),
        (["!"], "exclude: '!' is not a .gitignore pattern"),
        (["# notes"], "exclude: '# notes' matches nothing in .gitignore syntax (a '#' starts a comment)"),
    ],
)
def test_bad_patterns_are_refused_with_the_rule_and_an_example(value, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        check_patterns(value, field="exclude")


def test_space_spec_takes_exclude_and_include():
    spec = SpaceSpec("u/s", "apps.gradio.img_classifier", exclude="*.ipynb", include=[".env.example"])
    assert spec.exclude == ("*.ipynb",) and spec.include == (".env.example",)
    with pytest.raises(SpecError, match="include: '!' is not a .gitignore pattern"):
        SpaceSpec("u/s", "apps.gradio.img_classifier", include=["!"])


def test_exclusions_are_described_briefly():
    excluded = [Exclusion(".env", "secret"), Exclusion(".venv/", "virtualenv"), Exclusion("app.log", ".gitignore")]
    assert describe_exclusions(excluded) == "excluded 3: .env (secret), .venv/ (virtualenv), app.log (.gitignore)"
    many = [Exclusion(f"{i}.log", "log") for i in range(10)]
    assert describe_exclusions(many, limit=2) == "excluded 10: 0.log (log), 1.log (log), and 8 more"
    result = PushResult(repo_id="u/s", pushed=True, excluded=tuple(excluded))
    assert PushResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# -- a user's folder, deployed ------------------------------------------------------------------------------------


def user_folder(root) -> str:
    """An app folder as people leave it; returns its path."""
    files = {
        "app.py": "import gradio as gr\n",
        "requirements.txt": "gradio\n",
        ".env": f"OPENAI_API_KEY={FAKE_KEY}\n",
        ".env.example": "OPENAI_API_KEY=\n",
        ".venv/pyvenv.cfg": "home = /usr/bin\n",
        ".venv/lib/python3.10/site-packages/leftpad.py": "x = 1\n",
        "tools/pyvenv.cfg": "home = /usr/bin\n",  # a virtualenv by another name
        "tools/lib/site.py": "x = 1\n",
        "node_modules/x.js": "module.exports = 1;\n",
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
        "debug.log": "started\n",
        "__pycache__/app.cpython-310.pyc": b"\x00\x01",
        ".gitignore": "secrets.json\nbuild/\n*.tmp\n",
        "secrets.json": f'{{"key": "{FAKE_KEY}"}}\n',
        "build/out.txt": "built\n",
        "scratch.tmp": "tmp\n",
        "sub/.gitignore": "local.txt\n",
        "sub/local.txt": "mine\n",
        "sub/shared.txt": "shared\n",
        "notebooks/explore.ipynb": "{}\n",
    }
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    os.symlink("/usr/bin/python3", root / ".venv" / "python")  # a virtualenv's links point outside the folder
    with open(root / "weights.bin", "wb") as f:
        block = bytes(range(256)) * 4096
        for _ in range(BIG // len(block)):
            f.write(block)
    return str(root)


UPLOADED = {"app.py", "requirements.txt", ".gitignore", "sub/.gitignore", "sub/shared.txt", "weights.bin"}
EXCLUDED = [
    (".DS_Store", "OS file"), (".env", "secret"), (".env.example", "secret"), (".venv/", "virtualenv"),
    ("__pycache__/", "cache"), ("build/", ".gitignore"), ("debug.log", "log"), ("node_modules/", "node_modules"),
    ("notebooks/explore.ipynb", "exclude"), ("scratch.tmp", ".gitignore"), ("secrets.json", ".gitignore"),
    ("sub/local.txt", "sub/.gitignore"), ("tools/", "virtualenv"),
]


def config_for(tmp_path, hub, name: str, extra: str = "") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""
        spaces:
          - repo_id: {hub.username}/{name}
            app_path: {user_folder(tmp_path / name)}
            space_sdk: gradio
            model_hub_repo_id: alice/model
            exclude: ["*.ipynb"]
        """) + extra)
    return str(path)


def hub_args(hub) -> list[str]:
    return ["--endpoint", hub.endpoint, "--token-env", TOKEN_ENV]


def test_plan_of_a_user_folder_lists_no_secret_and_says_what_was_left_out(hub, tmp_path, capsys):
    config = config_for(tmp_path, hub, "planned")
    assert cli.main(["plan", config, *hub_args(hub), "--report", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    planned = {line.split()[1] for line in out.splitlines() if line.startswith("    + ")}
    assert planned == UPLOADED | {"README.md"}
    assert f"    excluded {len(EXCLUDED)}: .DS_Store (OS file), .env (secret), .env.example (secret)" in out
    assert ".venv/ (virtualenv)" in out and "and 5 more" in out
    [result] = [PushResult.from_dict(r) for r in json.loads((tmp_path / "plan.json").read_text())]
    assert [(e.path, e.reason) for e in result.excluded] == EXCLUDED
    assert not hub.repo_exists(f"{hub.username}/planned")


def test_deploy_of_a_user_folder_uploads_no_secret_and_says_so_once(hub, api, tmp_path, capsys):
    repo_id = f"{hub.username}/deployed"
    config = config_for(tmp_path, hub, "deployed")
    assert cli.main(["deploy", config, *hub_args(hub), "--report", str(tmp_path / "deploy.json")]) == 0
    out = capsys.readouterr().out
    assert out.count(".env (secret)") == 1 and f"excluded {len(EXCLUDED)}: " in out

    files = set(api.list_repo_files(repo_id, repo_type="space"))
    assert files == UPLOADED | {"README.md", ".gitattributes"}
    for path in files - {"weights.bin"}:
        assert FAKE_KEY.encode() not in hub.read_file(repo_id, path), path
    [weights] = [f for f in api.list_repo_tree(repo_id, repo_type="space") if f.path == "weights.bin"]
    assert weights.size == BIG and weights.lfs is not None
    [result] = [PushResult.from_dict(r) for r in json.loads((tmp_path / "deploy.json").read_text())]
    assert result.committed and [(e.path, e.reason) for e in result.excluded] == EXCLUDED

    # A redeploy of the same folder is a no-op: exclusions are stable, nothing is deleted or re-uploaded.
    assert cli.main(["deploy", config, *hub_args(hub)]) == 0
    assert f"unchanged {hub.head(repo_id)[:7]}  +0 ~0 -0" in capsys.readouterr().out


def test_a_space_that_got_a_secret_before_loses_it_on_the_next_deploy(hub, api, tmp_path):
    from huggingface_hub import CommitOperationAdd

    spec = SpaceSpec(f"{hub.username}/leaked", user_folder(tmp_path / "leaked"), model_hub_repo_id="alice/model")
    api.create_repo(spec.repo_id, repo_type="space", space_sdk="gradio")
    api.create_commit(spec.repo_id, [CommitOperationAdd(".env", FAKE_KEY.encode())], commit_message="old deploy",
                      repo_type="space")
    [result] = run_deploy([spec], endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    assert result.error is None and result.files_deleted == 1
    assert ".env" not in api.list_repo_files(spec.repo_id, repo_type="space")


def test_include_brings_back_an_excluded_file_and_a_secret_only_with_a_warning(hub, api, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="beam_pusher")
    spec = SpaceSpec(f"{hub.username}/included", user_folder(tmp_path / "included"), model_hub_repo_id="alice/m",
                     include=[".env.example", "debug.log", "node_modules/x.js"])
    [result] = run_deploy([spec], endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    assert result.error is None
    files = set(api.list_repo_files(spec.repo_id, repo_type="space"))
    assert {".env.example", "debug.log", "node_modules/x.js"} <= files
    assert ".env" not in files and "node_modules/" in {e.path for e in result.excluded}
    assert "uploading .env.example although it may hold secrets: include: names it" in caplog.text
    assert ".venv/python" not in caplog.text  # the virtualenv's outside link was never followed


def test_a_memory_url_folder_is_chosen_alike_reading_only_gitignore_files(tmp_path, monkeypatch):
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    from beam_pusher import sources

    local = tmp_path / "src"
    user_folder(local)
    os.unlink(local / ".venv" / "python")
    fs = fsspec.filesystem("memory")
    root = f"/user-{os.getpid()}-{id(tmp_path)}"
    for dirpath, _, names in os.walk(local):
        for name in names:
            path = os.path.join(dirpath, name)
            fs.pipe(f"{root}/{os.path.relpath(path, local)}", open(path, "rb").read())
    opened: list[str] = []
    real_open, real_cat = MemoryFileSystem._open, MemoryFileSystem.cat_file

    def recording_open(self, path, *args, **kwargs):
        opened.append(path)
        return real_open(self, path, *args, **kwargs)

    def recording_cat(self, path, *args, **kwargs):
        opened.append(path)
        return real_cat(self, path, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "_open", recording_open)
    monkeypatch.setattr(MemoryFileSystem, "cat_file", recording_cat)
    try:
        listing = sources.scan_source_files(f"memory://{root}", exclude=["*.ipynb"])
    finally:
        fs.rm(root, recursive=True)
    assert {f.path for f in listing.files} == UPLOADED
    assert [(e.path, e.reason) for e in listing.excluded] == EXCLUDED
    assert opened and all(p.endswith(".gitignore") for p in opened)
