"""TFX executors of ``HFSpacePusher`` and ``HFModelPusher``.

Each ``Do`` gates on the blessing as TFX's Pusher does, builds one spec, and runs the push as a small Beam pipeline
on the pipeline's and the component's ``beam_pipeline_args`` -- ``DeploySpaces`` for a Space (through
``runner.run_deploy``, the CLI's path), ``PushModels`` for a model version -- so the token is resolved on the worker
that pushes; on a remote runner the running beam_pusher is staged for the workers (``staging.stage_package``).
The push's ``PushResult`` becomes the ``PushedModel`` artifact's custom properties.

Where the time goes on local runners: TFX's ``BaseBeamExecutor`` packages its own installation as an sdist for the
workers whenever ``beam_pipeline_args`` are given (2-4 s per execution, see ``_HubPushExecutor.__init__``), which
workers on this machine never use; so for local runners the executors skip it. Results come back in memory when the
runner runs DoFns in this process, else through files under a temporary folder that is removed after the run.

Failure policy: "not blessed" is an outcome, recorded as ``pushed=0``. A push the Hub refuses (or a template that
cannot be read) raises ``PushError`` with the push's error, so the component fails and the run shows it, as any TFX
component whose work failed; a ``pushed=0`` that hides a failure would let a stale demo look current. A run whose
``beam_pipeline_args`` only build a Dataflow job (``--dry_run``, ``--template_location``) pushes nothing now either:
recorded as ``pushed=0`` with ``not_pushed_reason``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any, Dict, List, Optional

import apache_beam as beam
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from beam_pusher.auth import has_reference_prefix
from beam_pusher.component_spec import (
    APP_PATH_KEY,
    COMMITTED_PROPERTY,
    COMMIT_ID_PROPERTY,
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
    MODEL_HUB_REPO_ID_PROPERTY,
    MODEL_KEY,
    MODEL_VERSION_KEY,
    MODEL_VERSION_PROPERTY,
    NOT_PUSHED_REASON_PROPERTY,
    OPTIONS_KEY,
    PIPELINE_TAG_KEY,
    PR_NUM_PROPERTY,
    PR_URL_PROPERTY,
    PRIVATE_KEY,
    PUSHED_DESTINATION_PROPERTY,
    PUSHED_MODEL_KEY,
    PUSHED_PROPERTY,
    PUSHED_VERSION_PROPERTY,
    REPO_ID_PROPERTY,
    REPO_NAME_KEY,
    REPO_URL_PROPERTY,
    SPACE_SDK_KEY,
    SPACE_SECRETS_KEY,
    SPACE_VARIABLES_KEY,
    TEMPLATE_FINGERPRINT_KEY,
    TEMPLATE_FINGERPRINT_PROPERTY,
    TITLE_KEY,
    USERNAME_KEY,
    check_options,
)
from beam_pusher.errors import PushError, SpecError
from beam_pusher.models import ModelRepoSpec, PushModels
from beam_pusher.runner import collect_results, job_only_outcome, read_results, run_deploy, runner_kind
from beam_pusher.spec import PushResult, SpaceSpec
from beam_pusher.staging import stage_package

__all__ = ["Executor", "ModelPusherExecutor", "default_repo_name"]

logger = logging.getLogger(__name__)

_RESULT_FILE = "push_result.json"
_TOKEN_ENV_PREFIX = "BEAM_PUSHER_TOKEN_"
_LOOPBACK_ENVIRONMENTS = frozenset({"", "LOOPBACK"})


def default_repo_name(pipeline_name: str, node_id: Optional[str], component_id: str) -> str:
    """The repository name of a pusher without ``repo_name``: the pipeline's name, and the node's id if it has one.

    A pusher with its class's default id (``HFSpacePusher``) pushes to ``<pipeline name>``; any other id (set with
    ``.with_id('demo')``) to ``<pipeline name>-<id>``. TFX refuses two nodes with one id in a pipeline, so two
    pushers of one pipeline never default to the same repository.
    """
    return pipeline_name if not node_id or node_id == component_id else f"{pipeline_name}-{node_id}"


def _version_of_push() -> str:
    """The ``pushed_version`` of a push that serves no versioned model: ``v<unix time>``, as a new model version."""
    return f"v{int(time.time())}"


def _mapping(value: Any, name: str) -> Dict[str, str]:
    """A dict exec property: the IR runners hand over a dict; runners that keep it serialized hand over its JSON."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise SpecError(f"{name} must be a mapping of name -> value, got {type(value).__name__}.")
    return {str(k): str(v) for k, v in value.items()}


