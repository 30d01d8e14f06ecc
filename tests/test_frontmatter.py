"""README front matter, the default app file, the model loader and the other generated files."""

from __future__ import annotations

import importlib.util
import uuid

import pytest
import yaml

from beam_pusher import frontmatter
from beam_pusher.errors import SpecError, TemplateError
from beam_pusher.sources import SourceFile
from beam_pusher.spec import SpaceSpec


def write(path, data: bytes | str = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n") or readme.startswith("---\r\n")
    return yaml.safe_load(readme.split("---", 2)[1])


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
    out = frontmatter.render_readme(TEMPLATE_README, sdk="gradio", app_file="app.py", title=None)
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
    out = frontmatter.render_readme(TEMPLATE_README, sdk="streamlit", app_file=None, title="My: demo")
    data = front_matter(out)
    assert (data["title"], data["sdk"], data["app_file"]) == ("My: demo", "streamlit", "main.py")


def test_docker_readme_has_app_port_and_no_app_file():
    data = front_matter(frontmatter.render_readme(TEMPLATE_README, sdk="docker", app_file="app.py", title=None))
    assert data["sdk"] == "docker" and data["app_port"] == 7860 and "app_file" not in data
    data = front_matter(frontmatter.render_readme("---\napp_port: 8501\n---\n", sdk="docker", app_file=None, title="t"))
    assert data == {"app_port": 8501, "title": "t", "sdk": "docker"}


def test_static_readme_defaults_to_index_html():
    data = front_matter(frontmatter.render_readme("# Site\n", sdk="static", app_file=None, title="Site"))
    assert data == {"title": "Site", "sdk": "static", "app_file": "index.html"}


def test_missing_readme_is_generated_and_accepted_by_huggingface_hub():
    from huggingface_hub import SpaceCard

    out = frontmatter.render_readme(None, sdk="gradio", app_file="app.py", title="alice demo")
    card = SpaceCard(out)
    assert (card.data.title, card.data.sdk, card.data.app_file) == ("alice demo", "gradio", "app.py")
    assert "# alice demo" in card.text


def test_readme_without_front_matter_gets_one_and_keeps_its_body():
    out = frontmatter.render_readme("# Hello\n\ntext\n", sdk="gradio", app_file=None, title="hello")
    assert front_matter(out) == {"title": "hello", "sdk": "gradio", "app_file": "app.py"}
    assert out.endswith("---\n\n# Hello\n\ntext\n")


def test_readme_crlf_bom_and_multiline_keys():
    readme = "\ufeff---\r\ntitle: >\r\n  long\r\n  title\r\nsdk: gradio\r\n---\r\nbody\r\n"
    out = frontmatter.render_readme(readme, sdk="streamlit", app_file=None, title="short")
    assert out.startswith("---\r\n") and out.endswith("---\r\nbody\r\n")
    assert front_matter(out) == {"title": "short", "sdk": "streamlit", "app_file": "app.py"}


def test_readme_in_flow_style_is_rewritten_correctly():
    readme = "---\n{title: x, sdk: static, pinned: true}\n---\n"
    out = frontmatter.render_readme(readme, sdk="gradio", app_file=None, title=None)
    assert front_matter(out) == {"title": "x", "sdk": "gradio", "pinned": True, "app_file": "app.py"}


@pytest.mark.parametrize("front", ["title: [unclosed\n", "- a list\n"])
def test_bad_front_matter_is_a_template_error(front):
    with pytest.raises(TemplateError, match="README.md front matter"):
        frontmatter.render_readme(f"---\n{front}---\n", sdk="gradio", app_file=None, title=None)


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
    assert frontmatter.default_app_file(sdk, files) == expected


# model_loader_source / generated_files -------------------------------------------------------------------------


def load_module(path):
    spec = importlib.util.spec_from_file_location(f"model_loader_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_loader_returns_the_path_of_an_unknown_format(tmp_path):
    write(tmp_path / "model_loader.py", frontmatter.model_loader_source())
    write(tmp_path / "model" / "weights.onnx", b"\x08\x07")
    loader = load_module(tmp_path / "model_loader.py")
    assert loader.get_model() == str(tmp_path / "model")
    assert loader.get_model() is loader.get_model()  # cached


def test_model_loader_raises_a_clear_error_when_there_is_no_model(tmp_path):
    write(tmp_path / "model_loader.py", frontmatter.model_loader_source())
    loader = load_module(tmp_path / "model_loader.py")
    with pytest.raises(FileNotFoundError, match=r"no model found: .*model does not exist"):
        loader.get_model()
    (tmp_path / "model" / "empty").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no model found: .*model is empty"):
        load_module(tmp_path / "model_loader.py").get_model()


def test_model_loader_finds_the_model_next_to_a_symlinked_module(tmp_path):
    """huggingface_hub's cache: the module is a symlink into blobs/, the model folder sits next to the link."""
    blob = tmp_path / "blobs" / "3f2a"
    write(blob, frontmatter.model_loader_source())
    write(tmp_path / "blobs" / "9c1e", b"\x08\x07")
    snapshot = tmp_path / "snapshots" / "abc"
    (snapshot / "model").mkdir(parents=True)
    (snapshot / "model_loader.py").symlink_to(blob)
    (snapshot / "model" / "weights.onnx").symlink_to(tmp_path / "blobs" / "9c1e")
    loader = load_module(snapshot / "model_loader.py")
    assert loader.get_model() == str(snapshot / "model")


def test_model_loader_loads_a_real_tensorflow_saved_model(tmp_path):
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return 2.0 * x

    tf.saved_model.save(Doubler(), str(tmp_path / "model" / "Format-Serving"))
    write(tmp_path / "model_loader.py", frontmatter.model_loader_source())
    model = load_module(tmp_path / "model_loader.py").get_model()
    assert model(tf.constant([1.5])).numpy().tolist() == [3.0]


def test_model_loader_source_rejects_a_bad_folder():
    assert "/ 'models/v1'" in frontmatter.model_loader_source("models/v1/")
    with pytest.raises(SpecError):
        frontmatter.model_loader_source("../model")


def source_files(*paths: str) -> list[SourceFile]:
    return [SourceFile(p, f"/src/{p}", 1) for p in paths]


def test_generated_files_with_an_embedded_model():
    spec = SpaceSpec(repo_id="alice/penguins", app_path="x", model_path="/m")
    out = frontmatter.generated_files(spec, source_files("app.py"), source_files("model/saved_model.pb"), None)
    assert sorted(out) == ["README.md", "model_loader.py"]
    assert front_matter(out["README.md"].decode()) == {"title": "penguins", "sdk": "gradio", "app_file": "app.py"}
    compile(out["model_loader.py"], "model_loader.py", "exec")


def test_generated_files_keep_template_app_file_and_loader_and_title_the_space_by_its_name():
    spec = SpaceSpec(repo_id="alice/penguins", app_path="x", space_sdk="streamlit")
    readme = "---\ntitle: Penguin explorer\napp_file: explore.py\nsdk: gradio\n---\nhi\n"
    files = source_files("explore.py", "app.py", "model_loader.py")
    out = frontmatter.generated_files(spec, files, source_files("model/m.keras"), readme)
    assert list(out) == ["README.md"]  # the template's own model_loader.py is kept
    data = front_matter(out["README.md"].decode())
    # The template's title names the template; every Space made from it is titled by its own name (SpaceSpec.title).
    assert data == {"title": "penguins", "app_file": "explore.py", "sdk": "streamlit"}
    spec = SpaceSpec(repo_id="alice/penguins", app_path="x", title="Custom")
    readme = "---\napp_file: gone.py\n---\n"
    data = front_matter(frontmatter.generated_files(spec, files, None, readme)["README.md"].decode())
    assert (data["title"], data["app_file"]) == ("Custom", "app.py")


def test_template_files_under_model_clash_with_an_embedded_model():
    spec = SpaceSpec(repo_id="alice/penguins", app_path="x", model_path="/m")
    with pytest.raises(TemplateError, match="'model/old.bin' under model/"):
        frontmatter.generated_files(spec, source_files("app.py", "model/old.bin"), source_files("model/a"), None)


# plan_front_matter: the keys the Hub builds from ---------------------------------------------------------------


def plan(sdk="gradio", paths=("app.py", "requirements.txt"), readme=None, requirements=None, dockerfile=None, **kw):
    spec = SpaceSpec(repo_id="alice/demo", app_path="x", space_sdk=sdk, **kw)
    return frontmatter.plan_front_matter(
        spec, paths, readme, requirements_text=requirements, dockerfile_text=dockerfile
    )


def test_docker_app_port_comes_from_the_config_the_readme_or_the_dockerfile():
    paths = ("Dockerfile", "app.py")
    dockerfile = "FROM python:3.10\nEXPOSE \\\n  8501/tcp 9000\nCMD [\"run\"]\n"
    assert plan("docker", paths, dockerfile=dockerfile).app_port == 8501
    assert plan("docker", paths, dockerfile=dockerfile, app_port=9000).app_port == 9000
    assert plan("docker", paths, "---\napp_port: 9000\n---\n", dockerfile=dockerfile).app_port == 9000
    assert plan("docker", paths, dockerfile="FROM x\nEXPOSE $PORT\n").app_port == 7860  # the Hub's default
    front = plan("docker", paths, dockerfile="FROM python:3.10\nEXPOSE 8080\n")
    assert (front.app_port, front.app_file, front.sdk_version, front.errors) == (8080, None, None, ())
    spec = SpaceSpec(repo_id="alice/demo", app_path="x", space_sdk="docker")
    readme = frontmatter.generated_files(spec, source_files(*paths), None, None, front=front)["README.md"]
    assert front_matter(readme.decode()) == {"title": "demo", "sdk": "docker", "app_port": 8080}


def test_a_docker_port_the_dockerfile_does_not_expose_or_no_dockerfile_is_an_error():
    front = plan("docker", ("Dockerfile",), dockerfile="EXPOSE 8501\n", app_port=7860)
    assert front.errors == (
        "app_port is 7860 (app_port in the config) but the Dockerfile EXPOSEs 8501: the Hub would send traffic to a "
        "port nothing listens on. Fix: set app_port: 8501, or serve and EXPOSE 7860 in the Dockerfile.",
    )
    assert "has none" in plan("docker", ("app.py",)).errors[0]
    assert "is not a port" in plan("docker", ("Dockerfile",), "---\napp_port: http\n---\n", dockerfile="").errors[0]
    spec = SpaceSpec(repo_id="alice/demo", app_path="x", space_sdk="docker")
    with pytest.raises(TemplateError, match="alice/demo: README.md front matter the Hub would not build: a Docker"):
        frontmatter.generated_files(spec, source_files("app.py"), None, None)


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [("gradio==4.44.1\nnumpy\n", "4.44.1"), ("numpy\ngradio == 5.0  # pinned\n", "5.0.0"),
     ("gradio[oauth]==5.9.1", "5.9.1"), ("gradio>=4.0", None), ("gradio==4.*", None), ("numpy", None)],
)
def test_gradio_sdk_version_is_the_full_version_requirements_pin(requirements, expected):
    front = plan(requirements=requirements)
    assert front.sdk_version == expected and front.errors == ()
    assert bool(front.warnings) == (expected is None)
    if expected is None:
        assert front.warnings[0].startswith("no gradio version: README.md sets no sdk_version")


def test_a_readme_sdk_version_must_be_full_and_agree_with_requirements():
    assert plan(readme='---\nsdk: gradio\nsdk_version: "4.44.1"\n---\n', requirements="gradio==4.44.1").errors == ()
    assert plan(readme='---\nsdk_version: "4.44.1"\n---\n', requirements="gradio>=4").sdk_version == "4.44.1"
    (error,) = plan(readme="---\nsdk_version: 4.44\n---\n", requirements="gradio").errors
    assert error.startswith("README.md's sdk_version '4.44' is not a full Gradio version (YAML read it as a number)")
    (error,) = plan(readme='---\nsdk_version: "4.44.1"\n---\n', requirements="x\ngradio==5.1.0\n").errors
    assert error.startswith(
        "README.md's sdk_version '4.44.1' disagrees with gradio==5.1.0 in requirements.txt (line 2)"
    )


def test_switching_space_sdk_drops_the_templates_sdk_version():
    readme = '---\nsdk: streamlit\nsdk_version: "1.28.0"\napp_file: app.py\n---\n'
    front = plan("gradio", readme=readme, requirements="gradio==4.44.1\n")
    assert front.sdk_version == "4.44.1" and front.errors == ()
    out = frontmatter.render_readme(readme, sdk="gradio", app_file="app.py", title="t", sdk_version=front.sdk_version)
    assert front_matter(out)["sdk_version"] == "4.44.1"
    data = front_matter(frontmatter.render_readme(readme, sdk="docker", app_file=None, title="t"))
    assert data == {"sdk": "docker", "title": "t", "app_port": 7860}
    # The same sdk keeps the template's version.
    assert front_matter(frontmatter.render_readme(readme, sdk="streamlit", app_file=None, title="t"))[
        "sdk_version"] == "1.28.0"


def test_a_missing_app_file_is_a_warning():
    (warning,) = plan(paths=("main2.py", "util.py"), requirements="gradio==4.44.1").warnings
    assert warning.startswith("app_file 'app.py' (the usual file of a gradio Space) is not in the template")
    (warning,) = plan(paths=("app.py",), readme="---\napp_file: gone.py\n---\n", requirements="gradio==4.44.1").warnings
    assert warning.startswith("README.md's app_file 'gone.py' is not in the template, so the Space runs 'app.py'")
    assert plan("static", paths=("index.html",)).warnings == ()
