"""Beam transforms that deploy Spaces: read app files, render placeholders in parallel, push each Space once.

``DeploySpaces`` is the whole pipeline; it is built from three public transforms users can compose::

    SpaceSpec -> ReadAppFiles -> Reshuffle -> RenderPlaceholders -> PushToSpace -> PushResult

Files are listed and read through fsspec, so templates and models may live on any filesystem. Rendering runs in
parallel across workers; all files of one Space then meet on one worker (``CoGroupByKey`` on the repo id), which
plans against the Space's remote tree and makes at most one atomic commit ("write in parallel, then one finalize
step", as ``fileio.WriteToFiles`` does). A Space that fails at any step becomes a ``PushResult`` with ``error`` set
and never stops the others.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from beam_pusher import frontmatter, sources, templates
from beam_pusher.auth import check_token_reference
from beam_pusher.errors import BeamPusherError
from beam_pusher.hashing import hash_bytes, hash_stream
from beam_pusher.hub import HubSettings
from beam_pusher.spec import AppFile, PushResult, SpaceFailure, SpaceManifest, SpaceSpec

__all__ = ["DeploySpaces", "PushToSpace", "ReadAppFiles", "RenderPlaceholders"]

logger = logging.getLogger(__name__)

_NAMESPACE = "beam_pusher"


def _open(url: str):
    import fsspec

    return fsspec.open(url, "rb")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BeamPusherError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _content_file(repo_id: str, path: str, content: bytes) -> AppFile:
    hashes = hash_bytes(content)
    return AppFile(repo_id, path, hashes.size, content=content, sha256=hashes.sha256, git_sha1=hashes.git_sha1)


class _ListSpaceFilesFn(beam.DoFn):
    """Lists one Space's template and model files, and makes its generated files (README.md, model_loader.py)."""

    def __init__(self, base_dir: str | None):
        self._base_dir = base_dir
        self._listed = Metrics.counter(_NAMESPACE, "files_listed")

    def process(self, spec: SpaceSpec) -> Iterable[AppFile | SpaceFailure | SpaceManifest]:
        try:
            files = list(self._space_files(spec))
        except Exception as exc:  # noqa: BLE001 - one bad template must not stop the other Spaces
            logger.warning("%s: cannot read the app files: %s", spec.repo_id, _describe(exc))
            yield SpaceFailure(spec.repo_id, f"{spec.repo_id}: {_describe(exc)}")
            return
        self._listed.inc(len(files))
        yield from files
        yield SpaceManifest(spec.repo_id, tuple(sorted(f.path for f in files)))

    def _space_files(self, spec: SpaceSpec) -> Iterable[AppFile]:
        values = templates.placeholder_values(spec)  # conflicting values fail this Space here, before any read
        root = sources.resolve_app_path(spec.app_path, base_dir=self._base_dir)
        template_files = sources.list_source_files(root)
        model_files = None
        if spec.model_path and not spec.model_hub_repo_id:
            model_root = sources.resolve_model_path(spec.model_path, base_dir=self._base_dir)
            model_files = sources.list_source_files(model_root, prefix="model/")
        readme_text = None
        for source in template_files:
            if source.path == "README.md":
                with _open(source.url) as f:
                    readme_text = templates.render_text(
                        f.read().decode("utf-8"), values, path="README.md", strict=spec.strict_placeholders
                    )
        generated = frontmatter.generated_files(spec, template_files, model_files, readme_text)
        for source in template_files + (model_files or []):
            if source.path not in generated:
                yield AppFile(spec.repo_id, source.path, source.size, source=source.url)
        for path, content in sorted(generated.items()):
            yield _content_file(spec.repo_id, path, content)


class ReadAppFiles(beam.PTransform):
    """Lists the files each Space will hold: its app template, its embedded model, and generated files.

    Input ``PCollection[SpaceSpec]``; output ``PCollection[AppFile | SpaceManifest | SpaceFailure]``. Template and
    model files are references (``AppFile.source``), read later by ``RenderPlaceholders``; each Space also gets a
    ``SpaceManifest`` of its paths, which ``PushToSpace`` checks; a Space whose template cannot be read yields one
    ``SpaceFailure`` instead.

    Example::

        files = specs | ReadAppFiles(base_dir="configs")
    """

    def __init__(self, base_dir: str | None = None):
        super().__init__()
        self._base_dir = base_dir

    def expand(self, specs):
        return specs | "ListSpaceFiles" >> beam.ParDo(_ListSpaceFilesFn(self._base_dir))


