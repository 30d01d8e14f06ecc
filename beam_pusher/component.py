"""TFX components: ``HFSpacePusher`` deploys a blessed model's demo to a Space; ``HFModelPusher`` pushes the model.

Both follow TFX's ``Pusher`` (``tfx/components/pusher``): a ``ComponentSpec`` whose PARAMETERS / INPUTS / OUTPUTS
are keyed by constants (the specs and their keys live in ``beam_pusher.component_spec``, as TFX keeps its own in
``standard_component_specs``), a component class, and a Beam executor (``beam_pusher.executor``). Both are
``BaseBeamComponent``s, so the pipeline's and the component's ``beam_pipeline_args`` decide where the push runs
(DirectRunner locally, Dataflow in production). Their output is a ``PushedModel`` artifact whose custom properties
record the outcome: ``pushed`` (1/0), ``pushed_version``, ``repo_id``, ``commit_id``, ``repo_url`` and TFX Pusher's
``pushed_destination``.

The Hub token: leave ``hf_access_token`` unset (the workers' ``HF_TOKEN`` or huggingface_hub login is used) or give a
*reference*, ``env:NAME`` or ``file:PATH``, resolved where the push runs; then no token value is written to ML
Metadata, the compiled pipeline or the logs. A literal token still works on local runners, but it is an execution
property: it is stored in ML Metadata and in the compiled pipeline, and it cannot reach Dataflow workers.

Arguments are checked when the component is built, so a typo fails at pipeline construction with a
``beam_pusher.errors.SpecError``, not in the middle of a run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, Dict, List, Optional

from beam_pusher import _needs_tfx

try:
    from tfx import types
    from tfx.dsl.components.base import base_beam_component, executor_spec
    from tfx.types import standard_artifacts
except ImportError as _exc:  # TFX is an install extra: say which one
    _error = _needs_tfx(__name__, _exc)
    if _error is None:
        raise
    raise _error from _exc

from beam_pusher import executor
from beam_pusher.auth import check_token_reference, has_reference_prefix
from beam_pusher.component_spec import (
    APP_PATH_KEY,
    CREATE_PR_KEY,
    ENDPOINT_KEY,
    EXCLUDE_KEY,
    HARDWARE_KEY,
    HF_ACCESS_TOKEN_KEY,
    HUB_PUSHED_MODEL_KEY,
    INCLUDE_KEY,
    MODEL_BLESSING_KEY,
    MODEL_HUB_REPO_BRANCH_KEY,
    MODEL_HUB_REPO_ID_KEY,
    MODEL_KEY,
    MODEL_VERSION_KEY,
    OPTIONS_KEY,
    PIPELINE_TAG_KEY,
    PRIVATE_KEY,
    PUSHED_MODEL_KEY,
    REPO_NAME_KEY,
    SPACE_SDK_KEY,
    SPACE_SECRETS_KEY,
    SPACE_VARIABLES_KEY,
    TEMPLATE_FINGERPRINT_KEY,
    TITLE_KEY,
    USERNAME_KEY,
    HFModelPusherSpec,
    HFSpacePusherSpec,
    check_options,
)
from beam_pusher.errors import BeamPusherError, SpecError
from beam_pusher.models import ModelRepoSpec
from beam_pusher.rules import check_branch_name, check_space_sdk, validate_repo_id
from beam_pusher.spec import SpaceSpec
from beam_pusher.sources import list_source_files, resolve_app_path

__all__ = [
    "APP_PATH_KEY",
    "CREATE_PR_KEY",
    "ENDPOINT_KEY",
    "EXCLUDE_KEY",
    "HARDWARE_KEY",
    "HFModelPusher",
    "HFModelPusherSpec",
    "HFSpacePusher",
    "HFSpacePusherSpec",
    "HF_ACCESS_TOKEN_KEY",
    "HUB_PUSHED_MODEL_KEY",
    "INCLUDE_KEY",
    "MODEL_BLESSING_KEY",
    "MODEL_HUB_REPO_BRANCH_KEY",
    "MODEL_HUB_REPO_ID_KEY",
    "MODEL_KEY",
    "MODEL_VERSION_KEY",
    "OPTIONS_KEY",
    "PIPELINE_TAG_KEY",
    "PRIVATE_KEY",
    "PUSHED_MODEL_KEY",
    "REPO_NAME_KEY",
    "SPACE_SDK_KEY",
    "SPACE_SECRETS_KEY",
    "SPACE_VARIABLES_KEY",
    "TEMPLATE_FINGERPRINT_KEY",
    "TITLE_KEY",
    "USERNAME_KEY",
    "template_fingerprint",
]

logger = logging.getLogger(__name__)

FINGERPRINT_READ_LIMIT = 1024 * 1024
"""Template files up to this size are read and hashed for ``template_fingerprint``; larger ones (weights, data)
count by their size and their filesystem's checksum (mtime/inode locally, ETag or CRC on object stores), unread."""

