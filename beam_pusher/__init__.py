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
from beam_pusher.spec import AppFile, PlannedChange, PushResult, SpaceSpec

__version__ = "0.1.0"

__all__ = [
    "AppFile",
    "BeamPusherError",
    "ConfigError",
    "PlaceholderError",
    "PlannedChange",
    "PushError",
    "PushResult",
    "SpaceSpec",
    "SpecError",
    "TemplateError",
    "TokenError",
    "__version__",
]
