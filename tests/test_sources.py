"""Template and model sources: path resolution, built-in apps, and listing files over fsspec."""

from __future__ import annotations

import os
import uuid

import fsspec
import pytest

from beam_pusher import sources
from beam_pusher.errors import TemplateError
from beam_pusher.sources import SourceFile


def write(path, data: bytes | str = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


@pytest.fixture
def memory_root():
    """A unique memory:// folder, removed afterwards (the memory filesystem is global to the process)."""
    root = f"/tpl-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


# resolve_app_path / resolve_model_path -------------------------------------------------------------------------


def test_dotted_and_slashed_app_paths_resolve_to_the_builtin_app(tmp_path):
    expected = os.path.join(sources.BUILTIN_APPS_URL, "gradio", "img_classifier")
    assert sources.resolve_app_path("apps.gradio.img_classifier", base_dir=str(tmp_path)) == expected
    assert sources.resolve_app_path("apps/gradio/img_classifier", base_dir=str(tmp_path)) == expected
    assert os.path.isfile(os.path.join(expected, "app.py"))


def test_the_proposals_mixed_app_path_form_resolves_to_the_builtin_app(tmp_path):
    """The HFSpacePusher proposal writes ``apps/gradio.img_classifier``: a folder, then a dotted name."""
    expected = os.path.join(sources.BUILTIN_APPS_URL, "gradio", "img_classifier")
    assert sources.resolve_app_path("apps/gradio.img_classifier", base_dir=str(tmp_path)) == expected
    assert sources.resolve_app_path("apps/streamlit.img_classifier", base_dir=str(tmp_path)) == os.path.join(
        sources.BUILTIN_APPS_URL, "streamlit", "img_classifier"
    )
    with pytest.raises(TemplateError, match="apps/gradio.img_clasifier"):
        sources.resolve_app_path("apps/gradio.img_clasifier", base_dir=str(tmp_path))


def test_a_literal_folder_named_like_the_mixed_form_wins(tmp_path):
    write(tmp_path / "apps" / "gradio.img_classifier" / "app.py")
    write(tmp_path / "apps" / "gradio" / "img_classifier" / "app.py")
    literal = str(tmp_path / "apps" / "gradio.img_classifier")
    assert sources.resolve_app_path("apps/gradio.img_classifier", base_dir=str(tmp_path)) == literal
    (tmp_path / "apps" / "gradio.img_classifier" / "app.py").unlink()
    (tmp_path / "apps" / "gradio.img_classifier").rmdir()
    local = str(tmp_path / "apps" / "gradio" / "img_classifier")  # then the local folder the name spells
    assert sources.resolve_app_path("apps/gradio.img_classifier", base_dir=str(tmp_path)) == local


def test_a_local_apps_folder_wins_over_the_builtin_one(tmp_path):
    write(tmp_path / "apps" / "gradio" / "img_classifier" / "app.py")
    local = str(tmp_path / "apps" / "gradio" / "img_classifier")
    assert sources.resolve_app_path("apps.gradio.img_classifier", base_dir=str(tmp_path)) == local
    assert sources.resolve_app_path("apps/gradio/img_classifier", base_dir=str(tmp_path)) == local


def test_relative_absolute_and_file_url_app_paths(tmp_path, monkeypatch):
    write(tmp_path / "my.template" / "app.py")
    folder = str(tmp_path / "my.template")
    assert sources.resolve_app_path("my.template", base_dir=str(tmp_path)) == folder
    assert sources.resolve_app_path(folder) == folder
    assert sources.resolve_app_path(f"file://{folder}") == folder
    monkeypatch.chdir(tmp_path)
    assert sources.resolve_app_path("my.template") == folder


def test_memory_url_app_path(memory_root):
    fs, root = memory_root
    fs.pipe(f"{root}/app.py", b"print(1)\n")
    assert sources.resolve_app_path(f"memory://{root}/") == f"memory://{root}"
    with pytest.raises(TemplateError, match="does not exist"):
        sources.resolve_app_path(f"memory://{root}-missing")
    assert sources.resolve_app_path(f"memory://{root}-missing", check=False) == f"memory://{root}-missing"


def test_missing_app_path_error_names_value_places_and_builtins(tmp_path):
    with pytest.raises(TemplateError) as err:
        sources.resolve_app_path("apps.gradio.img_clasifier", base_dir=str(tmp_path))
    message = str(err.value)
    assert "'apps.gradio.img_clasifier'" in message
    assert str(tmp_path / "apps" / "gradio" / "img_clasifier") in message
    assert os.path.join(sources.BUILTIN_APPS_URL, "gradio", "img_clasifier") in message
    for name in ("apps.gradio.img_classifier", "apps.streamlit.img_classifier", "apps.gradio.text_classifier"):
        assert name in message


def test_app_path_that_is_a_file_is_rejected(tmp_path):
    write(tmp_path / "app.py")
    with pytest.raises(TemplateError, match="is a file"):
        sources.resolve_app_path("app.py", base_dir=str(tmp_path))


def test_model_path_may_be_a_folder_or_a_single_file(tmp_path):
    write(tmp_path / "serving" / "saved_model.pb")
    write(tmp_path / "model.keras")
    assert sources.resolve_model_path("serving", base_dir=str(tmp_path)) == str(tmp_path / "serving")
    assert sources.resolve_model_path("model.keras", base_dir=str(tmp_path)) == str(tmp_path / "model.keras")
    with pytest.raises(TemplateError, match="model_path='apps.gradio.img_classifier' was not found"):
        sources.resolve_model_path("apps.gradio.img_classifier", base_dir=str(tmp_path))


# list_source_files ---------------------------------------------------------------------------------------------


def test_lists_nested_unicode_empty_and_binary_files_sorted(tmp_path):
    write(tmp_path / "app.py", "print('$MODEL_REPO_ID')\n")
    write(tmp_path / "static" / "css" / "style.css", "body {}\n")
    write(tmp_path / "données" / "éléphant 🐘.txt", "unicode\n")
    write(tmp_path / "empty.txt", b"")
    write(tmp_path / "weights.bin", b"\x00\x01$MODEL_VERSION\xff")
    files = sources.list_source_files(str(tmp_path))
    assert [f.path for f in files] == sorted(
        ["app.py", "données/éléphant 🐘.txt", "empty.txt", "static/css/style.css", "weights.bin"]
    )
    by_path = {f.path: f for f in files}
    assert by_path["empty.txt"].size == 0
    assert by_path["weights.bin"].size == 17
    assert open(by_path["données/éléphant 🐘.txt"].url, "rb").read() == b"unicode\n"


def test_git_pycache_and_pyc_are_skipped(tmp_path):
    write(tmp_path / "app.py")
    write(tmp_path / ".git" / "HEAD", "ref: refs/heads/main\n")
    write(tmp_path / "sub" / ".git", "gitdir: ../.git/modules/sub\n")
    write(tmp_path / "__pycache__" / "app.cpython-310.pyc", b"\x00")
    write(tmp_path / "lib" / "old.pyc", b"\x00")
    write(tmp_path / ".gitignore", "*.pyc\n")
    assert [f.path for f in sources.list_source_files(str(tmp_path))] == [".gitignore", "app.py"]


def test_prefix_is_prepended_for_model_files(tmp_path):
    write(tmp_path / "saved_model.pb", b"\x08\x01")
    write(tmp_path / "variables" / "variables.index", b"\x00")
    expected = ["model/saved_model.pb", "model/variables/variables.index"]
    assert [f.path for f in sources.list_source_files(str(tmp_path), prefix="model/")] == expected
    assert [f.path for f in sources.list_source_files(str(tmp_path), prefix="model")] == expected


def test_a_single_file_root_lists_that_file(tmp_path):
    write(tmp_path / "m.keras", b"PK\x03\x04")
    [source] = sources.list_source_files(str(tmp_path / "m.keras"), prefix="model/")
    assert source == SourceFile("model/m.keras", str(tmp_path / "m.keras"), 4)


def test_symlink_escaping_the_root_is_rejected(tmp_path):
    outside = tmp_path / "secret.txt"
    write(outside, "do not ship")
    root = tmp_path / "tpl"
    write(root / "app.py")
    (root / "leak.txt").symlink_to(outside)
    with pytest.raises(TemplateError, match="leak.txt.*outside the template root"):
        sources.list_source_files(str(root))


def test_symlinked_folder_escaping_the_root_is_rejected(tmp_path):
    write(tmp_path / "elsewhere" / "x.txt")
    write(tmp_path / "tpl" / "app.py")
    (tmp_path / "tpl" / "data").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(TemplateError, match="'data' is a symlink"):
        sources.list_source_files(str(tmp_path / "tpl"))


def test_symlinks_inside_the_root_are_followed_and_loops_rejected(tmp_path):
    write(tmp_path / "app.py", "x")
    (tmp_path / "main.py").symlink_to(tmp_path / "app.py")
    assert [f.path for f in sources.list_source_files(str(tmp_path))] == ["app.py", "main.py"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(TemplateError, match="symlink loop"):
        sources.list_source_files(str(tmp_path))


def test_broken_symlink_is_an_error(tmp_path):
    write(tmp_path / "app.py")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    with pytest.raises(TemplateError, match="broken symlink"):
        sources.list_source_files(str(tmp_path))


def test_empty_or_missing_template_is_an_error(tmp_path):
    write(tmp_path / "only" / ".git" / "HEAD")
    with pytest.raises(TemplateError, match="holds no files"):
        sources.list_source_files(str(tmp_path / "only"))
    with pytest.raises(TemplateError, match="does not exist"):
        sources.list_source_files(str(tmp_path / "nope"))


def test_memory_filesystem_listing(memory_root):
    fs, root = memory_root
    fs.pipe(f"{root}/app.py", b"x = '$MODEL_REPO_ID'\n")
    fs.pipe(f"{root}/sub/dir/é 1.txt", b"hi")
    fs.pipe(f"{root}/.git/config", b"[core]")
    fs.pipe(f"{root}/pkg/__pycache__/m.pyc", b"\x00")
    fs.pipe(f"{root}/empty", b"")
    files = sources.list_source_files(f"memory://{root}")
    assert [(f.path, f.size) for f in files] == [("app.py", 21), ("empty", 0), ("sub/dir/é 1.txt", 2)]
    with fsspec.open(files[2].url, "rb") as f:
        assert f.read() == b"hi"
    with pytest.raises(TemplateError, match="does not exist"):
        sources.list_source_files(f"memory://{root}-missing")


def test_memory_path_with_dotdot_component_is_rejected(memory_root):
    fs, root = memory_root
    fs.pipe(f"{root}/app.py", b"x")
    fs.pipe(f"{root}/../escape.txt", b"x")
    with pytest.raises(TemplateError, match="escapes the template root"):
        sources.list_source_files(f"memory://{root}")


def test_a_folder_of_excluded_files_says_what_was_left_out_and_how_to_bring_it_back(tmp_path):
    write(tmp_path / ".env", "KEY=x\n")
    write(tmp_path / "debug.log", "x\n")
    with pytest.raises(TemplateError, match=r"holds no files to upload \(excluded 2: \.env \(secret\), debug\.log "
                       r"\(log\)\).*include:"):
        sources.list_source_files(str(tmp_path))
    listing = sources.scan_source_files(str(tmp_path), include=["*.log"])
    assert [f.path for f in listing.files] == ["debug.log"]
    assert [(e.path, e.reason) for e in listing.excluded] == [(".env", "secret")]


def test_list_source_files_warns_once_about_a_left_out_secret(tmp_path, caplog):
    write(tmp_path / "saved_model.pb", b"\x08")
    write(tmp_path / ".env", "KEY=x\n")
    write(tmp_path / "sub" / ".env.local", "KEY=y\n")
    assert [f.path for f in sources.list_source_files(str(tmp_path), prefix="model/")] == ["model/saved_model.pb"]
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "not uploading model/.env, model/sub/.env.local: .env files may hold secrets" in warning.getMessage()
