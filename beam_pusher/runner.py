"""Runs ``DeploySpaces`` as a pipeline of its own and brings every ``PushResult`` back to the caller.

The one home of what depends on the Beam runner:

- the local default (``LOCAL_PIPELINE_ARGS``) and the options built from flags (``build_options``);
- where a runner runs the pipeline's DoFns (``runner_kind``): on this machine, where ``env:NAME`` token references
  resolve as they do here, and in this very process, where results can be handed over in memory;
- running the deploy and collecting its results (``run_deploy``), with ``on_result`` called once per Space;
- on a remote runner, staging the running beam_pusher for the workers (``beam_pusher.staging``);
- runs that only build the job (``job_only_outcome``: Dataflow's ``--dry_run`` and ``--template_location``), which
  push nothing and so bring no results back.

Results always reach the caller through one collector in this process, fed by a step mapped over the results. When
the workers may not share this process (Dataflow, DirectRunner ``multi_processing``), that step finds no collector
there, so the results are also written as JSON lines under a temporary folder (``--temp_location`` when given, e.g.
``gs://`` on Dataflow) and read back through fsspec into the same collector once the run ends.

Stopping a run on SIGINT or SIGTERM is ``beam_pusher.stopping``; on a runner elsewhere, ``run_deploy`` cancels the
job when the block is interrupted.

Runner classification is plain Python; Beam is imported only by the functions that build or run a pipeline, so the
CLI's ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from beam_pusher.errors import SpecError
from beam_pusher.spec import PushResult, SpaceSpec

if TYPE_CHECKING:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

__all__ = [
    "LOCAL_PIPELINE_ARGS",
    "RunnerKind",
    "build_options",
    "collect_results",
    "describe_runner",
    "job_only_outcome",
    "options_kind",
    "read_results",
    "run_deploy",
    "runner_flag",
    "runner_kind",
    "with_local_defaults",
]

logger = logging.getLogger(__name__)

# FnApiRunner (DirectRunner's batch engine) in_memory: DirectRunner would first try to download the Prism runner, and
# multi_threading loses elements now and then; docs/performance.md says which Beam versions and what it cost.
LOCAL_PIPELINE_ARGS = ("--runner=FnApiRunner", "--direct_running_mode=in_memory")

# Runner names as Beam's create_runner matches them: the class name, lower-cased, the "runner" suffix optional.
_LOCAL_RUNNERS = frozenset(
    {"directrunner", "switchingdirectrunner", "bundlebaseddirectrunner", "fnapirunner", "prismrunner"}
)
# Of those, the ones that run DoFns on threads of this process when --direct_running_mode is one of _THREAD_MODES.
_THREAD_RUNNERS = frozenset({"directrunner", "switchingdirectrunner", "fnapirunner"})
_THREAD_MODES = frozenset({"in_memory", "multi_threading"})


class RunnerKind(enum.Enum):
    """Where a Beam runner runs the pipeline's DoFns, which decides how tokens and results travel."""

    IN_PROCESS = "in_process"
    """Threads of this process: results come back in memory, as each Space finishes."""
    LOCAL = "local"
    """This machine, possibly other processes: ``env:NAME`` resolves as here; results come back through files."""
    REMOTE = "remote"
    """Other machines (Dataflow, Flink, Spark): the workers' environment is not this one."""

    @property
    def is_local(self) -> bool:
        """Whether the workers run on this machine, with this process's environment variables and files."""
        return self is not RunnerKind.REMOTE


def _runner_name(runner: Any) -> str:
    """``DirectRunner``, ``direct``, ``apache_beam.runners.DirectRunner`` or a runner instance -> ``directrunner``."""
    if runner is None:
        return "directrunner"  # Beam's default
    name = runner if isinstance(runner, str) else type(runner).__name__
    name = name.rsplit(".", 1)[-1].lower()
    return name if name.endswith("runner") else name + "runner"


def runner_kind(runner: Any = None, running_mode: str | None = None) -> RunnerKind:
    """Where ``runner`` runs DoFns.

    Args:
      runner: ``--runner``'s value: a name (``DataflowRunner``, ``direct``, a dotted path) or a runner instance;
        None is Beam's default, DirectRunner.
      running_mode: ``--direct_running_mode``; None is Beam's default, in_memory.

    Example::

        runner_kind("FnApiRunner", "multi_processing")  # RunnerKind.LOCAL
    """
    name = _runner_name(runner)
    if name not in _LOCAL_RUNNERS:
        return RunnerKind.REMOTE
    if name in _THREAD_RUNNERS and (running_mode or "in_memory") in _THREAD_MODES:
        return RunnerKind.IN_PROCESS
    return RunnerKind.LOCAL


def runner_flag(beam_args: Sequence[str]) -> str | None:
    """The value of ``--runner`` among Beam flags (``--runner X`` or ``--runner=X``), None when none is given."""
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(beam_args):
            return beam_args[i + 1]
    return None