def _patterns(value: Any, name: str) -> List[str]:
    """A list exec property (.gitignore patterns): a list from the IR runners, its JSON from the others."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"{name} must be a list of .gitignore patterns, got {type(value).__name__}.")
    return [str(p) for p in value]


def _runs_on_this_machine(beam_pipeline_args: List[str]) -> bool:
    """Whether the runner's workers run here, importing this Python's packages (no sdist of TFX needed)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    settings = PipelineOptions(beam_pipeline_args).get_all_options(retain_unknown_options=True)
    environment = str(settings.get("environment_type") or "").upper()
    return runner_kind(settings.get("runner"), settings.get("direct_running_mode")).is_local and (
        environment in _LOOPBACK_ENVIRONMENTS
    )


class _HubPushExecutor(base_beam_executor.BaseBeamExecutor):
    """What both executors share: blessing, repo id, token handling, running the push pipeline, recording it."""

    _COMPONENT_ID = ""  # the component class's default node id

    def __init__(self, context: Optional[base_beam_executor.BaseBeamExecutor.Context] = None):
        args = list(getattr(context, "beam_pipeline_args", None) or [])
        if not args or not _runs_on_this_machine(args):
            super().__init__(context)
            return
        # BaseBeamExecutor would build an sdist of the installed TFX for the workers (about 2 s, once per
        # execution); local workers import the installed packages, so the Beam flags are taken as given.
        quiet = copy.copy(context)
        quiet.beam_pipeline_args = []
        super().__init__(quiet)
        self._beam_pipeline_args = args

    def _check_blessing(self, input_dict: Dict[str, List[types.Artifact]]) -> Optional[bool]:
        """True or False as the blessing says, None when there is none (the model is pushed then, as TFX does)."""
        blessings = input_dict.get(MODEL_BLESSING_KEY)
        if blessings:
            blessing = artifact_utils.get_single_instance(blessings)
            if not model_utils.is_model_blessed(blessing):
                logger.info("The model was not blessed (%s); nothing is pushed.", blessing.uri)
                return False
            return True
        if not input_dict.get(HUB_PUSHED_MODEL_KEY):  # HFModelPusher upstream applied its own blessing gate
            logger.warning(
                "No model_blessing input: pushing the model without validation. Add an Evaluator and pass "
                "model_blessing=evaluator.outputs['blessing'] to push only blessed models."
            )
        return None

    def _pipeline_name(self) -> Optional[str]:
        info = self._context.pipeline_info if self._context else None
        return info.id if info is not None and info.id else None

    def _repo_id(self, exec_properties: Dict[str, Any]) -> str:
        name = exec_properties.get(REPO_NAME_KEY)
        if not name:
            pipeline = self._pipeline_name()
            if not pipeline:
                raise SpecError(
                    f"{self._COMPONENT_ID}: repo_name is not set and this runner does not tell the executor the "
                    "pipeline's name (Kubeflow V2 and Vertex AI do not): give repo_name= to the component. "
                    "beam_pusher.component_vertex.KubeflowV2DagRunner finds this when the pipeline is compiled."
                )
            node = self._context.pipeline_node if self._context else None
            name = default_repo_name(pipeline, node.node_info.id if node is not None else None, self._COMPONENT_ID)
            logger.info("repo_name not set: using %r, made from the pipeline's name", name)
        return f"{exec_properties[USERNAME_KEY]}/{name}"

    @staticmethod
    @contextlib.contextmanager
    def _token_reference(value: Optional[str]) -> Iterator[Optional[str]]:
        """Yields a token reference for the Beam transforms, which refuse literal tokens.

        References and None pass through. A literal token is put into an environment variable with a random name in
        this process, for the time of the push, and ``env:`` that name is used: workers that this process starts
        (DirectRunner, also in multi-processing mode) inherit it. Remote workers (Dataflow) do not; there a reference
        or the workers' own login is needed.
        """
        if not value or has_reference_prefix(value):
            yield value or None
            return
        name = _TOKEN_ENV_PREFIX + secrets.token_hex(8).upper()
        os.environ[name] = value
        try:
            yield f"env:{name}"
        finally:
            os.environ.pop(name, None)

    def _make_beam_pipeline(self) -> beam.Pipeline:
        """The pipeline TFX makes from ``beam_pipeline_args``; on a remote runner, with beam_pusher staged.

        Staged as the CLI stages it (``staging.stage_package``): unless the args already say how workers get
        beam_pusher (``--setup_file``, ``--extra_package``, ``--sdk_container_image``).
        """
        pipeline = super()._make_beam_pipeline()
        stage_package(pipeline.options)
        return pipeline

    @contextlib.contextmanager
    def _results_folder(self) -> Iterator[str]:
        """A fresh folder for result files, removed afterwards, so no run leaves files in the pipeline root.

        It is under the execution's temp path (on the pipeline root, where remote workers can write) when TFX gives
        one, else a local temporary folder.
        """
        try:
            base = self._context.get_tmp_path() if self._context else None
        except RuntimeError:
            base = None
        own = None if base else tempfile.mkdtemp(prefix="beam-pusher-results-")
        folder = f"{(base or own).rstrip('/')}/beam_pusher-results-{uuid.uuid4().hex}"
        try:
            yield folder
        finally:
            if own:
                shutil.rmtree(own, ignore_errors=True)
            elif fileio.exists(folder):
                fileio.rmtree(folder)

    def _run_models(self, spec: ModelRepoSpec, transform: beam.PTransform) -> Optional[PushResult]:
        """Runs ``Create([spec]) | transform`` on the executor's Beam runner; the result comes back through files."""
        with self._results_folder() as folder:
            with self._make_beam_pipeline() as pipeline:
                results = pipeline | "Spec" >> beam.Create([spec]) | "Push" >> transform
                collect_results(results, f"{folder}/results")
            found = read_results(f"{folder}/results")
        return self._one_result(spec.repo_id, found)

    def _one_result(self, repo_id: str, found: List[PushResult]) -> Optional[PushResult]:
        """The one result of a push run; None when the run only built a Dataflow job (``_job_only``)."""
        if not found and self._job_only():
            return None
        if len(found) != 1:
            raise PushError(f"{repo_id}: expected one push result, found {len(found)}; see the Beam logs.")
        return found[0]

    def _job_only(self) -> Optional[str]:
        """Why the run pushes nothing now: ``beam_pipeline_args`` only build a Dataflow job; else None."""
        from apache_beam.options.pipeline_options import PipelineOptions

        outcome = job_only_outcome(PipelineOptions(list(self._beam_pipeline_args or [])))
        return f"{outcome}; nothing was pushed" if outcome else None

    def _record_job_only(self, output: types.Artifact, repo_id: str) -> None:
        """Records a run that only built the Dataflow job (``--dry_run``, ``--template_location``): pushed=0 and why.

        A template pushes when it is launched, outside this pipeline, so nothing here can say what it pushed.
        """
        why = self._job_only() or ""
        self._write_result(output, PushResult(repo_id=repo_id, pushed=False, skipped=why))
        self._mark_not_pushed(output)
        output.set_string_custom_property(NOT_PUSHED_REASON_PROPERTY, why)
        output.set_string_custom_property(REPO_ID_PROPERTY, repo_id)
        logger.info("%s: %s.", repo_id, why)

    @staticmethod
    def _write_result(output: types.Artifact, result: PushResult) -> None:
        fileio.makedirs(output.uri)
        with fileio.open(os.path.join(output.uri, _RESULT_FILE), "w") as f:
            f.write(json.dumps(result.to_dict(), sort_keys=True, indent=2))

    @classmethod
    def _record(cls, output: types.Artifact, result: PushResult, destination: str) -> None:
        """Writes ``push_result.json`` into the artifact, and fails the component if the push failed."""
        cls._write_result(output, result)
        if result.error:
            raise PushError(result.error)
        output.set_int_custom_property(PUSHED_PROPERTY, 1)
        output.set_int_custom_property(COMMITTED_PROPERTY, int(result.committed))
        output.set_string_custom_property(PUSHED_VERSION_PROPERTY, result.pushed_version or "")
        output.set_string_custom_property(REPO_ID_PROPERTY, result.repo_id)
        output.set_string_custom_property(COMMIT_ID_PROPERTY, result.commit_id or "")
        output.set_string_custom_property(REPO_URL_PROPERTY, result.repo_url or "")
        output.set_string_custom_property(PUSHED_DESTINATION_PROPERTY, destination)

    @staticmethod
    def _mark_not_pushed(output: types.Artifact) -> None:
        output.set_int_custom_property(PUSHED_PROPERTY, 0)


