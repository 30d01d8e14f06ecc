"""The rules several modules check, each written once in beam_pusher.rules."""

from __future__ import annotations

import re

import pytest

from beam_pusher import rules
from beam_pusher.errors import SpecError


@pytest.mark.parametrize("value", ["alice/demo", "my-org/penguin_demo.v2", "a/b", "A1/" + "x" * 96])
def test_repo_ids_the_hub_accepts(value):
    assert rules.validate_repo_id(value) == value


@pytest.mark.parametrize("value", ["alice", "a/b/c", "a--b/c", "a/b..c", "-a/b", "a/b-", "a/" + "x" * 97, 3, None])
def test_repo_ids_the_hub_refuses_name_the_value_and_an_example(value):
    with pytest.raises(SpecError, match=re.escape(f"model_hub_repo_id={value!r} is not a Hub repository id")) as info:
        rules.validate_repo_id(value, field="model_hub_repo_id")
    assert "for example 'my-org/penguin-demo'" in str(info.value)


@pytest.mark.parametrize("value", ["v3", "v1700000000", "release-1.2_rc"])
def test_branch_names(value):
    assert rules.check_branch_name(value, field="version") == value


@pytest.mark.parametrize("value", ["v1..2", "v1.lock", "refs/heads/v1", "-v1", "v 1", "", "v" * 101, 3])
def test_unusable_branch_names(value):
    with pytest.raises(SpecError, match=re.escape(f"version={value!r} is not a usable branch name")):
        rules.check_branch_name(value, field="version")


def test_space_sdks():
    assert rules.SDKS == ("gradio", "streamlit", "docker", "static")
    assert rules.check_space_sdk("static") == "static"
    with pytest.raises(SpecError, match="space_sdk='flask' is not a Space SDK: use one of gradio, streamlit"):
        rules.check_space_sdk("flask")


@pytest.mark.parametrize(("value", "ok"), [("HF_TOKEN", True), ("_x1", True), ("1X", False), ("A-B", False),
                                           ("", False), (None, False)])
def test_env_names(value, ok):
    assert rules.is_env_name(value) is ok
    if ok:
        assert rules.check_env_name(value, field="variables") == value
    else:
        with pytest.raises(SpecError, match=re.escape(f"variables has the key {value!r}, which is not allowed")):
            rules.check_env_name(value, field="variables")


def test_placeholder_syntax_is_built_from_the_env_name_rule():
    assert re.fullmatch(rules.ENV_NAME_PATTERN, "MODEL_REPO_ID")
    assert not re.fullmatch(rules.ENV_NAME_PATTERN, "9LIVES")


@pytest.mark.parametrize(("value", "ok"), [("gs://b/x", True), ("hf://spaces/a/b", True), ("simplecache::s3://b", True),
                                           ("file:///tmp/x", True), ("apps.gradio.x", False), ("/abs/path", False),
                                           ("C:/windows", False), ("relative/x", False)])
def test_urls_are_told_from_local_paths(value, ok):
    assert rules.is_url(value) is ok


def test_endpoint_loses_its_trailing_slash_and_a_bad_one_is_named():
    assert rules.check_endpoint("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    with pytest.raises(SpecError, match=r"^--endpoint 'ftp://x' is not a Hub URL: write e\.g\. 'https://"):
        rules.check_endpoint("ftp://x", field="--endpoint")
    # Where the caller already names the setting (a config problem's key), the message starts with the value.
    with pytest.raises(SpecError, match=r"^'huggingface\.co' is not a Hub URL"):
        rules.check_endpoint("huggingface.co", field="")