def with_local_defaults(beam_args: Sequence[str]) -> list[str]:
    """``beam_args`` after ``LOCAL_PIPELINE_ARGS`` when they name no runner (later flags win, so a given
    ``--direct_running_mode`` overrides the default); unchanged when they do."""
    args = list(beam_args)
    return args if runner_flag(args) is not None else [*LOCAL_PIPELINE_ARGS, *args]


def _options(pipeline_args: Sequence[str] | PipelineOptions | None) -> PipelineOptions:
    from apache_beam.options.pipeline_options import PipelineOptions

    if isinstance(pipeline_args, PipelineOptions):
        return pipeline_args
    return PipelineOptions(with_local_defaults(pipeline_args or ()))


def options_kind(options: PipelineOptions) -> RunnerKind:
    """Where the runner of ``options`` runs DoFns (``runner_kind`` of its ``--runner`` and running mode)."""
    settings = options.get_all_options()
    return runner_kind(settings.get("runner"), settings.get("direct_running_mode"))


def _new_pipeline(options: PipelineOptions) -> beam.Pipeline:
    import apache_beam as beam

    try:
        return beam.Pipeline(options=options)
    except (ValueError, TypeError, ImportError) as exc:
        raise SpecError(f"Beam cannot make a pipeline from these options: {exc}") from None


def build_options(pipeline_args: Sequence[str] | PipelineOptions | None = None) -> PipelineOptions:
    """``PipelineOptions`` for a deploy, checked: Beam can make a pipeline from them.

    Args:
      pipeline_args: Beam flags (``--runner=DataflowRunner --project=...``), used after ``LOCAL_PIPELINE_ARGS`` when
        they name no runner; or ``PipelineOptions``, used as they are. None: ``LOCAL_PIPELINE_ARGS``.

    Raises:
      SpecError: Options Beam cannot build a pipeline from (e.g. an unknown runner).
    """
    options = _options(pipeline_args)
    _new_pipeline(options)
    return options


def describe_runner(options: PipelineOptions) -> str:
    """``FnApiRunner (in_memory, 1 worker)``, ``DataflowRunner (project p, region r, job j)``: for people."""
    from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, StandardOptions

    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    details = []
    if runner_kind(runner).is_local:
        direct = options.view_as(DirectOptions)
        workers = direct.direct_num_workers
        details.append(f"{direct.direct_running_mode}, {workers} worker{'s' if workers != 1 else ''}")
    gcp = options.view_as(GoogleCloudOptions)
    for label, value in (("project", gcp.project), ("region", gcp.region), ("job", gcp.job_name)):
        if value:
            details.append(f"{label} {value}")
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name + (f" ({', '.join(details)})" if details else "")


def _cancel(pipeline: beam.Pipeline) -> None:
    """Cancels the job a runner started elsewhere: a Dataflow job goes on when the process that launched it stops."""
    result = getattr(pipeline, "result", None)
    if result is None:
        return  # the runner never got as far as a job (or runs in this process, which is stopping)
    try:
        result.cancel()
        logger.info("cancelled the pipeline's job")
    except Exception as exc:  # noqa: BLE001 - the interrupt goes on; the job may need cancelling by hand
        logger.warning(
            "could not cancel the pipeline's job (%s: %s); cancel it in the runner's console", type(exc).__name__, exc
        )


def job_only_outcome(options: PipelineOptions) -> str | None:
    """What a run that only builds the Dataflow job leaves behind; None when the run executes the pipeline.

    ``--dry_run=True`` builds the job graph and stops; ``--template_location`` also stages the files and writes a
    template that runs later. Other runners ignore both flags and run the pipeline.

    Example::

        job_only_outcome(PipelineOptions(["--runner=DataflowRunner", "--dry_run=True"]))  # "job graph built"
    """
    from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions, TestOptions

    if _runner_name(options.view_as(StandardOptions).runner) != "dataflowrunner":
        return None
    if options.view_as(TestOptions).dry_run:
        return "job graph built"
    template = options.view_as(GoogleCloudOptions).template_location
    return f"template written to {template}" if template else None


# -- collecting results --------------------------------------------------------------------------------------------

_CALLBACKS: dict[str, Callable[[PushResult], None]] = {}
"""Callbacks by key, for ``_notify``.

Beam pickles what a ``Map`` calls and its arguments. The caller's callback usually cannot be pickled (a report holds
a lock, a stream and a thread), and a copy unpickled on a worker would only fill or print from a copy. So the
pipeline carries only a key: a worker in this process finds the callback here, a worker elsewhere finds nothing.
"""


@contextlib.contextmanager
def _in_process_callback(callback: Callable[[PushResult], None]) -> Iterator[str]:
    """Registers ``callback`` for ``_notify`` while the block runs; yields the key to pass to ``_notify``."""
    key = uuid.uuid4().hex
    _CALLBACKS[key] = callback
    try:
        yield key
    finally:
        _CALLBACKS.pop(key, None)


def _notify(result: PushResult, key: str) -> PushResult:
    """Hands ``result`` to the callback registered under ``key`` in this process, if any; returns it unchanged."""
    callback = _CALLBACKS.get(key)
    if callback is not None:
        callback(result)
    return result


