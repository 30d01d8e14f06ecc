"""The Space builder: front matter checks (CONFIG_ERROR), build failures (BUILD_ERROR), crashes (RUNTIME_ERROR),
the build and run logs that ``fetch_space_logs`` reads, and restart, pause and sleep as the runtime shows them."""

from __future__ import annotations

import pathlib
import time

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from beam_pusher.localhub import RUNTIME_ERROR_MARKER, LocalHub
from beam_pusher.localhub.builder import DEFAULT_GRADIO_VERSION, check_space

APPS = pathlib.Path(__file__).resolve().parents[2] / "beam_pusher" / "apps"
GRADIO_README = "---\ntitle: Demo\nsdk: gradio\n{extra}---\n# Demo\n"
DOCKER_README = "---\ntitle: Box\nsdk: docker\n{extra}---\n"


def _space(hub_api: HfApi, repo_id: str, files: dict[str, bytes | str], sdk: str = "gradio") -> str:
    """Creates the Space, commits ``files`` in one commit and returns the runtime stage right after."""
    hub_api.create_repo(repo_id, repo_type="space", space_sdk=sdk)
    operations = [CommitOperationAdd(path, content.encode() if isinstance(content, str) else content)
                  for path, content in files.items()]
    hub_api.create_commit(repo_id, operations, commit_message="deploy", repo_type="space")
    return hub_api.get_space_runtime(repo_id).stage


def _gradio(extra: str = "", requirements: str = "gradio>=4.0\nnumpy\n") -> dict[str, str]:
    return {"README.md": GRADIO_README.format(extra=extra), "app.py": "import gradio\n",
            "requirements.txt": requirements}


def test_a_good_space_builds_then_runs_and_logs_both(local_hub, hub_api):
    repo_id = f"{local_hub.username}/good"
    assert _space(hub_api, repo_id, _gradio('sdk_version: "4.44.1"\n', "gradio==4.44.1\nnumpy\n")) == "RUNNING"
    build = list(hub_api.fetch_space_logs(repo_id, build=True))
    assert build[0].startswith("===== Build Queued at ") and local_hub.head(repo_id)[:7] in build[0]
    assert "--> Installing gradio==4.44.1\n" in build and "    gradio==4.44.1\n" in build
    assert build[-1] == "--> Build done: the image is ready\n"
    run = list(hub_api.fetch_space_logs(repo_id))
    assert run[0].startswith("===== Application Startup at ")
    assert "Running on local URL:  http://0.0.0.0:7860" in run[1]
    assert local_hub.space_logs(repo_id) == [line.rstrip("\n") for line in run]
    assert "errorMessage" not in hub_api.get_space_runtime(repo_id).raw


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('sdk_version: "4.44"\n', "sdk_version '4.44' in README.md is not a full Gradio version"),
        ("sdk_version: 4.44\n", "YAML read it as a number: quote it"),
        ("app_file: main.py\n", "application file 'main.py' (app_file in README.md) is not in the Space"),
    ],
)
def test_front_matter_the_builder_rejects_ends_in_config_error(local_hub, hub_api, extra, problem):
    repo_id = f"{local_hub.username}/config"
    assert _space(hub_api, repo_id, _gradio(extra)) == "CONFIG_ERROR"
    runtime = hub_api.get_space_runtime(repo_id)
    assert problem in runtime.raw["errorMessage"] and runtime.hardware is None
    build = list(hub_api.fetch_space_logs(repo_id, build=True))
    assert any(line.startswith("Configuration error: ") and problem in line for line in build)
    assert "spaces-config-reference" in build[-1]
    assert list(hub_api.fetch_space_logs(repo_id)) == []  # nothing ran


def test_a_readme_without_front_matter_is_a_config_error(local_hub, hub_api):
    repo_id = f"{local_hub.username}/bare"
    files = {"README.md": "# Just a title\n", "app.py": "print(1)\n"}
    assert _space(hub_api, repo_id, files) == "CONFIG_ERROR"
    assert "README.md has no YAML front matter" in hub_api.get_space_runtime(repo_id).raw["errorMessage"]
    hub_api.create_commit(repo_id, [CommitOperationDelete("README.md")], commit_message="rm", repo_type="space")
    assert "the Space has no README.md" in hub_api.get_space_runtime(repo_id).raw["errorMessage"]


def test_a_gradio_pin_that_disagrees_with_sdk_version_is_a_build_error(local_hub, hub_api):
    repo_id = f"{local_hub.username}/pinned"
    files = _gradio('sdk_version: "4.44.1"\n', "numpy\ngradio==4.40.0\n")
    assert _space(hub_api, repo_id, files) == "BUILD_ERROR"
    message = hub_api.get_space_runtime(repo_id).raw["errorMessage"]
    assert "gradio==4.44.1 (sdk_version in README.md) and gradio==4.40.0 (requirements.txt, line 2)" in message
    build = list(hub_api.fetch_space_logs(repo_id, build=True))
    assert build[-1].startswith("ERROR: Cannot install gradio==4.44.1")
    hub_api.create_commit(repo_id, [CommitOperationAdd("requirements.txt", b"numpy\ngradio==4.44.1\n")],
                          commit_message="agree", repo_type="space")
    assert hub_api.get_space_runtime(repo_id).stage == "RUNNING"


