"""What the Hub derives from a Space's files and settings: README front matter, validation, pricing.

Pure functions over plain values, so the HTTP layer and the test helpers share one definition of each rule.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import yaml

from beam_pusher.localhub.card_rules import check_card_metadata

__all__ = [
    "FREE_HARDWARE",
    "HARDWARE_FLAVORS",
    "SDKS",
    "app_file_of",
    "initial_readme",
    "parse_front_matter",
    "payment_required",
    "subdomain_of",
    "validate_front_matter",
]

SDKS = ("gradio", "streamlit", "docker", "static")
FREE_HARDWARE = "cpu-basic"
HARDWARE_FLAVORS = (
    "cpu-basic", "cpu-upgrade", "cpu-performance", "cpu-xl", "zero-a10g", "t4-small", "t4-medium", "l4x1", "l4x4",
    "l40sx1", "l40sx4", "l40sx8", "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4",
    "a100x8", "h100", "h100x8", "rtx-pro-6000", "rtx-pro-6000x2", "rtx-pro-6000x4", "rtx-pro-6000x8",
)
# On the Hub since 2026, a free account pays for Gradio and Docker Spaces; static Spaces stay free.
PAID_SDKS = ("gradio", "docker")
POLICY_OFF, POLICY_PAID_HARDWARE, POLICY_ALL = "off", "paid-hardware", "all"
DEFAULT_SLEEP_TIME = 172800  # 48 hours, the Hub's fixed value for free hardware
_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
_EMOJIS = ("🚀", "🐢", "🦀", "🌍", "🔥", "📊", "🎨", "🐧")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*$", re.DOTALL | re.MULTILINE)


def normalize_policy(value: bool | str | None) -> str:
    """Maps the ``free_account_policy`` option to one of ``"off"``, ``"paid-hardware"``, ``"all"``.

    ``True`` means ``"all"``: the 2026 Hub rule, where a free account gets 402 for any Gradio or Docker Space.
    """
    if value is None or value is False:
        return POLICY_OFF
    if value is True:
        return POLICY_ALL
    if value in (POLICY_OFF, POLICY_PAID_HARDWARE, POLICY_ALL):
        return str(value)
    raise ValueError(
        f"free_account_policy={value!r} is not allowed: use False/'off', 'paid-hardware' (402 for hardware other "
        "than cpu-basic) or True/'all' (402 for every Gradio or Docker Space, cpu-basic included)."
    )


def payment_required(policy: str, sdk: str | None, hardware: str | None) -> str | None:
    """Returns the 402 message when a free account may not run ``sdk`` on ``hardware``, else None."""
    if policy == POLICY_OFF or sdk not in PAID_SDKS:
        return None
    flavor = hardware or FREE_HARDWARE
    if flavor != FREE_HARDWARE:
        return (
            f"Hardware {flavor!r} requires a paid plan: this free account may only use {FREE_HARDWARE!r} "
            "(or a static Space). Add a payment method or request cpu-basic."
        )
    if policy == POLICY_ALL:
        return (
            f"A {sdk} Space requires a paid plan, even on {FREE_HARDWARE!r}: this free account may only create static "
            "Spaces. Add a payment method or use sdk 'static'."
        )
    return None


def parse_front_matter(readme: str) -> tuple[dict[str, Any] | None, str | None]:
    """Returns ``(metadata, error)`` of a README's YAML front matter; ``({}, None)`` when it has none."""
    match = _FRONT_MATTER.match(readme.lstrip("\ufeff"))
    if not match:
        return {}, None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        return None, f"Invalid YAML in README.md front matter: {err}".replace("\n", " ")
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        return None, f"README.md front matter must be a YAML mapping (key: value lines), got {type(data).__name__}"
    return data, None


def validate_front_matter(readme: str, repo_type: str) -> list[str]:
    """Error messages the Hub's ``validate-yaml`` would give for a README (empty list = valid).

    Every repo type: YAML that parses to a mapping, a known ``license``, a well-formed ``model-index``
    (``card_rules``); a Space's card also: a known ``sdk`` and string-valued settings.
    """
    data, error = parse_front_matter(readme)
    if error is not None:
        return [error]
    assert data is not None
    errors = check_card_metadata(data)
    if repo_type == "space":
        sdk = data.get("sdk")
        if sdk is not None and sdk not in SDKS:
            errors.append(f'"sdk" must be one of [{", ".join(SDKS)}], got {sdk!r}')
        for key in ("app_file", "title", "emoji", "sdk_version", "app_port"):
            value = data.get(key)
            if value is not None and not isinstance(value, (str, int, float)):
                errors.append(f'"{key}" must be a string, got {type(value).__name__}')
        if isinstance(data.get("app_file"), str) and (data["app_file"].startswith("/") or ".." in data["app_file"]):
            errors.append(f'"app_file" must be a relative path inside the Space, got {data["app_file"]!r}')
    return errors


def subdomain_of(repo_id: str) -> str:
    """The Space's host name on ``hf.space``: ``namespace-name`` in lower case, ``_`` and ``.`` as ``-``."""
    return repo_id.replace("/", "-").lower().replace("_", "-").replace(".", "-")


def app_file_of(sdk: str | None, card: Mapping[str, Any] | None) -> str:
    """The file a Space needs to start: Dockerfile for docker, else the front matter's app_file or its default."""
    if sdk == "docker":
        return "Dockerfile"
    app_file = (card or {}).get("app_file")
    if isinstance(app_file, str) and app_file:
        return app_file
    return "index.html" if sdk == "static" else "app.py"


def initial_readme(name: str, sdk: str) -> bytes:
    """The README.md the Hub commits into a new Space (title, emoji, colors, sdk), chosen from the name."""
    seed = hashlib.sha1(name.encode()).digest()
    lines = [
        "---",
        f"title: {name}",
        f"emoji: {_EMOJIS[seed[0] % len(_EMOJIS)]}",
        f"colorFrom: {_COLORS[seed[1] % len(_COLORS)]}",
        f"colorTo: {_COLORS[seed[2] % len(_COLORS)]}",
        f"sdk: {sdk}",
        "pinned: false",
        "---",
        "",
        "Check out the configuration reference at https://huggingface.co/docs/hub/spaces-config-reference",
        "",
    ]
    if sdk in ("gradio", "streamlit"):
        lines.insert(6, "app_file: app.py")
    return "\n".join(lines).encode()
