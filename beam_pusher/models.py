"""Pushes model versions to Hub model repositories: ``main`` holds the latest, each version keeps a branch.

This is the engine of the TFX ``HFModelPusher``; its commit goes through ``beam_pusher.commit.Committer`` (plan
against the remote tree, one atomic commit with ``parent_commit``, re-plan on 412, back off on transient errors), so
a model push has the same guarantees as a Space push:

1. list and hash the model's files (streamed, so a worker never holds a whole model); their sorted paths and
   sha256s make the model's *fingerprint*;
2. create the repository when missing and read its branches;
3. choose the version: a given ``version`` that already exists must hold the same files (a version never changes;
   other content is refused), and without one, a model whose fingerprint was pushed before reuses that version;
   else a new ``v<unix time>``;
4. one commit on ``main`` that makes it hold exactly the model's files and a model card (``README.md``;
   ``.gitattributes`` is kept); its title records the version and the fingerprint, which is how step 3 finds them;
5. a new version gets its branch at that commit, and it never moves after.

So a rerun with the same model changes nothing, ``snapshot_download(repo_id)`` returns the latest model, and
``snapshot_download(repo_id, revision=version)`` exactly the model pushed as that version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import time
from collections.abc import Iterable, Mapping

import apache_beam as beam
import yaml
from apache_beam.metrics import Metrics

from beam_pusher import sources
from beam_pusher.auth import check_token_reference
from beam_pusher.commit import Committer, HubSettings, plan_changes, push_result
from beam_pusher.errors import BeamPusherError, PushError, SpecError
from beam_pusher.hashing import hash_bytes, hash_stream
from beam_pusher.rules import check_branch_name, validate_repo_id
from beam_pusher.spec import AppFile, PushResult

__all__ = [
    "ModelRepoPusher", "ModelRepoSpec", "PushModels", "list_model_files", "model_card", "model_fingerprint",
]

logger = logging.getLogger(__name__)

MODEL_CARD = "README.md"
_DEFAULT_BRANCH = "main"
# The title of each commit on main: the version and the fingerprint of the model it holds.
_TITLE = "Model version {version} (fingerprint {fingerprint})"
_TITLE_PATTERN = re.compile(r"^Model version (?P<version>\S+) \(fingerprint (?P<fingerprint>sha256:[0-9a-f]{64})\)")
_NOT_MODEL_FILES = frozenset({MODEL_CARD, ".gitattributes"})


@dataclasses.dataclass(frozen=True)
class ModelRepoSpec:
    """One model version to push.

    Attributes:
      repo_id: The model repository, ``namespace/name``.
      model_path: The model directory (or single file): a local path or any fsspec URL.
      version: The branch that holds this version (``v3``); None: the version this model was pushed as before,
        else a new ``v<unix time>``. A version that exists must hold the same model files.
      private: Whether a newly created repository is private.
      pipeline_tag: The Hub task of the model card (``image-classification``, ``tabular-classification``, ...).
      blessed: What the TFX Evaluator said (True/False); None when the model was not evaluated.
      pipeline_name: The TFX pipeline that trained it, for the model card.

    Example::

        ModelRepoSpec("alice/penguin-model", "gs://bucket/serving_model_dir/Format-Serving", "v3")
    """

    repo_id: str
    model_path: str
    version: str | None = None
    private: bool = False
    pipeline_tag: str | None = None
    blessed: bool | None = None
    pipeline_name: str | None = None

    def __post_init__(self) -> None:
        validate_repo_id(self.repo_id)
        if not isinstance(self.model_path, str) or not self.model_path.strip():
            raise SpecError(f"model_path={self.model_path!r} must be a non-empty path or URL of the model directory.")
        if self.version is not None:
            check_branch_name(self.version, field="version")
            if self.version == _DEFAULT_BRANCH:
                raise SpecError(
                    "version='main' is not a version: main always holds the latest version. Give a version name "
                    "such as 'v3', or leave it unset for 'v<unix time>'."
                )
        if not isinstance(self.private, bool):
            raise SpecError(f"private={self.private!r} must be true or false.")
        if self.pipeline_tag is not None and not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", str(self.pipeline_tag)):
            raise SpecError(
                f"pipeline_tag={self.pipeline_tag!r} is not a Hub task name: use lower-case words joined by '-', "
                "such as 'image-classification'."
            )
        if self.blessed is not None and not isinstance(self.blessed, bool):
            raise SpecError(f"blessed={self.blessed!r} must be true, false or None.")


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


def model_fingerprint(files: Iterable[AppFile]) -> str:
    """``sha256:<hex>`` of the files' sorted paths and sha256s: equal exactly when the model files are equal."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        digest.update(f"{f.path}\0{f.sha256}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def model_card(spec: ModelRepoSpec, version: str, fingerprint: str, files: Iterable[AppFile]) -> str:
    """The model card (README.md) of one version: Hub metadata, what TFX knew of the model, how to load it.

    Nothing in it changes from run to run for the same model and facts, so pushing the same model again makes no
    commit.
    """
    files = list(files)
    metadata: dict[str, object] = {"library_name": "tfx", "tags": ["tfx", "tensorflow", "saved_model", "beam_pusher"]}
    if spec.pipeline_tag:
        metadata["pipeline_tag"] = spec.pipeline_tag
    metadata["model_version"] = version
    metadata["model_fingerprint"] = fingerprint
    if spec.blessed is not None:
        metadata["tfx_blessed"] = spec.blessed
    if spec.pipeline_name:
        metadata["tfx_pipeline"] = spec.pipeline_name
    blessing = {None: "not evaluated (no model_blessing was given)", True: "blessed", False: "not blessed"}
    rows = [
        ("Version", f"`{version}` (branch `{version}`; `main` holds the latest version)"),
        ("TFX Evaluator", blessing[spec.blessed]),
        ("TFX pipeline", f"`{spec.pipeline_name}`" if spec.pipeline_name else "unknown"),
        ("Files", f"{len(files)} ({sum(f.size for f in files):,} bytes)"),
        ("Fingerprint", f"`{fingerprint}`"),
    ]
    front = yaml.safe_dump(metadata, sort_keys=False, default_flow_style=False)
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    name = spec.repo_id.split("/", 1)[1]
    return (
        f"---\n{front}---\n\n# {name}\n\nA TensorFlow SavedModel trained by a TFX pipeline and pushed by "
        f"beam_pusher's `HFModelPusher`.\n\n| | |\n|---|---|\n{table}\n\n## Use\n\n```python\n"
        f"import tensorflow as tf\nfrom huggingface_hub import snapshot_download\n\n"
        f'model = tf.saved_model.load(snapshot_download("{spec.repo_id}", revision="{version}"))\n'
        f'predict = model.signatures["serving_default"]\n```\n'
    )


