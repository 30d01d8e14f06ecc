"""Beam transforms that deploy Spaces: read app files, render placeholders in parallel, push each Space once.

``DeploySpaces`` is the whole pipeline; it is three public transforms that compose with ``|`` alone::

    SpaceSpec -> ReadAppFiles -> SpaceFiles -> RenderPlaceholders -> SpaceFiles -> PushToSpace -> PushResult

Each element carries what the next step needs: a ``SpaceFiles`` is one Space's spec, its files and, when something
went wrong on the way, its error. So no step needs the specs passed in again, and a failed Space travels as one
element like any other until ``PushToSpace`` reports it. Tagged outputs for listings, files and failures (as fileio
has) were the other choice; they would leave whoever composes the transforms to join the three by repo id again,
as the push step used to, with the specs passed in once more.

Files are listed and read through fsspec, so templates and models may live on any filesystem. ``RenderPlaceholders``
sends each file out on its own, reshuffles so files (not Spaces) spread over workers, renders or hashes them in
parallel, then brings each Space's files back together on one worker (``CoGroupByKey`` with the listing) and checks
that every listed file came back. ``PushToSpace`` then plans against the Space's remote tree and makes at most one
atomic commit ("write in parallel, then one finalize step", as ``fileio.WriteToFiles`` does). That is two shuffles,
the least that spreading files and regrouping them per Space needs, and no side input. A Space that fails at any
step becomes a ``PushResult`` with ``error`` set and never stops the others.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
from collections.abc import Iterable, Mapping

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

from beam_pusher import hashcache, templates
from beam_pusher.auth import check_token_reference
from beam_pusher.errors import BeamPusherError, SpecError
from beam_pusher.hub import HubSettings
from beam_pusher.spacefiles import content_file, list_space_files
from beam_pusher.stopping import StopAsked, raise_if_stopped, stop_requested
from beam_pusher.spec import AppFile, Outcome, PlaceholderUse, PushResult, SpaceFiles, SpaceSpec

__all__ = ["DeploySpaces", "PushToSpace", "ReadAppFiles", "RenderPlaceholders"]

logger = logging.getLogger(__name__)

_NAMESPACE = "beam_pusher"

# The inputs of the regroup step, as tags of RenderPlaceholders' CoGroupByKey: each Space's listing, its rendered
# files, the files that failed, and what rendering found about placeholders (only files that have any).
_LISTING, _RENDERED, _FAILED, _USED = "listing", "rendered", "failed", "used"


def _open(url: str):
    import fsspec

    return fsspec.open(url, "rb")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BeamPusherError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class _ListSpaceFilesFn(beam.DoFn):
    """Lists one Space's template and model files, and makes its generated files (README.md, model_loader.py)."""

    def __init__(self, base_dir: str | None):
        self._base_dir = base_dir
        self._listed = Metrics.counter(_NAMESPACE, "files_listed")
        self._excluded = Metrics.counter(_NAMESPACE, "files_excluded")

    def process(self, spec: SpaceSpec) -> Iterable[SpaceFiles]:
        try:
            space = list_space_files(spec, base_dir=self._base_dir)
        except Exception as exc:  # noqa: BLE001 - one bad template must not stop the other Spaces
            logger.warning("%s: cannot read the app files: %s", spec.repo_id, _describe(exc))
            yield SpaceFiles(spec, error=f"{spec.repo_id}: {_describe(exc)}")
            return
        self._listed.inc(len(space.files))
        self._excluded.inc(len(space.excluded))
        secrets = [e.path for e in space.excluded if e.is_secret]
        if secrets:  # said once per Space; the result lists every exclusion
            logger.warning("%s: not uploading %s: .env files may hold secrets (include: uploads one anyway)",
                           spec.repo_id, ", ".join(secrets))
        yield space


