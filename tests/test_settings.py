"""Space settings as declared state: the pure plan, the secret fingerprints and the settings rules."""

from __future__ import annotations

import json
import pickle
import re

import pytest

from beam_pusher.errors import SpecError
from beam_pusher.settings import (
    MANAGED_MARKER,
    CurrentSettings,
    SettingAction,
    SettingChange,
    SettingKind,
    check_hardware,
    check_sleep_time,
    hardware_names,
    is_managed,
    plan_settings,
    secret_description,
    secret_matches,
)
from beam_pusher.spec import PushResult, SpaceSpec

BASE = {"repo_id": "alice/demo", "app_path": "apps.gradio.img_classifier"}


def spec(**kwargs) -> SpaceSpec:
    return SpaceSpec(**BASE, **kwargs)


def plan(spec_, current, values=None) -> list[str]:
    return [str(c) for c in plan_settings(spec_, current, values or {})]


# -- fingerprints ------------------------------------------------------------------------------------------------


def test_a_secret_description_holds_a_salted_hash_never_the_value():
    value = "sk-live-0123456789"
    first, second = secret_description(value), secret_description(value)
    assert first.startswith(f"{MANAGED_MARKER}; v1$") and second.startswith(f"{MANAGED_MARKER}; v1$")
    assert first != second  # a fresh salt on every write: equal values do not look equal
    for description in (first, second):
        assert value not in description
        assert secret_matches(description, value)
        assert not secret_matches(description, value + "x")
        assert not secret_matches(description, "")
    assert secret_description(value, salt=b"0" * 16) == secret_description(value, salt=b"0" * 16)


@pytest.mark.parametrize("description", [None, "", "API key for the weather service", MANAGED_MARKER,
                                         f"{MANAGED_MARKER}; v1$$", f"{MANAGED_MARKER}; v2$abc$def",
                                         f"{MANAGED_MARKER}; v1$!!$??"])
def test_a_description_without_a_valid_fingerprint_never_matches(description):
    assert not secret_matches(description, "anything")


def test_managed_means_the_description_starts_with_the_marker():
    assert is_managed(MANAGED_MARKER) and is_managed(secret_description("v"))
    assert not is_managed(None) and not is_managed("") and not is_managed(f"set by Bob, {MANAGED_MARKER}")


# -- the plan ----------------------------------------------------------------------------------------------------


def test_a_new_space_gets_everything_it_declares():
    s = spec(hardware="t4-small", sleep_time=600, private=True, secrets={"API_KEY": "env:K"}, variables={"X": "1"})
    assert plan(s, None, {"API_KEY": "v"}) == [
        "hardware: t4-small (new Space)",
        "sleep_time: 600 (new Space)",
        "visibility: private (new Space)",
        "secret API_KEY: set (new)",
        "variable X: set (new)",
    ]
    assert plan(spec(), None) == []  # nothing declared: nothing to write


def test_an_unchanged_space_plans_nothing():
    s = spec(hardware="t4-small", sleep_time=600, private=False, secrets={"API_KEY": "env:K"}, variables={"X": "1"})
    current = CurrentSettings(
        secrets={"API_KEY": secret_description("v")}, variables={"X": ("1", MANAGED_MARKER)},
        hardware="t4-small", sleep_time=600, private=False,
    )
    assert plan_settings(s, current, {"API_KEY": "v"}) == ()


def test_changes_name_what_differs_and_never_a_secret_value():
    s = spec(hardware="t4-small", private=True, secrets={"API_KEY": "env:K", "HAND": "env:H"}, variables={"X": "2"})
    current = CurrentSettings(
        secrets={"API_KEY": secret_description("old-value"), "HAND": "typed in the UI"},
        variables={"X": ("1", MANAGED_MARKER)}, hardware="cpu-basic", private=False,
    )
    changes = plan_settings(s, current, {"API_KEY": "new-value", "HAND": "hand-value"})
    assert [str(c) for c in changes] == [
        "hardware: cpu-basic -> t4-small",
        "visibility: public -> private",
        "secret API_KEY: set (changed)",
        "secret HAND: set (set by hand)",
        "variable X: set (changed)",
    ]
    text = repr(changes) + pickle.dumps(changes).hex()
    assert "new-value" not in text and "hand-value" not in text
    assert "new-value".encode().hex() not in text


