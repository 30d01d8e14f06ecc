"""Runs ``DeploySpaces`` as a pipeline of its own and brings the results back to the caller.

The CLI and the TFX executor need every ``PushResult`` after the run. Results are written as JSON lines under a
temporary folder (``--temp_location`` when the runner is remote, e.g. ``gs://`` on Dataflow) and read back through
fsspec, so the same code works on Dataflow and in DirectRunner's multi_processing mode. When the workers share this
process (DirectRunner in_memory or multi_threading), results are handed over in memory instead, which saves the
file-writing stages; there ``on_result`` also sees each result as soon as its Space is done, for progress output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pusher.spec import PushResult, SpaceSpec
from beam_pusher.transforms import DeploySpaces

__all__ = ["LOCAL_PIPELINE_ARGS", "collect_results", "in_process_callback", "notify", "read_results", "run_deploy"]

logger = logging.getLogger(__name__)

# Local runs use FnApiRunner, the engine DirectRunner runs batch pipelines on, in its in-process mode. Not
# DirectRunner itself: in Beam 2.74 it first tries the Prism runner, which downloads a binary from GitHub and runs
# the pipeline on another engine; offline it falls back after the failed download (0.2 s per run here, longer where
# the network drops packets). The push step pushes up to 16 Spaces at once from its own thread pool (DeploySpaces'
# parallel_pushes), so pushes still overlap. Not multi_threading: with Beam 2.74 it loses elements of a few hundred
# kB now and then between stages (reproduced outside beam_pusher), which the push step's manifest check turns into a
# failed Space; in_memory never did in the same runs.
LOCAL_PIPELINE_ARGS = ("--runner=FnApiRunner", "--direct_running_mode=in_memory")

_IN_PROCESS_RUNNERS = frozenset({"DirectRunner", "SwitchingDirectRunner", "FnApiRunner"})
_CALLBACKS: dict[str, Callable[[PushResult], None]] = {}


@contextlib.contextmanager
def in_process_callback(callback: Callable[[PushResult], None]) -> Iterator[str]:
    """Registers ``callback`` for ``notify`` while the block runs; yields the key to pass to ``notify``."""
    key = uuid.uuid4().hex
    _CALLBACKS[key] = callback
    try:
        yield key
    finally:
        _CALLBACKS.pop(key, None)


def notify(result: PushResult, key: str) -> PushResult:
    """Hands ``result`` to the callback registered under ``key`` in this process, if any; returns it unchanged.

    Use as ``results | beam.Map(notify, key)``. A worker in another process has no such callback and does nothing.
    """
    callback = _CALLBACKS.get(key)
    if callback is not None:
        callback(result)
    return result


def collect_results(results, path_prefix: str):
    """Writes ``PCollection[PushResult]`` as JSON lines to ``path_prefix*``; ``read_results`` reads them back."""
    return (
        results
        | "ResultsToJson" >> beam.Map(lambda r: json.dumps(r.to_dict(), sort_keys=True))
        | "WriteResults" >> beam.io.WriteToText(path_prefix, file_name_suffix=".jsonl")
    )


def read_results(path_prefix: str) -> list[PushResult]:
    """Reads what ``collect_results`` wrote, sorted by repo id."""
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(path_prefix + "*.jsonl")
    results = []
    for path in paths:
        with fs.open(path, "rt", encoding="utf-8") as f:
            results.extend(PushResult.from_dict(json.loads(line)) for line in f if line.strip())
    return sorted(results, key=lambda r: r.repo_id)


def run_deploy(
    specs: Sequence[SpaceSpec],
    *,
    pipeline_args: Sequence[str] | PipelineOptions | None = None,
    on_result: Callable[[PushResult], None] | None = None,
    **deploy_options,
) -> list[PushResult]:
    """Deploys ``specs`` in one Beam pipeline and returns one ``PushResult`` per Space, sorted by repo id.

    Args:
      specs: The Spaces to deploy.
      pipeline_args: Beam flags (``--runner=DataflowRunner --project=...``) or ``PipelineOptions``;
        default ``LOCAL_PIPELINE_ARGS``.
      on_result: Called with each result as its Space finishes, on runners whose workers share this process;
        elsewhere results only come back when the run ends.
      **deploy_options: Keyword options of ``DeploySpaces`` (endpoint, token, dry_run, wait, ...).
    """
    if isinstance(pipeline_args, PipelineOptions):
        options = pipeline_args
    else:
        options = PipelineOptions(list(pipeline_args) if pipeline_args is not None else list(LOCAL_PIPELINE_ARGS))
    if _workers_share_this_process(options):
        return _run_collecting_in_process(specs, options, on_result, deploy_options)
    temp_location = options.get_all_options().get("temp_location")
    own_temp = None if temp_location else tempfile.mkdtemp(prefix="beam-pusher-results-")
    folder = f"{(temp_location or own_temp).rstrip('/')}/beam_pusher-results-{uuid.uuid4().hex}"
    try:
        with in_process_callback(on_result or (lambda result: None)) as key:
            with beam.Pipeline(options=options) as pipeline:
                results = pipeline | "Specs" >> beam.Create(list(specs)) | "DeploySpaces" >> DeploySpaces(**deploy_options)
                if on_result is not None:
                    _ = results | "ReportProgress" >> beam.Map(notify, key)
                collect_results(results, f"{folder}/results")
        return read_results(f"{folder}/results")
    finally:
        if own_temp:
            shutil.rmtree(own_temp, ignore_errors=True)
        else:
            _remove_remote(folder)


def _workers_share_this_process(options: PipelineOptions) -> bool:
    """True for DirectRunner in_memory / multi_threading, whose DoFns run in this process."""
    settings = options.get_all_options()
    runner = settings.get("runner") or "DirectRunner"
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.split(".")[-1] in _IN_PROCESS_RUNNERS and settings.get("direct_running_mode", "in_memory") in (
        "in_memory",
        "multi_threading",
    )


def _run_collecting_in_process(specs, options, on_result, deploy_options) -> list[PushResult]:
    """Runs the pipeline and gathers results through ``notify``: no results files, about a second less per run."""
    collected: dict[str, PushResult] = {}
    lock = threading.Lock()

    def keep(result: PushResult) -> None:
        with lock:
            collected[result.repo_id] = result
        if on_result is not None:
            on_result(result)

    with in_process_callback(keep) as key:
        with beam.Pipeline(options=options) as pipeline:
            results = pipeline | "Specs" >> beam.Create(list(specs)) | "DeploySpaces" >> DeploySpaces(**deploy_options)
            _ = results | "CollectResults" >> beam.Map(notify, key)
    return sorted(collected.values(), key=lambda r: r.repo_id)


def _remove_remote(folder: str) -> None:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(folder)
        fs.rm(path, recursive=True)
    except (OSError, FileNotFoundError):
        logger.debug("could not remove %s", folder)
