"""beam_pusher.runner: where runners run, the options a deploy gets, and results collected once per Space.

Classification and options are plain unit tests; the collection tests run real pipelines against the local Hub.
"""

from __future__ import annotations

import threading

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pusher import SpaceSpec
from beam_pusher.errors import SpecError
from beam_pusher.runner import (
    LOCAL_PIPELINE_ARGS,
    RunnerKind,
    build_options,
    describe_runner,
    run_deploy,
    runner_flag,
    runner_kind,
    with_local_defaults,
)
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV


@pytest.mark.parametrize(
    ("runner", "mode", "kind"),
    [
        (None, None, RunnerKind.IN_PROCESS),  # Beam's default: DirectRunner, in_memory
        ("FnApiRunner", "in_memory", RunnerKind.IN_PROCESS),
        ("DirectRunner", "multi_threading", RunnerKind.IN_PROCESS),
        ("direct", None, RunnerKind.IN_PROCESS),  # Beam's create_runner takes the name without "Runner"
        ("apache_beam.runners.direct.direct_runner.SwitchingDirectRunner", None, RunnerKind.IN_PROCESS),
        ("FnApiRunner", "multi_processing", RunnerKind.LOCAL),
        ("BundleBasedDirectRunner", None, RunnerKind.LOCAL),
        ("PrismRunner", None, RunnerKind.LOCAL),
        ("prism", "in_memory", RunnerKind.LOCAL),
        ("DataflowRunner", None, RunnerKind.REMOTE),
        ("dataflow", "in_memory", RunnerKind.REMOTE),  # the direct mode means nothing to other runners
        ("FlinkRunner", None, RunnerKind.REMOTE),
    ],
)
def test_runner_kind_says_where_dofns_run(runner, mode, kind):
    assert runner_kind(runner, mode) is kind
    assert kind.is_local == (kind is not RunnerKind.REMOTE)


def test_runner_kind_accepts_a_runner_instance():
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    assert runner_kind(FnApiRunner()) is RunnerKind.IN_PROCESS


def test_runner_flag_and_local_defaults():
    assert runner_flag(["--runner", "DataflowRunner", "--project=p"]) == "DataflowRunner"
    assert runner_flag(["--project=p", "--runner=direct"]) == "direct"
    assert runner_flag(["--direct_num_workers=2", "--runner"]) is None  # a flag without its value names nothing
    assert with_local_defaults([]) == list(LOCAL_PIPELINE_ARGS)
    given = ["--direct_running_mode=multi_processing"]
    assert with_local_defaults(given) == [*LOCAL_PIPELINE_ARGS, *given]  # later flags win
    assert with_local_defaults(["--runner=DataflowRunner"]) == ["--runner=DataflowRunner"]


def test_build_options_uses_the_local_default_and_refuses_an_unknown_runner():
    assert describe_runner(build_options()) == "FnApiRunner (in_memory, 1 worker)"
    options = build_options(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert describe_runner(options) == "FnApiRunner (multi_processing, 2 workers)"
    given = PipelineOptions(["--runner=DirectRunner"])
    assert build_options(given) is given
    with pytest.raises(SpecError, match="Beam cannot make a pipeline from these options: .*NoSuchRunner"):
        build_options(["--runner=NoSuchRunner"])


def test_describe_runner_names_a_remote_job():
    options = PipelineOptions(["--runner=DataflowRunner", "--project=p", "--region=r", "--job_name=j"])
    assert describe_runner(options) == "DataflowRunner (project p, region r, job j)"


def _specs(hub, tmp_path, prefix: str) -> list[SpaceSpec]:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "index.html").write_text("<p>hi</p>\n")
    return [
        SpaceSpec(repo_id=f"{hub.username}/{prefix}-{i}", app_path=str(tmp_path / "tpl"), space_sdk="static")
        for i in range(2)
    ]


@pytest.mark.parametrize("mode", ["in_memory", "multi_processing"])
def test_on_result_sees_each_space_once_however_results_come_back(hub, tmp_path, mode):
    """In memory when the workers share this process; through result files (removed afterwards) when they do not."""
    specs = _specs(hub, tmp_path, mode.replace("_", "-"))
    temp_location = tmp_path / "beam-tmp"
    temp_location.mkdir()
    seen: list[tuple[str, str]] = []
    args = [f"--direct_running_mode={mode}", "--direct_num_workers=2", f"--temp_location={temp_location}"]
    results = run_deploy(
        specs, pipeline_args=args, on_result=lambda r: seen.append((r.repo_id, threading.current_thread().name)),
        endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}",
    )
    assert [r.repo_id for r in results] == [s.repo_id for s in specs]
    assert [r.error for r in results] == [None, None]
    assert all(r.committed and r.commit_id == hub.head(r.repo_id) for r in results)
    assert sorted(repo_id for repo_id, _ in seen) == [s.repo_id for s in specs]
    if mode == "multi_processing":  # read back after the run, in the caller's thread
        assert {thread for _, thread in seen} == {threading.current_thread().name}
    assert list(temp_location.iterdir()) == []
