"""Template resolution, listing, text detection, placeholder rendering, README and generated files."""

from __future__ import annotations

import importlib.util
import os
import uuid

import fsspec
import pytest
import yaml

from beam_pusher import templates
from beam_pusher.errors import PlaceholderError, SpecError, TemplateError
from beam_pusher.spec import SpaceSpec
from beam_pusher.templates import SourceFile

VALUES = {"MODEL_REPO_ID": "alice/penguin-model", "MODEL_VERSION": "v3", "MODEL": "WRONG"}


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


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n") or readme.startswith("---\r\n")
    return yaml.safe_load(readme.split("---", 2)[1])


# resolve_app_path / resolve_model_path -------------------------------------------------------------------------


def test_dotted_and_slashed_app_paths_resolve_to_the_builtin_app(tmp_path):
    expected = os.path.join(templates.BUILTIN_APPS_URL, "gradio", "img_classifier")
    assert templates.resolve_app_path("apps.gradio.img_classifier", base_dir=str(tmp_path)) == expected
    assert templates.resolve_app_path("apps/gradio/img_classifier", base_dir=str(tmp_path)) == expected
    assert os.path.isfile(os.path.join(expected, "app.py"))


def test_a_local_apps_folder_wins_over_the_builtin_one(tmp_path):
    write(tmp_path / "apps" / "gradio" / "img_classifier" / "app.py")
    local = str(tmp_path / "apps" / "gradio" / "img_classifier")
    assert templates.resolve_app_path("apps.gradio.img_classifier", base_dir=str(tmp_path)) == local
    assert templates.resolve_app_path("apps/gradio/img_classifier", base_dir=str(tmp_path)) == local


def test_relative_absolute_and_file_url_app_paths(tmp_path, monkeypatch):
    write(tmp_path / "my.template" / "app.py")
    folder = str(tmp_path / "my.template")
    assert templates.resolve_app_path("my.template", base_dir=str(tmp_path)) == folder
    assert templates.resolve_app_path(folder) == folder
    assert templates.resolve_app_path(f"file://{folder}") == folder
    monkeypatch.chdir(tmp_path)
    assert templates.resolve_app_path("my.template") == folder


def test_memory_url_app_path(memory_root):
    fs, root = memory_root
    fs.pipe(f"{root}/app.py", b"print(1)\n")
    assert templates.resolve_app_path(f"memory://{root}/") == f"memory://{root}"
    with pytest.raises(TemplateError, match="does not exist"):
        templates.resolve_app_path(f"memory://{root}-missing")
    assert templates.resolve_app_path(f"memory://{root}-missing", check=False) == f"memory://{root}-missing"


def test_missing_app_path_error_names_value_places_and_builtins(tmp_path):
    with pytest.raises(TemplateError) as err:
        templates.resolve_app_path("apps.gradio.img_clasifier", base_dir=str(tmp_path))
    message = str(err.value)
    assert "'apps.gradio.img_clasifier'" in message
    assert str(tmp_path / "apps" / "gradio" / "img_clasifier") in message
    assert os.path.join(templates.BUILTIN_APPS_URL, "gradio", "img_clasifier") in message
    for name in ("apps.gradio.img_classifier", "apps.streamlit.img_classifier", "apps.gradio.text_classifier"):
        assert name in message


def test_app_path_that_is_a_file_is_rejected(tmp_path):
    write(tmp_path / "app.py")
    with pytest.raises(TemplateError, match="is a file"):
        templates.resolve_app_path("app.py", base_dir=str(tmp_path))


def test_model_path_may_be_a_folder_or_a_single_file(tmp_path):
    write(tmp_path / "serving" / "saved_model.pb")
    write(tmp_path / "model.keras")
    assert templates.resolve_model_path("serving", base_dir=str(tmp_path)) == str(tmp_path / "serving")
    assert templates.resolve_model_path("model.keras", base_dir=str(tmp_path)) == str(tmp_path / "model.keras")
    with pytest.raises(TemplateError, match="model_path='apps.gradio.img_classifier' was not found"):
        templates.resolve_model_path("apps.gradio.img_classifier", base_dir=str(tmp_path))


# list_source_files ---------------------------------------------------------------------------------------------


