"""beam_pusher: deploy ML demo apps to Hugging Face Spaces from TFX pipelines and Apache Beam."""

from beam_pusher.errors import (
    BeamPusherError,
    ConfigError,
    PlaceholderError,
    PushError,
    SpecError,
    TemplateError,
    TokenError,
)
from beam_pusher.spec import AppFile, Exclusion, PlannedChange, PushResult, SpaceFiles, SpaceSpec

__version__ = "0.1.0"

# The transforms import Apache Beam and the components TFX (seconds, and TFX is an install extra): they load on
# first use, so `import beam_pusher` stays light for the config and CLI paths that never build a pipeline.
_LAZY = {
    "DeploySpaces": "beam_pusher.transforms",
    "PushToSpace": "beam_pusher.transforms",
    "ReadAppFiles": "beam_pusher.transforms",
    "RenderPlaceholders": "beam_pusher.transforms",
    "HFSpacePusher": "beam_pusher.component",
    "HFModelPusher": "beam_pusher.component",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'beam_pusher' has no attribute {name!r}")


__all__ = [
    "AppFile",
    "BeamPusherError",
    "ConfigError",
    "DeploySpaces",
    "Exclusion",
    "HFModelPusher",
    "HFSpacePusher",
    "PlaceholderError",
    "PlannedChange",
    "PushError",
    "PushResult",
    "PushToSpace",
    "ReadAppFiles",
    "RenderPlaceholders",
    "SpaceFiles",
    "SpaceSpec",
    "SpecError",
    "TemplateError",
    "TokenError",
    "__version__",
]