def test_what_the_tool_set_and_the_config_dropped_is_deleted_and_what_people_set_stays():
    current = CurrentSettings(
        secrets={"OLD": secret_description("v"), "HAND": "by Bob", "BARE": None},
        variables={"OLD_VAR": ("1", MANAGED_MARKER), "HAND_VAR": ("2", "by Bob"), "BARE_VAR": ("3", None)},
    )
    changes = plan_settings(spec(), current, {})
    assert [(c.kind, c.action, c.key) for c in changes] == [
        (SettingKind.SECRET, SettingAction.DELETE, "OLD"),
        (SettingKind.VARIABLE, SettingAction.DELETE, "OLD_VAR"),
    ]
    assert [c.mark for c in changes] == ["-", "-"]
    assert str(changes[0]) == "secret OLD: delete (removed from the config)"


def test_a_variable_set_by_hand_with_the_declared_value_is_not_rewritten():
    current = CurrentSettings(variables={"X": ("1", None)})
    assert plan(spec(variables={"X": "1"}), current) == []
    assert plan(spec(variables={"X": "2"}), current) == ["variable X: set (changed)"]


def test_unset_hardware_sleep_time_and_visibility_are_left_as_they_are():
    current = CurrentSettings(hardware="a10g-small", sleep_time=-1, private=True)
    assert plan(spec(), current) == []
    assert plan(spec(sleep_time=-1, hardware="a10g-small"), current) == []
    assert plan(spec(sleep_time=300), current) == ["sleep_time: -1 -> 300"]


def test_setting_changes_round_trip_through_a_json_report():
    result = PushResult(
        "alice/demo", pushed=True,
        settings_applied=(SettingChange("secret", "set", "API_KEY", "new"),),
        settings_failed=(SettingChange(SettingKind.HARDWARE, SettingAction.SET, detail="cpu-basic -> t4-small"),),
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["settings_applied"] == [{"kind": "secret", "action": "set", "key": "API_KEY", "detail": "new"}]
    assert PushResult.from_dict(data) == result


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "colour", "action": "set"}, "'colour' is not a valid SettingKind; kinds: hardware"),
    ({"kind": "secret", "action": "rotate", "key": "K"}, "'rotate' is not a valid SettingAction"),
    ({"kind": "secret", "action": "set"}, "a key is given exactly for secrets and variables"),
    ({"kind": "hardware", "action": "set", "key": "K"}, "a key is given exactly for secrets and variables"),
])
def test_a_setting_change_checks_itself(kwargs, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        SettingChange(**kwargs)


# -- rules -------------------------------------------------------------------------------------------------------


def test_hardware_names_are_the_clients_and_a_wrong_one_lists_them():
    from huggingface_hub import SpaceHardware

    assert hardware_names() == tuple(h.value for h in SpaceHardware)
    assert check_hardware("t4-small") == "t4-small"
    with pytest.raises(SpecError) as info:
        check_hardware("super-gpu-9000")
    message = str(info.value)
    assert message.startswith("hardware='super-gpu-9000' is not a hardware flavor of the Hub: use one of cpu-basic, ")
    assert all(name in message for name in hardware_names())
    with pytest.raises(SpecError, match="is not a hardware flavor"):
        spec(hardware="super-gpu-9000")


@pytest.mark.parametrize("value", [0, -2, 1.5, "3600", True])
def test_a_sleep_time_is_seconds_or_minus_one(value):
    with pytest.raises(SpecError, match=re.escape(f"sleep_time={value!r} must be a whole number of seconds >= 1")):
        check_sleep_time(value, None)
    assert check_sleep_time(-1, "t4-small") == -1 and spec(sleep_time=60).sleep_time == 60


def test_free_hardware_cannot_be_given_a_sleep_time():
    with pytest.raises(SpecError, match="cannot be set on 'cpu-basic', which always sleeps after 48 hours"):
        spec(hardware="cpu-basic", sleep_time=3600)