def test_without_sdk_version_the_default_gradio_must_satisfy_the_pin(local_hub, hub_api):
    repo_id = f"{local_hub.username}/default"
    assert _space(hub_api, repo_id, _gradio(requirements="gradio==4.44.1\n")) == "BUILD_ERROR"
    assert f"gradio=={DEFAULT_GRADIO_VERSION} (the default Gradio)" in hub_api.get_space_runtime(repo_id).raw[
        "errorMessage"]


def test_an_unreadable_requirement_is_a_build_error(local_hub, hub_api):
    repo_id = f"{local_hub.username}/typo"
    assert _space(hub_api, repo_id, _gradio(requirements="# ok\n-r base.txt\nnumpy>=>1\n")) == "BUILD_ERROR"
    assert "Invalid requirement: 'numpy>=>1' (requirements.txt, line 3)" in hub_api.get_space_runtime(
        repo_id).raw["errorMessage"]


def test_docker_app_port_must_match_the_dockerfiles_expose(local_hub, hub_api):
    repo_id = f"{local_hub.username}/streamlit-box"
    dockerfile = "FROM python:3.10\nRUN pip install streamlit\nEXPOSE 8501\nCMD streamlit run app.py\n"
    files = {"README.md": DOCKER_README.format(extra=""), "Dockerfile": dockerfile, "app.py": "import streamlit\n"}
    assert _space(hub_api, repo_id, files, sdk="docker") == "CONFIG_ERROR"
    message = hub_api.get_space_runtime(repo_id).raw["errorMessage"]
    assert "app_port is 7860 (the default, as README.md sets no app_port) but the Dockerfile EXPOSEs 8501" in message
    assert "Set app_port: 8501" in message
    readme = DOCKER_README.format(extra="app_port: 8501\n").encode()
    hub_api.create_commit(repo_id, [CommitOperationAdd("README.md", readme)], commit_message="port", repo_type="space")
    assert hub_api.get_space_runtime(repo_id).stage == "RUNNING"
    assert "--> EXPOSE 8501\n" in list(hub_api.fetch_space_logs(repo_id, build=True))
    assert "Container started: the app answers on port 8501\n" in list(hub_api.fetch_space_logs(repo_id))


def test_docker_app_port_must_be_a_port(local_hub, hub_api):
    repo_id = f"{local_hub.username}/bad-port"
    files = {"README.md": DOCKER_README.format(extra="app_port: web\n"), "Dockerfile": "FROM python:3.10\n"}
    assert _space(hub_api, repo_id, files, sdk="docker") == "CONFIG_ERROR"
    assert "app_port 'web' in README.md is not a port" in hub_api.get_space_runtime(repo_id).raw["errorMessage"]


def test_streamlit_spaces_build_with_a_warning_about_the_docker_form(local_hub, hub_api):
    repo_id = f"{local_hub.username}/legacy"
    files = {"README.md": "---\nsdk: streamlit\napp_file: app.py\n---\n", "app.py": "import streamlit\n"}
    assert _space(hub_api, repo_id, files, sdk="streamlit") == "RUNNING"
    build = list(hub_api.fetch_space_logs(repo_id, build=True))
    assert any("streamlit SDK is no longer offered for new Spaces" in line and "app_port: 8501" in line
               for line in build)


def test_a_marker_file_makes_the_app_crash_on_every_start(local_hub, hub_api):
    repo_id = f"{local_hub.username}/crashing"
    files = {**_gradio(), RUNTIME_ERROR_MARKER: "Traceback (most recent call last):\nKeyError: 'MODEL_DIR'\n"}
    assert _space(hub_api, repo_id, files) == "RUNTIME_ERROR"
    assert hub_api.get_space_runtime(repo_id).raw["errorMessage"] == "Exit code: 1. Reason: KeyError: 'MODEL_DIR'"
    run = list(hub_api.fetch_space_logs(repo_id))
    assert run[0].startswith("===== Application Startup at ") and run[-2:] == [
        "Traceback (most recent call last):\n", "KeyError: 'MODEL_DIR'\n"]
    assert hub_api.restart_space(repo_id).stage == "RUNTIME_ERROR"  # the same code crashes again
    hub_api.create_commit(repo_id, [CommitOperationDelete(RUNTIME_ERROR_MARKER)], commit_message="fix",
                          repo_type="space")
    assert hub_api.get_space_runtime(repo_id).stage == "RUNNING"


