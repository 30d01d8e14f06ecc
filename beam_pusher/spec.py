"""The elements that flow through a deployment: what to deploy, the files, and what happened.

All are frozen dataclasses so they pickle cheaply and identically on every Beam runner.
``SpaceSpec`` validates itself on construction: a bad value fails where it is written, never on a worker
after files were uploaded.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import re
from collections.abc import Mapping
from typing import Any

from beam_pusher.auth import check_secret_reference
from beam_pusher.errors import SpecError
from beam_pusher.rules import SDKS, check_env_name, check_space_sdk, validate_repo_id
from beam_pusher.selection import Exclusion, check_patterns

__all__ = [
    "AppFile",
    "ChangeAction",
    "Exclusion",
    "PlannedChange",
    "PushResult",
    "SDKS",
    "SpaceFiles",
    "SpaceSpec",
    "validate_repo_id",
]

_HARDWARE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _check_mapping(name: str, value: Any, what: str) -> dict[str, str]:
    """A mapping of ``NAME`` keys (placeholders, secrets, variables) with scalar values, as strings."""
    if not isinstance(value, Mapping):
        raise SpecError(f"{name} must be a mapping of {what}, got {type(value).__name__}: {value!r}.")
    out = {}
    for key, item in value.items():
        check_env_name(key, field=name)
        if not isinstance(item, (str, int, float, bool)):
            raise SpecError(f"{name}[{key!r}] must be a string, got {type(item).__name__}.")
        out[key] = str(item)
    return out


def _check_text(name: str, value: Any) -> None:
    """An optional text field (``title``, ``commit_message``, ...): None or a string that is not blank."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise SpecError(f"{name}={value!r} must be a non-empty string.")


@dataclasses.dataclass(frozen=True)
class SpaceSpec:
    """What one Space should hold after a deploy.

    Attributes:
      repo_id: The Space, ``namespace/name``.
      app_path: The app template: ``apps.gradio.img_classifier``, ``apps/gradio/img_classifier``, an absolute path
        or any fsspec URL (``gs://``, ``s3://``, ``memory://``, ``file://``, ``hf://spaces/...``).
      space_sdk: ``gradio``, ``streamlit``, ``docker`` or ``static``.
      model_path: URL of a model directory to embed under ``model/`` (with a generated ``model_loader.py``).
      model_hub_repo_id: A model repository the app loads from instead (fills ``$MODEL_REPO_ID``).
      model_hub_repo_branch: The model's branch or tag (fills ``$MODEL_VERSION``).
      placeholders: More ``$NAME`` -> value replacements for the template's text files.
      private: Whether a newly created Space is private.
      hardware: Space hardware flavor to request (``cpu-basic``, ``t4-small``, ...).
      secrets: Space secret name -> reference such as ``env:NAME``, resolved on the worker; never a value.
      variables: Space variable name -> value.
      keep: Patterns of Space files a deploy never deletes, in .gitignore syntax (``data/``, ``*.db``): the same
        language as ``exclude``, so ``data/*`` keeps all of ``data/``, subfolders included, as it would ignore them.
      exclude: More files of the template and model to leave out, in .gitignore syntax, matched against Space paths
        (``*.ipynb``, ``/notebooks/``, ``model/assets/``), on top of the default exclusions and the template's own
        ``.gitignore`` files (see ``beam_pusher.selection``).
      include: Patterns that bring back files the defaults, a ``.gitignore`` or ``exclude`` leave out
        (``.env.example``); a ``.env``-like file brought back is uploaded with a warning.
      commit_message: Summary of the deploy's commit.
      strict_placeholders: Fail when a ``$MODEL_*`` placeholder is left without a value.
      title: Title in the README front matter (default: the Space's name).

    Example::

        SpaceSpec(repo_id="alice/penguins", app_path="apps.gradio.img_classifier",
                  model_hub_repo_id="alice/penguin-model", model_hub_repo_branch="v3")
    """

    repo_id: str
    app_path: str
    space_sdk: str = "gradio"
    model_path: str | None = None
    model_hub_repo_id: str | None = None
    model_hub_repo_branch: str | None = None
    placeholders: Mapping[str, str] = dataclasses.field(default_factory=dict)
    private: bool = False
    hardware: str | None = None
    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict)
    variables: Mapping[str, str] = dataclasses.field(default_factory=dict)
    keep: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    commit_message: str | None = None
    strict_placeholders: bool = False
    title: str | None = None

    def __post_init__(self) -> None:
        validate_repo_id(self.repo_id)
        if not isinstance(self.app_path, str) or not self.app_path.strip():
            raise SpecError(
                f"app_path={self.app_path!r} is empty: give a template such as 'apps.gradio.img_classifier', "
                "a folder path or an fsspec URL."
            )
        check_space_sdk(self.space_sdk)
        if self.model_path is not None and (not isinstance(self.model_path, str) or not self.model_path.strip()):
            raise SpecError(f"model_path={self.model_path!r} must be a non-empty path or URL, or None.")
        if self.model_hub_repo_id is not None:
            validate_repo_id(self.model_hub_repo_id, field="model_hub_repo_id")
        _check_text("model_hub_repo_branch", self.model_hub_repo_branch)
        if self.hardware is not None and (not isinstance(self.hardware, str) or not _HARDWARE.match(self.hardware)):
            raise SpecError(
                f"hardware={self.hardware!r} is not a hardware flavor name: use e.g. 'cpu-basic' or 't4-small'."
            )
        object.__setattr__(self, "placeholders", _check_mapping("placeholders", self.placeholders, "name -> value"))
        secrets = _check_mapping("secrets", self.secrets, "name -> reference")
        for key, ref in secrets.items():
            check_secret_reference(key, ref)
        object.__setattr__(self, "secrets", secrets)
        object.__setattr__(self, "variables", _check_mapping("variables", self.variables, "name -> value"))
        for name in ("keep", "exclude", "include"):
            object.__setattr__(self, name, check_patterns(getattr(self, name), field=name))
        for name in ("private", "strict_placeholders"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"{name}={getattr(self, name)!r} must be true or false.")
        _check_text("commit_message", self.commit_message)
        _check_text("title", self.title)

    @property
    def name(self) -> str:
        """The Space's name without its namespace."""
        return self.repo_id.split("/", 1)[1]


