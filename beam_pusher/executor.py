"""TFX executors of ``HFSpacePusher`` and ``HFModelPusher``.

Each ``Do`` gates on the blessing as TFX's Pusher does, builds one spec, and runs the push as a small Beam pipeline
in ``self._make_beam_pipeline()`` -- ``DeploySpaces`` for a Space, ``PushModels`` for a model version -- so the
pipeline's and the component's ``beam_pipeline_args`` decide where it runs (on a remote runner with the running
beam_pusher staged for the workers), and the token is resolved on the worker that pushes. The push's ``PushResult``
comes back through files under the execution's temp folder (on the pipeline root, so it works on Dataflow too), and
becomes the ``PushedModel`` artifact's custom properties.

Failure policy: "not blessed" is an outcome, recorded as ``pushed=0``. A push the Hub refuses (or a template that
cannot be read) raises ``PushError`` with the push's error, so the component fails and the run shows it, as any TFX
component whose work failed; a ``pushed=0`` that hides a failure would let a stale demo look current.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable, Dict, List, Optional

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
    ENDPOINT_KEY,
    HARDWARE_KEY,
    HF_ACCESS_TOKEN_KEY,
    HUB_PUSHED_MODEL_KEY,
    MODEL_BLESSING_KEY,
    MODEL_HUB_REPO_BRANCH_KEY,
    MODEL_HUB_REPO_ID_KEY,
    MODEL_HUB_REPO_ID_PROPERTY,
    MODEL_KEY,
    MODEL_VERSION_KEY,
    MODEL_VERSION_PROPERTY,
    OPTIONS_KEY,
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
    USERNAME_KEY,
)
from beam_pusher.errors import PushError, SpecError
from beam_pusher.models import ModelRepoSpec, PushModels
from beam_pusher.runner import collect_results, read_results
from beam_pusher.spec import PushResult, SpaceSpec
from beam_pusher.staging import stage_package
from beam_pusher.transforms import DeploySpaces

__all__ = ["Executor", "ModelPusherExecutor"]

logger = logging.getLogger(__name__)

_RESULT_FILE = "push_result.json"
_TOKEN_ENV_PREFIX = "BEAM_PUSHER_TOKEN_"


def _mapping(value: Any, name: str) -> Dict[str, str]:
    """A dict exec property: the IR runners hand over a dict; runners that keep it serialized hand over its JSON."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise SpecError(f"{name} must be a mapping of name -> value, got {type(value).__name__}.")
    return {str(k): str(v) for k, v in value.items()}