# The parameters that become fields of the executor's SpaceSpec.
_SPACE_PARAMETERS = (
    USERNAME_KEY,
    REPO_NAME_KEY,
    APP_PATH_KEY,
    SPACE_SDK_KEY,
    MODEL_HUB_REPO_ID_KEY,
    MODEL_HUB_REPO_BRANCH_KEY,
    OPTIONS_KEY,
    PRIVATE_KEY,
    HARDWARE_KEY,
    SPACE_SECRETS_KEY,
    SPACE_VARIABLES_KEY,
    EXCLUDE_KEY,
    INCLUDE_KEY,
    TITLE_KEY,
)


def template_fingerprint(app_path: str) -> str:
    """``sha256:<hex>`` of an app template's files: paths, sizes and content hashes, for TFX's cache key.

    Files up to ``FINGERPRINT_READ_LIMIT`` are hashed whole; a larger one by its size and its filesystem's checksum,
    so a template that carries a large file is never read whole here. Works for every template ``app_path`` takes
    (built-in, a folder, ``gs://``, ``hf://``, ...), read from where the pipeline is built.

    Raises:
      TemplateError: the template cannot be found or read.
    """
    import fsspec

    digest = hashlib.sha256()
    for source in list_source_files(resolve_app_path(app_path)):
        fs, path = fsspec.core.url_to_fs(source.url)
        if source.size <= FINGERPRINT_READ_LIMIT:
            with fs.open(path, "rb") as f:
                content = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        else:
            content = f"checksum:{fs.checksum(path)}"
        digest.update(f"{source.path}\0{source.size}\0{content}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def _fingerprint_or_fail(app_path: Any) -> Optional[str]:
    """The template's fingerprint, None for a runtime parameter; an unreadable template fails the build."""
    if not _is_plain(app_path):
        logger.warning("app_path is a runtime parameter: TFX's cache cannot see changes of the template's files.")
        return None
    try:
        return template_fingerprint(app_path)
    except BeamPusherError as exc:
        raise SpecError(
            f"app_path={app_path!r} cannot be read where the pipeline is built ({exc}); HFSpacePusher fingerprints "
            "the template here so that TFX's cache redeploys when it changes. Fix: give a template readable both "
            "here and where the pipeline runs (for gs:// install gcsfs and log in), or a built-in template."
        ) from None


def _is_plain(value: Any) -> bool:
    """False for RuntimeParameters and placeholders, whose values are only known when the pipeline runs."""
    return value is None or isinstance(value, (str, bool, int, float, Mapping, list, tuple))


def _check_name(field: str, value: Any) -> None:
    if not _is_plain(value) or value is None:
        return
    try:
        validate_repo_id(f"{value}/x" if field == USERNAME_KEY else f"x/{value}")
    except SpecError:
        raise SpecError(
            f"{field}={value!r} is not a valid Hub name: use letters, digits, '-', '_' and '.', not starting or "
            "ending with '-' or '.', without '--' or '..', at most 96 characters (for example 'penguin-demo')."
        ) from None


def _check_token(value: Any) -> None:
    """Checks a token reference; a literal is accepted with a warning that never shows it."""
    if value is None or not _is_plain(value):
        return
    if not isinstance(value, str) or not value.strip():
        raise SpecError(
            "hf_access_token must be a non-empty string: 'env:NAME', 'file:PATH', or leave it unset to use HF_TOKEN "
            "or the huggingface_hub login where the pipeline runs."
        )
    if has_reference_prefix(value):
        check_token_reference(value)
        return
    logger.warning(
        "hf_access_token is a literal token: it will be stored in ML Metadata, in the compiled pipeline and in "
        "TFX's log of execution properties, and it cannot reach Dataflow workers. Prefer "
        "hf_access_token='env:HF_TOKEN' (or 'file:PATH', or unset)."
    )


def _check_branch(field: str, value: Any) -> None:
    if value is not None and _is_plain(value):
        check_branch_name(value, field=field)


def _check_hub_arguments(username: Any, repo_name: Any, hf_access_token: Any) -> None:
    """What both components take: the repository's owner and name, and the token (a reference, or a literal)."""
    _check_name(USERNAME_KEY, username)
    _check_name(REPO_NAME_KEY, repo_name)
    _check_token(hf_access_token)


def _check_model_sources(
    model: Any, pushed_model: Any, model_hub_repo_id: Any, model_hub_repo_branch: Any, options: Any
) -> None:
    """HFSpacePusher needs one model: embedded (``model``), from HFModelPusher, or a fixed Hub repository; and
    ``options`` may not point the app at another (``check_options``)."""
    if isinstance(options, Mapping):
        check_options(options)
    if model_hub_repo_id is not None and pushed_model is not None:
        raise SpecError(
            "model_hub_repo_id and pushed_model both name the model repository: give model_hub_repo_id "
            "(a fixed repository) or pushed_model (HFModelPusher's output), not both."
        )
    if model_hub_repo_branch is not None and model_hub_repo_id is None:
        raise SpecError(
            f"model_hub_repo_branch={model_hub_repo_branch!r} needs model_hub_repo_id; with pushed_model the "
            "version comes from HFModelPusher."
        )
    if model is None and model_hub_repo_id is None and pushed_model is None:
        raise SpecError(
            "HFSpacePusher has no model: give model=trainer.outputs['model'] (embedded in the Space), "
            "pushed_model=hf_model_pusher.outputs['pushed_model'], or model_hub_repo_id='owner/name'."
        )
    _check_branch(MODEL_HUB_REPO_BRANCH_KEY, model_hub_repo_branch)


def _check_space_parameters(parameters: Mapping[str, Any]) -> None:
    """Applies the executor's SpaceSpec rules to HFSpacePusher's parameters now, as far as their values are known.

    The pipeline's name stands in for an unset repo_name; it is checked when the pipeline runs.
    """
    if _is_plain(parameters[SPACE_SDK_KEY]):
        check_space_sdk(parameters[SPACE_SDK_KEY])
    if not all(_is_plain(parameters[key]) for key in _SPACE_PARAMETERS):
        return
    SpaceSpec(
        repo_id=f"{parameters[USERNAME_KEY]}/{parameters[REPO_NAME_KEY] or 'pipeline'}",
        app_path=parameters[APP_PATH_KEY],
        space_sdk=parameters[SPACE_SDK_KEY],
        model_hub_repo_id=parameters[MODEL_HUB_REPO_ID_KEY],
        model_hub_repo_branch=parameters[MODEL_HUB_REPO_BRANCH_KEY],
        placeholders=parameters[OPTIONS_KEY] or {},
        private=None if parameters[PRIVATE_KEY] is None else bool(parameters[PRIVATE_KEY]),
        hardware=parameters[HARDWARE_KEY],
        secrets=parameters[SPACE_SECRETS_KEY] or {},
        variables=parameters[SPACE_VARIABLES_KEY] or {},
        exclude=parameters[EXCLUDE_KEY] or (),
        include=parameters[INCLUDE_KEY] or (),
        title=parameters[TITLE_KEY],
    )


class HFSpacePusher(base_beam_component.BaseBeamComponent):
    """Deploys a demo app for a blessed model to a Hugging Face Space.

    The app template (``app_path``) is pushed to the Space ``username/repo_name`` in one atomic commit; an unchanged
    re-run makes no commit and records the current head. The model comes from one of:

    - ``model`` (a Trainer's ``Model``) alone: its serving model is embedded in the Space under ``model/`` with a
      generated ``model_loader.py`` exposing ``get_model()``;
    - ``model_hub_repo_id`` (+ ``model_hub_repo_branch``), or ``pushed_model`` from ``HFModelPusher``: the template's
      ``$MODEL_REPO_ID`` / ``$MODEL_VERSION`` are filled and no model files are copied. ``model`` may still be given
      (lineage, and the blessing gate) but is then not embedded.

    A model that is not blessed (``model_blessing``), or that ``HFModelPusher`` did not push, is recorded with
    ``pushed=0`` and nothing reaches the Hub. Without ``model_blessing`` the model is pushed, as TFX's Pusher does.
    A push the Hub refuses fails the component (with the Hub's reason), so the run shows it.

    Example::

        model_pusher = HFModelPusher(
            username="alice", hf_access_token="env:HF_TOKEN", repo_name="penguin-model",
            model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"])
        space_pusher = HFSpacePusher(
            username="alice", hf_access_token="env:HF_TOKEN", repo_name="penguin-demo",
            app_path="apps.gradio.img_classifier", space_sdk="gradio",
            pushed_model=model_pusher.outputs["pushed_model"])

    Component ``outputs`` contains ``pushed_model``: a ``PushedModel`` with custom properties ``pushed`` (int),
    ``pushed_version``, ``repo_id``, ``commit_id``, ``repo_url``, ``pushed_destination`` (= ``repo_url``, or the pull
    request's page with ``create_pr``), ``committed`` (1 if this run made a commit), ``template_fingerprint``, with
    ``create_pr`` ``pr_url`` and ``pr_num``, and, when the model comes from the Hub, ``model_hub_repo_id`` and
    ``model_version``. ``pushed_version`` is the version of the model the Space serves, as HFModelPusher names
    versions: its version, else ``v<unix time>`` of the push.

    Caching: the template's content is fingerprinted when the component is built (``template_fingerprint``, an
    execution property), so with caching on an edited template makes a new cache key and redeploys.

    Args:
      username: The Hub user or organization that owns the Space.
      app_path: The app template: a built-in one (``apps.gradio.img_classifier``), a folder, or an fsspec URL
        readable where the pipeline runs (``gs://...`` on Dataflow).
      space_sdk: ``gradio``, ``streamlit``, ``docker`` or ``static``.
      hf_access_token: ``env:NAME`` or ``file:PATH`` (resolved where the push runs), or None for ``HF_TOKEN`` /
        the huggingface_hub login. A literal token works on local runners but is stored in ML Metadata and the
        compiled pipeline; it cannot reach Dataflow workers.
      repo_name: The Space's name (default: the pipeline's name, plus ``-<component id>`` when the component has
        an id of its own, so two pushers of one pipeline never share a Space). Required on Kubeflow V2 / Vertex AI,
        whose tasks do not know the pipeline's name (``beam_pusher.component_vertex`` checks it at compile time).
      model_hub_repo_id: A model repository the app loads from (fills ``$MODEL_REPO_ID``).
      model_hub_repo_branch: Its branch or tag (fills ``$MODEL_VERSION``).
      options: More ``$NAME`` -> value placeholders for the template's text files; not ``MODEL_REPO_ID``,
        ``MODEL_VERSION`` or ``SPACE_REPO_ID``, which the model source and the Space fill.
      model: A ``Model`` channel (Trainer's output).
      model_blessing: A ``ModelBlessing`` channel (Evaluator's output).
      pushed_model: A ``PushedModel`` channel from ``HFModelPusher``; supplies the model repo id and version.
      private: Whether the Space is private; unset leaves an existing Space's visibility as it is (new: public).
      hardware: Space hardware (``cpu-basic``, ``t4-small``, ...); unset leaves it as it is.
      space_secrets: Space secret name -> ``env:NAME`` reference, resolved where the push runs; never values.
        Declared state: a secret an earlier push set that is no longer listed is deleted.
      space_variables: Space variable name -> value; declared state like ``space_secrets``.
      endpoint: Hub URL (default: ``HF_ENDPOINT`` or huggingface.co, where the push runs).
      exclude: More template and model files to leave out, as .gitignore patterns (``["*.ipynb", "/notebooks/"]``),
        on top of the default exclusions (``.env``, ``.venv/``, ``node_modules/``, caches, logs, ...) and the
        template's own ``.gitignore``.
      include: .gitignore patterns that bring back files left out by default, by ``.gitignore`` or by ``exclude``
        (``[".env.example"]``).
      title: The Space's title on its card (default: the Space's name).
      create_pr: Put a changed app in a pull request on the Space (a new one, or the one an earlier run opened and
        that is still open) instead of committing to ``main``, for review; ``pr_url`` and ``pr_num`` record it and
        ``pushed_destination`` is the pull request's page. Space settings are not written then (they would take
        effect before the review); a run without ``create_pr`` after the merge writes them.
    """

    SPEC_CLASS = HFSpacePusherSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        username: str,
        app_path: str,
        space_sdk: str = "gradio",
        hf_access_token: Optional[str] = None,
        repo_name: Optional[str] = None,
        model_hub_repo_id: Optional[str] = None,
        model_hub_repo_branch: Optional[str] = None,
        options: Optional[Dict[str, str]] = None,
        model: Optional[types.BaseChannel] = None,
        model_blessing: Optional[types.BaseChannel] = None,
        pushed_model: Optional[types.BaseChannel] = None,
        private: Optional[bool] = None,
        hardware: Optional[str] = None,
        space_secrets: Optional[Dict[str, str]] = None,
        space_variables: Optional[Dict[str, str]] = None,
        endpoint: Optional[str] = None,
        exclude: Optional[List[str]] = None,
        include: Optional[List[str]] = None,
        title: Optional[str] = None,
        create_pr: bool = False,
    ):
        """Builds the component (arguments above); checks every argument and reads the template to fingerprint it.

        Raises:
          SpecError: an argument is invalid, the model sources contradict each other, or the template is unreadable.
        """
        _check_hub_arguments(username, repo_name, hf_access_token)
        _check_model_sources(model, pushed_model, model_hub_repo_id, model_hub_repo_branch, options)
        parameters = {
            USERNAME_KEY: username,
            HF_ACCESS_TOKEN_KEY: hf_access_token,
            REPO_NAME_KEY: repo_name,
            ENDPOINT_KEY: endpoint,
            APP_PATH_KEY: app_path,
            SPACE_SDK_KEY: space_sdk,
            MODEL_HUB_REPO_ID_KEY: model_hub_repo_id,
            MODEL_HUB_REPO_BRANCH_KEY: model_hub_repo_branch,
            OPTIONS_KEY: dict(options) if options else None,
            PRIVATE_KEY: private,
            HARDWARE_KEY: hardware,
            SPACE_SECRETS_KEY: dict(space_secrets) if space_secrets else None,
            SPACE_VARIABLES_KEY: dict(space_variables) if space_variables else None,
            EXCLUDE_KEY: [exclude] if isinstance(exclude, str) else list(exclude) if exclude else None,
            INCLUDE_KEY: [include] if isinstance(include, str) else list(include) if include else None,
            TITLE_KEY: title,
            CREATE_PR_KEY: create_pr or None,
        }
        _check_space_parameters(parameters)
        spec = HFSpacePusherSpec(
            **parameters,
            template_fingerprint=_fingerprint_or_fail(app_path),
            model=model,
            model_blessing=model_blessing,
            hub_pushed_model=pushed_model,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
        )
        super().__init__(spec=spec)


