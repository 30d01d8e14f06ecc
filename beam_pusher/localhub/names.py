"""The Hub's rules for names: namespaces, repository names and file paths in a repository.

One home for each rule, used by the endpoints (``create_repo``, commits, preupload), by ``RepoStore`` (a name never
escapes the data directory) and by the accounts given at start-up (``hub serve --user/--org``), so a name the server
accepts at start-up is a name it accepts on the wire.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["NAME_RULE", "PathError", "check_name", "valid_name", "validate_path"]

# The client's REPO_ID_REGEX (``\b[\w\-.]+\b``, no "--" or ".."), in ASCII: a name starts and ends with a letter, a
# digit or "_" (the Hub's own test accounts are "__DUMMY_TRANSFORMERS_USER__"), at most 96 characters.
_NAME = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$")
NAME_RULE = (
    "use letters, digits, '-', '_' and '.', start and end with a letter, a digit or '_', no '--' or '..', "
    "at most 96 characters"
)


def valid_name(value: Any) -> bool:
    """True if ``value`` is a valid namespace (user or organisation) or repository name on the Hub."""
    return isinstance(value, str) and bool(_NAME.match(value))


def check_name(value: Any, label: str) -> str:
    """Returns ``value`` if it is a valid name, else raises ValueError naming it, the rule and ``label``.

    Example::

        check_name("__DUMMY_USER__", "user")  # accepted, as on the Hub
    """
    if not valid_name(value):
        raise ValueError(f"Invalid {label} {value!r}: {NAME_RULE}")
    return value


class PathError(ValueError):
    """A file path the Hub refuses; ``status`` is the HTTP status the Hub answers it with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def validate_path(path: Any) -> str:
    """Returns ``path`` if it is a valid file path inside a repository, else raises PathError.

    A path whose components, split on ``/`` or on ``\\``, include ``.`` or ``..`` (``..\\x``) is answered 422, as
    the Hub does for a path that would leave the repository; other malformed paths are answered 400.
    """
    if not isinstance(path, str) or not path:
        raise PathError(400, f"Invalid path {path!r}: expected a non-empty relative path such as 'app.py'")
    if any(part in (".", "..") for part in re.split(r"[/\\]", path)):
        raise PathError(422, f"Invalid path {path!r}: a path may not contain '.' or '..' components, with '/' or "
                        "'\\' between them; use a path relative to the repository root such as 'folder/app.py'")
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".git") for part in parts) or "\0" in path:
        raise PathError(
            400,
            f"Invalid path {path!r}: paths are relative, use '/' between non-empty folder names, and contain no "
            "'.', '..' or '.git' component",
        )
    return path
