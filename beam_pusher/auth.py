"""Token and secret references, resolved where they are used.

A pipeline carries only a *reference* to the Hub token (``None`` for huggingface_hub's own lookup) and to each Space
secret, so no value enters the pickled Beam graph, ML Metadata or a config file. The worker resolves it in
``DoFn.setup``. The kinds of reference (``ReferenceKind``):

- ``env:NAME``: the environment variable NAME of the process that resolves it;
- ``file:PATH``: a file on the worker (a mounted secret);
- ``gcp-secret:projects/P/secrets/S/versions/V``: a Google Secret Manager version, read with the worker's
  credentials (on Dataflow: its service account);
- ``aws-secret:NAME`` or ``aws-secret:NAME#KEY``: an AWS Secrets Manager secret (name or ARN), or one key of its JSON.

``env:`` and ``file:`` resolve where the launcher's environment and files are the worker's (local runners); remote
workers (Dataflow) read the secret stores. This module is the one home of the reference syntax: ``SpaceSpec``, the
config validator, the components and the transforms ask the functions here whether a string is a reference and
what it refers to; ``beam_pusher.secretstores`` reads the stores.
"""

from __future__ import annotations

import enum
import os
import re
from typing import Any

from beam_pusher.errors import SpecError, TokenError
from beam_pusher.rules import is_env_name

__all__ = [
    "ReferenceKind",
    "aws_secret_id",
    "check_secret_reference",
    "check_token_reference",
    "env_reference_name",
    "file_reference_path",
    "gcp_secret_name",
    "has_reference_prefix",
    "reference_kind",
    "remote_reference_problem",
    "resolve_secret",
    "resolve_token",
    "scrub",
]

_ENV_PREFIX = "env:"
_FILE_PREFIX = "file:"
_GCP_PREFIX = "gcp-secret:"
_AWS_PREFIX = "aws-secret:"
_PREFIXES = (_ENV_PREFIX, _FILE_PREFIX, _GCP_PREFIX, _AWS_PREFIX)
# Secret Manager's rules: secret ids of letters, digits, '-' and '_' (at most 255); versions a number, 'latest' or
# an alias.
_GCP_NAME = re.compile(r"^projects/[a-z0-9][a-z0-9.:-]*/secrets/[A-Za-z0-9_-]{1,255}/versions/[A-Za-z0-9_-]+$")
# Secrets Manager's rules: names of letters, digits and /_+=.@- (at most 512), or an ARN; '#KEY' picks a JSON key.
_AWS_ID = re.compile(r"^(?:arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}$")
_REFERENCE_FORMS = ("'env:NAME', 'file:PATH', 'gcp-secret:projects/P/secrets/S/versions/V' or "
                    "'aws-secret:NAME[#KEY]'")


class ReferenceKind(enum.Enum):
    """What a reference reads, which decides where it can be resolved."""

    ENV = "env"
    FILE = "file"
    GCP_SECRET = "gcp-secret"
    AWS_SECRET = "aws-secret"

    @property
    def needs_local_worker(self) -> bool:
        """Whether it reads the launching machine's environment or files, which remote workers do not have."""
        return self in (ReferenceKind.ENV, ReferenceKind.FILE)


def gcp_secret_name(reference: Any) -> str | None:
    """The version name of a ``gcp-secret:projects/P/secrets/S/versions/V`` reference; None for anything else."""
    if isinstance(reference, str) and reference.startswith(_GCP_PREFIX):
        name = reference[len(_GCP_PREFIX) :]
        if _GCP_NAME.match(name):
            return name
    return None


def aws_secret_id(reference: Any) -> tuple[str, str | None] | None:
    """``(secret id, JSON key or None)`` of an ``aws-secret:NAME[#KEY]`` reference; None for anything else."""
    if isinstance(reference, str) and reference.startswith(_AWS_PREFIX):
        secret_id, sep, key = reference[len(_AWS_PREFIX) :].partition("#")
        if _AWS_ID.match(secret_id) and (not sep or key):
            return secret_id, key or None
    return None


def reference_kind(reference: Any) -> ReferenceKind | None:
    """The kind of a well-formed reference; None for anything else (a malformed reference, a literal, None)."""
    if env_reference_name(reference):
        return ReferenceKind.ENV
    if file_reference_path(reference):
        return ReferenceKind.FILE
    if gcp_secret_name(reference):
        return ReferenceKind.GCP_SECRET
    if aws_secret_id(reference):
        return ReferenceKind.AWS_SECRET
    return None


def remote_reference_problem(reference: Any) -> str | None:
    """Why ``reference`` cannot resolve on remote workers (Dataflow), with the fix; None when it can."""
    kind = reference_kind(reference)
    if kind is None or not kind.needs_local_worker:
        return None
    reads = "an environment variable" if kind is ReferenceKind.ENV else "a file"
    return (
        f"{reference!r} reads {reads} of the machine that resolves it, and remote workers (Dataflow) do not have "
        "this machine's; store the value in a secret store and write 'gcp-secret:projects/P/secrets/S/versions/"
        "latest' (Google Secret Manager) or 'aws-secret:NAME' (AWS Secrets Manager) instead."
    )


