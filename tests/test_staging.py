"""Staging the running beam_pusher for remote workers: the wheel, when it is staged, and for the TFX executors."""

from __future__ import annotations

import base64
import hashlib
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions
from tfx.dsl.components.base import base_beam_executor

import beam_pusher
from beam_pusher.executor import Executor
from beam_pusher.spec import SpaceSpec
from beam_pusher.staging import build_wheel, stage_package, staging_choice
from beam_pusher.transforms import DeploySpaces

WHEEL = f"beam_pusher-{beam_pusher.__version__}-py3-none-any.whl"
DRY_DATAFLOW = ["--runner=DataflowRunner", "--no_auth", "--dry_run=True", "--project=demo-project",
                "--region=europe-west1", "--temp_location=gs://bucket/tmp"]


def test_the_wheel_holds_the_imported_package_its_apps_and_valid_metadata(tmp_path):
    path = Path(build_wheel(tmp_path))
    assert path.name == WHEEL
    wheel = zipfile.ZipFile(path)
    names = set(wheel.namelist())
    package = Path(beam_pusher.__file__).parent
    assert "beam_pusher/apps/streamlit/img_classifier/app.py" in names
    assert "beam_pusher/localhub/server.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert wheel.read("beam_pusher/transforms.py") == (package / "transforms.py").read_bytes()
    info = f"beam_pusher-{beam_pusher.__version__}.dist-info"
    metadata = wheel.read(f"{info}/METADATA").decode()
    assert f"\nVersion: {beam_pusher.__version__}\n" in metadata and "Requires-Dist: huggingface-hub" in metadata
    for line in wheel.read(f"{info}/RECORD").decode().splitlines():  # every hash checks out, as pip checks them
        name, digest, size = line.split(",")
        if digest:
            data = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data)


def test_pip_installs_the_wheel(tmp_path):
    path = build_wheel(tmp_path)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(tmp_path / "site"), path], check=True)
    assert (tmp_path / "site" / "beam_pusher" / "apps" / "gradio" / "img_classifier" / "app.py").exists()
    entry_points = next((tmp_path / "site").glob("beam_pusher-*.dist-info")) / "entry_points.txt"
    assert "beam-pusher = beam_pusher.cli:main" in entry_points.read_text()


@pytest.mark.parametrize("args", [[], ["--runner=FnApiRunner"], ["--runner=DirectRunner"]])
def test_local_runners_stage_nothing(args):
    options = PipelineOptions(args)
    assert stage_package(options) is None
    assert options.view_as(SetupOptions).extra_packages is None


@pytest.mark.parametrize(("flag", "choice"), [
    ("--sdk_container_image=europe-docker.pkg.dev/p/r/img:1", "--sdk_container_image europe-docker.pkg.dev/p/r/img:1"),
    ("--setup_file=./setup.py", "--setup_file ./setup.py"),
    ("--extra_package=dist/mine.whl", "--extra_package dist/mine.whl"),
])
def test_the_users_own_choice_is_left_alone(flag, choice, caplog):
    options = PipelineOptions(["--runner=DataflowRunner", flag])
    assert staging_choice(options) == choice
    with caplog.at_level(logging.INFO, logger="beam_pusher"):
        assert stage_package(options) is None
    assert f"Workers get beam_pusher from {choice}" in caplog.text
    assert options.view_as(SetupOptions).extra_packages in (None, ["dist/mine.whl"])


def test_a_remote_runner_gets_the_wheel_once_per_process(caplog):
    first, second = PipelineOptions(["--runner=DataflowRunner"]), PipelineOptions(["--runner=FlinkRunner"])
    with caplog.at_level(logging.INFO, logger="beam_pusher"):
        wheel = stage_package(first)
        assert stage_package(second) == wheel
    assert Path(wheel).name == WHEEL and Path(wheel).exists()
    assert first.view_as(SetupOptions).extra_packages == [wheel]
    assert caplog.text.count(f"Staging {WHEEL} (beam_pusher from {Path(beam_pusher.__file__).parent})") == 2


def staged_names(job) -> list[str]:
    from apache_beam.portability.api import beam_runner_api_pb2

    names = []
    for environment in job.proto_pipeline.components.environments.values():
        for dependency in environment.dependencies:
            names.append(beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dependency.role_payload)
                         .staged_name)
    return names


@pytest.mark.parametrize(("extra", "staged"), [([], True), (["--sdk_container_image=img:1"], False)])
def test_the_tfx_executor_stages_the_package_for_a_remote_runner(extra, staged):
    # The pipeline the executor's Do would run, compiled for Dataflow and dry-run: the job graph's environment
    # lists what the workers install.
    executor = Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=[*DRY_DATAFLOW, *extra]))
    pipeline = executor._make_beam_pipeline()
    spec = SpaceSpec(repo_id="user/tfx-dataflow", app_path="apps.gradio.img_classifier")
    _ = pipeline | beam.Create([spec]) | DeploySpaces(token="gcp-secret:projects/p/secrets/hf/versions/1")
    names = staged_names(pipeline.run().job)
    assert (WHEEL in names) is staged
    assert any(n.startswith("tfx_ephemeral-") for n in names) is staged  # TFX stages itself beside it


def test_the_tfx_executor_on_a_local_runner_stages_nothing():
    executor = Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=["--runner=DirectRunner"]))
    packages = executor._make_beam_pipeline().options.view_as(SetupOptions).extra_packages or []
    assert not [p for p in packages if p.endswith(WHEEL)]  # TFX may list its own package; ours is not needed