def test_fail_space_run_crashes_the_current_run_until_a_restart(local_hub, hub_api):
    repo_id = f"{local_hub.username}/flaky-app"
    assert _space(hub_api, repo_id, _gradio()) == "RUNNING"
    local_hub.fail_space_run(repo_id, "MemoryError: the model does not fit in 16 GB")
    runtime = hub_api.get_space_runtime(repo_id)
    assert (runtime.stage, runtime.hardware) == ("RUNTIME_ERROR", None)
    assert runtime.raw["errorMessage"] == "Exit code: 1. Reason: MemoryError: the model does not fit in 16 GB"
    assert local_hub.space_logs(repo_id)[-1] == "MemoryError: the model does not fit in 16 GB"
    assert local_hub.space_state(repo_id).runtime["stage"] == "RUNTIME_ERROR"
    assert hub_api.restart_space(repo_id).stage == "RUNNING"
    assert not any("MemoryError" in line for line in hub_api.fetch_space_logs(repo_id))


def test_wait_for_space_and_follow_see_a_build_through(tmp_path):
    # 2.5 s: the no-follow read stops at the server's Date + 1 s (Date has whole seconds), before the last line.
    with LocalHub(tmp_path / "hub", runtime_delay=2.5) as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        repo_id = f"{hub.username}/slow"
        assert _space(api, repo_id, _gradio('sdk_version: "4.44.1"\n', "gradio==4.40.0\n")) == "BUILDING"
        now = list(api.fetch_space_logs(repo_id, build=True))
        assert now and not any(line.startswith("ERROR") for line in now)  # the error comes at the end of the build
        followed = list(api.fetch_space_logs(repo_id, build=True, follow=True))  # returns when the build ends
        assert followed[-1].startswith("ERROR: Cannot install gradio==4.44.1")
        assert api.wait_for_space(repo_id, poll_interval=0.1, timeout=10).stage == "BUILD_ERROR"
        api.create_commit(repo_id, [CommitOperationAdd("requirements.txt", b"gradio==4.44.1\n")],
                          commit_message="fix", repo_type="space")
        run = list(api.fetch_space_logs(repo_id, follow=True))  # waits for the build, then the app's start
        assert "Running on local URL" in run[-1]
        assert api.wait_for_space(repo_id, poll_interval=0.1, timeout=10).stage == "RUNNING"


def test_logs_streams_end_when_the_server_stops(tmp_path):
    with LocalHub(tmp_path / "hub", runtime_delay=60.0) as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        repo_id = f"{hub.username}/stopped"
        _space(api, repo_id, _gradio())
        started = time.monotonic()
        lines = api.fetch_space_logs(repo_id, build=True, follow=True)
        assert next(iter(lines)).startswith("===== Build Queued")
    assert time.monotonic() - started < 30  # stop() did not wait for the 60 s build


def test_logs_of_a_private_space_are_not_visible_to_others(local_hub, hub_api):
    repo_id = f"{local_hub.username}/secret-logs"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static", private=True)
    anonymous = HfApi(endpoint=local_hub.endpoint, token=False)
    with pytest.raises(Exception) as err:
        list(anonymous.fetch_space_logs(repo_id, build=True))
    assert err.value.response.status_code in (401, 404)
    assert list(hub_api.fetch_space_logs(repo_id, build=True)) == []  # NO_APP_FILE: nothing was built


def test_restart_pause_factory_reboot_and_sleep_show_in_the_runtime(local_hub, hub_api):
    repo_id = f"{local_hub.username}/lifecycle"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="gradio", space_sleep_time=3600)
    assert hub_api.get_space_runtime(repo_id).sleep_time == 3600
    hub_api.create_commit(repo_id, [CommitOperationAdd("app.py", b"import gradio\n")], commit_message="app",
                          repo_type="space")
    assert hub_api.get_space_runtime(repo_id).stage == "RUNNING"
    paused = hub_api.pause_space(repo_id)
    assert (paused.stage, paused.hardware, paused.requested_hardware) == ("PAUSED", None, "cpu-basic")
    assert local_hub.space_logs(repo_id)[-1].startswith("The Space was paused by its owner")
    assert hub_api.restart_space(repo_id).stage == "RUNNING"
    assert not any("factory" in line.lower() for line in hub_api.fetch_space_logs(repo_id, build=True))
    assert hub_api.restart_space(repo_id, factory_reboot=True).stage == "RUNNING"
    build = list(hub_api.fetch_space_logs(repo_id, build=True))
    assert build[1].startswith("Factory reboot: building from scratch")
    with pytest.warns(UserWarning, match="cpu-basic"):
        assert hub_api.set_space_sleep_time(repo_id, 1).sleep_time == 1
    time.sleep(1.2)
    runtime = hub_api.get_space_runtime(repo_id)
    assert (runtime.stage, runtime.hardware) == ("SLEEPING", None)
    assert local_hub.space_logs(repo_id)[-1].startswith("The Space went to sleep after 1 seconds without visitors")
    assert hub_api.restart_space(repo_id).stage == "RUNNING"  # a restart wakes it; the sleep time counts again


@pytest.mark.parametrize("template", sorted(p.parent.relative_to(APPS).as_posix() for p in APPS.glob("*/*/README.md")))
def test_the_built_in_templates_pass_the_builders_checks(template):
    """The templates as they are in the repository (the deployer writes more front matter, never less)."""
    folder = APPS / template
    files = {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    plan = check_space(template.split("/")[0], files.keys(), files.get)
    assert (plan.stage, plan.error) == (None, None)
