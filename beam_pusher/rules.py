"""The Hub's naming rules and the other rules several modules check, each written once.

A spec validates itself (``SpaceSpec``, ``ModelRepoSpec``), the config validator asks the spec, the CLI and the TFX
components check their arguments: all of them ask the functions here, so a rule cannot drift between its users.
Each check raises ``SpecError`` with a message that names the bad value, what is allowed, and the fix.
Nothing here imports Beam or huggingface_hub.
"""

from __future__ import annotations

import re
from typing import Any

from beam_pusher.errors import SpecError

__all__ = [
    "ENV_NAME_PATTERN",
    "FAILED_STAGES",
    "SDKS",
    "check_branch_name",
    "check_endpoint",
    "check_env_name",
    "check_space_sdk",
    "is_env_name",
    "is_url",
    "validate_repo_id",
]

ENV_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
"""An environment variable name, as ``env:NAME`` references, placeholder/secret/variable keys and the ``$NAME``
placeholder syntax use it; unanchored, to build other patterns with."""

# The Hub's rule for a namespace or a repository name: letters, digits, "-", "_" and "."; no leading or
# trailing "-" or "."; no "--" or ".."; at most 96 characters.
_NAME = r"(?!.*(--|\.\.))[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^{_NAME}/{_NAME}$")
# git's branch rules, narrowed to names that need no quoting anywhere: no "..", no ".lock" suffix.
_BRANCH = re.compile(r"^(?!.*\.\.)(?!.*\.lock$)[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# An environment variable name, as ``env:NAME`` references and placeholder/secret/variable keys use it.
_ENV_NAME = re.compile(rf"^{ENV_NAME_PATTERN}$")
# A URL with a scheme (``gs://``, ``hf://``) or an fsspec chain (``simplecache::s3://``).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*(?:://|::)")
_ENDPOINT = re.compile(r"^https?://[^\s/]+")

SDKS = ("gradio", "streamlit", "docker", "static")
"""The Space SDKs the Hub builds."""

FAILED_STAGES = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "DELETING"})
"""Runtime stages (``huggingface_hub.SpaceStage`` values) after which a Space will not run without a change."""


def validate_repo_id(value: Any, *, field: str = "repo_id") -> str:
    """Returns ``value`` if it is a Hub repository id ``namespace/name``, else raises SpecError."""
    if not isinstance(value, str) or not _REPO_ID.match(value):
        raise SpecError(
            f"{field}={value!r} is not a Hub repository id: expected 'namespace/name' made of letters, digits, "
            "'-', '_' and '.', without '--' or '..', at most 96 characters each "
            "(for example 'my-org/penguin-demo')."
        )
    return value


def check_space_sdk(value: Any, *, field: str = "space_sdk") -> str:
    """Returns ``value`` if it is one of the Hub's Space ``SDKS``, else raises SpecError."""
    if value not in SDKS:
        raise SpecError(f"{field}={value!r} is not a Space SDK: use one of {', '.join(SDKS)}.")
    return value


def check_branch_name(value: Any, *, field: str) -> str:
    """Returns ``value`` if it is a branch (or tag) name a model version may use, else raises SpecError."""
    if not isinstance(value, str) or not _BRANCH.match(value):
        raise SpecError(
            f"{field}={value!r} is not a usable branch name: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit, at most 100 characters (for example 'v3' or 'v1700000000')."
        )
    return value


def is_env_name(value: Any) -> bool:
    """Whether ``value`` is an environment variable name (``HF_TOKEN``, ``MY_API_KEY``)."""
    return isinstance(value, str) and bool(_ENV_NAME.match(value))


def check_env_name(value: Any, *, field: str) -> str:
    """Returns ``value`` if it is a name of letters, digits and '_' not starting with a digit, else SpecError.

    ``field`` names the mapping whose key ``value`` is (``placeholders``, ``secrets``, ``variables``).
    """
    if not is_env_name(value):
        raise SpecError(
            f"{field} has the key {value!r}, which is not allowed: use letters, digits and '_', "
            "not starting with a digit (for example 'MODEL_NAME')."
        )
    return value


def is_url(value: str) -> bool:
    """Whether ``value`` names a filesystem by scheme (``gs://b/x``, ``hf://spaces/a/b``, ``simplecache::s3://``)."""
    return bool(_URL.match(value))


def check_endpoint(value: Any, *, field: str = "endpoint") -> str:
    """Returns a Hub URL without its trailing '/', else raises SpecError.

    ``field`` starts the message (``--endpoint``); give ``""`` where the caller already says which setting it is.
    """
    if not isinstance(value, str) or not _ENDPOINT.match(value):
        named = f"{field} " if field else ""
        raise SpecError(
            f"{named}{value!r} is not a Hub URL: write e.g. 'https://huggingface.co' or 'http://127.0.0.1:8080', "
            "or leave it out to use HF_ENDPOINT."
        )
    return value.rstrip("/")