class Executor(_HubPushExecutor):
    """Executor of ``HFSpacePusher``: deploys the app (and the model or a reference to it) to a Space."""

    _COMPONENT_ID = "HFSpacePusher"

    def Do(
        self,
        input_dict: Dict[str, List[types.Artifact]],
        output_dict: Dict[str, List[types.Artifact]],
        exec_properties: Dict[str, Any],
    ) -> None:
        """Pushes the Space if the model is blessed (and, with ``hub_pushed_model``, was pushed to the Hub).

        Raises:
          PushError: the push failed; the message is the push's error (never the token).
          SpecError: the arguments do not make a valid Space (e.g. a pipeline name that is no valid repo name).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        output = artifact_utils.get_single_instance(output_dict[PUSHED_MODEL_KEY])
        if self._check_blessing(input_dict) is False:
            self._mark_not_pushed(output)
            return
        hub_repo_id = exec_properties.get(MODEL_HUB_REPO_ID_KEY) or None
        hub_branch = exec_properties.get(MODEL_HUB_REPO_BRANCH_KEY) or None
        upstream = input_dict.get(HUB_PUSHED_MODEL_KEY)
        if upstream:
            pushed_model = artifact_utils.get_single_instance(upstream)
            if not pushed_model.get_int_custom_property(PUSHED_PROPERTY):
                logger.info("HFModelPusher did not push the model (pushed=0); the Space is not pushed either.")
                self._mark_not_pushed(output)
                return
            hub_repo_id = pushed_model.get_string_custom_property(REPO_ID_PROPERTY)
            hub_branch = pushed_model.get_string_custom_property(MODEL_VERSION_PROPERTY) or None
        spec = self._space_spec(input_dict, exec_properties, hub_repo_id, hub_branch)
        logger.info("Pushing the Space %s from %s", spec.repo_id, spec.app_path)
        with self._token_reference(exec_properties.get(HF_ACCESS_TOKEN_KEY)) as token:
            found = run_deploy([spec], pipeline_args=self._beam_pipeline_args,
                               endpoint=exec_properties.get(ENDPOINT_KEY) or None, token=token,
                               create_pr=bool(exec_properties.get(CREATE_PR_KEY)))
        result = self._one_result(spec.repo_id, found)
        if result is None:
            self._record_job_only(output, spec.repo_id)
            return
        # pushed_version: the version of the model the Space serves, in HFModelPusher's format.
        result = dataclasses.replace(result, pushed_version=hub_branch or _version_of_push())
        self._record(output, result, destination=result.pr_url or result.repo_url or "")
        if result.pr_num is not None:  # the change waits in a pull request: main does not serve it yet
            output.set_string_custom_property(PR_URL_PROPERTY, result.pr_url or "")
            output.set_int_custom_property(PR_NUM_PROPERTY, result.pr_num)
        if hub_repo_id:
            output.set_string_custom_property(MODEL_HUB_REPO_ID_PROPERTY, hub_repo_id)
            output.set_string_custom_property(MODEL_VERSION_PROPERTY, hub_branch or "")
        fingerprint = exec_properties.get(TEMPLATE_FINGERPRINT_KEY)
        if fingerprint:
            output.set_string_custom_property(TEMPLATE_FINGERPRINT_PROPERTY, fingerprint)
        logger.info("Space %s at %s (%s).", spec.repo_id, result.commit_id,
                    "new commit" if result.committed else "unchanged")

    def _space_spec(
        self, input_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any],
        hub_repo_id: Optional[str], hub_branch: Optional[str],
    ) -> SpaceSpec:
        """The Space to push: the embedded model, or the Hub model's repository and version."""
        model_path = None
        models = input_dict.get(MODEL_KEY)
        if models and not hub_repo_id:
            model = artifact_utils.get_single_instance(models)
            model_path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
        elif models:
            logger.info("The app loads the model from %s; the model is not embedded in the Space.", hub_repo_id)
        options = _mapping(exec_properties.get(OPTIONS_KEY), OPTIONS_KEY)
        check_options(options)
        repo_id = self._repo_id(exec_properties)
        return SpaceSpec(
            repo_id=repo_id,
            app_path=exec_properties[APP_PATH_KEY],
            space_sdk=exec_properties.get(SPACE_SDK_KEY) or "gradio",
            model_path=model_path,
            model_hub_repo_id=hub_repo_id,
            model_hub_repo_branch=hub_branch,
            placeholders=options,
            private=None if exec_properties.get(PRIVATE_KEY) is None else bool(exec_properties[PRIVATE_KEY]),
            hardware=exec_properties.get(HARDWARE_KEY) or None,
            secrets=_mapping(exec_properties.get(SPACE_SECRETS_KEY), SPACE_SECRETS_KEY),
            variables=_mapping(exec_properties.get(SPACE_VARIABLES_KEY), SPACE_VARIABLES_KEY),
            exclude=_patterns(exec_properties.get(EXCLUDE_KEY), EXCLUDE_KEY),
            include=_patterns(exec_properties.get(INCLUDE_KEY), INCLUDE_KEY),
            title=exec_properties.get(TITLE_KEY) or repo_id.split("/", 1)[1],
        )


