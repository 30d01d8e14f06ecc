"""Rendering and front matter, deployed: large text files, placeholders per Space, and README.md keys the Hub builds.

Each test deploys to the local Hub over HTTP with the real huggingface_hub client and reads back what the Space holds;
where the Hub's builder decides, the local Hub's runtime says whether the Space would run.
"""

from __future__ import annotations

import textwrap

import pytest
import yaml

from beam_pusher import templates
from beam_pusher.config import parse_config
from beam_pusher.errors import ConfigError
from beam_pusher.runner import run_deploy
from beam_pusher.spec import SpaceSpec
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV


def deploy(hub, specs, **kwargs):
    kwargs.setdefault("backoff_seconds", 0.05)
    return run_deploy(specs, endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", **kwargs)


def write(folder, files: dict[str, str | bytes]):
    for path, content in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


def front_matter(hub, repo_id) -> dict:
    return yaml.safe_load(hub.read_file(repo_id, "README.md").decode().split("---", 2)[1])


GRADIO_APP = {"app.py": "import gradio\n", "requirements.txt": "gradio==4.44.1\n"}
MODEL = "alice/penguin-classifier"


# Large text files ---------------------------------------------------------------------------------------------


def big_csv(rows: int) -> tuple[str, str]:
    """A CSV over 10 MiB whose placeholders fall on every side of the 256 KiB chunk boundaries; and its rendering."""
    text = "".join(f"{i:08d},$MODEL_REPO_ID,${{MODEL_VERSION}},$COLOR\n" for i in range(rows))
    return text, text.replace("$MODEL_REPO_ID", MODEL).replace("${MODEL_VERSION}", "v7").replace("$COLOR", "teal")


def test_a_text_file_over_10_mib_is_rendered_and_deployed(hub, tmp_path):
    text, rendered = big_csv(300_000)
    assert len(text.encode()) > templates.RENDER_LIMIT and len(rendered.encode()) > templates.RENDER_LIMIT
    write(tmp_path / "tpl", {**GRADIO_APP, "data/big.csv": text})
    spec = SpaceSpec(repo_id=f"{hub.username}/big-text", app_path=str(tmp_path / "tpl"), strict_placeholders=True,
                     model_hub_repo_id=MODEL, model_hub_repo_branch="v7", placeholders={"COLOR": "teal"})
    (result,) = deploy(hub, [spec])
    assert result.error is None and result.committed, result
    assert hub.read_file(spec.repo_id, "data/big.csv") == rendered.encode()
    (again,) = deploy(hub, [spec])  # the streamed rendering hashes the same: nothing to upload
    assert again.error is None and not again.committed and again.commit_id == result.commit_id


def test_strict_mode_never_skips_a_large_text_file(hub, tmp_path):
    text, _ = big_csv(300_000)
    write(tmp_path / "tpl", {**GRADIO_APP, "data/big.csv": text + "tail,${MODEL_VERSON}\n"})
    spec = SpaceSpec(repo_id=f"{hub.username}/big-strict", app_path=str(tmp_path / "tpl"), strict_placeholders=True,
                     model_hub_repo_id=MODEL, model_hub_repo_branch="v7", placeholders={"COLOR": "teal"})
    (result,) = deploy(hub, [spec])
    assert not result.pushed
    assert "data/big.csv:300001: ${MODEL_VERSON} has no value" in result.error
    assert hub.head(spec.repo_id) is None


# Placeholders, the whole Space at once --------------------------------------------------------------------------


def placeholder_template(tmp_path):
    return write(tmp_path / "tpl", {
        **GRADIO_APP,
        "README.md": "---\ntitle: $TITLE\n---\nColor: ${COLOR}\n",
        "app.py": "color = '${COLOR}'\nsize = '${SIZE}'\nshade = '$COLOR_DARK'\nhome = '$HOME'\n",
        "static/style.css": "body { color: ${COLOR}; border: ${BORDER}; }\n",
    })


def test_strict_placeholders_report_every_undefined_and_every_unused_name(hub, tmp_path):
    spec = SpaceSpec(repo_id=f"{hub.username}/strict-all", app_path=str(placeholder_template(tmp_path)),
                     placeholders={"COLOR": "teal", "TITLE": "Demo", "UNUSED": "x"}, strict_placeholders=True)
    (result,) = deploy(hub, [spec])
    assert not result.pushed and hub.head(spec.repo_id) is None
    assert result.error.startswith(
        f"{spec.repo_id}: app.py:2: ${{SIZE}}; app.py:3: $COLOR_DARK; static/style.css:1: ${{BORDER}} have no "
        "value; $UNUSED (placeholders.UNUSED) is defined but used by no file, and strict_placeholders is on. Fix:"
    )
    assert "HOME" not in result.error


def test_without_strict_mode_the_space_is_deployed_with_one_warning(hub, tmp_path, caplog):
    spec = SpaceSpec(repo_id=f"{hub.username}/lenient", app_path=str(placeholder_template(tmp_path)),
                     placeholders={"COLOR": "teal", "TITLE": "Demo", "UNUSED": "x"})
    (result,) = deploy(hub, [spec])
    assert result.error is None and result.committed
    (warning,) = [w for w in result.warnings if w.startswith("placeholders:")]
    assert "app.py:2: ${SIZE}" in warning and "static/style.css:1: ${BORDER}" in warning
    assert "$UNUSED (placeholders.UNUSED) is defined but used by no file" in warning
    assert hub.read_file(spec.repo_id, "app.py") == (
        b"color = 'teal'\nsize = '${SIZE}'\nshade = '$COLOR_DARK'\nhome = '$HOME'\n"
    )
    # The README is rendered too; its title is the Space's name (SpaceSpec.title), not the template's.
    assert front_matter(hub, spec.repo_id)["title"] == "lenient"
    assert hub.read_file(spec.repo_id, "README.md").endswith(b"Color: teal\n")
    assert [r.message for r in caplog.records].count(f"{spec.repo_id}: {warning}") == 1


# Front matter the Hub builds -------------------------------------------------------------------------------------


def test_a_docker_space_gets_the_port_its_dockerfile_exposes_and_runs(hub, tmp_path):
    write(tmp_path / "tpl", {"Dockerfile": "FROM python:3.10-slim\nEXPOSE 8080\nCMD [\"python\", \"-m\", "
                             "\"http.server\", \"8080\"]\n", "index.html": "hi\n"})
    spec = SpaceSpec(repo_id=f"{hub.username}/docker-port", app_path=str(tmp_path / "tpl"), space_sdk="docker")
    (result,) = deploy(hub, [spec], wait=True, wait_timeout=60)
    assert result.error is None and result.runtime_stage == "RUNNING", result
    data = front_matter(hub, spec.repo_id)
    assert (data["sdk"], data["app_port"]) == ("docker", 8080) and "app_file" not in data


def test_a_docker_port_from_the_config_that_the_dockerfile_does_not_expose_fails_before_writing(hub, tmp_path):
    write(tmp_path / "tpl", {"Dockerfile": "FROM python:3.10-slim\nEXPOSE 8080\n"})
    spec = SpaceSpec(repo_id=f"{hub.username}/docker-bad-port", app_path=str(tmp_path / "tpl"), space_sdk="docker",
                     app_port=7860)
    (result,) = deploy(hub, [spec])
    assert not result.pushed and "app_port is 7860 (app_port in the config) but the Dockerfile EXPOSEs 8080" in (
        result.error)
    assert hub.head(spec.repo_id) is None


def test_a_gradio_space_gets_the_full_sdk_version_it_pins_and_runs(hub, tmp_path):
    write(tmp_path / "tpl", {**GRADIO_APP, "README.md": "---\nsdk: streamlit\nsdk_version: 1.28.0\n---\nhi\n"})
    spec = SpaceSpec(repo_id=f"{hub.username}/gradio-pinned", app_path=str(tmp_path / "tpl"))
    (result,) = deploy(hub, [spec], wait=True, wait_timeout=60)
    assert result.error is None and result.runtime_stage == "RUNNING", result
    assert result.warnings == ()
    data = front_matter(hub, spec.repo_id)
    assert (data["sdk"], data["sdk_version"], data["app_file"]) == ("gradio", "4.44.1", "app.py")


def test_a_readme_sdk_version_that_requirements_contradict_fails_before_writing(hub, tmp_path):
    write(tmp_path / "tpl", {**GRADIO_APP, "README.md": '---\nsdk: gradio\nsdk_version: "5.0.1"\n---\n'})
    spec = SpaceSpec(repo_id=f"{hub.username}/gradio-conflict", app_path=str(tmp_path / "tpl"))
    (result,) = deploy(hub, [spec])
    assert not result.pushed and hub.head(spec.repo_id) is None
    assert "sdk_version '5.0.1' disagrees with gradio==4.44.1 in requirements.txt (line 1)" in result.error


def test_a_missing_app_file_is_a_warning_in_the_result(hub, tmp_path):
    write(tmp_path / "tpl", {"demo_one.py": "a\n", "demo_two.py": "b\n", "requirements.txt": "gradio==4.44.1\n"})
    spec = SpaceSpec(repo_id=f"{hub.username}/no-app-file", app_path=str(tmp_path / "tpl"))
    (result,) = deploy(hub, [spec])
    assert result.error is None and result.committed
    (warning,) = result.warnings
    assert warning.startswith("app_file 'app.py' (the usual file of a gradio Space) is not in the template")


# validate ----------------------------------------------------------------------------------------------------------


def test_validate_warns_about_streamlit_and_reports_front_matter_the_hub_would_not_build(tmp_path):
    write(tmp_path / "ok", GRADIO_APP)
    write(tmp_path / "bad", {**GRADIO_APP, "README.md": "---\nsdk_version: 4.44\n---\n"})
    write(tmp_path / "st", {"app.py": "import streamlit\n", "requirements.txt": "streamlit\n"})
    config = textwrap.dedent("""\
        spaces:
          - repo_id: user/ok
            app_path: ok
          - repo_id: user/st
            app_path: st
            space_sdk: streamlit
        """)
    parsed = parse_config(config, base_dir=str(tmp_path))
    warning, pin = parsed.warnings
    assert pin.startswith(f"<string>:4: spaces[1].app_path: {tmp_path / 'st'}: no streamlit version: README.md sets "
                          "no sdk_version")
    assert warning.startswith("<string>:4: spaces[1].space_sdk: the Hub no longer creates Streamlit Spaces: if this "
                              "Space does not exist yet, deploy it as a Docker Space (space_sdk: docker")
    with pytest.raises(ConfigError) as info:
        parse_config(config + "  - repo_id: user/bad\n    app_path: bad\n", base_dir=str(tmp_path))
    (problem,) = info.value.problems
    assert problem.startswith(f"<string>:7: spaces[2].app_path: {tmp_path / 'bad'}: README.md's sdk_version '4.44' "
                              "is not a full Gradio version")
    with pytest.raises(ConfigError, match="app_port=8501 is set for a gradio Space, but only Docker Spaces"):
        parse_config("spaces:\n  - repo_id: user/ok\n    app_path: ok\n    app_port: 8501\n", base_dir=str(tmp_path))
    write(tmp_path / "dk", {"Dockerfile": "FROM python:3.10-slim\nEXPOSE 8501\n"})
    docker = parse_config("spaces:\n  - {repo_id: user/d, app_path: dk, space_sdk: docker, app_port: 8501}\n",
                          base_dir=str(tmp_path))
    assert (docker.specs[0].app_port, docker.warnings) == (8501, ())
