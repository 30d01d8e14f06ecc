"""The keys and ``ComponentSpec``s of ``HFSpacePusher`` and ``HFModelPusher``, each written once.

As in TFX's ``tfx/types/standard_component_specs.py``, one module holds the parameter and channel keys and the spec
classes keyed by them: the components (``beam_pusher.component``) build these specs and the executors
(``beam_pusher.executor``) read ``exec_properties``, ``input_dict`` and ``output_dict`` by the same constants. The
custom properties the executors record on the ``PushedModel`` output are named here too, for the same reason: they
are the components' interface to the steps downstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, List

from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from beam_pusher.errors import SpecError

__all__ = [
    "APP_PATH_KEY",
    "COMMITTED_PROPERTY",
    "COMMIT_ID_PROPERTY",
    "CREATE_PR_KEY",
    "ENDPOINT_KEY",
    "EXCLUDE_KEY",
    "HARDWARE_KEY",
    "HFModelPusherSpec",
    "HFSpacePusherSpec",
    "HF_ACCESS_TOKEN_KEY",
    "HUB_PUSHED_MODEL_KEY",
    "INCLUDE_KEY",
    "MODEL_BLESSING_KEY",
    "MODEL_HUB_REPO_BRANCH_KEY",
    "MODEL_HUB_REPO_ID_KEY",
    "MODEL_HUB_REPO_ID_PROPERTY",
    "MODEL_KEY",
    "MODEL_VERSION_KEY",
    "MODEL_VERSION_PROPERTY",
    "OPTIONS_KEY",
    "PIPELINE_TAG_KEY",
    "PRIVATE_KEY",
    "PUSHED_DESTINATION_PROPERTY",
    "PUSHED_MODEL_KEY",
    "PUSHED_PROPERTY",
    "PUSHED_VERSION_PROPERTY",
    "PR_NUM_PROPERTY",
    "PR_URL_PROPERTY",
    "REPO_ID_PROPERTY",
    "REPO_NAME_KEY",
    "REPO_URL_PROPERTY",
    "SPACE_SDK_KEY",
    "SPACE_SECRETS_KEY",
    "SPACE_VARIABLES_KEY",
    "TEMPLATE_FINGERPRINT_KEY",
    "TEMPLATE_FINGERPRINT_PROPERTY",
    "TITLE_KEY",
    "USERNAME_KEY",
    "check_options",
]

# Execution parameters.
USERNAME_KEY = "username"
HF_ACCESS_TOKEN_KEY = "hf_access_token"
REPO_NAME_KEY = "repo_name"
ENDPOINT_KEY = "endpoint"
PRIVATE_KEY = "private"
APP_PATH_KEY = "app_path"
SPACE_SDK_KEY = "space_sdk"
MODEL_HUB_REPO_ID_KEY = "model_hub_repo_id"
MODEL_HUB_REPO_BRANCH_KEY = "model_hub_repo_branch"
OPTIONS_KEY = "options"
HARDWARE_KEY = "hardware"
SPACE_SECRETS_KEY = "space_secrets"
SPACE_VARIABLES_KEY = "space_variables"
MODEL_VERSION_KEY = "model_version"
EXCLUDE_KEY = "exclude"
INCLUDE_KEY = "include"
PIPELINE_TAG_KEY = "pipeline_tag"
TITLE_KEY = "title"
CREATE_PR_KEY = "create_pr"
# Computed when HFSpacePusher is built, from the template's files: TFX's cache key holds the execution properties,
# so a changed template makes a new cache key (as a user module's content hash does for Trainer).
TEMPLATE_FINGERPRINT_KEY = "template_fingerprint"

# Channels. TFX wants argument names unique across PARAMETERS, INPUTS and OUTPUTS, and ``pushed_model`` is the
# output (as in TFX's Pusher), so HFSpacePusher's ``pushed_model=`` argument is stored under HUB_PUSHED_MODEL_KEY.
MODEL_KEY = "model"
MODEL_BLESSING_KEY = "model_blessing"
HUB_PUSHED_MODEL_KEY = "hub_pushed_model"
PUSHED_MODEL_KEY = "pushed_model"

# Custom properties of the PushedModel output (the first three as TFX's Pusher writes them).
PUSHED_PROPERTY = "pushed"
PUSHED_DESTINATION_PROPERTY = "pushed_destination"
PUSHED_VERSION_PROPERTY = "pushed_version"
REPO_ID_PROPERTY = "repo_id"
COMMIT_ID_PROPERTY = "commit_id"
REPO_URL_PROPERTY = "repo_url"
COMMITTED_PROPERTY = "committed"
MODEL_VERSION_PROPERTY = "model_version"
MODEL_HUB_REPO_ID_PROPERTY = "model_hub_repo_id"
TEMPLATE_FINGERPRINT_PROPERTY = "template_fingerprint"
PR_URL_PROPERTY = "pr_url"
PR_NUM_PROPERTY = "pr_num"
NOT_PUSHED_REASON_PROPERTY = "not_pushed_reason"  # with pushed=0 when the run only built a Dataflow job

# Placeholders whose values come from the model source and the Space: HFSpacePusher fills them, options may not.
_RESERVED_OPTIONS = {
    "MODEL_REPO_ID": "model_hub_repo_id= (or pushed_model=); with an embedded model the app must not load another",
    "MODEL_VERSION": "model_hub_repo_branch= (or pushed_model=, which gives HFModelPusher's version)",
    "SPACE_REPO_ID": "username= and repo_name=",
}


def check_options(options: Mapping[str, Any]) -> None:
    """Refuses ``options`` that name a placeholder the model source or the Space decides.

    An ``options['MODEL_REPO_ID']`` next to an embedded model would make the app load another repository's model
    while ML Metadata records the blessed one as deployed; next to ``pushed_model`` it would contradict the version
    HFModelPusher pushed. So each of these names has one source, checked when the component is built and again
    when it runs (``options`` may be a runtime parameter).

    Raises:
      SpecError: names the key and the parameter that sets it.
    """
    for name in sorted(set(options) & set(_RESERVED_OPTIONS)):
        raise SpecError(
            f"options[{name!r}]={options[name]!r} is not allowed: HFSpacePusher fills ${name} from the model source "
            f"and the Space. Fix: drop it from options and use {_RESERVED_OPTIONS[name]}."
        )


class HFSpacePusherSpec(ComponentSpec):
    """ComponentSpec of ``HFSpacePusher``."""

    PARAMETERS = {
        USERNAME_KEY: ExecutionParameter(type=str),
        HF_ACCESS_TOKEN_KEY: ExecutionParameter(type=str, optional=True),
        REPO_NAME_KEY: ExecutionParameter(type=str, optional=True),
        ENDPOINT_KEY: ExecutionParameter(type=str, optional=True),
        APP_PATH_KEY: ExecutionParameter(type=str),
        SPACE_SDK_KEY: ExecutionParameter(type=str),
        MODEL_HUB_REPO_ID_KEY: ExecutionParameter(type=str, optional=True),
        MODEL_HUB_REPO_BRANCH_KEY: ExecutionParameter(type=str, optional=True),
        OPTIONS_KEY: ExecutionParameter(type=Dict[str, str], optional=True),
        PRIVATE_KEY: ExecutionParameter(type=bool, optional=True),
        HARDWARE_KEY: ExecutionParameter(type=str, optional=True),
        SPACE_SECRETS_KEY: ExecutionParameter(type=Dict[str, str], optional=True),
        SPACE_VARIABLES_KEY: ExecutionParameter(type=Dict[str, str], optional=True),
        EXCLUDE_KEY: ExecutionParameter(type=List[str], optional=True),
        INCLUDE_KEY: ExecutionParameter(type=List[str], optional=True),
        TITLE_KEY: ExecutionParameter(type=str, optional=True),
        CREATE_PR_KEY: ExecutionParameter(type=bool, optional=True),
        TEMPLATE_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
        MODEL_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
        HUB_PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel, optional=True),
    }
    OUTPUTS = {
        PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel),
    }


class HFModelPusherSpec(ComponentSpec):
    """ComponentSpec of ``HFModelPusher``."""

    PARAMETERS = {
        USERNAME_KEY: ExecutionParameter(type=str),
        HF_ACCESS_TOKEN_KEY: ExecutionParameter(type=str, optional=True),
        REPO_NAME_KEY: ExecutionParameter(type=str, optional=True),
        ENDPOINT_KEY: ExecutionParameter(type=str, optional=True),
        MODEL_VERSION_KEY: ExecutionParameter(type=str, optional=True),
        PRIVATE_KEY: ExecutionParameter(type=bool, optional=True),
        PIPELINE_TAG_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        MODEL_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
    }
    OUTPUTS = {
        PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel),
    }
