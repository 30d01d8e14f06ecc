"""The local Spaces runtime (``LocalHub(run_spaces=True)``): real builds, real apps, real stages and logs.

The apps here are small standard-library HTTP servers started as a Gradio Space starts (``python app.py`` with
``GRADIO_SERVER_PORT``), so they answer within a second; the environment they run in is the built-in apps' one
(``appenv.builtin_apps_env``, cached under ``~/.cache/beam-pusher`` and shared with ``test_apps_run``), which has
gradio installed, so their builds install nothing. The build that must fail makes a fresh environment in the test's
own cache folder and asks pip for a version of numpy that does not exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from beam_pusher.localhub import LocalHub, appenv
from beam_pusher.runner import run_deploy
from beam_pusher.spec import SpaceSpec

pytestmark = pytest.mark.timeout(2700)  # a cold cache builds the app environment first (minutes)

SECRET = "s3cr3t-value-for-the-app-only"
SECRET_ENV = "BEAM_PUSHER_TEST_RUNTIME_SECRET"
TOKEN_ENV = "BEAM_PUSHER_TEST_RUNTIME_TOKEN"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

APP = """import hashlib, http.server, json, os, sys
VERSION = {version!r}

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        secret = os.environ.get("API_KEY", "")
        body = json.dumps({{"version": VERSION, "pid": os.getpid(), "greeting": os.environ.get("GREETING"),
                           "secret_sha256": hashlib.sha256(secret.encode()).hexdigest()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

port = int(os.environ["GRADIO_SERVER_PORT"])
print(f"app {{VERSION}} listening on port {{port}}; its secret is {{os.environ.get('API_KEY')}}", flush=True)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""
README = "---\ntitle: Runtime test\nsdk: gradio\napp_file: app.py\n---\n"


@pytest.fixture(scope="module")
def app_env() -> appenv.SpaceEnv:
    """The built-in apps' environment, which every Space here reuses (built once per machine)."""
    return appenv.builtin_apps_env()


@pytest.fixture
def hub(app_env, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "unused")
    with LocalHub(run_spaces=True, app_start_timeout=120) as running:
        monkeypatch.setenv(TOKEN_ENV, running.token)
        yield running


def wait_for_stage(hub: LocalHub, repo_id: str, timeout: float = 600) -> dict:
    """The Space's runtime once it no longer builds or starts."""
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runtime = api.get_space_runtime(repo_id)
        if runtime.stage not in ("BUILDING", "APP_STARTING"):
            return runtime.raw
        time.sleep(0.5)
    raise AssertionError(f"{repo_id} still {runtime.stage} after {timeout} s: {hub.space_logs(repo_id, build=True)}")


def get(url: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with _NO_PROXY.open(urllib.request.Request(url, headers=headers), timeout=30) as response:
        return response.read().decode()


def commit_app(hub: LocalHub, repo_id: str, files: dict[str, str], message: str = "app") -> str:
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", exist_ok=True)
    operations = [CommitOperationAdd(path, content.encode()) for path, content in files.items()]
    return api.create_commit(repo_id, repo_type="space", operations=operations, commit_message=message).oid


def all_logs(hub: LocalHub, repo_id: str) -> str:
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    return "".join([*api.fetch_space_logs(repo_id, build=True), *api.fetch_space_logs(repo_id)])


def test_a_deployed_app_runs_with_its_secret_and_variable_which_no_page_or_log_shows(hub, tmp_path, monkeypatch):
    template = tmp_path / "template"
    template.mkdir()
    (template / "app.py").write_text(APP.format(version="v1"), encoding="utf-8")
    (template / "README.md").write_text(README, encoding="utf-8")
    monkeypatch.setenv(SECRET_ENV, SECRET)
    spec = SpaceSpec(repo_id=f"{hub.username}/runtime-app", app_path=str(template), space_sdk="gradio",
                     secrets={"API_KEY": f"env:{SECRET_ENV}"}, variables={"GREETING": "hello"})
    (result,) = run_deploy([spec], endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    assert result.pushed and result.error is None, result

    runtime = wait_for_stage(hub, spec.repo_id)
    assert runtime["stage"] == "RUNNING", (runtime, hub.space_logs(spec.repo_id, build=True))
    seen = json.loads(get(hub.app_url(spec.repo_id)))
    assert seen["greeting"] == "hello"
    assert seen["secret_sha256"] == hashlib.sha256(SECRET.encode()).hexdigest()  # the app process has the secret

    logs = all_logs(hub, spec.repo_id)
    assert "app v1 listening on port" in logs and "its secret is *****" in logs
    page = get(f"{hub.endpoint}/spaces/{spec.repo_id}", token=hub.token)
    index = get(f"{hub.endpoint}/", token=hub.token)
    assert "API_KEY" in page and "GREETING=hello" in page and "RUNNING" in page
    for text in (logs, page, index, "\n".join(hub.space_logs(spec.repo_id) + hub.space_logs(spec.repo_id, build=True))):
        assert SECRET not in text


def test_a_new_commit_restarts_the_app_and_the_page_shows_it(hub):
    repo_id = f"{hub.username}/redeployed"
    commit_app(hub, repo_id, {"README.md": README, "app.py": APP.format(version="v1")}, "first version")
    assert wait_for_stage(hub, repo_id)["stage"] == "RUNNING"
    first_url = hub.app_url(repo_id)
    first = json.loads(get(first_url))
    assert first["version"] == "v1"

    head = commit_app(hub, repo_id, {"app.py": APP.format(version="v2")}, "second version")
    runtime = wait_for_stage(hub, repo_id)
    assert runtime["stage"] == "RUNNING" and runtime["sha"] == head
    second = json.loads(get(hub.app_url(repo_id)))
    assert second["version"] == "v2" and second["pid"] != first["pid"]
    assert not _alive(first["pid"])  # the first app was stopped, not left running
    page = get(f"{hub.endpoint}/spaces/{repo_id}")
    assert head[:7] in page and "second version" in page and hub.app_url(repo_id) in page


def test_an_app_that_raises_at_import_ends_runtime_error_with_the_traceback(hub):
    repo_id = f"{hub.username}/crashing"
    app = "import os\nraise RuntimeError('the model file model/saved_model.pb is missing')\n"
    commit_app(hub, repo_id, {"README.md": README, "app.py": app})
    runtime = wait_for_stage(hub, repo_id)
    assert runtime["stage"] == "RUNTIME_ERROR"
    assert "Exit code: 1" in runtime["errorMessage"] and "model/saved_model.pb is missing" in runtime["errorMessage"]
    run_log = "".join(HfApi(endpoint=hub.endpoint, token=hub.token).fetch_space_logs(repo_id))
    assert "Traceback (most recent call last)" in run_log and 'File "/' in run_log and "app.py" in run_log
    assert "RuntimeError: the model file model/saved_model.pb is missing" in run_log


def test_a_requirement_pip_cannot_install_ends_build_error_with_pips_output(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("BEAM_PUSHER_CACHE", str(tmp_path / "cache"))  # a fresh env, kept out of the shared cache
    repo_id = f"{hub.username}/unbuildable"
    commit_app(hub, repo_id, {"README.md": README, "app.py": APP.format(version="v1"),
                              "requirements.txt": "numpy==0.0.0.1\n"})
    runtime = wait_for_stage(hub, repo_id, timeout=900)
    build_log = "".join(HfApi(endpoint=hub.endpoint, token=hub.token).fetch_space_logs(repo_id, build=True))
    assert runtime["stage"] == "BUILD_ERROR", build_log
    assert "pip install" in build_log
    assert "ERROR: Could not find a version that satisfies the requirement numpy==0.0.0.1" in build_log
    assert "numpy==0.0.0.1" in runtime["errorMessage"]
    assert hub.app_url(repo_id) is None


def test_a_static_space_is_served_and_a_plain_docker_space_stays_simulated(hub):
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    api.create_repo("user/site", repo_type="space", space_sdk="static")
    api.create_commit("user/site", repo_type="space", commit_message="site", operations=[
        CommitOperationAdd("index.html", b"<h1>Hello from a static Space</h1>")])
    assert wait_for_stage(hub, "user/site")["stage"] == "RUNNING"
    assert "Hello from a static Space" in get(hub.app_url("user/site"))

    api.create_repo("user/server", repo_type="space", space_sdk="docker")
    api.create_commit("user/server", repo_type="space", commit_message="server", operations=[
        CommitOperationAdd("README.md", b"---\nsdk: docker\napp_port: 7860\n---\n"),
        CommitOperationAdd("Dockerfile", b"FROM nginx\nEXPOSE 7860\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n")])
    time.sleep(1.5)  # the runtime looks at the Space and leaves it to the simulation
    assert wait_for_stage(hub, "user/server")["stage"] == "RUNNING"
    assert hub.app_url("user/server") is None
    assert any("builds no Docker images" in line for line in hub.space_logs("user/server", build=True))
    assert "builds no Docker images" in get(f"{hub.endpoint}/spaces/user/server")


def test_the_apps_stop_with_the_hub(app_env):
    with LocalHub(run_spaces=True, app_start_timeout=120) as hub:
        commit_app(hub, "user/short-lived", {"README.md": README, "app.py": APP.format(version="v1")})
        assert wait_for_stage(hub, "user/short-lived")["stage"] == "RUNNING"
        pid = json.loads(get(hub.app_url("user/short-lived")))["pid"]
        assert _alive(pid)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def test_a_docker_space_whose_dockerfile_runs_streamlit_really_runs(hub):
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    api.create_repo("user/docker-streamlit", repo_type="space", space_sdk="docker")
    api.create_commit("user/docker-streamlit", repo_type="space", commit_message="streamlit in docker", operations=[
        CommitOperationAdd("README.md", b"---\nsdk: docker\napp_port: 8501\n---\n"),
        CommitOperationAdd("Dockerfile", b"FROM python:3.10\nCOPY . .\nRUN pip install -r requirements.txt\n"
                           b"EXPOSE 8501\nCMD [\"streamlit\", \"run\", \"app.py\", \"--server.port=8501\"]\n"),
        CommitOperationAdd("requirements.txt", b"streamlit>=1.28\n"),
        CommitOperationAdd("app.py", b"import streamlit as st\nst.title('Hello from Docker')\n")])
    runtime = wait_for_stage(hub, "user/docker-streamlit")
    assert runtime["stage"] == "RUNNING", hub.space_logs("user/docker-streamlit")
    assert get(hub.app_url("user/docker-streamlit") + "_stcore/health") == "ok"
    assert any("runs Streamlit: streamlit run app.py" in line
               for line in hub.space_logs("user/docker-streamlit", build=True))


def test_the_deployers_wait_reports_running_only_once_the_app_answers(hub, tmp_path, capsys):
    """``deploy --wait`` against a Hub that runs its Spaces: RUNNING when the app answers HTTP, as on the Hub."""
    import threading

    from beam_pusher.cli import main

    template = tmp_path / "template"
    template.mkdir()
    slow = APP.format(version="slow").replace("port = int(", "import time; time.sleep(4)  # a slow import\nport = int(")
    (template / "app.py").write_text(slow, encoding="utf-8")
    (template / "README.md").write_text(README, encoding="utf-8")
    repo_id = f"{hub.username}/waited-for"
    config = tmp_path / "spaces.yaml"
    config.write_text(f"spaces:\n  - repo_id: {repo_id}\n    app_path: {template}\n", encoding="utf-8")

    stages, done = [], threading.Event()

    def watch():  # what the Hub says while the deploy waits
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        while not done.is_set():
            try:
                stages.append(api.get_space_runtime(repo_id).stage)
            except Exception:  # noqa: BLE001 - not created yet
                pass
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        status = main(["deploy", str(config), "--endpoint", hub.endpoint, "--token-env", TOKEN_ENV, "--wait",
                       "--report", str(tmp_path / "report.json")])
        url = hub.app_url(repo_id)  # at once: RUNNING means the app answers now
        answer = json.loads(get(url)) if url else None
    finally:
        done.set()
        watcher.join()
    assert status == 0, capsys.readouterr()
    assert answer is not None, f"the deploy returned, but the app has no URL yet (stages seen: {stages})"
    assert answer["version"] == "slow"
    (result,) = json.loads((tmp_path / "report.json").read_text())
    assert result["runtime_stage"] == "RUNNING" and result["error"] is None
    line = next(line for line in capsys.readouterr().out.splitlines() if f"{repo_id}  committed" in line)
    assert "RUNNING" in line
    # The app was started but did not answer yet for seconds, and the deploy went on waiting through that.
    running = stages.index("RUNNING") if "RUNNING" in stages else len(stages)
    assert "APP_STARTING" in stages[:running] and "APP_STARTING" not in stages[running:], stages