def test_lists_nested_unicode_empty_and_binary_files_sorted(tmp_path):
    write(tmp_path / "app.py", "print('$MODEL_REPO_ID')\n")
    write(tmp_path / "static" / "css" / "style.css", "body {}\n")
    write(tmp_path / "données" / "éléphant 🐘.txt", "unicode\n")
    write(tmp_path / "empty.txt", b"")
    write(tmp_path / "weights.bin", b"\x00\x01$MODEL_VERSION\xff")
    files = templates.list_source_files(str(tmp_path))
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
    assert [f.path for f in templates.list_source_files(str(tmp_path))] == [".gitignore", "app.py"]


def test_prefix_is_prepended_for_model_files(tmp_path):
    write(tmp_path / "saved_model.pb", b"\x08\x01")
    write(tmp_path / "variables" / "variables.index", b"\x00")
    expected = ["model/saved_model.pb", "model/variables/variables.index"]
    assert [f.path for f in templates.list_source_files(str(tmp_path), prefix="model/")] == expected
    assert [f.path for f in templates.list_source_files(str(tmp_path), prefix="model")] == expected


def test_a_single_file_root_lists_that_file(tmp_path):
    write(tmp_path / "m.keras", b"PK\x03\x04")
    [source] = templates.list_source_files(str(tmp_path / "m.keras"), prefix="model/")
    assert source == SourceFile("model/m.keras", str(tmp_path / "m.keras"), 4)


def test_symlink_escaping_the_root_is_rejected(tmp_path):
    outside = tmp_path / "secret.txt"
    write(outside, "do not ship")
    root = tmp_path / "tpl"
    write(root / "app.py")
    (root / "leak.txt").symlink_to(outside)
    with pytest.raises(TemplateError, match="leak.txt.*outside the template root"):
        templates.list_source_files(str(root))


def test_symlinked_folder_escaping_the_root_is_rejected(tmp_path):
    write(tmp_path / "elsewhere" / "x.txt")
    write(tmp_path / "tpl" / "app.py")
    (tmp_path / "tpl" / "data").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(TemplateError, match="'data' is a symlink"):
        templates.list_source_files(str(tmp_path / "tpl"))


def test_symlinks_inside_the_root_are_followed_and_loops_rejected(tmp_path):
    write(tmp_path / "app.py", "x")
    (tmp_path / "main.py").symlink_to(tmp_path / "app.py")
    assert [f.path for f in templates.list_source_files(str(tmp_path))] == ["app.py", "main.py"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(TemplateError, match="symlink loop"):
        templates.list_source_files(str(tmp_path))


def test_broken_symlink_is_an_error(tmp_path):
    write(tmp_path / "app.py")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    with pytest.raises(TemplateError, match="broken symlink"):
        templates.list_source_files(str(tmp_path))


def test_empty_or_missing_template_is_an_error(tmp_path):
    write(tmp_path / "only" / ".git" / "HEAD")
    with pytest.raises(TemplateError, match="holds no files"):
        templates.list_source_files(str(tmp_path / "only"))
    with pytest.raises(TemplateError, match="does not exist"):
        templates.list_source_files(str(tmp_path / "nope"))


def test_memory_filesystem_listing(memory_root):
    fs, root = memory_root
    fs.pipe(f"{root}/app.py", b"x = '$MODEL_REPO_ID'\n")
    fs.pipe(f"{root}/sub/dir/é 1.txt", b"hi")
    fs.pipe(f"{root}/.git/config", b"[core]")
    fs.pipe(f"{root}/pkg/__pycache__/m.pyc", b"\x00")
    fs.pipe(f"{root}/empty", b"")
    files = templates.list_source_files(f"memory://{root}")
    assert [(f.path, f.size) for f in files] == [("app.py", 21), ("empty", 0), ("sub/dir/é 1.txt", 2)]
    with fsspec.open(files[2].url, "rb") as f:
        assert f.read() == b"hi"
    with pytest.raises(TemplateError, match="does not exist"):
        templates.list_source_files(f"memory://{root}-missing")


def test_memory_path_with_dotdot_component_is_rejected(memory_root):
    fs, root = memory_root
    fs.pipe(f"{root}/app.py", b"x")
    fs.pipe(f"{root}/../escape.txt", b"x")
    with pytest.raises(TemplateError, match="escapes the template root"):
        templates.list_source_files(f"memory://{root}")


# is_text -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample",
    [
        b'{"repo": "$MODEL_REPO_ID"}\n',  # .json
        b"FROM python:3.10\nENV MODEL=${MODEL_REPO_ID}\n",  # Dockerfile
        b"#!/bin/sh\necho $$\n",  # extensionless script
        b"",  # empty file
        b"\xef\xbb\xbfwith a BOM\r\n",
        "caf\u00e9 \u2603".encode()[:-1],  # a sample cut inside a multibyte character
    ],
)
def test_text_samples(sample):
    assert templates.is_text(sample)


