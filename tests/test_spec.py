"""SpaceSpec validates itself: every field rule lives here, and the config validator asks it."""

from __future__ import annotations

import re

import pytest

from beam_pusher import spec as spec_module
from beam_pusher.errors import SpecError
from beam_pusher.rules import validate_repo_id
from beam_pusher.spec import SpaceSpec

BASE = {"repo_id": "alice/demo", "app_path": "apps.gradio.img_classifier"}


def test_the_package_exports_the_element_and_result_types_users_read():
    import subprocess
    import sys

    import beam_pusher

    types = [name for name in spec_module.__all__ if isinstance(getattr(spec_module, name), type)]
    assert {"ChangeAction", "Outcome", "PlaceholderUse", "Rendering"} <= set(types)
    for name in types:
        assert name in beam_pusher.__all__ and getattr(beam_pusher, name) is getattr(spec_module, name), name
    # Eager, as spec.py imports no Beam: `import beam_pusher` stays light.
    code = "import sys, beam_pusher; print(sorted(m for m in ('apache_beam', 'tfx') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_validate_repo_id_is_still_importable_from_spec():
    assert spec_module.validate_repo_id is validate_repo_id
    assert spec_module.SDKS == ("gradio", "streamlit", "docker", "static")


@pytest.mark.parametrize("field", ["title", "commit_message"])
@pytest.mark.parametrize("value", ["", "   ", 3, ["a"]])
def test_title_and_commit_message_must_be_non_empty_text(field, value):
    with pytest.raises(SpecError, match=re.escape(f"{field}={value!r} must be a non-empty string.")):
        SpaceSpec(**BASE, **{field: value})


def test_title_and_commit_message_may_be_unset_or_text():
    assert SpaceSpec(**BASE).title is None
    spec = SpaceSpec(**BASE, title="Penguins", commit_message="nightly")
    assert (spec.title, spec.commit_message) == ("Penguins", "nightly")


@pytest.mark.parametrize(("value", "expected"), [("data/*", ("data/*",)), (["a", "b/*"], ("a", "b/*")), ((), ())])
def test_keep_is_one_pattern_or_a_list_of_them(value, expected):
    assert SpaceSpec(**BASE, keep=value).keep == expected


@pytest.mark.parametrize("value", [5, {"data/*": True}, [1], [""], None])
def test_keep_of_another_type_is_a_spec_error(value):
    with pytest.raises(SpecError, match=re.escape(f"keep={value!r} must be a list of glob patterns")):
        SpaceSpec(**BASE, keep=value)


def test_mapping_keys_follow_the_env_name_rule_and_values_become_strings():
    spec = SpaceSpec(**BASE, placeholders={"N": 3}, variables={"FLAG": True})
    assert (spec.placeholders, spec.variables) == ({"N": "3"}, {"FLAG": "True"})
    for field in ("placeholders", "secrets", "variables"):
        with pytest.raises(SpecError, match=re.escape(f"{field} has the key 'bad-name', which is not allowed")):
            SpaceSpec(**BASE, **{field: {"bad-name": "env:X"}})


def test_secrets_must_be_env_references_and_are_never_echoed():
    assert SpaceSpec(**BASE, secrets={"API_KEY": "env:WEATHER_KEY"}).secrets == {"API_KEY": "env:WEATHER_KEY"}
    with pytest.raises(SpecError, match="is not a reference") as info:
        SpaceSpec(**BASE, secrets={"API_KEY": "sk-do-not-echo"})
    assert "sk-do-not-echo" not in str(info.value)


def test_space_sdk_and_repo_ids_follow_the_hub_rules():
    with pytest.raises(SpecError, match="space_sdk='flask' is not a Space SDK"):
        SpaceSpec(**BASE, space_sdk="flask")
    with pytest.raises(SpecError, match="model_hub_repo_id='alice' is not a Hub repository id"):
        SpaceSpec(**BASE, model_hub_repo_id="alice")