class ReadAppFiles(beam.PTransform):
    """Lists the files each Space will hold: its app template, its embedded model, and generated files.

    Input ``PCollection[SpaceSpec]``; output ``PCollection[SpaceFiles]``, one per Space. Template and model files are
    references (``AppFile.source``), read later by ``RenderPlaceholders``; a Space whose template cannot be read, or
    that would get two files for one path, comes out with ``error`` set and no files. Files are chosen as git would
    choose them (default exclusions such as ``.env`` and ``.venv/``, the template's ``.gitignore``, the spec's
    ``exclude`` and ``include``); ``SpaceFiles.excluded`` says what was left out and why.

    Args:
      base_dir: Folder that relative ``app_path``/``model_path`` values are resolved against (default: cwd).

    Example::

        listed = specs | ReadAppFiles(base_dir="configs")
    """

    def __init__(self, *, base_dir: str | None = None):
        super().__init__()
        self._base_dir = base_dir

    def expand(self, specs):
        return specs | "ListSpaceFiles" >> beam.ParDo(_ListSpaceFilesFn(self._base_dir))


@dataclasses.dataclass(frozen=True)
class _RenderTask:
    """One file on its way to be rendered, with its Space's placeholder values."""

    file: AppFile
    values: Mapping[str, str]
    strict: bool


def _split_space(space: SpaceFiles):
    """Sends a Space's files out one by one, to be rendered anywhere, and its listing on to the regroup step."""
    repo_id = space.spec.repo_id
    if space.error is None:
        try:
            values = templates.placeholder_values(space.spec)
        except BeamPusherError as exc:  # ReadAppFiles checks this first; a SpaceFiles built by hand may not
            space = SpaceFiles(space.spec, error=f"{repo_id}: {exc}")
        else:
            for f in space.files:
                yield TaggedOutput(_RENDERED, _RenderTask(f, values, space.spec.strict_placeholders))
    yield repo_id, space


class _RenderFileFn(beam.DoFn):
    """Replaces placeholders in a text file (a large one as a stream), or hashes a binary file while streaming it;
    an unchanged remote binary file's hashes come from the hash cache (``beam_pusher.hashcache``), unread."""

    def __init__(self, hash_cache: bool | str):
        self._hash_cache = hash_cache  # resolved in setup(), on the worker
        self._rendered = Metrics.counter(_NAMESPACE, "files_rendered")
        self._streamed = Metrics.counter(_NAMESPACE, "files_streamed")
        self._cached = Metrics.counter(_NAMESPACE, "files_hashed_from_cache")
        self._failed = Metrics.counter(_NAMESPACE, "files_failed")

    def setup(self):
        self._cache = hashcache.open_cache(self._hash_cache)

    def process(self, task: _RenderTask) -> Iterable[tuple[str, AppFile] | TaggedOutput]:
        f = task.file
        if f.content is not None:
            yield f.repo_id, (f if f.sha256 else content_file(f.repo_id, f.path, f.content))
            return
        try:
            rendered, use = self._render(f, task.values, task.strict)
        except Exception as exc:  # noqa: BLE001 - reported with the Space, never stops the others
            self._failed.inc()
            logger.warning("%s: cannot render %s: %s", f.repo_id, f.path, _describe(exc))
            yield TaggedOutput(_FAILED, (f.repo_id, f"{f.repo_id}: {f.path}: {_describe(exc)}"))
            return
        yield f.repo_id, rendered
        if use.used or use.unresolved_total:
            yield TaggedOutput(_USED, (f.repo_id, use))

    def _render(self, f: AppFile, values: Mapping[str, str], strict: bool) -> tuple[AppFile, PlaceholderUse]:
        out = hashcache.render_source(f.source, f.size, lambda: _open(f.source), values, path=f.path, strict=strict,
                                      cache=self._cache)
        if out.cached:
            self._cached.inc()
        elif out.content is None and out.rendering is None:
            self._streamed.inc()
        else:
            self._rendered.inc()
            logger.debug("%s: rendered %s%s", f.repo_id, f.path, " as a stream" if out.streamed else "")
        if out.content is not None:
            return content_file(f.repo_id, f.path, out.content), out.use
        hashes = out.hashes
        rendered = AppFile(
            f.repo_id, f.path, hashes.size, source=f.source, sha256=hashes.sha256, git_sha1=hashes.git_sha1,
            rendering=out.rendering,
        )
        return rendered, out.use


