"""Dataflow offline: the job a deploy builds, what it stages, and a worker that runs it from the staged files alone.

DataflowRunner builds the job and creates a template (``--template_location``), staging to a local GCS emulator;
``--no_auth`` keeps Beam's Dataflow client from looking for Google credentials. The staged graph then runs as a
worker runs it (``beam_pusher.testing.dataflow_worker``), here in this process; ``make dataflow-check`` does the
same in a fresh virtualenv that has only Beam and the staged files.
"""

from __future__ import annotations

import logging
import zipfile

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from google.cloud import storage

from beam_pusher.cli import main
from beam_pusher.runner import job_only_outcome
from beam_pusher.testing import dataflow_worker

TOKEN_VERSION = "projects/demo/secrets/hf-token/versions/1"
SECRET_VERSION = "projects/demo/secrets/weather-key/versions/1"
SECRET_VALUE = "sk-weather-dataflow-4242"


def dataflow_flags(*more: str) -> list[str]:
    return ["--runner", "DataflowRunner", "--no_auth", "--project", "demo", "--region", "europe-west1",
            "--temp_location", "gs://bucket/tmp", "--staging_location", "gs://bucket/staging", *more]


def write_config(tmp_path, hub, token: str = f"gcp-secret:{TOKEN_VERSION}"):
    """Three Spaces from the built-in apps (inside the staged package), one with a Space secret."""
    path = tmp_path / "spaces.yaml"
    path.write_text(f"""\
endpoint: {hub.endpoint}
token: {token}
spaces:
  - repo_id: {hub.username}/df-images
    app_path: apps.gradio.img_classifier
  - repo_id: {hub.username}/df-reviews
    app_path: apps.gradio.text_classifier
    model_hub_repo_id: {hub.username}/review-model
    model_hub_repo_branch: v3
    secrets: {{WEATHER_KEY: "gcp-secret:{SECRET_VERSION}"}}
  - repo_id: {hub.username}/df-streamlit
    app_path: apps.streamlit.img_classifier
    space_sdk: streamlit
""")
    return str(path)


def blobs(prefix: str = "") -> dict[str, bytes]:
    client = storage.Client.create_anonymous_client()
    return {b.name: b.download_as_bytes() for b in client.list_blobs("bucket", prefix=prefix or None)}


def test_job_only_outcome_is_dataflow_dry_run_or_template():
    def outcome(*args):
        return job_only_outcome(PipelineOptions(list(args)))

    assert outcome("--runner=DataflowRunner", "--dry_run=True") == "job graph built"
    template = "--template_location=gs://b/t.json"
    assert outcome("--runner=DataflowRunner", template) == "template written to gs://b/t.json"
    assert outcome("--runner=DataflowRunner") is None
    assert outcome("--runner=FnApiRunner", "--dry_run=True") is None  # Beam ignores it there: the run pushes


def test_a_dry_run_builds_the_job_and_is_no_failure(hub, local_gcs, tmp_path, capsys):
    config = write_config(tmp_path, hub)
    assert main(["deploy", config, *dataflow_flags("--dry_run=True")]) == 0
    out = capsys.readouterr().out
    assert "job graph built for 3 Spaces; nothing was pushed." in out
    assert hub.head(f"{hub.username}/df-images") is None


def test_template_stages_the_package_and_a_worker_pushes_from_the_staged_files(
    hub, local_gcs, local_secret_manager, tmp_path, capsys, caplog, monkeypatch
):
    caplog.set_level(logging.INFO, logger="beam_pusher")
    local_secret_manager.add(TOKEN_VERSION, hub.token)
    local_secret_manager.add(SECRET_VERSION, SECRET_VALUE)
    config = write_config(tmp_path, hub)
    template = "gs://bucket/templates/spaces.json"
    assert main(["deploy", config, "-v", *dataflow_flags("--template_location", template)]) == 0
    assert f"template written to {template} for 3 Spaces; nothing was pushed." in capsys.readouterr().out
    assert "Staging beam_pusher-0.1.0-py3-none-any.whl" in caplog.text
    assert local_secret_manager.calls == 0  # the launcher resolves nothing: the workers will
    staged = blobs("staging/")
    wheel = next(data for name, data in staged.items() if name.endswith("beam_pusher-0.1.0-py3-none-any.whl"))
    wheel_path = tmp_path / "staged.whl"
    wheel_path.write_bytes(wheel)
    names = zipfile.ZipFile(wheel_path).namelist()
    assert "beam_pusher/transforms.py" in names and "beam_pusher/apps/gradio/img_classifier/app.py" in names
    for data in [*staged.values(), blobs("templates/")["templates/spaces.json"]]:
        assert hub.token.encode() not in data and SECRET_VALUE.encode() not in data

    # A worker: the staged graph and package only (here in this process, where beam_pusher is installed already).
    folder = dataflow_worker.download_job("gs://bucket/staging", tmp_path / "worker")
    assert (folder / "beam_pusher-0.1.0-py3-none-any.whl").exists()
    dataflow_worker.run_job(folder)
    for name in ("df-images", "df-reviews", "df-streamlit"):
        assert hub.head(f"{hub.username}/{name}") is not None
    assert b"review-model" in hub.read_file(f"{hub.username}/df-reviews", "app.py")
    assert hub.space_state(f"{hub.username}/df-reviews").secrets == {"WEATHER_KEY": SECRET_VALUE}
    results = [data for name, data in blobs("tmp/").items() if name.endswith(".jsonl")]
    assert len(results) == 1 and results[0].count(b'"pushed": true') == 3  # the workers' report


