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
from beam_pusher.settings import SettingChange
from beam_pusher.spec import (
    AppFile,
    ChangeAction,
    Exclusion,
    Outcome,
    PlaceholderUse,
    PlannedChange,
    PushResult,
    Rendering,
    SpaceFiles,
    SpaceSpec,
)

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


_TFX_EXTRA = "beam_pusher.component"


def _needs_tfx(what: str, exc: ImportError) -> ImportError | None:
    """The error to raise when importing ``what`` failed with ``exc`` for want of the tfx extra, else None.

    Here, not in ``beam_pusher.component``, so that the package and the module say the same.
    """
    missing = exc.name or ""
    if missing.split(".")[0] not in ("tfx", "ml_metadata"):
        return None
    return ImportError(
        f"{what} needs TFX, which is an install extra ({missing} is not installed); "
        'install it with: pip install "beam-pusher[tfx]"',
        name=missing,
    )


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        try:
            module = importlib.import_module(_LAZY[name])
        except ImportError as exc:
            error = _needs_tfx(f"beam_pusher.{name}", exc) if _LAZY[name] == _TFX_EXTRA else None
            if error is None:
                raise
            raise error from exc
        return getattr(module, name)
    raise AttributeError(f"module 'beam_pusher' has no attribute {name!r}")


__all__ = [
    "AppFile",
    "BeamPusherError",
    "ChangeAction",
    "ConfigError",
    "DeploySpaces",
    "Exclusion",
    "HFModelPusher",
    "HFSpacePusher",
    "Outcome",
    "PlaceholderError",
    "PlaceholderUse",
    "PlannedChange",
    "PushError",
    "PushResult",
    "PushToSpace",
    "ReadAppFiles",
    "RenderPlaceholders",
    "Rendering",
    "SettingChange",
    "SpaceFiles",
    "SpaceSpec",
    "SpecError",
    "TemplateError",
    "TokenError",
    "__version__",
]