class _HubPushExecutor(base_beam_executor.BaseBeamExecutor):
    """What both executors share: blessing, repo id, token handling, running the push pipeline, recording it."""

    def _check_blessing(self, input_dict: Dict[str, List[types.Artifact]]) -> bool:
        blessings = input_dict.get(MODEL_BLESSING_KEY)
        if blessings:
            blessing = artifact_utils.get_single_instance(blessings)
            if not model_utils.is_model_blessed(blessing):
                logger.info("The model was not blessed (%s); nothing is pushed.", blessing.uri)
                return False
        elif not input_dict.get(HUB_PUSHED_MODEL_KEY):  # HFModelPusher upstream applied its own blessing gate
            logger.warning(
                "No model_blessing input: pushing the model without validation. Add an Evaluator and pass "
                "model_blessing=evaluator.outputs['blessing'] to push only blessed models."
            )
        return True

    def _repo_id(self, exec_properties: Dict[str, Any]) -> str:
        name = exec_properties.get(REPO_NAME_KEY)
        if not name:
            info = self._context.pipeline_info if self._context else None
            name = info.id if info is not None and info.id else None
            if not name:
                raise SpecError(
                    "repo_name is not set and this runner does not tell the executor the pipeline's name: "
                    "give repo_name= to the component."
                )
            logger.info("repo_name not set: using the pipeline's name %r", name)
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

    def _results_prefix(self, output: types.Artifact) -> str:
        try:
            base = self._context.get_tmp_path() if self._context else None
        except RuntimeError:
            base = None
        base = (base or os.path.join(output.uri, ".beam_pusher_tmp", "")).rstrip("/")
        return f"{base}/beam_pusher-results-{uuid.uuid4().hex}/results"

    def _run_push(self, output: types.Artifact, element: Any, transform: Callable[[], beam.PTransform]) -> PushResult:
        """Runs ``Create([element]) | transform() | collect_results`` on the executor's Beam runner."""
        prefix = self._results_prefix(output)
        with self._make_beam_pipeline() as pipeline:
            results = pipeline | "Spec" >> beam.Create([element]) | "Push" >> transform()
            collect_results(results, prefix)
        found = read_results(prefix)
        if len(found) != 1:
            raise PushError(f"{element.repo_id}: expected one push result, found {len(found)}; see the Beam logs.")
        result = found[0]
        fileio.makedirs(output.uri)
        with fileio.open(os.path.join(output.uri, _RESULT_FILE), "w") as f:
            f.write(json.dumps(result.to_dict(), sort_keys=True, indent=2))
        if result.error:
            raise PushError(result.error)
        return result

    @staticmethod
    def _mark_pushed(output: types.Artifact, result: PushResult, destination: str) -> None:
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
        if not self._check_blessing(input_dict):
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
        model_path = None
        models = input_dict.get(MODEL_KEY)
        if models and not hub_repo_id:
            model = artifact_utils.get_single_instance(models)
            model_path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
        elif models:
            logger.info("The app loads the model from %s; the model is not embedded in the Space.", hub_repo_id)
        spec = SpaceSpec(
            repo_id=self._repo_id(exec_properties),
            app_path=exec_properties[APP_PATH_KEY],
            space_sdk=exec_properties.get(SPACE_SDK_KEY) or "gradio",
            model_path=model_path,
            model_hub_repo_id=hub_repo_id,
            model_hub_repo_branch=hub_branch,
            placeholders=_mapping(exec_properties.get(OPTIONS_KEY), OPTIONS_KEY),
            private=bool(exec_properties.get(PRIVATE_KEY)),
            hardware=exec_properties.get(HARDWARE_KEY) or None,
            secrets=_mapping(exec_properties.get(SPACE_SECRETS_KEY), SPACE_SECRETS_KEY),
            variables=_mapping(exec_properties.get(SPACE_VARIABLES_KEY), SPACE_VARIABLES_KEY),
        )
        logger.info("Pushing the Space %s from %s", spec.repo_id, spec.app_path)
        with self._token_reference(exec_properties.get(HF_ACCESS_TOKEN_KEY)) as token:
            result = self._run_push(
                output, spec, lambda: DeploySpaces(endpoint=exec_properties.get(ENDPOINT_KEY) or None, token=token)
            )
        self._mark_pushed(output, result, destination=result.repo_url or "")
        if hub_repo_id:
            output.set_string_custom_property(MODEL_HUB_REPO_ID_PROPERTY, hub_repo_id)
            output.set_string_custom_property(MODEL_VERSION_PROPERTY, hub_branch or "")
        logger.info("Space %s at %s (%s).", spec.repo_id, result.commit_id,
                    "new commit" if result.committed else "unchanged")


class ModelPusherExecutor(_HubPushExecutor):
    """Executor of ``HFModelPusher``: pushes the serving model to a branch of a model repository."""

    def Do(
        self,
        input_dict: Dict[str, List[types.Artifact]],
        output_dict: Dict[str, List[types.Artifact]],
        exec_properties: Dict[str, Any],
    ) -> None:
        """Pushes the model to the branch ``model_version`` if it is blessed.

        Raises:
          PushError: the push failed; the message is the push's error (never the token).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        output = artifact_utils.get_single_instance(output_dict[PUSHED_MODEL_KEY])
        if not self._check_blessing(input_dict):
            self._mark_not_pushed(output)
            return
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        spec = ModelRepoSpec(
            repo_id=self._repo_id(exec_properties),
            model_path=path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
            version=exec_properties.get(MODEL_VERSION_KEY) or f"v{int(time.time())}",
            private=bool(exec_properties.get(PRIVATE_KEY)),
        )
        logger.info("Pushing the model to %s, branch %s", spec.repo_id, spec.version)
        with self._token_reference(exec_properties.get(HF_ACCESS_TOKEN_KEY)) as token:
            result = self._run_push(
                output, spec, lambda: PushModels(endpoint=exec_properties.get(ENDPOINT_KEY) or None, token=token)
            )
        self._mark_pushed(output, result, destination=f"{result.repo_url}/tree/{spec.version}")
        output.set_string_custom_property(MODEL_VERSION_PROPERTY, spec.version)
        logger.info("Model %s@%s at %s (%s).", spec.repo_id, spec.version, result.commit_id,
                    "new commit" if result.committed else "unchanged")