class ModelPusherExecutor(_HubPushExecutor):
    """Executor of ``HFModelPusher``: pushes the serving model to a model repository, as a version."""

    _COMPONENT_ID = "HFModelPusher"

    def Do(
        self,
        input_dict: Dict[str, List[types.Artifact]],
        output_dict: Dict[str, List[types.Artifact]],
        exec_properties: Dict[str, Any],
    ) -> None:
        """Pushes the model as version ``model_version`` (or the version it was pushed as) if it is blessed.

        Raises:
          PushError: the push failed, or the version exists with other files; the message never holds the token.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        output = artifact_utils.get_single_instance(output_dict[PUSHED_MODEL_KEY])
        blessed = self._check_blessing(input_dict)
        if blessed is False:
            self._mark_not_pushed(output)
            return
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        spec = ModelRepoSpec(
            repo_id=self._repo_id(exec_properties),
            model_path=path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
            version=exec_properties.get(MODEL_VERSION_KEY) or None,
            private=bool(exec_properties.get(PRIVATE_KEY)),
            pipeline_tag=exec_properties.get(PIPELINE_TAG_KEY) or None,
            blessed=blessed,
            pipeline_name=self._pipeline_name(),
        )
        logger.info("Pushing the model to %s (version %s)", spec.repo_id, spec.version or "new or reused")
        with self._token_reference(exec_properties.get(HF_ACCESS_TOKEN_KEY)) as token:
            result = self._run_models(spec, PushModels(endpoint=exec_properties.get(ENDPOINT_KEY) or None,
                                                       token=token))
        if result is None:
            self._record_job_only(output, spec.repo_id)
            return
        version = result.pushed_version or ""
        self._record(output, result, destination=f"{result.repo_url}/tree/{version}")
        output.set_string_custom_property(MODEL_VERSION_PROPERTY, version)
        logger.info("Model %s@%s at %s (%s).", spec.repo_id, version, result.commit_id,
                    "new commit" if result.committed else "unchanged")