class _RenderFileFn(beam.DoFn):
    """Replaces placeholders in a text file, or hashes a binary/large file while streaming it."""

    def __init__(self):
        self._rendered = Metrics.counter(_NAMESPACE, "files_rendered")
        self._streamed = Metrics.counter(_NAMESPACE, "files_streamed")

    def process(self, element, contexts) -> Iterable[AppFile | SpaceFailure | SpaceManifest]:
        if not isinstance(element, AppFile):
            yield element  # manifests and failures travel on to the push step
            return
        if element.content is not None:
            yield element if element.sha256 else _content_file(element.repo_id, element.path, element.content)
            return
        values, strict = contexts.get(element.repo_id, ({}, False))
        try:
            yield self._render(element, values, strict)
        except Exception as exc:  # noqa: BLE001 - reported with the Space, never stops the others
            logger.warning("%s: cannot render %s: %s", element.repo_id, element.path, _describe(exc))
            yield SpaceFailure(element.repo_id, f"{element.repo_id}: {element.path}: {_describe(exc)}")

    def _render(self, f: AppFile, values: dict[str, str], strict: bool) -> AppFile:
        with _open(f.source) as stream:
            sample = stream.read(templates.TEXT_SAMPLE_SIZE)
            if f.size <= templates.RENDER_LIMIT and templates.is_text(sample):
                data = sample + stream.read()
                # render_bytes checks the whole file (a NUL past the sample keeps it binary, byte for byte).
                rendered = templates.render_bytes(data, values, path=f.path, strict=strict)
                self._rendered.inc()
                logger.debug("%s: rendered %s", f.repo_id, f.path)
                return _content_file(f.repo_id, f.path, rendered)
            stream.seek(0)
            hashes = hash_stream(stream, f.size)
        self._streamed.inc()
        return AppFile(f.repo_id, f.path, hashes.size, source=f.source, sha256=hashes.sha256, git_sha1=hashes.git_sha1)


def _render_context(spec: SpaceSpec):
    try:
        values = templates.placeholder_values(spec)
    except BeamPusherError:
        values = {}  # ReadAppFiles already failed this Space with the same error
    return spec.repo_id, (values, spec.strict_placeholders)


class RenderPlaceholders(beam.PTransform):
    """Renders placeholders in text files, in parallel; binary and large files are hashed, streamed, kept as is.

    Input and output ``PCollection[AppFile | SpaceManifest | SpaceFailure]``; ``specs`` (the ``PCollection[SpaceSpec]`` the files
    came from) supplies each Space's placeholder values as a side input. Text is decided by content, so ``.json``,
    ``Dockerfile`` and extensionless text files are rendered and binary files stay byte-identical.

    Example::

        rendered = files | RenderPlaceholders(specs)
    """

    def __init__(self, specs):
        super().__init__()
        self._specs = specs

    def expand(self, files):
        contexts = self._specs | "PlaceholderValues" >> beam.Map(_render_context)
        return files | "RenderFiles" >> beam.ParDo(_RenderFileFn(), contexts=beam.pvalue.AsDict(contexts))


class _CommitSpaceFn(beam.DoFn):
    """Pushes Spaces: all files of one Space arrive together; at most one commit is made per Space.

    Pushing is network-bound, so one worker pushes up to ``parallel_pushes`` Spaces at once from a thread pool
    instead of one after the other; results leave as their pushes finish, the last ones in ``finish_bundle``.
    """

    def __init__(self, settings: HubSettings, parallel_pushes: int):
        self._settings = settings  # token-free; the token is resolved in setup(), on the worker
        self._parallel_pushes = parallel_pushes
        self._pushed = Metrics.counter(_NAMESPACE, "spaces_pushed")
        self._unchanged = Metrics.counter(_NAMESPACE, "spaces_unchanged")
        self._failed = Metrics.counter(_NAMESPACE, "spaces_failed")
        self._files = Metrics.counter(_NAMESPACE, "files_uploaded")
        self._bytes = Metrics.counter(_NAMESPACE, "bytes_uploaded")

    def setup(self):
        from beam_pusher.hub import SpacePusher

        self._pool = concurrent.futures.ThreadPoolExecutor(self._parallel_pushes, thread_name_prefix="push")
        self._pusher = None
        self._setup_error = None
        try:
            self._pusher = SpacePusher(self._settings)
        except BeamPusherError as exc:
            self._setup_error = str(exc)  # reported per Space, so every Space says why it was not pushed

    def start_bundle(self):
        self._pending = []

    def process(self, element, window=beam.DoFn.WindowParam) -> Iterable[WindowedValue]:
        repo_id, groups = element
        specs, items = list(groups["spec"]), list(groups["files"])
        # Files without a Space cannot come through DeploySpaces; there would be nothing to report them against.
        if specs:
            self._pending.append((self._pool.submit(self._push, repo_id, specs, items), window))
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
        elif result.committed:
            self._pushed.inc()
            self._files.inc(result.files_added + result.files_updated)
            self._bytes.inc(result.bytes_uploaded)
        else:
            self._unchanged.inc()
        return result

    def _push(self, repo_id: str, specs: list[SpaceSpec], items: list) -> PushResult:
        problems = [i.message for i in items if isinstance(i, SpaceFailure)]
        if len(specs) > 1:
            problems.append(f"{repo_id}: the Space appears {len(specs)} times in one run; deploy it once.")
        files = [i for i in items if isinstance(i, AppFile)]
        paths = [f.path for f in files]
        duplicates = sorted({p for p in paths if paths.count(p) > 1})
        if duplicates:
            problems.append(f"{repo_id}: more than one file for {', '.join(duplicates)} (template vs model/).")
        manifests = [i for i in items if isinstance(i, SpaceManifest)]
        if not problems and (len(manifests) != 1 or set(manifests[0].paths) != set(paths)):
            listed = set(manifests[0].paths) if len(manifests) == 1 else set()
            problems.append(
                f"{repo_id}: the files that reached the push step do not match the {len(listed)} files listed "
                f"(missing: {sorted(listed - set(paths))[:5]}, unexpected: {sorted(set(paths) - listed)[:5]}, "
                f"manifests: {len(manifests)}); nothing was committed, so nothing was deleted by mistake. "
                "Deploying again is safe; please report this."
            )
        if not problems and self._setup_error:
            problems.append(f"{repo_id}: {self._setup_error}")
        if problems:
            return PushResult(repo_id=repo_id, pushed=False, error="; ".join(problems))
        return self._pusher.push(specs[0], files)


