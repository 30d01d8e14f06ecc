"""Pushes model directories to Hub model repositories, each version on its own branch.

This is the engine of the TFX ``HFModelPusher``; its commit goes through ``beam_pusher.commit.Committer`` (plan
against the remote tree, one atomic commit with ``parent_commit``, re-plan on 412, back off on transient errors), so
a model push has the same guarantees as a Space push:

1. list and hash the model's files (streamed, so a worker never holds a whole model);
2. create the repository and the version branch when missing;
3. one commit on that branch that makes it hold exactly the model's files (``.gitattributes`` is kept);
   pushing the same files again makes no commit.

Files sit at the branch's root, so ``snapshot_download(repo_id, revision=version)`` returns the SavedModel folder.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_pusher import sources
from beam_pusher.auth import check_token_reference
from beam_pusher.commit import Committer, HubSettings, push_result
from beam_pusher.errors import BeamPusherError, SpecError
from beam_pusher.hashing import hash_stream
from beam_pusher.rules import check_branch_name, validate_repo_id
from beam_pusher.spec import AppFile, PushResult

__all__ = ["ModelRepoPusher", "ModelRepoSpec", "PushModels", "list_model_files"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ModelRepoSpec:
    """One model version to push.

    Attributes:
      repo_id: The model repository, ``namespace/name``.
      model_path: The model directory (or single file): a local path or any fsspec URL.
      version: The branch that holds this version (``v3``, ``v1700000000``).
      private: Whether a newly created repository is private.
      commit_message: Summary of the commit (default: "Push model version <version> with beam_pusher").

    Example::

        ModelRepoSpec("alice/penguin-model", "gs://bucket/serving_model_dir/Format-Serving", "v3")
    """

    repo_id: str
    model_path: str
    version: str
    private: bool = False
    commit_message: str | None = None

    def __post_init__(self) -> None:
        validate_repo_id(self.repo_id)
        if not isinstance(self.model_path, str) or not self.model_path.strip():
            raise SpecError(f"model_path={self.model_path!r} must be a non-empty path or URL of the model directory.")
        check_branch_name(self.version, field="version")
        if not isinstance(self.private, bool):
            raise SpecError(f"private={self.private!r} must be true or false.")


def list_model_files(spec: ModelRepoSpec) -> list[AppFile]:
    """The model's files as ``AppFile`` references with their hashes, read once each in chunks.

    Raises:
      TemplateError: the model directory is missing or empty.
    """
    import fsspec

    root = sources.resolve_model_path(spec.model_path)
    files = []
    for source in sources.list_source_files(root):
        with fsspec.open(source.url, "rb") as stream:
            hashes = hash_stream(stream, source.size)
        files.append(
            AppFile(spec.repo_id, source.path, hashes.size, source=source.url, sha256=hashes.sha256,
                    git_sha1=hashes.git_sha1)
        )
    return files


class ModelRepoPusher:
    """Pushes model versions. Build one per worker: it holds a resolved token and is not picklable."""

    def __init__(self, settings: HubSettings):
        self.committer = Committer.connect(settings)  # resolves the token, here on the worker
        self.api = self.committer.api

    def __getstate__(self):
        raise TypeError("ModelRepoPusher holds a resolved token and must not be pickled; pickle HubSettings instead.")

    def push(self, spec: ModelRepoSpec) -> PushResult:
        """Pushes ``spec`` and reports what happened; Hub and file problems are reported, never raised."""
        repo_id, version, call = spec.repo_id, spec.version, self.committer.call
        repo_url = f"{self.api.endpoint}/{repo_id}"
        try:
            files = list_model_files(spec)
            call(repo_id, "create the model repository",
                 lambda: self.api.create_repo(repo_id, repo_type="model", private=spec.private, exist_ok=True))
            call(repo_id, f"create the branch {version}",
                 lambda: self.api.create_branch(repo_id, branch=version, repo_type="model", exist_ok=True))
            outcome = self.committer.commit(
                repo_id,
                files,
                repo_type="model",
                revision=version,
                commit_message=spec.commit_message or f"Push model version {version} with beam_pusher",
            )
        except BeamPusherError as exc:
            return self._failed(spec, repo_url, str(exc))
        except Exception as exc:  # noqa: BLE001 - reported in the result like every other push failure
            return self._failed(spec, repo_url, f"{repo_id}: {type(exc).__name__}: {exc}")
        return push_result(outcome, repo_id=repo_id, repo_url=repo_url, pushed_version=version,
                           label=f"{repo_id}@{version}")  # fmt: skip

    def _failed(self, spec: ModelRepoSpec, repo_url: str, message: str) -> PushResult:
        message = self.committer.scrub(message)
        logger.warning("%s@%s: not pushed: %s", spec.repo_id, spec.version, message)
        return PushResult(repo_id=spec.repo_id, pushed=False, repo_url=repo_url, pushed_version=spec.version,
                          error=message)


class _PushModelFn(beam.DoFn):
    """Pushes one model version per element; the pusher (and the token) is made in ``setup``, on the worker."""

    def __init__(self, settings: HubSettings):
        self._settings = settings
        self._pushed = Metrics.counter("beam_pusher", "models_pushed")
        self._failed = Metrics.counter("beam_pusher", "models_failed")

    def setup(self):
        self._pusher = None
        self._setup_error = None
        try:
            self._pusher = ModelRepoPusher(self._settings)
        except BeamPusherError as exc:
            self._setup_error = str(exc)

    def process(self, spec: ModelRepoSpec) -> Iterable[PushResult]:
        if self._setup_error:
            result = PushResult(repo_id=spec.repo_id, pushed=False, pushed_version=spec.version,
                                error=f"{spec.repo_id}: {self._setup_error}")
        else:
            result = self._pusher.push(spec)
        (self._failed if result.error else self._pushed).inc()
        yield result


class PushModels(beam.PTransform):
    """Pushes model versions: ``PCollection[ModelRepoSpec] -> PCollection[PushResult]``, one result per version.

    Args:
      endpoint: Hub URL (None: ``HF_ENDPOINT`` or huggingface.co).
      token: A token reference: None (``HF_TOKEN`` or the huggingface_hub login on the worker), ``env:NAME`` or
        ``file:PATH``. Literal tokens are refused: they would be pickled into the pipeline.
      max_attempts: Plan-and-commit attempts across conflicts (412) and transient errors.
      backoff_seconds: First back-off after a transient error.

    Example::

        with beam.Pipeline() as p:
            results = (
                p
                | beam.Create([ModelRepoSpec("alice/penguin-model", "/models/serving", "v3")])
                | PushModels(token="env:HF_TOKEN")
            )
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
    ):
        super().__init__()
        check_token_reference(token)
        self._settings = HubSettings(
            endpoint=endpoint, token=token, max_attempts=max_attempts, backoff_seconds=backoff_seconds
        )

    def expand(self, specs):
        return (
            specs
            | "Reshuffle" >> beam.Reshuffle()
            | "PushModel" >> beam.ParDo(_PushModelFn(self._settings))
        )
