"""Token references, resolved where they are used.

A pipeline carries only a *reference* to the Hub token (``None`` for huggingface_hub's own lookup, ``env:NAME`` or
``file:PATH``), so the token never enters the pickled Beam graph, ML Metadata or a config file. The worker resolves it
in ``DoFn.setup``. Space secrets use the same ``env:NAME`` references.

This module is the one home of the reference syntax: ``SpaceSpec``, the config validator, the components and the
transforms ask the functions here whether a string is a reference and what it refers to.
"""

from __future__ import annotations

import os
from typing import Any

from beam_pusher.errors import SpecError, TokenError
from beam_pusher.rules import is_env_name

__all__ = [
    "check_secret_reference",
    "check_token_reference",
    "env_reference_name",
    "file_reference_path",
    "has_reference_prefix",
    "resolve_secret",
    "resolve_token",
    "scrub",
]

_ENV_PREFIX = "env:"
_FILE_PREFIX = "file:"


def has_reference_prefix(value: str) -> bool:
    """Whether ``value`` is written as a reference (``env:...``, ``file:...``), well-formed or not.

    What is not is taken for a literal token where one is allowed (the TFX components, on local runners).
    """
    return value.startswith((_ENV_PREFIX, _FILE_PREFIX))


def env_reference_name(reference: Any) -> str | None:
    """The variable name of an ``env:NAME`` reference (``env:HF_TOKEN`` -> ``HF_TOKEN``); None for anything else."""
    if isinstance(reference, str) and reference.startswith(_ENV_PREFIX):
        name = reference[len(_ENV_PREFIX) :]
        if is_env_name(name):
            return name
    return None


def file_reference_path(reference: Any) -> str | None:
    """The path of a ``file:PATH`` reference, with ``~`` expanded; None for anything else."""
    if isinstance(reference, str) and reference.startswith(_FILE_PREFIX) and len(reference) > len(_FILE_PREFIX):
        return os.path.expanduser(reference[len(_FILE_PREFIX) :])
    return None


def check_secret_reference(name: str, reference: Any) -> str:
    """Returns the variable name of the Space secret ``name``'s ``env:NAME`` reference, else raises SpecError.

    The message never echoes ``reference``: a value that is not a reference may be the secret itself.
    """
    variable = env_reference_name(reference)
    if variable is None:
        raise SpecError(
            f"secrets[{name!r}] is not a reference: write 'env:NAME' (the worker reads the environment "
            "variable NAME); secret values never go into a spec or a config file."
        )
    return variable


def check_token_reference(reference: str | None) -> str | None:
    """Returns ``reference`` if it is a token reference, else raises SpecError (without echoing the value)."""
    if reference is None or env_reference_name(reference) or file_reference_path(reference):
        return reference
    raise SpecError(
        "the token must be a reference, not a value: use 'env:NAME' (read from the worker's environment), "
        "'file:PATH' (a mounted secret file), or leave it unset to use HF_TOKEN or the huggingface_hub login. "
        "A literal token would be pickled into the pipeline graph."
    )


def resolve_token(reference: str | None) -> str | None:
    """Resolves a token reference on the worker; ``None`` means HF_TOKEN or the cached huggingface_hub login."""
    check_token_reference(reference)
    if reference is None:
        from huggingface_hub import get_token  # huggingface_hub reads its settings at import: import late.

        return get_token()
    name = env_reference_name(reference)
    if name is not None:
        value = os.environ.get(name)
        if not value:
            raise TokenError(
                f"token reference {reference!r}: the environment variable {name} is not set on this worker; "
                f"set it (export {name}=...) or use a different reference."
            )
        return value.strip()
    path = file_reference_path(reference)
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except OSError as exc:
        raise TokenError(
            f"token reference {reference!r}: cannot read {path!r} ({exc.strerror}); mount the secret file there "
            "or use 'env:NAME'."
        ) from None
    if not value:
        raise TokenError(f"token reference {reference!r}: the file {path!r} is empty.")
    return value


def resolve_secret(name: str, reference: str) -> str:
    """Resolves a Space secret reference (``env:NAME``) on the worker; an empty value is refused, never deployed."""
    variable = check_secret_reference(name, reference)
    value = os.environ.get(variable)
    if value is None:
        raise TokenError(
            f"secret {name!r}: the environment variable {variable} is not set on this worker; "
            f"export {variable}=... where the pipeline runs."
        )
    if not value:
        raise TokenError(
            f"secret {name!r}: the environment variable {variable} is empty on this worker, which would wipe the "
            f"Space's secret; export {variable}=<the value>, or remove {name} from the config."
        )
    return value


def scrub(text: str, *secrets: str | None) -> str:
    """Replaces every secret value in ``text`` with ``***`` (for messages built from server answers)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
