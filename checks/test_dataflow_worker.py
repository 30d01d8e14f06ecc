"""A Dataflow worker has everything it needs: ``make dataflow-check`` (minutes: it builds a fresh virtualenv).

The launcher (this process) builds the Dataflow job of a 3-Space config offline, as a template staged to a local
GCS emulator. Then, in a fresh virtualenv that has only Beam (with its ``gcp`` extra, as Dataflow's container has)
and what was staged, ``beam_pusher/testing/dataflow_worker.py`` does what a worker does: downloads the staged files,
``pip install``s the staged package, unpickles the staged DoFns and runs them. The Spaces are pushed to the local Hub
with the token read from the local Secret Manager, and the workers' results land in the emulated bucket.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import apache_beam
from google.cloud import storage

from beam_pusher.cli import main
from beam_pusher.secretstores import GCP_EMULATOR_ENV

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "beam_pusher" / "testing" / "dataflow_worker.py"
TOKEN_VERSION = "projects/demo/secrets/hf-token/versions/1"
SECRET_VERSION = "projects/demo/secrets/weather-key/versions/1"
SECRET_VALUE = "sk-weather-worker-venv-77"
SPACES = ("venv-images", "venv-reviews", "venv-streamlit")


def write_config(tmp_path: Path, hub) -> str:
    path = tmp_path / "spaces.yaml"
    path.write_text(f"""\
endpoint: {hub.endpoint}
token: gcp-secret:{TOKEN_VERSION}
spaces:
  - repo_id: {hub.username}/{SPACES[0]}
    app_path: apps.gradio.img_classifier
  - repo_id: {hub.username}/{SPACES[1]}
    app_path: apps.gradio.text_classifier
    model_hub_repo_id: {hub.username}/review-model
    secrets: {{WEATHER_KEY: "gcp-secret:{SECRET_VERSION}"}}
  - repo_id: {hub.username}/{SPACES[2]}
    app_path: apps.streamlit.img_classifier
    space_sdk: streamlit
""")
    return str(path)


def worker_env(venv: Path) -> dict[str, str]:
    """The worker's environment: the emulators' addresses, and nothing that would import the launcher's code."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_CONSTRAINT"] = str(REPO / "constraints.txt")  # the versions the launcher was tested with
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_a_fresh_worker_installs_the_staged_package_and_pushes(local_hub, local_gcs, local_secret_manager, tmp_path):
    hub = local_hub
    local_secret_manager.add(TOKEN_VERSION, hub.token)
    local_secret_manager.add(SECRET_VERSION, SECRET_VALUE)
    flags = ["--runner", "DataflowRunner", "--no_auth", "--project", "demo-project", "--region", "europe-west1",
             "--temp_location", "gs://bucket/tmp", "--staging_location", "gs://bucket/staging",
             "--template_location", "gs://bucket/templates/spaces.json"]
    assert main(["deploy", write_config(tmp_path, hub), *flags]) == 0
    assert hub.head(f"{hub.username}/{SPACES[0]}") is None  # building the job pushed nothing

    venv = tmp_path / "worker-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, env = str(venv / "bin" / "python"), worker_env(venv)
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"apache-beam[gcp]=={apache_beam.__version__}"],
                   check=True, env=env, timeout=1200)
    absent = subprocess.run([python, "-c", "import beam_pusher"], env=env, cwd=tmp_path, capture_output=True)
    assert b"No module named 'beam_pusher'" in absent.stderr  # the worker starts without it, as on Dataflow

    env[GCP_EMULATOR_ENV] = local_secret_manager.host
    run = subprocess.run(
        [python, str(WORKER), "gs://bucket/staging", "--install", "--folder", str(tmp_path / "job")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "installed beam_pusher-" in run.stdout and "job finished: DONE" in run.stdout
    assert local_secret_manager.calls >= 2  # the token and the Space secret were read by the worker
    for name in SPACES:
        assert hub.head(f"{hub.username}/{name}") is not None
    assert hub.space_state(f"{hub.username}/{SPACES[1]}").secrets == {"WEATHER_KEY": SECRET_VALUE}
    assert hub.token not in run.stdout + run.stderr and SECRET_VALUE not in run.stdout + run.stderr
    client = storage.Client.create_anonymous_client()
    reports = [b.download_as_bytes() for b in client.list_blobs("bucket", prefix="tmp/") if b.name.endswith(".jsonl")]
    assert len(reports) == 1 and reports[0].count(b'"pushed": true') == 3
