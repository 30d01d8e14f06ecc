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
from beam_pusher.spec import AppFile, PlannedChange, PushResult, SpaceFailure, SpaceSpec

__version__ = "0.1.0"

# The transforms import Apache Beam (seconds): loaded on first use so `import beam_pusher` stays light for the
# config and CLI paths that never build a pipeline.
_TRANSFORMS = ("DeploySpaces", "PushToSpace", "ReadAppFiles", "RenderPlaceholders")


def __getattr__(name: str):
    if name in _TRANSFORMS:
        from beam_pusher import transforms

        return getattr(transforms, name)
    raise AttributeError(f"module 'beam_pusher' has no attribute {name!r}")


__all__ = [
    "AppFile",
    "BeamPusherError",
    "ConfigError",
    "DeploySpaces",
    "PlaceholderError",
    "PlannedChange",
    "PushError",
    "PushResult",
    "PushToSpace",
    "ReadAppFiles",
    "RenderPlaceholders",
    "SpaceFailure",
    "SpaceSpec",
    "SpecError",
    "TemplateError",
    "TokenError",
    "__version__",
]