def has_reference_prefix(value: str) -> bool:
    """Whether ``value`` is written as a reference (``env:...``, ``gcp-secret:...``), well-formed or not.

    What is not is taken for a literal token where one is allowed (the TFX components, on local runners).
    """
    return value.startswith(_PREFIXES)


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
    """Returns what the Space secret ``name``'s reference names, else raises SpecError.

    That is the variable of ``env:NAME``, the path of ``file:PATH``, the secret of a secret-store reference. The
    message never echoes ``reference``: a value that is not a reference may be the secret itself.
    """
    kind = reference_kind(reference)
    if kind is None:
        raise SpecError(
            f"secrets[{name!r}] is not a reference: write 'env:NAME' (the worker reads the environment "
            "variable NAME), 'file:PATH', 'gcp-secret:projects/P/secrets/S/versions/V' or 'aws-secret:NAME[#KEY]'; "
            "secret values never go into a spec or a config file."
        )
    return _target(reference, kind)


def _target(reference: str, kind: ReferenceKind) -> str:
    if kind is ReferenceKind.ENV:
        return env_reference_name(reference)
    if kind is ReferenceKind.FILE:
        return file_reference_path(reference)
    if kind is ReferenceKind.GCP_SECRET:
        return gcp_secret_name(reference)
    return aws_secret_id(reference)[0]


def check_token_reference(reference: str | None) -> str | None:
    """Returns ``reference`` if it is a token reference, else raises SpecError (without echoing the value)."""
    if reference is None or reference_kind(reference) is not None:
        return reference
    raise SpecError(
        "the token must be a reference, not a value: use 'env:NAME' (read from the worker's environment), "
        "'file:PATH' (a mounted secret file), 'gcp-secret:projects/P/secrets/S/versions/V' (Google Secret "
        "Manager), 'aws-secret:NAME[#KEY]' (AWS Secrets Manager), or leave it unset to use HF_TOKEN or the "
        "huggingface_hub login. A literal token would be pickled into the pipeline graph."
    )


def _read_store(reference: str, kind: ReferenceKind, what: str) -> str:
    """The value a secret-store reference names, read from the store on this worker."""
    from beam_pusher import secretstores

    if kind is ReferenceKind.GCP_SECRET:
        return secretstores.read_gcp_secret(gcp_secret_name(reference), what=what)
    secret_id, key = aws_secret_id(reference)
    return secretstores.read_aws_secret(secret_id, key, what=what)


def _read_file(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise TokenError(
            f"{what}: cannot read {path!r} ({exc.strerror}); mount the secret file there or use another reference."
        ) from None


def resolve_token(reference: str | None) -> str | None:
    """Resolves a token reference on the worker; ``None`` means HF_TOKEN or the cached huggingface_hub login.

    Raises:
      SpecError: ``reference`` is not a token reference.
      TokenError: It names nothing here: an unset variable, an unreadable or empty file, a secret that is missing
        or denied.
    """
    check_token_reference(reference)
    if reference is None:
        from huggingface_hub import get_token  # huggingface_hub reads its settings at import: import late.

        return get_token()
    what = f"token reference {reference!r}"
    kind = reference_kind(reference)
    if kind is ReferenceKind.ENV:
        name = env_reference_name(reference)
        value = os.environ.get(name)
        if not value:
            raise TokenError(
                f"{what}: the environment variable {name} is not set on this worker; "
                f"set it (export {name}=...) or use a different reference."
            )
        return value.strip()
    if kind is ReferenceKind.FILE:
        value = _read_file(file_reference_path(reference), what).strip()
        if not value:
            raise TokenError(f"{what}: the file {file_reference_path(reference)!r} is empty.")
        return value
    value = _read_store(reference, kind, what).strip()
    if not value:
        raise TokenError(f"{what}: the secret is empty; store the Hub token in it.")
    return value


def resolve_secret(name: str, reference: str) -> str:
    """Resolves a Space secret reference on the worker; an empty value is refused, never deployed.

    Raises:
      SpecError: ``reference`` is not a reference.
      TokenError: It names nothing here (an unset variable, an unreadable file, a missing or denied secret), or
        what it names is empty, which would wipe the Space's secret.
    """
    target = check_secret_reference(name, reference)
    kind = reference_kind(reference)
    what = f"secret {name!r}"
    if kind is ReferenceKind.ENV:
        value = os.environ.get(target)
        if value is None:
            raise TokenError(
                f"{what}: the environment variable {target} is not set on this worker; "
                f"export {target}=... where the pipeline runs."
            )
        if not value:
            raise TokenError(
                f"{what}: the environment variable {target} is empty on this worker, which would wipe the "
                f"Space's secret; export {target}=<the value>, or remove {name} from the config."
            )
        return value
    if kind is ReferenceKind.FILE:
        value = _read_file(target, what).rstrip("\r\n")  # the newline an editor or 'echo' ends a file with
    else:
        value = _read_store(reference, kind, what)
    if not value:
        raise TokenError(f"{what}: {reference} holds an empty value, which would wipe the Space's secret; store the "
                         f"value there, or remove {name} from the config.")
    return value


_SCRUB_MIN_LENGTH = 4
"""Shorter values are no secrets worth the name, and replacing them would garble every word of a message."""


def scrub(text: str, *secrets: str | None) -> str:
    """Replaces every secret value in ``text`` with ``***`` (for messages built from server answers)."""
    for secret in secrets:
        if secret and len(secret) >= _SCRUB_MIN_LENGTH:
            text = text.replace(secret, "***")
    return text