class _Collector:
    """One result per Space, from any thread: the last one seen is kept, ``on_result`` sees the first."""

    def __init__(self, on_result: Callable[[PushResult], None] | None):
        self._on_result = on_result
        self._results: dict[str, PushResult] = {}
        self._lock = threading.Lock()

    def add(self, result: PushResult) -> None:
        with self._lock:
            first = result.repo_id not in self._results
            self._results[result.repo_id] = result
        if first and self._on_result is not None:
            self._on_result(result)

    def results(self) -> list[PushResult]:
        with self._lock:
            return sorted(self._results.values(), key=lambda r: r.repo_id)


def collect_results(results: beam.PCollection, path_prefix: str) -> beam.PCollection:
    """Writes ``PCollection[PushResult]`` as JSON lines to ``path_prefix*``; ``read_results`` reads them back."""
    import apache_beam as beam

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


@contextlib.contextmanager
def _results_folder(options: PipelineOptions, *, job_only: bool = False) -> Iterator[str | None]:
    """A fresh folder for result files, removed afterwards; None when the workers share this process.

    A job that is only built (``job_only``) still names the folder in its graph, but writes nothing there now;
    a template writes there whenever it is launched, so the folder is left alone.
    """
    if options_kind(options) is RunnerKind.IN_PROCESS:
        yield None
        return
    temp_location = options.get_all_options().get("temp_location")
    own_temp = None if temp_location else tempfile.mkdtemp(prefix="beam-pusher-results-")
    folder = f"{(temp_location or own_temp).rstrip('/')}/beam_pusher-results-{uuid.uuid4().hex}"
    try:
        yield folder
    finally:
        if own_temp:
            shutil.rmtree(own_temp, ignore_errors=True)
        elif not job_only:
            _remove_remote(folder)


def _remove_remote(folder: str) -> None:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(folder)
        fs.rm(path, recursive=True)
    except (OSError, FileNotFoundError):
        logger.debug("could not remove %s", folder)


def _read_ahead(options: PipelineOptions, specs: Sequence[SpaceSpec], deploy_options: dict[str, Any]
                ) -> contextlib.AbstractContextManager:
    """``readahead.reading_ahead`` when the workers share this process; nothing otherwise."""
    if options_kind(options) is not RunnerKind.IN_PROCESS:
        return contextlib.nullcontext()
    from beam_pusher.commit import HubSettings
    from beam_pusher.readahead import reading_ahead

    settings = HubSettings(endpoint=deploy_options.get("endpoint"), token=deploy_options.get("token"))
    return reading_ahead(settings, specs, max_workers=deploy_options.get("parallel_pushes", 16))


def run_deploy(
    specs: Sequence[SpaceSpec],
    *,
    pipeline_args: Sequence[str] | PipelineOptions | None = None,
    on_result: Callable[[PushResult], None] | None = None,
    **deploy_options: Any,
) -> list[PushResult]:
    """Deploys ``specs`` in one Beam pipeline and returns one ``PushResult`` per Space, sorted by repo id.

    On a remote runner the running beam_pusher is staged for the workers (``staging.stage_package``) unless the
    options already say how they get it. A run that only builds the job (``job_only_outcome``) returns no results.

    Args:
      specs: The Spaces to deploy.
      pipeline_args: As for ``build_options``; default ``LOCAL_PIPELINE_ARGS``.
      on_result: Called once per Space with its result: as the Space finishes when the workers share this process
        (``RunnerKind.IN_PROCESS``), else when the results are read back after the run.
      **deploy_options: Keyword options of ``DeploySpaces`` (endpoint, token, dry_run, wait, ...).

    Raises:
      SpecError: Options Beam cannot build a pipeline from (e.g. an unknown runner).
      KeyboardInterrupt: The run was interrupted (see ``beam_pusher.stopping``); a job the runner started elsewhere was
        cancelled first.
      Exception: Whatever the runner raises when the pipeline itself fails.

    Example::

        report = ConsoleReport(total=len(specs))
        results = run_deploy(specs, endpoint="http://127.0.0.1:8080", token="env:HF_TOKEN", on_result=report.add)
    """
    import apache_beam as beam

    from beam_pusher.staging import stage_package
    from beam_pusher.transforms import DeploySpaces

    options = _options(pipeline_args)
    stage_package(options)
    job_only = job_only_outcome(options) is not None
    collector = _Collector(on_result)
    with _read_ahead(options, specs, deploy_options), _in_process_callback(collector.add) as key, \
            _results_folder(options, job_only=job_only) as folder:
        pipeline = _new_pipeline(options)
        try:
            with pipeline:
                specs_in = pipeline | "Specs" >> beam.Create(list(specs))
                results = specs_in | "DeploySpaces" >> DeploySpaces(**deploy_options)
                _ = results | "CollectResults" >> beam.Map(_notify, key)
                if folder is not None:
                    collect_results(results, f"{folder}/results")
        except KeyboardInterrupt:
            _cancel(pipeline)
            raise
        if folder is not None and not job_only:
            for result in read_results(f"{folder}/results"):
                collector.add(result)
    return collector.results()