@pytest.mark.parametrize(
    "sample",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00$MODEL_VERSION",
        b"$MODEL_VERSION\x00",
        "caf\u00e9".encode("latin-1") + b" more text",  # not UTF-8
        "utf-16 text".encode("utf-16"),
    ],
)
def test_binary_samples(sample):
    assert not templates.is_text(sample)


# render_text / render_bytes ------------------------------------------------------------------------------------


def test_both_placeholder_forms_are_replaced_longest_name_first():
    text = "a=$MODEL_REPO_ID b=${MODEL_VERSION} c=${MODEL_REPO_ID}_x d=$MODEL_VERSION."
    assert templates.render_text(text, VALUES, path="f", strict=False) == (
        "a=alice/penguin-model b=v3 c=alice/penguin-model_x d=v3."
    )


def test_unknown_placeholders_and_shell_syntax_stay_as_written():
    text = "$HOME ${PATH} `${x}` $MODEL_VERSIONS ${MODEL_REPO_ID $ $1 $$ $$HOME price: 5$"
    assert templates.render_text(text, VALUES, path="f", strict=False) == text


def test_double_dollar_escapes_a_known_placeholder():
    text = "literal $$MODEL_VERSION and $${MODEL_REPO_ID}, value $MODEL_VERSION"
    assert templates.render_text(text, VALUES, path="f", strict=False) == (
        "literal $MODEL_VERSION and ${MODEL_REPO_ID}, value v3"
    )


def test_values_are_inserted_once_not_rendered_again():
    values = {"A": "$B \\1 ${B}", "B": "no"}
    assert templates.render_text("$A", values, path="f", strict=False) == "$B \\1 ${B}"


def test_strict_error_names_file_line_placeholder_and_fix():
    text = "import os\r\n\r\nREPO = '$MODEL_REPO_ID'\nVERSION = '${MODEL_VERSION}'\nHOME = '$HOME'\n"
    with pytest.raises(PlaceholderError) as err:
        templates.render_text(text, {}, path="src/app.py", strict=True)
    message = str(err.value)
    assert "src/app.py:3: $MODEL_REPO_ID" in message
    assert "src/app.py:4: ${MODEL_VERSION}" in message
    assert "HOME" not in message
    assert "model_hub_repo_id" in message and "model_hub_repo_branch" in message


def test_strict_mode_passes_when_values_are_set_or_escaped():
    text = "'$MODEL_REPO_ID' '$MODEL_VERSION' $$MODEL_OTHER $UNKNOWN"
    assert templates.render_text(text, VALUES, path="f", strict=True) == "'alice/penguin-model' 'v3' $$MODEL_OTHER $UNKNOWN"


def test_render_bytes_keeps_binary_files_byte_identical():
    binary = b"\x89PNG\x00\x00$MODEL_VERSION\xff\xfe"
    assert templates.render_bytes(binary, VALUES, path="logo.png", strict=True) is binary
    latin1 = "caf\u00e9 $MODEL_VERSION".encode("latin-1")
    assert templates.render_bytes(latin1, VALUES, path="x.txt", strict=True) is latin1


def test_render_bytes_keeps_bom_and_crlf():
    data = "\ufeffrepo=$MODEL_REPO_ID\r\nversion=${MODEL_VERSION}\r\n\u00e9\r\n".encode()
    assert templates.render_bytes(data, VALUES, path="x.cfg", strict=False) == (
        "\ufeffrepo=alice/penguin-model\r\nversion=v3\r\n\u00e9\r\n".encode()
    )


# placeholder_values --------------------------------------------------------------------------------------------


def test_placeholder_values_from_spec_fields_and_user_values():
    spec = SpaceSpec(
        repo_id="alice/demo",
        app_path="apps.gradio.img_classifier",
        model_hub_repo_id="alice/model",
        model_hub_repo_branch="v2",
        placeholders={"TEXT_FEATURE": "review", "MODEL_VERSION": "v2"},
    )
    assert templates.placeholder_values(spec) == {
        "MODEL_REPO_ID": "alice/model",
        "MODEL_VERSION": "v2",
        "SPACE_REPO_ID": "alice/demo",
        "TEXT_FEATURE": "review",
    }


