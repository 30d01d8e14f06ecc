"""Space settings as declared state: the rules, the changes, the secret fingerprints and the plan.

A config declares a Space's secrets, variables, hardware, sleep time and visibility as it declares its files. Like
files they are planned against what the Space has now (``plan_settings``, a pure function) and only the differences
are written, so a deploy that changes nothing writes nothing and restarts nothing.

Secret values are write-only on the Hub, so whether a secret changed is told from its description: this tool writes
``managed by beam-pusher; v1$<salt>$<scrypt hash>`` there (``secret_description``), a salted, slow hash of the value
with a fresh random salt on every write; the value itself is never stored anywhere. Variables it writes carry
``managed by beam-pusher``. A secret or variable without the marker was set by hand (in the Hub's UI): it is left
alone unless the config names it. One the tool set that the config no longer has, or sets to null, is deleted.

Nothing here talks to the Hub; ``beam_pusher.hub`` reads the current settings and applies the plan.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from beam_pusher.errors import SpecError

if TYPE_CHECKING:
    from beam_pusher.spec import SpaceSpec

__all__ = [
    "CurrentSettings",
    "FREE_HARDWARE",
    "MANAGED_MARKER",
    "SettingAction",
    "SettingChange",
    "SettingKind",
    "check_hardware",
    "check_sleep_time",
    "hardware_names",
    "is_managed",
    "plan_settings",
    "secret_description",
    "secret_matches",
]

FREE_HARDWARE = "cpu-basic"
"""The Hub's free hardware, whose sleep time is fixed (48 hours) and cannot be set."""

MANAGED_MARKER = "managed by beam-pusher"
"""How the description of a secret or variable this tool wrote starts."""

# scrypt with these costs takes ~50 ms and 16 MiB per hash: cheap for a deploy, slow for anyone guessing values.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_FINGERPRINT = re.compile(rf"^{re.escape(MANAGED_MARKER)}; v1\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$")


# -- rules ---------------------------------------------------------------------------------------------------------


def hardware_names() -> tuple[str, ...]:
    """The hardware flavors the Hub runs Spaces on, as the client's ``SpaceHardware`` lists them."""
    from huggingface_hub import SpaceHardware  # imported on use: the config and CLI paths stay light

    return tuple(h.value for h in SpaceHardware)


def check_hardware(value: Any, *, field: str = "hardware") -> str:
    """Returns ``value`` if it is one of the Hub's hardware flavors (``hardware_names``), else raises SpecError."""
    names = hardware_names()
    if not isinstance(value, str) or value not in names:
        raise SpecError(f"{field}={value!r} is not a hardware flavor of the Hub: use one of {', '.join(names)}.")
    return value


def check_sleep_time(value: Any, hardware: str | None, *, field: str = "sleep_time") -> int:
    """Returns ``value`` if it is a sleep time the Hub accepts for ``hardware``, else raises SpecError.

    A sleep time is a whole number of seconds without visitors after which the Space sleeps, or -1 for never; the
    free ``cpu-basic`` hardware always sleeps after 48 hours, so it cannot be given one.
    """
    if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
        raise SpecError(f"{field}={value!r} must be a whole number of seconds >= 1, or -1 to never sleep.")
    if hardware == FREE_HARDWARE:
        raise SpecError(
            f"{field}={value!r} cannot be set on {FREE_HARDWARE!r}, which always sleeps after 48 hours: request "
            "upgraded hardware (e.g. 'cpu-upgrade') or drop sleep_time."
        )
    return value


# -- changes -------------------------------------------------------------------------------------------------------


class SettingKind(str, enum.Enum):
    """Which setting of a Space a change is about. The values are the strings JSON reports hold."""

    HARDWARE = "hardware"
    SLEEP_TIME = "sleep_time"
    VISIBILITY = "visibility"
    SECRET = "secret"
    VARIABLE = "variable"

    def __str__(self) -> str:
        return self.value


class SettingAction(str, enum.Enum):
    """What a change does: set a value, or delete a secret or variable."""

    SET = "set"
    DELETE = "delete"

    def __str__(self) -> str:
        return self.value


_KEYED = (SettingKind.SECRET, SettingKind.VARIABLE)
_REMOVED = "removed from the config"


@dataclasses.dataclass(frozen=True)
class SettingChange:
    """One settings write a deploy makes (or, in a dry run, would make). Never holds a secret's value.

    Attributes:
      kind: The setting.
      action: ``set`` or ``delete`` (only secrets and variables are deleted).
      key: The secret's or variable's name; None for hardware, sleep time and visibility.
      detail: Why, for people: ``new``, ``changed``, ``set by hand``, ``removed from the config``,
        ``cpu-basic -> t4-small``.

    Example::

        str(SettingChange("secret", "set", "API_KEY", "changed"))  # 'secret API_KEY: set (changed)'
    """

    kind: SettingKind
    action: SettingAction
    key: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", SettingKind(self.kind))
            object.__setattr__(self, "action", SettingAction(self.action))
        except ValueError as err:
            kinds, actions = ", ".join(k.value for k in SettingKind), ", ".join(a.value for a in SettingAction)
            raise SpecError(
                f"SettingChange({self.kind!r}, {self.action!r}): {err}; kinds: {kinds}; actions: {actions}."
            ) from None
        if (self.key is not None) != (self.kind in _KEYED):
            raise SpecError(f"SettingChange {self.kind.value}: a key is given exactly for secrets and variables.")

    def __str__(self) -> str:
        if self.key is None:
            return f"{self.kind.value}: {self.detail}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind.value} {self.key}: {self.action.value}{detail}"

    @property
    def mark(self) -> str:
        """The mark listings show: ``+`` a new secret or variable, ``-`` a deletion, ``~`` any other change."""
        if self.action is SettingAction.DELETE:
            return "-"
        return "+" if self.detail == "new" else "~"


