"""Token references, resolved where they are used.

A pipeline carries only a *reference* to the Hub token (``None`` for huggingface_hub's own lookup, ``env:NAME`` or
``file:PATH``), so the token never enters the pickled Beam graph, ML Metadata or a config file. The worker resolves it
in ``DoFn.setup``. Space secrets use the same ``env:NAME`` references.
"""

from __future__ import annotations

import os
import re

from beam_pusher.errors import SpecError, TokenError

__all__ = ["check_token_reference", "resolve_secret", "resolve_token", "scrub"]

_ENV = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")


def check_token_reference(reference: str | None) -> str | None:
    """Returns ``reference`` if it is a token reference, else raises SpecError (without echoing the value)."""
    if reference is None or _ENV.match(reference) or (reference.startswith("file:") and len(reference) > 5):
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
    match = _ENV.match(reference)
    if match:
        name = match.group(1)
        value = os.environ.get(name)
        if not value:
            raise TokenError(
                f"token reference {reference!r}: the environment variable {name} is not set on this worker; "
                f"set it (export {name}=...) or use a different reference."
            )
        return value.strip()
    path = reference[len("file:") :]
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
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
    """Resolves a Space secret reference (``env:NAME``) on the worker."""
    match = _ENV.match(reference)
    if not match:
        raise SpecError(f"secret {name!r}: the reference must be 'env:NAME'.")
    value = os.environ.get(match.group(1))
    if value is None:
        raise TokenError(
            f"secret {name!r}: the environment variable {match.group(1)} is not set on this worker; "
            f"export {match.group(1)}=... where the pipeline runs."
        )
    return value


def scrub(text: str, *secrets: str | None) -> str:
    """Replaces every secret value in ``text`` with ``***`` (for messages built from server answers)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