def test_remote_runs_refuse_references_that_only_resolve_here(hub, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN_FOR_TEST", "x")
    config = write_config(tmp_path, hub, token="env:HF_TOKEN_FOR_TEST")
    assert main(["validate", config]) == 0  # resolvable on this machine
    assert main(["validate", config, "--runner", "DataflowRunner"]) == 2
    err = capsys.readouterr().err
    assert "token: the runner is remote: 'env:HF_TOKEN_FOR_TEST' reads an environment variable" in err
    assert "gcp-secret:projects/P/secrets/S/versions/latest" in err
    assert main(["deploy", config, *dataflow_flags("--dry_run=True")]) == 2
    assert "the runner is remote" in capsys.readouterr().err
    config = write_config(tmp_path, hub)
    assert main(["deploy", config, "--token-env", "HF_TOKEN_FOR_TEST", *dataflow_flags("--dry_run=True")]) == 2
    assert "--token-env HF_TOKEN_FOR_TEST: 'env:HF_TOKEN_FOR_TEST' reads an environment" in capsys.readouterr().err


@pytest.mark.parametrize("job_only", [("--dry_run=True",), ("--template_location", "gs://bucket/templates/tfx.json")])
@pytest.mark.parametrize("component", ["HFSpacePusher", "HFModelPusher"])
def test_tfx_executors_on_a_dataflow_dry_run_or_template_record_that_nothing_was_pushed(
    hub, local_gcs, tmp_path, component, job_only
):
    """A TFX pipeline whose beam_pipeline_args only build the Dataflow job: pushed=0 and why, not a failed run."""
    import json

    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from beam_pusher import component_spec as keys
    from beam_pusher.executor import Executor, ModelPusherExecutor

    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    (tmp_path / "model" / "Format-Serving").mkdir(parents=True)
    (tmp_path / "model" / "Format-Serving" / "saved_model.pb").write_bytes(b"not read by a job that only builds")
    output = standard_artifacts.PushedModel()
    output.uri = str(tmp_path / "pushed")
    properties = {keys.USERNAME_KEY: hub.username, keys.REPO_NAME_KEY: "tfx-on-dataflow", keys.ENDPOINT_KEY:
                  hub.endpoint, keys.HF_ACCESS_TOKEN_KEY: f"gcp-secret:{TOKEN_VERSION}"}
    if component == "HFSpacePusher":
        executor_class, inputs = Executor, {}
        properties[keys.APP_PATH_KEY] = "apps.gradio.img_classifier"
    else:
        executor_class, inputs = ModelPusherExecutor, {keys.MODEL_KEY: [model]}
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=dataflow_flags(*job_only))
    executor_class(context).Do(inputs, {keys.PUSHED_MODEL_KEY: [output]}, properties)

    why = job_only_outcome(PipelineOptions(dataflow_flags(*job_only)))
    assert output.get_int_custom_property(keys.PUSHED_PROPERTY) == 0
    assert output.get_string_custom_property(keys.NOT_PUSHED_REASON_PROPERTY) == f"{why}; nothing was pushed"
    result = json.loads((tmp_path / "pushed" / "push_result.json").read_text())
    assert (result["repo_id"], result["pushed"]) == (f"{hub.username}/tfx-on-dataflow", False)
    assert result["skipped"] == f"{why}; nothing was pushed" and result["error"] is None
    assert not hub.repo_exists(f"{hub.username}/tfx-on-dataflow")
    if "--template_location" in job_only:
        assert "templates/tfx.json" in blobs("templates/")
