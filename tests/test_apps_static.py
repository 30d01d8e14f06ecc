"""Static checks of the built-in app templates (running them under gradio/streamlit happens in their own env)."""

from __future__ import annotations

import ast
import json
import os
import py_compile
import re

import pytest
import yaml

from beam_pusher import frontmatter, sources, templates

APPS = {
    "apps.gradio.img_classifier": "gradio",
    "apps.gradio.text_classifier": "gradio",
    "apps.streamlit.img_classifier": "docker",  # the Hub's form of a new Streamlit Space: a Dockerfile on port 8501
}
# The UI framework each app imports and its requirements.txt installs.
FRAMEWORKS = {
    "apps.gradio.img_classifier": "gradio",
    "apps.gradio.text_classifier": "gradio",
    "apps.streamlit.img_classifier": "streamlit",
}
# What a Space's requirements.txt must pull in besides the SDK (which the Hub installs from the README's sdk).
REQUIRED = ("tensorflow-cpu", "huggingface_hub", "pillow", "numpy")
# Top-level imports an app may make: nothing that loads a model or reaches the network at import time.
LIGHT_IMPORTS = {"__future__", "functools", "math", "os", "pathlib", "gradio", "streamlit", "numpy", "PIL"}
VALUES = {"MODEL_REPO_ID": "alice/penguin-model", "MODEL_VERSION": "v3", "SPACE_REPO_ID": "alice/demo"}
GRADIO_VERSION = "6.31.0"  # the gradio the Gradio templates pin, and so the sdk_version their Spaces get


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
    docker = ["Dockerfile"] if APPS[name] == "docker" else []
    assert paths == [*docker, "README.md", "app.py", "requirements.txt"]


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
    if APPS[name] == "docker":
        assert data["app_port"] == 8501 and "app_file" not in data
    else:
        assert data["app_file"] == "app.py"
        assert data["sdk_version"] == GRADIO_VERSION  # the template builds as it is, with the gradio it pins
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
def test_requirements_list_the_runtime_unpinned_but_the_gradio_sdk(name):
    with open(os.path.join(app_dir(name), "requirements.txt"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    packages = {re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower() for line in lines}
    assert {FRAMEWORKS[name], *REQUIRED} <= packages
    # The Hub installs a Gradio Space's gradio from sdk_version, which must be a full version that agrees with
    # requirements.txt: so gradio is pinned (beam_pusher writes the pin as sdk_version); nothing else is.
    pinned = [line for line in lines if "==" in line or "<" in line]
    assert pinned == ([f"gradio=={GRADIO_VERSION}"] if APPS[name] == "gradio" else [])


@pytest.mark.parametrize("name", sorted(APPS))
def test_the_deployed_front_matter_is_what_the_hub_builds(name):
    """The README.md a deploy writes: a full sdk_version equal to the gradio pin, or the Docker port it EXPOSEs."""
    from beam_pusher.localhub import builder
    from beam_pusher.spec import SpaceSpec

    folder = app_dir(name)
    files = sources.list_source_files(folder)
    spec = SpaceSpec(repo_id="alice/demo", app_path=name, space_sdk=APPS[name], model_hub_repo_id="alice/model")
    texts, _ = frontmatter.read_front_matter_sources(files, VALUES)
    front = frontmatter.plan_front_matter(
        spec, [f.path for f in files], texts["README.md"], requirements_text=texts["requirements.txt"],
        dockerfile_text=texts.get("Dockerfile"),
    )
    assert (front.errors, front.warnings) == ((), ())
    readme = frontmatter.generated_files(spec, files, None, texts["README.md"], front=front)["README.md"]
    data = yaml.safe_load(readme.decode().split("---", 2)[1])
    if APPS[name] == "gradio":
        assert data["sdk_version"] == GRADIO_VERSION and data["app_file"] == "app.py"
    else:
        assert data["app_port"] == 8501 and "sdk_version" not in data
    # The local Hub's builder, which checks what the Hub checks, builds it.
    space = {f.path: open(f.url, "rb").read() for f in files}  # noqa: SIM115 - small files, read once
    space["README.md"] = readme
    plan = builder.check_space(APPS[name], list(space), space.get)
    assert plan.stage is None, plan.error
    assert plan.app_port == (8501 if APPS[name] == "docker" else builder.DEFAULT_APP_PORT)


def test_the_streamlit_dockerfile_serves_app_py_on_the_readme_port():
    with open(os.path.join(app_dir("apps.streamlit.img_classifier"), "Dockerfile"), encoding="utf-8") as f:
        dockerfile = f.read()
    assert re.search(r"^FROM python:3\.\d+", dockerfile, re.M)
    assert re.search(r"^RUN pip install .*-r requirements.txt$", dockerfile, re.M)
    assert re.search(r"^EXPOSE 8501$", dockerfile, re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd[:3] == ["streamlit", "run", "app.py"] and "--server.port=8501" in cmd
    assert "--server.address=0.0.0.0" in cmd  # the Hub reaches the container from outside


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