class PushToSpace(beam.PTransform):
    """Groups each Space's files on one worker and pushes them in one atomic commit.

    Input ``PCollection[AppFile | SpaceManifest | SpaceFailure]``, as ``RenderPlaceholders`` makes it; ``specs`` is
    the ``PCollection[SpaceSpec]`` they belong to.
    Output ``PCollection[PushResult]``, one per Space, failures included.

    Example::

        results = rendered | PushToSpace(specs, HubSettings(endpoint="https://huggingface.co", token="env:HF_TOKEN"))
    """

    def __init__(self, specs, settings: HubSettings, *, parallel_pushes: int = 16):
        super().__init__()
        check_token_reference(settings.token)
        self._specs = specs
        self._settings = settings
        self._parallel_pushes = parallel_pushes

    def expand(self, files):
        keyed_files = files | "KeyFilesBySpace" >> beam.Map(lambda f: (f.repo_id, f))
        keyed_specs = self._specs | "KeySpecsBySpace" >> beam.Map(lambda s: (s.repo_id, s))
        return (
            {"spec": keyed_specs, "files": keyed_files}
            | "GroupBySpace" >> beam.CoGroupByKey()
            | "CommitSpace" >> beam.ParDo(_CommitSpaceFn(self._settings, self._parallel_pushes))
        )


class DeploySpaces(beam.PTransform):
    """Deploys Spaces: ``PCollection[SpaceSpec] -> PCollection[PushResult]``.

    Args:
      endpoint: Hub URL (None: ``HF_ENDPOINT`` or huggingface.co).
      token: A token *reference*: None (``HF_TOKEN`` or the huggingface_hub login on the worker), ``env:NAME`` or
        ``file:PATH``. Literal tokens are refused: they would be pickled into the pipeline.
      dry_run: Plan only; ``PushResult.planned`` lists the changes and nothing is written.
      wait: Wait for each pushed Space to reach RUNNING (or fail), up to ``wait_timeout`` seconds.
      max_attempts: Plan-and-commit attempts per Space across conflicts (412) and transient errors.
      backoff_seconds: First back-off after a transient error.
      parallel_pushes: Spaces one worker pushes at the same time (pushing waits on the network, not the CPU).
      base_dir: Folder that relative ``app_path``/``model_path`` values are resolved against (default: cwd).

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
        base_dir: str | None = None,
    ):
        super().__init__()
        check_token_reference(token)
        self._parallel_pushes = parallel_pushes
        self._settings = HubSettings(
            endpoint=endpoint,
            token=token,
            max_attempts=max_attempts,
            backoff_seconds=backoff_seconds,
            dry_run=dry_run,
            wait=wait,
            wait_timeout=wait_timeout,
        )
        self._base_dir = base_dir

    def expand(self, specs):
        return (
            specs
            | "ReadAppFiles" >> ReadAppFiles(self._base_dir)
            | "Reshuffle" >> beam.Reshuffle()
            | "RenderPlaceholders" >> RenderPlaceholders(specs)
            | "PushToSpace" >> PushToSpace(specs, self._settings, parallel_pushes=self._parallel_pushes)
        )
