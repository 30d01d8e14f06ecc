"""Errors raised by beam_pusher.

Every message names the bad value, what is allowed, and how to fix it. The hierarchy is flat::

    BeamPusherError
    ├── SpecError         a SpaceSpec or component argument is invalid (raised at construction)
    ├── ConfigError       a batch config file is invalid (lists every problem with file, line and key)
    ├── TemplateError     an app template cannot be read (missing path, path escaping the template root)
    ├── PlaceholderError  strict placeholder rendering found a placeholder without a value
    ├── TokenError        the Hub token reference cannot be resolved on the worker
    └── PushError         the Hub refused a push after retries (conflict, permission, ...)

No message ever contains a token or a secret value.
"""

from __future__ import annotations

__all__ = [
    "BeamPusherError",
    "ConfigError",
    "PlaceholderError",
    "PushError",
    "SpecError",
    "TemplateError",
    "TokenError",
]


class BeamPusherError(Exception):
    """Base class of every error beam_pusher raises on purpose."""


class SpecError(BeamPusherError, ValueError):
    """A Space specification or component argument is invalid."""


class ConfigError(BeamPusherError, ValueError):
    """A batch config file is invalid; ``problems`` lists every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class TemplateError(BeamPusherError):
    """An app template or model directory cannot be read."""


class PlaceholderError(BeamPusherError):
    """A placeholder has no value while strict placeholder rendering is on."""


class TokenError(BeamPusherError):
    """The Hub token reference cannot be resolved."""


class PushError(BeamPusherError):
    """The Hub refused a push, after the retries that made sense."""
