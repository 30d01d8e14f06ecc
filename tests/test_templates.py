"""Text detection, placeholder rendering and placeholder values."""

from __future__ import annotations

import pytest

from beam_pusher import templates
from beam_pusher.errors import PlaceholderError, SpecError
from beam_pusher.spec import SpaceSpec

VALUES = {"MODEL_REPO_ID": "alice/penguin-model", "MODEL_VERSION": "v3", "MODEL": "WRONG"}


# is_text -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample",
    [
        b'{"repo": "$MODEL_REPO_ID"}\n',  # .json
        b"FROM python:3.10\nENV MODEL=${MODEL_REPO_ID}\n",  # Dockerfile
        b"#!/bin/sh\necho $$\n",  # extensionless script
        b"",  # empty file
        b"\xef\xbb\xbfwith a BOM\r\n",
        "caf\u00e9 \u2603".encode()[:-1],  # a sample cut inside a multibyte character
    ],
)
def test_text_samples(sample):
    assert templates.is_text(sample)


@pytest.mark.parametrize(
    "sample",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00$MODEL_VERSION",
        b"$MODEL_VERSION\x00",
        "caf\u00e9".encode("latin-1") + b" more text",  # not UTF-8
        "utf-16 text".encode("utf-16"),
    ],
)
def test_binary_samples(sample):
    assert not templates.is_text(sample)


# render_text / render_bytes ------------------------------------------------------------------------------------


def test_both_placeholder_forms_are_replaced_longest_name_first():
    text = "a=$MODEL_REPO_ID b=${MODEL_VERSION} c=${MODEL_REPO_ID}_x d=$MODEL_VERSION."
    assert templates.render_text(text, VALUES, path="f", strict=False) == (
        "a=alice/penguin-model b=v3 c=alice/penguin-model_x d=v3."
    )


def test_unknown_placeholders_and_shell_syntax_stay_as_written():
    text = "$HOME ${PATH} `${x}` $MODEL_VERSIONS ${MODEL_REPO_ID $ $1 $$ $$HOME price: 5$"
    assert templates.render_text(text, VALUES, path="f", strict=False) == text


def test_double_dollar_escapes_a_known_placeholder():
    text = "literal $$MODEL_VERSION and $${MODEL_REPO_ID}, value $MODEL_VERSION"
    assert templates.render_text(text, VALUES, path="f", strict=False) == (
        "literal $MODEL_VERSION and ${MODEL_REPO_ID}, value v3"
    )


def test_values_are_inserted_once_not_rendered_again():
    values = {"A": "$B \\1 ${B}", "B": "no"}
    assert templates.render_text("$A", values, path="f", strict=False) == "$B \\1 ${B}"


def test_strict_error_names_file_line_placeholder_and_fix():
    text = "import os\r\n\r\nREPO = '$MODEL_REPO_ID'\nVERSION = '${MODEL_VERSION}'\nHOME = '$HOME'\n"
    with pytest.raises(PlaceholderError) as err:
        templates.render_text(text, {}, path="src/app.py", strict=True)
    message = str(err.value)
    assert "src/app.py:3: $MODEL_REPO_ID" in message
    assert "src/app.py:4: ${MODEL_VERSION}" in message
    assert "HOME" not in message
    assert "model_hub_repo_id" in message and "model_hub_repo_branch" in message


def test_strict_mode_passes_when_values_are_set_or_escaped():
    text = "'$MODEL_REPO_ID' '$MODEL_VERSION' $$MODEL_OTHER $UNKNOWN"
    rendered = templates.render_text(text, VALUES, path="f", strict=True)
    assert rendered == "'alice/penguin-model' 'v3' $$MODEL_OTHER $UNKNOWN"


def test_render_bytes_keeps_binary_files_byte_identical():
    binary = b"\x89PNG\x00\x00$MODEL_VERSION\xff\xfe"
    assert templates.render_bytes(binary, VALUES, path="logo.png", strict=True) is binary
    latin1 = "caf\u00e9 $MODEL_VERSION".encode("latin-1")
    assert templates.render_bytes(latin1, VALUES, path="x.txt", strict=True) is latin1


def test_render_bytes_keeps_bom_and_crlf():
    data = "\ufeffrepo=$MODEL_REPO_ID\r\nversion=${MODEL_VERSION}\r\n\u00e9\r\n".encode()
    assert templates.render_bytes(data, VALUES, path="x.cfg", strict=False) == (
        "\ufeffrepo=alice/penguin-model\r\nversion=v3\r\n\u00e9\r\n".encode()
    )


# placeholder_values --------------------------------------------------------------------------------------------


def test_placeholder_values_from_spec_fields_and_user_values():
    spec = SpaceSpec(
        repo_id="alice/demo",
        app_path="apps.gradio.img_classifier",
        model_hub_repo_id="alice/model",
        model_hub_repo_branch="v2",
        placeholders={"TEXT_FEATURE": "review", "MODEL_VERSION": "v2"},
    )
    assert templates.placeholder_values(spec) == {
        "MODEL_REPO_ID": "alice/model",
        "MODEL_VERSION": "v2",
        "SPACE_REPO_ID": "alice/demo",
        "TEXT_FEATURE": "review",
    }


def test_unset_model_fields_give_no_values_but_users_may_fill_them():
    spec = SpaceSpec(repo_id="alice/demo", app_path="x")
    assert templates.placeholder_values(spec) == {"SPACE_REPO_ID": "alice/demo"}
    spec = SpaceSpec(repo_id="alice/demo", app_path="x", model_hub_repo_id="a/m", placeholders={"MODEL_VERSION": "v9"})
    assert templates.placeholder_values(spec)["MODEL_VERSION"] == "v9"


def test_a_user_value_contradicting_a_spec_field_is_an_error():
    spec = SpaceSpec(repo_id="alice/demo", app_path="x", model_hub_repo_id="a/m", placeholders={"MODEL_REPO_ID": "b/n"})
    with pytest.raises(SpecError, match="placeholders\\['MODEL_REPO_ID'\\]='b/n' contradicts model_hub_repo_id='a/m'"):
        templates.placeholder_values(spec)
