"""Space runtime and settings on the local Hub."""

from __future__ import annotations

import time

from huggingface_hub import CommitOperationAdd, HfApi

from beam_pusher.localhub import LocalHub


def _wait_for_stage(api: HfApi, repo_id: str, stages: set[str], timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        stage = api.get_space_runtime(repo_id).stage
        if stage in stages or time.monotonic() > deadline:
            return stage
        time.sleep(0.05)


def test_runtime_builds_then_runs(tmp_path):
    with LocalHub(tmp_path / "hub", runtime_delay=0.5) as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        repo_id = f"{hub.username}/runs"
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
        assert api.get_space_runtime(repo_id).stage == "NO_APP_FILE"
        api.create_commit(repo_id, [CommitOperationAdd("app.py", b"print('ok')\n")], commit_message="app",
                          repo_type="space")
        assert api.get_space_runtime(repo_id).stage == "BUILDING"
        assert _wait_for_stage(api, repo_id, {"RUNNING", "RUNTIME_ERROR"}) == "RUNNING"
        runtime = api.space_info(repo_id).runtime
        assert (runtime.stage, runtime.hardware) == ("RUNNING", "cpu-basic")
        assert api.pause_space(repo_id).stage == "PAUSED"
        assert api.restart_space(repo_id).stage == "BUILDING"
        assert _wait_for_stage(api, repo_id, {"RUNNING"}) == "RUNNING"


def test_config_error_when_app_file_is_missing(local_hub, hub_api):
    """The builder checks app_file before anything runs: CONFIG_ERROR, not a crash of the app."""
    repo_id = f"{local_hub.username}/broken"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="streamlit")
    readme = b"---\ntitle: Broken\nsdk: streamlit\napp_file: main.py\n---\n"
    hub_api.create_commit(repo_id, [CommitOperationAdd("README.md", readme), CommitOperationAdd("app.py", b"x=1\n")],
                          commit_message="wrong app file", repo_type="space")
    runtime = hub_api.get_space_runtime(repo_id)
    assert runtime.stage == "CONFIG_ERROR"
    assert "main.py" in runtime.raw["errorMessage"]
    assert any("main.py" in line for line in hub_api.fetch_space_logs(repo_id, build=True))
    assert hub_api.space_info(repo_id).card_data.app_file == "main.py"
    hub_api.create_commit(repo_id, [CommitOperationAdd("main.py", b"x=1\n")], commit_message="fix", repo_type="space")
    assert hub_api.get_space_runtime(repo_id).stage == "RUNNING"


def test_docker_space_needs_a_dockerfile(local_hub, hub_api):
    repo_id = f"{local_hub.username}/container"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="docker")
    hub_api.create_commit(repo_id, [CommitOperationAdd("app.py", b"x=1\n")], commit_message="no Dockerfile",
                          repo_type="space")
    runtime = hub_api.get_space_runtime(repo_id)
    assert runtime.stage == "BUILD_ERROR"
    assert "Dockerfile" in runtime.raw["errorMessage"]
    hub_api.create_commit(repo_id, [CommitOperationAdd("Dockerfile", b"FROM python:3.10\n")], commit_message="add",
                          repo_type="space")
    assert hub_api.get_space_runtime(repo_id).stage == "RUNNING"


def test_settings_endpoints_change_the_space(local_hub, hub_api):
    repo_id = f"{local_hub.username}/tuned"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    hub_api.add_space_variable(repo_id, "A", "1", description="first")
    variables = hub_api.add_space_variable(repo_id, "B", "2")
    assert {key: var.value for key, var in variables.items()} == {"A": "1", "B": "2"}
    assert hub_api.delete_space_variable(repo_id, "A").keys() == {"B"}
    hub_api.add_space_secret(repo_id, "TOKEN", "value-1")
    hub_api.delete_space_secret(repo_id, "TOKEN")
    assert hub_api.get_space_secrets(repo_id) == {}
    runtime = hub_api.request_space_hardware(repo_id, "t4-small", sleep_time=900)
    assert (runtime.requested_hardware, runtime.sleep_time) == ("t4-small", 900)
    assert hub_api.set_space_sleep_time(repo_id, 1200).sleep_time == 1200
    state = local_hub.space_state(repo_id)
    assert (state.hardware, state.sleep_time, state.variables, state.secrets) == ("t4-small", 1200, {"B": "2"}, {})
    hub_api.delete_repo(repo_id, repo_type="space")
    assert not local_hub.repo_exists(repo_id)