class _CollectSpaceFn(beam.DoFn):
    """Puts each Space's rendered files back together; checks them, and the Space's placeholders, as a whole.

    The placeholder rules need every file of the Space (``templates.check_placeholder_use``): an error in strict
    mode, else at most one warning per Space, in its result and the log. In mirror mode a file lost on the way
    would be deleted from the Space, so a Space whose files do not match its listing is failed here, before
    anything reaches the Hub.
    """

    def __init__(self):
        self._incomplete = Metrics.counter(_NAMESPACE, "spaces_incomplete")

    def process(self, element) -> Iterable[SpaceFiles]:
        repo_id, groups = element
        listings = list(groups[_LISTING])
        if not listings:
            # Files always travel with their listing; without one there is no Space to report them against.
            return
        spec = listings[0].spec
        problems = [s.error for s in listings if s.error] + sorted(groups[_FAILED])
        if len(listings) > 1:
            problems.append(f"{repo_id}: the Space appears {len(listings)} times in one run; deploy it once.")
        if problems:
            yield SpaceFiles(spec, error="; ".join(problems))
            return
        files = list(groups[_RENDERED])
        arrived = {f.path: f for f in files}
        listed = [f.path for f in listings[0].files]
        if len(files) != len(listed) or arrived.keys() != set(listed):
            self._incomplete.inc()
            yield SpaceFiles(spec, error=_mismatch(repo_id, listed, [f.path for f in files]))
            return
        use = listings[0].placeholder_use
        for found in groups.get(_USED, ()):
            use |= found
        error, warning = templates.check_placeholder_use(spec, use)
        if error:
            yield SpaceFiles(spec, error=error)
            return
        if warning:
            logger.warning("%s: %s", repo_id, warning)
        warnings = listings[0].warnings + ((warning,) if warning else ())
        yield SpaceFiles(spec, tuple(arrived[path] for path in listed), warnings=warnings, placeholder_use=use,
                         excluded=listings[0].excluded)


def _mismatch(repo_id: str, listed: list[str], arrived: list[str]) -> str:
    missing, unexpected = sorted(set(listed) - set(arrived)), sorted(set(arrived) - set(listed))
    logger.warning("%s: %d files listed, %d came back; missing %s", repo_id, len(listed), len(arrived), missing[:5])
    return (
        f"{repo_id}: the files that came back from rendering do not match the {len(listed)} files listed "
        f"(missing: {missing[:5]}, unexpected: {unexpected[:5]}, arrived: {len(arrived)}); nothing was committed, "
        "so nothing was deleted by mistake. Deploying again is safe; please report this."
    )


class RenderPlaceholders(beam.PTransform):
    """Renders placeholders in text files, in parallel; binary files are hashed while streaming and kept as is.

    Input and output ``PCollection[SpaceFiles]``, one per Space. Files are spread over workers one by one, so a
    Space with many files renders on many workers, then each Space's files are put back together; a Space whose
    file cannot be rendered, whose files do not all come back, that appears more than once, or (with
    ``strict_placeholders``) that has a placeholder without a value or one no file uses comes out with ``error``
    set; without strict mode such a Space carries one warning instead. Text is decided by content, so ``.json``,
    ``Dockerfile`` and extensionless text files are rendered, text files over 10 MiB as streams in constant memory,
    and binary files stay byte-identical.

    Args:
      hash_cache: Where the hashes of remote binary files are kept by object version, so an unchanged one is not
        read again (``beam_pusher.hashcache``): True for ``BEAM_PUSHER_HASH_CACHE`` or ``~/.cache/beam-pusher/
        hashes``, a folder, or False to read every file on every run.

    Example::

        rendered = specs | ReadAppFiles() | RenderPlaceholders()
    """

    def __init__(self, *, hash_cache: bool | str = True):
        super().__init__()
        hashcache.check_setting(hash_cache)
        self._hash_cache = hash_cache

    def expand(self, spaces):
        split = spaces | "SplitFiles" >> beam.FlatMap(_split_space).with_outputs(_RENDERED, main=_LISTING)
        rendered = (
            split[_RENDERED]
            | "Reshuffle" >> beam.Reshuffle()
            | "RenderFiles"
            >> beam.ParDo(_RenderFileFn(self._hash_cache)).with_outputs(_FAILED, _USED, main=_RENDERED)
        )
        return (
            {
                _LISTING: split[_LISTING],
                _RENDERED: rendered[_RENDERED],
                _FAILED: rendered[_FAILED],
                _USED: rendered[_USED],
            }
            | "GroupBySpace" >> beam.CoGroupByKey()
            | "CollectSpace" >> beam.ParDo(_CollectSpaceFn())
        )