class ModelRepoPusher:
    """Pushes model versions. Build one per worker: it holds a resolved token and is not picklable."""

    def __init__(self, settings: HubSettings):
        self.committer = Committer.connect(settings)  # resolves the token, here on the worker
        self.api = self.committer.api

    def __getstate__(self):
        raise TypeError("ModelRepoPusher holds a resolved token and must not be pickled; pickle HubSettings instead.")

    def push(self, spec: ModelRepoSpec) -> PushResult:
        """Pushes ``spec`` and reports what happened; Hub and file problems are reported, never raised."""
        repo_id, call = spec.repo_id, self.committer.call
        repo_url = f"{self.api.endpoint}/{repo_id}"
        version = spec.version
        try:
            files = list_model_files(spec)
            fingerprint = model_fingerprint(files)
            call(repo_id, "create the model repository",
                 lambda: self.api.create_repo(repo_id, repo_type="model", private=spec.private, exist_ok=True))
            refs = call(repo_id, "list the branches", lambda: self.api.list_repo_refs(repo_id, repo_type="model"))
            branches = {b.name: b.target_commit for b in refs.branches}
            version = self._choose_version(spec, files, fingerprint, branches)
            if not any(f.path == MODEL_CARD for f in files):  # a model's own README.md is its card
                files = [*files, _card_file(spec, version, fingerprint, files)]
            outcome = self.committer.commit(repo_id, files, repo_type="model", revision=_DEFAULT_BRANCH,
                                            commit_message=_TITLE.format(version=version, fingerprint=fingerprint))
            head = branches.get(version)
            if head is None:
                head = outcome.head
                call(repo_id, f"create the branch {version}", lambda: self.api.create_branch(
                    repo_id, branch=version, revision=head, repo_type="model"))
        except BeamPusherError as exc:
            return self._failed(spec, version, repo_url, str(exc))
        except Exception as exc:  # noqa: BLE001 - reported in the result like every other push failure
            return self._failed(spec, version, repo_url, f"{repo_id}: {type(exc).__name__}: {exc}")
        outcome = dataclasses.replace(outcome, head=head, committed=outcome.committed or version not in branches)
        return push_result(outcome, repo_id=repo_id, repo_url=repo_url, pushed_version=version,
                           label=f"{repo_id}@{version}")

    def _choose_version(
        self, spec: ModelRepoSpec, files: list[AppFile], fingerprint: str, branches: Mapping[str, str]
    ) -> str:
        """The version to push as: ``spec.version`` if it is new or holds these files, else the one found or new."""
        if spec.version is not None:
            if spec.version in branches:
                self._check_same_model(spec, files, branches[spec.version])
            return spec.version
        found = self._version_of(spec.repo_id, fingerprint, branches)
        if found:
            logger.info("%s: this model was pushed before as %s; reusing that version", spec.repo_id, found)
            return found
        version = f"v{int(time.time())}"
        while version in branches:  # two pushes of different models within one second
            version = f"v{int(version[1:]) + 1}"
        return version

    def _version_of(self, repo_id: str, fingerprint: str, branches: Mapping[str, str]) -> str | None:
        """The version a model of ``fingerprint`` was pushed as, read from the titles of main's commits."""
        if _DEFAULT_BRANCH not in branches:
            return None
        commits = self.committer.call(repo_id, "list the commits of main", lambda: self.api.list_repo_commits(
            repo_id, repo_type="model", revision=_DEFAULT_BRANCH))
        for commit in commits:
            match = _TITLE_PATTERN.match(commit.title or "")
            if match and match["fingerprint"] == fingerprint and match["version"] in branches:
                return match["version"]
        return None

    def _check_same_model(self, spec: ModelRepoSpec, files: list[AppFile], head: str) -> None:
        """Raises PushError unless the existing branch ``spec.version`` holds exactly these model files."""
        _, remote = self.committer.call(spec.repo_id, f"read the version {spec.version}",
                                        lambda: self.committer.remote_state(spec.repo_id, repo_type="model",
                                                                            revision=head))
        ignored = _NOT_MODEL_FILES - {f.path for f in files}
        changes, _ = plan_changes(files, {p: r for p, r in remote.items() if p not in ignored})
        if changes:
            shown = ", ".join(f"{c.action.mark}{c.path}" for c in changes[:5])
            raise PushError(
                f"{spec.repo_id}: version {spec.version!r} already exists with other model files ({shown}"
                f"{', ...' if len(changes) > 5 else ''}; at commit {head[:12]}). A pushed version never changes: "
                "give a new model_version, or leave it unset to get 'v<unix time>' (an unchanged model then keeps "
                "its version)."
            )

    def _failed(self, spec: ModelRepoSpec, version: str | None, repo_url: str, message: str) -> PushResult:
        message = self.committer.scrub(message)
        logger.warning("%s@%s: not pushed: %s", spec.repo_id, version or "(new version)", message)
        return PushResult(repo_id=spec.repo_id, pushed=False, repo_url=repo_url, pushed_version=version,
                          error=message)


def _card_file(spec: ModelRepoSpec, version: str, fingerprint: str, files: list[AppFile]) -> AppFile:
    content = model_card(spec, version, fingerprint, files).encode()
    hashes = hash_bytes(content)
    return AppFile(spec.repo_id, MODEL_CARD, hashes.size, content=content, sha256=hashes.sha256,
                   git_sha1=hashes.git_sha1)


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