# -- secret fingerprints -------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(value: str, salt: bytes) -> bytes:
    return hashlib.scrypt(value.encode("utf-8"), salt=salt, **_SCRYPT)


def secret_description(value: str, *, salt: bytes | None = None) -> str:
    """The description written with a secret: the marker and a salted scrypt hash of ``value`` (never the value).

    ``salt`` is random per write unless given (tests give one to get a fixed result).
    """
    salt = os.urandom(16) if salt is None else salt
    return f"{MANAGED_MARKER}; v1${_b64(salt)}${_b64(_scrypt(value, salt))}"


def secret_matches(description: str | None, value: str) -> bool:
    """Whether a secret whose description is ``description`` holds ``value``; False when it carries no fingerprint."""
    match = _FINGERPRINT.match(description or "")
    if not match:
        return False
    try:
        salt, digest = _unb64(match.group(1)), _unb64(match.group(2))
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(value, salt), digest)


def is_managed(description: str | None) -> bool:
    """Whether a secret or variable with this description was written by this tool (else: set by hand)."""
    return bool(description) and description.startswith(MANAGED_MARKER)


# -- the plan ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CurrentSettings:
    """What a Space has now, as the Hub answers it (never a secret's value).

    Attributes:
      secrets: Secret name -> its description (None when it has none).
      variables: Variable name -> (value, description).
      hardware: The requested (else the current) hardware; None when not read.
      sleep_time: Seconds without visitors before the Space sleeps (-1: never); None when not read.
      private: Whether the Space is private; None when not read.
    """

    secrets: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    variables: Mapping[str, tuple[str, str | None]] = dataclasses.field(default_factory=dict)
    hardware: str | None = None
    sleep_time: int | None = None
    private: bool | None = None


def _visibility(private: bool | None) -> str:
    return "private" if private else "public"


def plan_settings(
    spec: SpaceSpec, current: CurrentSettings | None, secret_values: Mapping[str, str]
) -> tuple[SettingChange, ...]:
    """The settings writes that make the Space's settings what ``spec`` declares, in the order to apply them.

    Args:
      spec: The Space as declared. Unset ``hardware``, ``sleep_time`` and ``private`` (None) are left as they are;
        its ``secrets`` and ``variables`` are all the Space should have of those this tool manages.
      current: The Space's settings now; None for a Space that does not exist yet (everything declared is set).
      secret_values: The resolved value of every secret ``spec`` sets, to compare with the fingerprints.

    Hardware, sleep time and visibility come first: the Hub refuses them more often (plans, quotas), and a refusal
    then stops the deploy before the secrets and variables change.
    """
    new = current is None
    now = current or CurrentSettings()
    changes = []
    for kind, wanted, have, show in (
        (SettingKind.HARDWARE, spec.hardware, now.hardware, str),
        (SettingKind.SLEEP_TIME, spec.sleep_time, now.sleep_time, str),
        (SettingKind.VISIBILITY, spec.private, now.private, _visibility),
    ):
        if wanted is not None and (new or wanted != have):
            detail = f"{show(wanted)} (new Space)" if new else f"{show(have)} -> {show(wanted)}"
            changes.append(SettingChange(kind, SettingAction.SET, detail=detail))
    changes += _plan_secrets(spec.secrets, now.secrets, secret_values)
    changes += _plan_variables(spec.variables, now.variables)
    return tuple(changes)


def _plan_secrets(declared: Mapping[str, str], current: Mapping[str, str | None], values: Mapping[str, str]
                  ) -> list[SettingChange]:
    changes = []
    for key in sorted(set(declared) | set(current)):
        description = current.get(key)
        if key not in declared:
            if is_managed(description):  # one set by hand and not named by the config is not ours to touch
                changes.append(SettingChange(SettingKind.SECRET, SettingAction.DELETE, key, _REMOVED))
            continue
        if key not in current:
            detail = "new"
        elif not is_managed(description):
            detail = "set by hand"
        elif not secret_matches(description, values[key]):
            detail = "changed"
        else:
            continue
        changes.append(SettingChange(SettingKind.SECRET, SettingAction.SET, key, detail))
    return changes


def _plan_variables(declared: Mapping[str, str], current: Mapping[str, tuple[str, str | None]]
                    ) -> list[SettingChange]:
    changes = []
    for key in sorted(set(declared) | set(current)):
        value, description = current.get(key, (None, None))
        if key not in declared:
            if is_managed(description):
                changes.append(SettingChange(SettingKind.VARIABLE, SettingAction.DELETE, key, _REMOVED))
            continue
        if key not in current:
            changes.append(SettingChange(SettingKind.VARIABLE, SettingAction.SET, key, "new"))
        elif value != declared[key]:
            changes.append(SettingChange(SettingKind.VARIABLE, SettingAction.SET, key, "changed"))
        # An equal value set by hand stays as it is: writing it only to mark it would restart the Space.
    return changes
