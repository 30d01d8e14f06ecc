"""Static checks of the built-in app templates (running them under gradio/streamlit happens in their own env)."""

from __future__ import annotations

import ast
import os
import py_compile
import re

import pytest
import yaml

from beam_pusher import frontmatter, sources, templates

APPS = {
    "apps.gradio.img_classifier": "gradio",
    "apps.gradio.text_classifier": "gradio",
    "apps.streamlit.img_classifier": "streamlit",
}
# What a Space's requirements.txt must pull in besides the SDK (which the Hub installs from the README's sdk).
REQUIRED = ("tensorflow-cpu", "huggingface_hub", "pillow", "numpy")
# Top-level imports an app may make: nothing that loads a model or reaches the network at import time.
LIGHT_IMPORTS = {"__future__", "functools", "math", "os", "pathlib", "gradio", "streamlit", "numpy", "PIL"}
VALUES = {"MODEL_REPO_ID": "alice/penguin-model", "MODEL_VERSION": "v3", "SPACE_REPO_ID": "alice/demo"}


def app_dir(name: str) -> str:
    return sources.resolve_app_path(name)


def app_tree(name: str) -> ast.Module:
    with open(os.path.join(app_dir(name), "app.py"), encoding="utf-8") as f:
        return ast.parse(f.read())


def assigned_constants(tree: ast.Module) -> dict[str, object]:
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }


def test_the_builtin_apps_are_exactly_these():
    assert sources.builtin_apps() == sorted(APPS)


@pytest.mark.parametrize("name", sorted(APPS))
def test_files_present_and_listed(name):
    paths = [f.path for f in sources.list_source_files(app_dir(name))]
    assert paths == ["README.md", "app.py", "requirements.txt"]


@pytest.mark.parametrize("name", sorted(APPS))
def test_app_compiles(name, tmp_path):
    py_compile.compile(os.path.join(app_dir(name), "app.py"), cfile=str(tmp_path / "app.pyc"), doraise=True)


def test_model_loader_compiles_and_is_not_an_app(tmp_path):
    path = os.path.join(sources.BUILTIN_APPS_URL, "_model_loader.py")
    py_compile.compile(path, cfile=str(tmp_path / "loader.pyc"), doraise=True)
    assert not any("_model_loader" in name for name in sources.builtin_apps())


@pytest.mark.parametrize("name", sorted(APPS))
def test_readme_front_matter_is_valid_with_the_right_sdk(name):
    from huggingface_hub import SpaceCard

    with open(os.path.join(app_dir(name), "README.md"), encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("---\n")
    data = yaml.safe_load(text.split("---", 2)[1])
    assert data["sdk"] == APPS[name]
    assert data["app_file"] == "app.py"
    assert data["title"] and data["emoji"]
    assert len(data["short_description"]) <= 60  # the Hub's limit
    card = SpaceCard(text)
    assert card.data.sdk == APPS[name]
    rendered = frontmatter.render_readme(
        templates.render_text(text, VALUES, path="README.md", strict=True), sdk=APPS[name], app_file=None, title=None
    )
    assert yaml.safe_load(rendered.split("---", 2)[1]) == data
    assert "$SPACE_REPO_ID" not in rendered


@pytest.mark.parametrize("name", sorted(APPS))
def test_requirements_list_the_runtime_unpinned(name):
    with open(os.path.join(app_dir(name), "requirements.txt"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    packages = {re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower() for line in lines}
    assert {APPS[name], *REQUIRED} <= packages
    assert not any("==" in line or "<" in line for line in lines)


@pytest.mark.parametrize("name", sorted(APPS))
def test_hub_mode_placeholders_and_embedded_fallback_are_in_the_code(name):
    tree = app_tree(name)
    constants = assigned_constants(tree)
    assert constants["MODEL_REPO_ID"] == "$MODEL_REPO_ID"
    assert constants["MODEL_VERSION"] == "$MODEL_VERSION"
    source = ast.unparse(tree)
    assert "snapshot_download(repo_id, revision=revision)" in source
    assert "import model_loader" in source and "model_loader.get_model()" in source
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"predict", "load_model"} <= functions


@pytest.mark.parametrize("name", sorted(APPS))
def test_rendered_app_fills_the_placeholders_and_still_compiles(name):
    with open(os.path.join(app_dir(name), "app.py"), "rb") as f:
        source = f.read()
    rendered = templates.render_bytes(source, VALUES, path="app.py", strict=True)
    tree = ast.parse(rendered)
    constants = assigned_constants(tree)
    assert (constants["MODEL_REPO_ID"], constants["MODEL_VERSION"]) == ("alice/penguin-model", "v3")
    assert b"$MODEL_" not in rendered
    compile(rendered, "app.py", "exec")


@pytest.mark.parametrize("name", sorted(APPS))
def test_imports_at_module_level_are_light(name):
    tree = app_tree(name)
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= LIGHT_IMPORTS, imported - LIGHT_IMPORTS
    assert {"tensorflow", "huggingface_hub", "model_loader"}.isdisjoint(imported)


@pytest.mark.parametrize("name", sorted(APPS))
def test_the_app_is_only_started_under_main(name):
    tree = app_tree(name)
    top_level_calls = [
        ast.unparse(node.value) for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
    ]
    assert top_level_calls == []
    guard = tree.body[-1]
    assert isinstance(guard, ast.If) and ast.unparse(guard.test) == "__name__ == '__main__'"
    started = ast.unparse(guard.body[0])
    assert started == ("demo.launch()" if APPS[name] == "gradio" else "main()")


@pytest.mark.parametrize("name", sorted(APPS))
def test_unfilled_placeholders_select_the_embedded_model(name):
    """The app's own test of a placeholder: still '$...' means not filled, so the embedded model is used."""
    tree = app_tree(name)
    [filled] = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "_filled"]
    namespace: dict = {}
    exec(compile(ast.Module(body=[filled], type_ignores=[]), "app.py", "exec"), namespace)  # noqa: S102
    assert namespace["_filled"]("$MODEL_REPO_ID") is None
    assert namespace["_filled"]("") is None
    assert namespace["_filled"]("alice/model") == "alice/model"