def test_unset_model_fields_give_no_values_but_users_may_fill_them():
    spec = SpaceSpec(repo_id="alice/demo", app_path="x")
    assert templates.placeholder_values(spec) == {"SPACE_REPO_ID": "alice/demo"}
    spec = SpaceSpec(repo_id="alice/demo", app_path="x", model_hub_repo_id="a/m", placeholders={"MODEL_VERSION": "v9"})
    assert templates.placeholder_values(spec)["MODEL_VERSION"] == "v9"


def test_a_user_value_contradicting_a_spec_field_is_an_error():
    spec = SpaceSpec(repo_id="alice/demo", app_path="x", model_hub_repo_id="a/m", placeholders={"MODEL_REPO_ID": "b/n"})
    with pytest.raises(SpecError, match="placeholders\\['MODEL_REPO_ID'\\]='b/n' contradicts model_hub_repo_id='a/m'"):
        templates.placeholder_values(spec)


# render_readme -------------------------------------------------------------------------------------------------

TEMPLATE_README = """---
title: Penguins  # shown on the card
emoji: 🐧
colorFrom: blue
colorTo: green
sdk: streamlit
app_file: main.py
pinned: false
license: apache-2.0
tags:
- tfx
- demo
---

# Penguins

Body with $MODEL_REPO_ID and --- a dash line.
---
"""


def test_readme_keeps_template_keys_comments_and_body():
    out = templates.render_readme(TEMPLATE_README, sdk="gradio", app_file="app.py", title=None)
    data = front_matter(out)
    assert data == {
        "title": "Penguins",
        "emoji": "🐧",
        "colorFrom": "blue",
        "colorTo": "green",
        "sdk": "gradio",
        "app_file": "app.py",
        "pinned": False,
        "license": "apache-2.0",
        "tags": ["tfx", "demo"],
    }
    assert "title: Penguins  # shown on the card\n" in out
    assert out.endswith("\n# Penguins\n\nBody with $MODEL_REPO_ID and --- a dash line.\n---\n")


def test_readme_title_and_app_file_defaults():
    out = templates.render_readme(TEMPLATE_README, sdk="streamlit", app_file=None, title="My: demo")
    data = front_matter(out)
    assert (data["title"], data["sdk"], data["app_file"]) == ("My: demo", "streamlit", "main.py")


def test_docker_readme_has_app_port_and_no_app_file():
    data = front_matter(templates.render_readme(TEMPLATE_README, sdk="docker", app_file="app.py", title=None))
    assert data["sdk"] == "docker" and data["app_port"] == 7860 and "app_file" not in data
    data = front_matter(templates.render_readme("---\napp_port: 8501\n---\n", sdk="docker", app_file=None, title="t"))
    assert data == {"app_port": 8501, "title": "t", "sdk": "docker"}


def test_static_readme_defaults_to_index_html():
    data = front_matter(templates.render_readme("# Site\n", sdk="static", app_file=None, title="Site"))
    assert data == {"title": "Site", "sdk": "static", "app_file": "index.html"}


def test_missing_readme_is_generated_and_accepted_by_huggingface_hub():
    from huggingface_hub import SpaceCard

    out = templates.render_readme(None, sdk="gradio", app_file="app.py", title="alice demo")
    card = SpaceCard(out)
    assert (card.data.title, card.data.sdk, card.data.app_file) == ("alice demo", "gradio", "app.py")
    assert "# alice demo" in card.text


def test_readme_without_front_matter_gets_one_and_keeps_its_body():
    out = templates.render_readme("# Hello\n\ntext\n", sdk="gradio", app_file=None, title="hello")
    assert front_matter(out) == {"title": "hello", "sdk": "gradio", "app_file": "app.py"}
    assert out.endswith("---\n\n# Hello\n\ntext\n")


def test_readme_crlf_bom_and_multiline_keys():
    readme = "\ufeff---\r\ntitle: >\r\n  long\r\n  title\r\nsdk: gradio\r\n---\r\nbody\r\n"
    out = templates.render_readme(readme, sdk="streamlit", app_file=None, title="short")
    assert out.startswith("---\r\n") and out.endswith("---\r\nbody\r\n")
    assert front_matter(out) == {"title": "short", "sdk": "streamlit", "app_file": "app.py"}