class _CommitSpaceFn(beam.DoFn):
    """Pushes Spaces: each arrives with all its files; at most one commit is made per Space.

    Pushing is network-bound, so one worker pushes up to ``parallel_pushes`` Spaces at once from a thread pool
    instead of one after the other; results leave as their pushes finish, the last ones in ``finish_bundle``.
    Once a stop is asked for (``stopping.request_stop``), a Space whose push has not started, or whose commit has not
    been sent, is reported as not attempted (``PushResult.skipped``); commits already sent finish.
    """

    def __init__(self, settings: HubSettings, parallel_pushes: int):
        self._settings = settings  # token-free; the token is resolved in setup(), on the worker
        self._parallel_pushes = parallel_pushes
        self._pushed = Metrics.counter(_NAMESPACE, "spaces_pushed")
        self._unchanged = Metrics.counter(_NAMESPACE, "spaces_unchanged")
        self._failed = Metrics.counter(_NAMESPACE, "spaces_failed")
        self._skipped = Metrics.counter(_NAMESPACE, "spaces_not_attempted")
        self._deferred = Metrics.counter(_NAMESPACE, "spaces_deferred")
        self._files = Metrics.counter(_NAMESPACE, "files_uploaded")
        self._bytes = Metrics.counter(_NAMESPACE, "bytes_uploaded")

    def setup(self):
        from beam_pusher.hub import SpacePusher

        self._pool = concurrent.futures.ThreadPoolExecutor(self._parallel_pushes, thread_name_prefix="push")
        self._pusher = None
        self._setup_error = None
        try:
            self._pusher = SpacePusher(self._settings)
            self._pusher.committer.before_commit = raise_if_stopped
        except BeamPusherError as exc:
            self._setup_error = str(exc)  # reported per Space, so every Space says why it was not pushed

    def start_bundle(self):
        self._pending = []

    def process(self, space: SpaceFiles, window=beam.DoFn.WindowParam) -> Iterable[WindowedValue]:
        self._pending.append((self._pool.submit(self._push, space), window))
        yield from self._finished(wait=False)

    def finish_bundle(self) -> Iterable[WindowedValue]:
        yield from self._finished(wait=True)

    def teardown(self):
        self._pool.shutdown(wait=True)

    def _finished(self, *, wait: bool) -> Iterable[WindowedValue]:
        still_running = []
        for future, window in self._pending:
            if wait or future.done():
                # Counters are incremented here, on the bundle's thread, where Beam records them.
                yield WindowedValue(self._count(future.result()), window.max_timestamp(), [window])
            else:
                still_running.append((future, window))
        self._pending = still_running

    def _count(self, result: PushResult) -> PushResult:
        if result.error:
            self._failed.inc()
        elif result.outcome is Outcome.DEFERRED:
            self._deferred.inc()
        elif result.skipped:
            self._skipped.inc()
        elif result.committed:
            self._pushed.inc()
            self._files.inc(result.files_added + result.files_updated)
            self._bytes.inc(result.bytes_uploaded)
        else:
            self._unchanged.inc()
        return result

    def _push(self, space: SpaceFiles) -> PushResult:
        repo_id = space.spec.repo_id
        if space.error:
            result = PushResult(repo_id=repo_id, pushed=False, error=space.error)
        elif self._setup_error:
            result = PushResult(repo_id=repo_id, pushed=False, error=f"{repo_id}: {self._setup_error}")
        elif stop_requested():
            result = PushResult(repo_id=repo_id, pushed=False, skipped="interrupted")
        else:
            try:
                result = self._pusher.push(space.spec, space.files)
            except StopAsked:  # planned, but the commit was not sent: the Space holds what it held
                logger.info("%s: not committed: the run was stopped", repo_id)
                result = PushResult(repo_id=repo_id, pushed=False, skipped="interrupted")
        return dataclasses.replace(result, warnings=space.warnings + result.warnings, excluded=space.excluded)