class HFModelPusher(base_beam_component.BaseBeamComponent):
    """Pushes a blessed model to a Hugging Face model repository: ``main`` holds the latest, each version a branch.

    The serving model (as TFX's Pusher finds it in the ``Model`` artifact) and a model card (``README.md`` with the
    Hub's metadata, the version and the Evaluator's blessing) are committed to ``main`` of ``username/repo_name`` in
    one atomic commit, and the version's branch is made at that commit. A version never changes: pushing other files
    to an existing ``model_version`` fails. Without ``model_version`` an unchanged model keeps the version it was
    pushed as (so a rerun changes nothing), and a new one gets ``v<unix time>``. Blessing, token and outputs follow
    ``HFSpacePusher``; feed ``outputs['pushed_model']`` to ``HFSpacePusher(pushed_model=...)`` so the demo loads
    exactly this version.

    Example::

        model_pusher = HFModelPusher(
            username="alice", hf_access_token="env:HF_TOKEN", repo_name="penguin-model",
            model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"])

    Component ``outputs`` contains ``pushed_model``: a ``PushedModel`` with custom properties ``pushed`` (int),
    ``pushed_version`` and ``model_version`` (the branch), ``repo_id``, ``commit_id``, ``repo_url``,
    ``pushed_destination`` (the branch's URL) and ``committed``.

    Args:
      username: The Hub user or organization that owns the model repository.
      model: A ``Model`` channel (Trainer's output).
      model_blessing: A ``ModelBlessing`` channel (Evaluator's output); without it the model is pushed.
      hf_access_token: As for ``HFSpacePusher``: ``env:NAME``, ``file:PATH`` or None (a literal works locally
        but is stored in ML Metadata and the compiled pipeline).
      repo_name: The model repository's name (default: the pipeline's name; required on Kubeflow V2 / Vertex AI,
        as for ``HFSpacePusher``).
      model_version: The version, a branch name such as ``v3`` (default: the version this model was pushed as,
        else ``v<unix time>``).
      private: Whether a newly created repository is private (default False).
      endpoint: Hub URL (default: ``HF_ENDPOINT`` or huggingface.co, where the push runs).
      pipeline_tag: The Hub task for the model card (``image-classification``, ``tabular-classification``, ...).
    """

    SPEC_CLASS = HFModelPusherSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.ModelPusherExecutor)

    def __init__(
        self,
        username: str,
        model: types.BaseChannel,
        model_blessing: Optional[types.BaseChannel] = None,
        hf_access_token: Optional[str] = None,
        repo_name: Optional[str] = None,
        model_version: Optional[str] = None,
        private: Optional[bool] = None,
        endpoint: Optional[str] = None,
        pipeline_tag: Optional[str] = None,
    ):
        """Builds the component (its arguments are described above); every argument is checked here.

        Raises:
          SpecError: an argument is invalid.
        """
        _check_hub_arguments(username, repo_name, hf_access_token)
        _check_branch(MODEL_VERSION_KEY, model_version)
        if all(_is_plain(v) for v in (model_version, pipeline_tag)):  # the model repository's own rules
            ModelRepoSpec("owner/name", "model", version=model_version, pipeline_tag=pipeline_tag)
        if model is None:
            raise SpecError("HFModelPusher needs model=trainer.outputs['model'].")
        spec = HFModelPusherSpec(
            username=username,
            hf_access_token=hf_access_token,
            repo_name=repo_name,
            endpoint=endpoint,
            model_version=model_version,
            private=private,
            pipeline_tag=pipeline_tag,
            model=model,
            model_blessing=model_blessing,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
        )
        super().__init__(spec=spec)