def test_readme_in_flow_style_is_rewritten_correctly():
    out = templates.render_readme("---\n{title: x, sdk: static, pinned: true}\n---\n", sdk="gradio", app_file=None, title=None)
    assert front_matter(out) == {"title": "x", "sdk": "gradio", "pinned": True, "app_file": "app.py"}


@pytest.mark.parametrize("front", ["title: [unclosed\n", "- a list\n"])
def test_bad_front_matter_is_a_template_error(front):
    with pytest.raises(TemplateError, match="README.md front matter"):
        templates.render_readme(f"---\n{front}---\n", sdk="gradio", app_file=None, title=None)


# default_app_file ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sdk", "files", "expected"),
    [
        ("gradio", ["README.md", "app.py", "main.py"], "app.py"),
        ("gradio", ["demo.py", "model_loader.py"], "demo.py"),
        ("gradio", ["a.py", "b.py"], "app.py"),
        ("streamlit", ["streamlit_app.py", "main.py"], "streamlit_app.py"),
        ("static", ["about.html", "index.html"], "index.html"),
        ("static", ["site/index.html", "home.html"], "home.html"),
        ("docker", ["Dockerfile", "app.py"], None),
    ],
)
def test_default_app_file(sdk, files, expected):
    assert templates.default_app_file(sdk, files) == expected


# model_loader_source / generated_files -------------------------------------------------------------------------


def load_module(path):
    spec = importlib.util.spec_from_file_location(f"model_loader_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_loader_returns_the_path_of_an_unknown_format(tmp_path):
    write(tmp_path / "model_loader.py", templates.model_loader_source())
    write(tmp_path / "model" / "weights.onnx", b"\x08\x07")
    loader = load_module(tmp_path / "model_loader.py")
    assert loader.get_model() == str(tmp_path / "model")
    assert loader.get_model() is loader.get_model()  # cached


def test_model_loader_loads_a_real_tensorflow_saved_model(tmp_path):
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return 2.0 * x

    tf.saved_model.save(Doubler(), str(tmp_path / "model" / "Format-Serving"))
    write(tmp_path / "model_loader.py", templates.model_loader_source())
    model = load_module(tmp_path / "model_loader.py").get_model()
    assert model(tf.constant([1.5])).numpy().tolist() == [3.0]


def test_model_loader_source_rejects_a_bad_folder():
    assert "/ 'models/v1'" in templates.model_loader_source("models/v1/")
    with pytest.raises(SpecError):
        templates.model_loader_source("../model")


def sources(*paths: str) -> list[SourceFile]:
    return [SourceFile(p, f"/src/{p}", 1) for p in paths]


def test_generated_files_with_an_embedded_model():
    spec = SpaceSpec(repo_id="alice/penguins", app_path="x", model_path="/m")
    out = templates.generated_files(spec, sources("app.py"), sources("model/saved_model.pb"), None)
    assert sorted(out) == ["README.md", "model_loader.py"]
    assert front_matter(out["README.md"].decode()) == {"title": "penguins", "sdk": "gradio", "app_file": "app.py"}
    compile(out["model_loader.py"], "model_loader.py", "exec")


def test_generated_files_keep_template_title_app_file_and_loader():
    spec = SpaceSpec(repo_id="alice/penguins", app_path="x", space_sdk="streamlit")
    readme = "---\ntitle: Penguin explorer\napp_file: explore.py\nsdk: gradio\n---\nhi\n"
    files = sources("explore.py", "app.py", "model_loader.py")
    out = templates.generated_files(spec, files, sources("model/m.keras"), readme)
    assert list(out) == ["README.md"]  # the template's own model_loader.py is kept
    data = front_matter(out["README.md"].decode())
    assert data == {"title": "Penguin explorer", "app_file": "explore.py", "sdk": "streamlit"}
    spec = SpaceSpec(repo_id="alice/penguins", app_path="x", title="Custom")
    readme = "---\napp_file: gone.py\n---\n"
    data = front_matter(templates.generated_files(spec, files, None, readme)["README.md"].decode())
    assert (data["title"], data["app_file"]) == ("Custom", "app.py")


def test_template_files_under_model_clash_with_an_embedded_model():
    spec = SpaceSpec(repo_id="alice/penguins", app_path="x", model_path="/m")
    with pytest.raises(TemplateError, match="'model/old.bin' under model/"):
        templates.generated_files(spec, sources("app.py", "model/old.bin"), sources("model/a"), None)