class PushToSpace(beam.PTransform):
    """Pushes each Space's files in one atomic commit: ``PCollection[SpaceFiles] -> PCollection[PushResult]``.

    Input as ``RenderPlaceholders`` makes it: one ``SpaceFiles`` per Space, its files rendered and hashed (a Space
    given twice would be pushed twice; ``RenderPlaceholders`` reports it instead). Output one ``PushResult`` per
    Space, failures included: a ``SpaceFiles`` with ``error`` set is reported, not pushed.

    Args:
      endpoint: Hub URL (None: ``HF_ENDPOINT`` or huggingface.co).
      token: A token *reference*: None (``HF_TOKEN`` or the huggingface_hub login on the worker), ``env:NAME`` or
        ``file:PATH``. Literal tokens are refused: they would be pickled into the pipeline.
      dry_run: Plan only; ``PushResult.planned`` lists the changes and nothing is written.
      wait: Wait for each pushed Space to reach RUNNING (or fail), up to ``wait_timeout`` seconds.
      wait_timeout: Seconds to wait for that.
      max_attempts: Plan-and-commit attempts per Space across conflicts (412) and transient errors.
      backoff_seconds: First back-off after a transient error.
      parallel_pushes: Spaces one worker pushes at the same time (pushing waits on the network, not the CPU).
      create_pr: Open one pull request per changed Space instead of committing to ``main`` (a rerun adds a commit
        to the open one); ``PushResult.pr_url`` names it. Space settings are not written (see ``beam_pusher.hub``).

    Example::

        results = specs | ReadAppFiles() | RenderPlaceholders() | PushToSpace(token="env:HF_TOKEN")
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        dry_run: bool = False,
        wait: bool = False,
        wait_timeout: float = 600.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        parallel_pushes: int = 16,
        create_pr: bool = False,
    ):
        super().__init__()
        check_token_reference(token)
        if isinstance(parallel_pushes, bool) or not isinstance(parallel_pushes, int) or parallel_pushes < 1:
            raise SpecError(
                f"parallel_pushes={parallel_pushes!r} is not a number of Spaces: give a whole number of at least 1 "
                "(16 is the default)."
            )
        self._settings = HubSettings(
            endpoint=endpoint,
            token=token,
            max_attempts=max_attempts,
            backoff_seconds=backoff_seconds,
            dry_run=dry_run,
            wait=wait,
            wait_timeout=wait_timeout,
            create_pr=create_pr,
        )
        self._parallel_pushes = parallel_pushes

    def expand(self, spaces):
        return spaces | "CommitSpace" >> beam.ParDo(_CommitSpaceFn(self._settings, self._parallel_pushes))


class DeploySpaces(beam.PTransform):
    """Deploys Spaces: ``PCollection[SpaceSpec] -> PCollection[PushResult]``.

    The same as ``ReadAppFiles(base_dir=...) | RenderPlaceholders(hash_cache=...) | PushToSpace(...)``; it takes
    ``PushToSpace``'s keywords, ``base_dir`` for ``ReadAppFiles`` and ``hash_cache`` for ``RenderPlaceholders``.

    Args:
      endpoint, token, dry_run, wait, wait_timeout, max_attempts, backoff_seconds, parallel_pushes, create_pr: As
        for ``PushToSpace``.
      base_dir: As for ``ReadAppFiles``: folder that relative ``app_path``/``model_path`` values are resolved
        against (default: cwd).
      hash_cache: As for ``RenderPlaceholders``.

    Example::

        with beam.Pipeline() as p:
            results = (
                p
                | beam.Create([SpaceSpec("alice/penguins", "apps.gradio.img_classifier", model_path="gs://b/model")])
                | DeploySpaces(token="env:HF_TOKEN")
            )
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        dry_run: bool = False,
        wait: bool = False,
        wait_timeout: float = 600.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        parallel_pushes: int = 16,
        create_pr: bool = False,
        base_dir: str | None = None,
        hash_cache: bool | str = True,
    ):
        super().__init__()
        self._read = ReadAppFiles(base_dir=base_dir)
        self._render = RenderPlaceholders(hash_cache=hash_cache)
        self._push = PushToSpace(
            endpoint=endpoint,
            token=token,
            dry_run=dry_run,
            wait=wait,
            wait_timeout=wait_timeout,
            max_attempts=max_attempts,
            backoff_seconds=backoff_seconds,
            parallel_pushes=parallel_pushes,
            create_pr=create_pr,
        )

    def expand(self, specs):
        return (
            specs
            | "ReadAppFiles" >> self._read
            | "RenderPlaceholders" >> self._render
            | "PushToSpace" >> self._push
        )