@dataclasses.dataclass(frozen=True)
class AppFile:
    """One file of a Space: either held in memory (``content``) or streamed from ``source`` on push.

    Rendered text files and generated files carry ``content``; binary and large files carry only their
    ``source`` URL plus the hashes computed while streaming it, so no worker ever holds a whole model.
    """

    repo_id: str
    path: str
    size: int
    source: str | None = None
    content: bytes | None = None
    sha256: str | None = None
    git_sha1: str | None = None

    def __post_init__(self) -> None:
        if (self.source is None) == (self.content is None):
            raise SpecError(f"AppFile {self.path!r} needs exactly one of source and content.")


@dataclasses.dataclass(frozen=True)
class SpaceFiles:
    """One Space and every file it will hold: what ``ReadAppFiles`` lists and ``RenderPlaceholders`` renders.

    A Space that failed on the way (unreadable template, placeholder error, a file lost before the push) carries
    ``error`` and no files, so it reaches ``PushToSpace`` as one element like any other and is reported, not pushed.
    A Space's files are its whole tree in mirror mode, so a path may appear only once: with two files for one path,
    which one the Space gets would be left to chance.

    Attributes:
      spec: The Space.
      files: Its files, each with ``repo_id == spec.repo_id`` and a path of its own.
      error: Why the Space cannot be pushed; None while it can.
      excluded: What the listing left out of the template and model, and why (reported with the result).

    Example::

        SpaceFiles(spec, (AppFile(spec.repo_id, "app.py", 4, content=b"app\\n"),))
    """

    spec: SpaceSpec
    files: tuple[AppFile, ...] = ()
    error: str | None = None
    excluded: tuple[Exclusion, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "excluded", tuple(self.excluded))
        if not isinstance(self.spec, SpaceSpec):
            raise SpecError(f"SpaceFiles.spec must be a SpaceSpec, got {type(self.spec).__name__}: {self.spec!r}.")
        files = tuple(self.files)
        object.__setattr__(self, "files", files)
        others = sorted({f.repo_id for f in files} - {self.spec.repo_id})
        if others:
            raise SpecError(
                f"SpaceFiles for {self.spec.repo_id!r} holds files of {', '.join(others)}: every file must belong "
                "to the Space it is listed for; list each Space's files in a SpaceFiles of its own."
            )
        duplicates = sorted(path for path, n in collections.Counter(f.path for f in files).items() if n > 1)
        if duplicates:
            raise SpecError(
                f"more than one file for {', '.join(duplicates)}: a Space holds one file per path; list each path "
                "once."
            )


class ChangeAction(str, enum.Enum):
    """What a commit does to one file. The values are the strings JSON reports hold ("add", "update", "delete")."""

    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"

    def __str__(self) -> str:
        return self.value

    @property
    def mark(self) -> str:
        """The one-character mark listings show: ``+`` add, ``~`` update, ``-`` delete."""
        return _MARKS[self]


_MARKS = {ChangeAction.ADD: "+", ChangeAction.UPDATE: "~", ChangeAction.DELETE: "-"}


@dataclasses.dataclass(frozen=True)
class PlannedChange:
    """One file change a push makes (or, in a dry run, would make).

    ``action`` accepts the enum or its string value (as a JSON report holds it) and is stored as a ``ChangeAction``.
    """

    action: ChangeAction
    path: str
    size: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "action", ChangeAction(self.action))
        except ValueError:
            allowed = ", ".join(repr(a.value) for a in ChangeAction)
            raise SpecError(
                f"PlannedChange {self.path!r}: action={self.action!r} is not a file change; use one of {allowed}."
            ) from None


@dataclasses.dataclass(frozen=True)
class PushResult:
    """The outcome of deploying one Space. ``error`` is None on success.

    ``excluded`` lists what the template and model held that the Space did not get, and why (``.env``: secret).
    """

    repo_id: str
    pushed: bool
    commit_id: str | None = None
    repo_url: str | None = None
    pushed_version: str | None = None
    committed: bool = False
    files_added: int = 0
    files_updated: int = 0
    files_deleted: int = 0
    files_unchanged: int = 0
    bytes_uploaded: int = 0
    error: str | None = None
    dry_run: bool = False
    planned: tuple[PlannedChange, ...] = ()
    runtime_stage: str | None = None
    excluded: tuple[Exclusion, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for reports and TFX artifact properties)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PushResult:
        """The inverse of ``to_dict``."""
        fields = dict(data)
        fields["planned"] = tuple(PlannedChange(**c) for c in fields.get("planned", ()))
        fields["excluded"] = tuple(Exclusion(**e) for e in fields.get("excluded", ()))
        return cls(**fields)
