"""Token and secret references: one syntax, parsed in beam_pusher.auth, never echoing a value."""

from __future__ import annotations

import os

import pytest

from beam_pusher import auth
from beam_pusher.errors import SpecError, TokenError


@pytest.mark.parametrize(("reference", "name"), [("env:HF_TOKEN", "HF_TOKEN"), ("env:_K1", "_K1"), ("env:1BAD", None),
                                                 ("env:", None), ("HF_TOKEN", None), ("file:/x", None), (None, None),
                                                 (3, None)])
def test_env_reference_name(reference, name):
    assert auth.env_reference_name(reference) == name


def test_a_malformed_reference_still_reads_as_one_not_as_a_literal_token():
    assert auth.has_reference_prefix("env:1BAD") and auth.has_reference_prefix("file:")
    assert not auth.has_reference_prefix("hf_literal")


def test_file_reference_path_expands_the_home_folder():
    assert auth.file_reference_path("file:/run/secrets/hf") == "/run/secrets/hf"
    assert auth.file_reference_path("file:~/hf") == os.path.expanduser("~/hf")
    assert auth.file_reference_path("file:") is None
    assert auth.file_reference_path("env:HF_TOKEN") is None


@pytest.mark.parametrize("reference", [None, "env:HF_TOKEN", "file:/run/secrets/hf"])
def test_token_references(reference):
    assert auth.check_token_reference(reference) == reference


@pytest.mark.parametrize("reference", ["hf_literalTOKENvalue", "env:1BAD", "file:", "", 3])
def test_a_token_that_is_no_reference_is_refused_without_being_echoed(reference):
    with pytest.raises(SpecError, match="the token must be a reference, not a value") as info:
        auth.check_token_reference(reference)
    assert "hf_literalTOKENvalue" not in str(info.value)


def test_secret_references_name_the_secret_but_never_the_value():
    assert auth.check_secret_reference("API_KEY", "env:WEATHER_KEY") == "WEATHER_KEY"
    with pytest.raises(SpecError, match=r"secrets\['API_KEY'\] is not a reference: write 'env:NAME'") as info:
        auth.check_secret_reference("API_KEY", "sk-do-not-echo")
    assert "sk-do-not-echo" not in str(info.value)


def test_resolve_secret_reads_the_worker_environment(monkeypatch):
    monkeypatch.setenv("BEAM_PUSHER_TEST_SECRET", "value")
    assert auth.resolve_secret("API_KEY", "env:BEAM_PUSHER_TEST_SECRET") == "value"
    monkeypatch.delenv("BEAM_PUSHER_TEST_SECRET")
    with pytest.raises(TokenError, match="BEAM_PUSHER_TEST_SECRET is not set on this worker"):
        auth.resolve_secret("API_KEY", "env:BEAM_PUSHER_TEST_SECRET")
    with pytest.raises(SpecError, match="is not a reference"):
        auth.resolve_secret("API_KEY", "literal")


def test_resolve_token_from_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("BEAM_PUSHER_TEST_TOKEN", " hf_abc \n")
    assert auth.resolve_token("env:BEAM_PUSHER_TEST_TOKEN") == "hf_abc"
    (tmp_path / "token").write_text("hf_def\n")
    assert auth.resolve_token(f"file:{tmp_path / 'token'}") == "hf_def"
    with pytest.raises(TokenError, match="cannot read"):
        auth.resolve_token(f"file:{tmp_path / 'missing'}")


def test_scrub_hides_secret_values_but_not_one_to_three_letter_ones_that_would_garble_the_message():
    from beam_pusher.auth import scrub

    message = "cannot ask the Hub whom the token belongs to: sk-live-1234 was refused"
    expected = "cannot ask the Hub whom the token belongs to: *** was refused"
    assert scrub(message, "sk-live-1234", "k", "", None) == expected
