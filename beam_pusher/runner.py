"""Runs ``DeploySpaces`` as a pipeline of its own and brings the results back to the caller.

The CLI and the TFX executor need every ``PushResult`` after the run. Results are written as JSON lines under a
temporary folder (``--temp_location`` when the runner is remote, e.g. ``gs://`` on Dataflow) and read back through
fsspec, so the same code works on DirectRunner and on Dataflow.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pusher.spec import PushResult, SpaceSpec
from beam_pusher.transforms import DeploySpaces

__all__ = ["LOCAL_PIPELINE_ARGS", "collect_results", "run_deploy"]

logger = logging.getLogger(__name__)

# Pushing is network-bound, so local runs use more threads than cores: each thread pushes one Space at a time.
LOCAL_PIPELINE_ARGS = ("--runner=DirectRunner", "--direct_running_mode=multi_threading", "--direct_num_workers=8")


def _results_dir(options: PipelineOptions) -> str:
    temp_location = options.get_all_options().get("temp_location")
    base = temp_location.rstrip("/") if temp_location else tempfile.mkdtemp(prefix="beam-pusher-results-")
    return f"{base}/beam_pusher-results-{uuid.uuid4().hex}"


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
    try:
        fs.rm(path_prefix.rsplit("/", 1)[0], recursive=True)
    except OSError:
        logger.debug("could not remove %s", path_prefix)
    return sorted(results, key=lambda r: r.repo_id)


def run_deploy(
    specs: Sequence[SpaceSpec], *, pipeline_args: Sequence[str] | None = None, **deploy_options
) -> list[PushResult]:
    """Deploys ``specs`` in one Beam pipeline and returns one ``PushResult`` per Space.

    Args:
      specs: The Spaces to deploy.
      pipeline_args: Beam flags (``--runner=DataflowRunner --project=...``); default: ``LOCAL_PIPELINE_ARGS``.
      **deploy_options: Keyword options of ``DeploySpaces`` (endpoint, token, dry_run, wait, ...).
    """
    options = PipelineOptions(list(pipeline_args) if pipeline_args is not None else list(LOCAL_PIPELINE_ARGS))
    prefix = _results_dir(options) + "/results"
    with beam.Pipeline(options=options) as pipeline:
        results = pipeline | "Specs" >> beam.Create(list(specs)) | "DeploySpaces" >> DeploySpaces(**deploy_options)
        collect_results(results, prefix)
    return read_results(prefix)
