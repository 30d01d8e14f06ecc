"""Text detection, placeholder rendering and placeholder values."""

from __future__ import annotations

import hashlib
import io
import tracemalloc

import pytest

from beam_pusher import templates, uploads
from beam_pusher.errors import PlaceholderError, SpecError
from beam_pusher.hashing import hash_bytes
from beam_pusher.spec import PlaceholderUse, Rendering, SpaceSpec

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


# Streamed rendering of large text files -------------------------------------------------------------------------

STREAMED_TEXT = (
    "\ufeffid,repo,version\r\n"
    "1,$MODEL_REPO_ID,${MODEL_VERSION}\r\n"
    "2,caf\u00e9 \u2603 $$MODEL_VERSION,$${MODEL_REPO_ID}\r\n"
    "3,$HOME $$$${MODEL_VERSION} $MODEL_VERSIONS ${UNDEFINED} $$${MODEL_REPO_ID}$\r\n"
    "4,${MODEL_REPO_ID}_x $MODEL_REPO_ID$MODEL_VERSION end $"
)


def stream_render(data: bytes, values, *, strict=False):
    chunks = templates.RenderedChunks(io.BytesIO(data), values, path="big.csv", strict=strict)
    return b"".join(chunks), chunks.renderer.use()


@pytest.mark.parametrize("strict", [False, True])
def test_a_stream_renders_exactly_as_the_whole_file_wherever_the_chunks_are_cut(monkeypatch, strict):
    data = STREAMED_TEXT.encode()
    whole, whole_use = templates.render_text_with_use(STREAMED_TEXT, VALUES, path="big.csv", strict=strict)
    assert "alice/penguin-model,v3" in whole and "${UNDEFINED}" in whole
    # Every chunk size from 1 byte on cuts some placeholder (and some multibyte character) in two.
    for size in range(1, len(data) + 1):
        monkeypatch.setattr(templates, "STREAM_CHUNK_SIZE", size)
        rendered, use = stream_render(data, VALUES, strict=strict)
        assert rendered == whole.encode(), size
        assert use == whole_use, size
    assert whole_use.unresolved == ("big.csv:4: $MODEL_VERSIONS", "big.csv:4: ${UNDEFINED}")


def test_a_stream_that_is_not_utf8_after_its_first_chunk_is_binary(monkeypatch, tmp_path):
    monkeypatch.setattr(templates, "RENDER_LIMIT", 64)
    data = b"$MODEL_VERSION " * 10 + b"\xff\xfe" + b"tail"
    path = tmp_path / "data.txt"
    path.write_bytes(data)
    out = templates.render_file(lambda: open(path, "rb"), len(data), VALUES, path="data.txt")
    assert out.content is None and out.rendering is None and not out.streamed
    assert out.hashes == hash_bytes(data)


def large_text(tmp_path, lines: int = 300_000) -> tuple[object, bytes]:
    """A text file over RENDER_LIMIT with placeholders at its start, across chunk boundaries and at its end."""
    row = "id-%07d,$MODEL_REPO_ID,${MODEL_VERSION},caf\u00e9\n"
    text = "".join(row % i for i in range(lines)) + "last,$MODEL_VERSION"
    path = tmp_path / "big.csv"
    path.write_text(text, encoding="utf-8")
    return path, text.replace("$MODEL_REPO_ID", "alice/penguin-model").replace("${MODEL_VERSION}", "v3").replace(
        "$MODEL_VERSION", "v3").encode()


def test_a_large_text_file_is_rendered_as_a_stream_and_uploads_its_rendering(tmp_path):
    path, expected = large_text(tmp_path)
    size = path.stat().st_size
    assert size > templates.RENDER_LIMIT and len(expected) > templates.RENDER_LIMIT
    out = templates.render_file(lambda: open(path, "rb"), size, VALUES, path="big.csv")
    assert out.streamed and out.content is None
    assert out.rendering == Rendering(tuple(sorted(VALUES.items())), False)
    assert (out.hashes.size, out.hashes.sha256) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert out.use.used == {"MODEL_REPO_ID", "MODEL_VERSION"} and out.use.unresolved_total == 0

    # What the upload reads: the same bytes, however huggingface_hub seeks and reads.
    stream = uploads.RenderedStream(lambda: open(path, "rb"), out.hashes.size, out.rendering, path="big.csv")
    with stream:
        assert stream.read(100) == expected[:100]
        assert stream.seek(0, io.SEEK_END) == len(expected)
        assert stream.seek(5_000_000) == 5_000_000
        assert stream.read(1000) == expected[5_000_000:5_001_000]
        stream.seek(10)  # back: starts over from the source
        assert stream.tell() == 10 and stream.read() == expected[10:]
        assert stream.read(10) == b""


def test_a_large_text_file_that_renders_small_is_kept_in_memory(tmp_path):
    path, expected = large_text(tmp_path, lines=260_000)
    size = path.stat().st_size
    assert size > templates.RENDER_LIMIT >= len(expected)
    out = templates.render_file(lambda: open(path, "rb"), size, VALUES, path="big.csv")
    assert out.streamed and out.rendering is None and out.content == expected
    assert out.hashes == hash_bytes(expected)  # with the git blob sha1 a regular file is compared by


def test_a_large_file_that_no_longer_renders_to_its_size_fails_the_upload(tmp_path):
    path, expected = large_text(tmp_path, lines=1000)
    rendering = Rendering(tuple(sorted(VALUES.items())))
    stream = uploads.RenderedStream(lambda: open(path, "rb"), len(expected) + 5, rendering, path="big.csv")
    with pytest.raises(OSError, match="big.csv changed since it was rendered"):
        stream.read()


def test_rendering_a_large_text_file_keeps_memory_flat(tmp_path):
    path, _ = large_text(tmp_path, lines=520_000)  # about 24 MiB
    size = path.stat().st_size
    tracemalloc.start()
    try:
        out = templates.render_file(lambda: open(path, "rb"), size, VALUES, path="big.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.rendering is not None
    # Bounded by the chunk (rendering a chunk makes many small strings), never by the file.
    assert peak < 16 * templates.STREAM_CHUNK_SIZE < size / 5, peak


def test_a_large_text_file_without_placeholders_goes_up_as_it_is(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("word $HOME\n" * 1_100_000, encoding="utf-8")
    size = path.stat().st_size
    out = templates.render_file(lambda: open(path, "rb"), size, VALUES, path="vocab.txt")
    assert out.streamed and out.content is None and out.rendering is None
    assert out.hashes.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# References without a value, and placeholders nobody uses --------------------------------------------------------


def test_undefined_braced_references_and_look_alike_bare_ones_are_reported():
    values = {"COLOR": "red", "MODEL_REPO_ID": "a/m"}
    text = (
        "${COLOR} ${COLOUR} ${x}\n"  # braced: always a placeholder reference
        "$COLOUR $COLOR_DARK $MODEL_VERSION $SPACE_TITLE\n"  # bare that look like ours
        "$HOME $PATH $1 $$ $USER_NAME $$COLOUR $$MODEL_X\n"  # shell's own, or escaped: never reported
    )
    rendered, use = templates.render_text_with_use(text, values, path="run.sh")
    assert rendered == text.replace("${COLOR} ", "red ", 1)
    assert use.used == {"COLOR"}
    assert use.unresolved == (
        "run.sh:1: ${COLOUR}", "run.sh:1: ${x}", "run.sh:2: $COLOUR", "run.sh:2: $COLOR_DARK",
        "run.sh:2: $MODEL_VERSION", "run.sh:2: $SPACE_TITLE",
    )


def test_strict_mode_lets_a_template_write_a_literal_braced_reference():
    text = "const greeting = `hi $${name}`; let c = '${COLOR}';"
    values = {"COLOR": "red"}
    strict = templates.render_text(text, values, path="app.js", strict=True)
    assert strict == "const greeting = `hi ${name}`; let c = 'red';"
    # Without strict mode a '$$' before an unknown name stays, as shell and Makefiles use it.
    lenient = templates.render_text(text, values, path="app.js", strict=False)
    assert lenient == "const greeting = `hi $${name}`; let c = 'red';"


def test_the_space_rules_report_every_reference_and_every_unused_placeholder():
    spec = SpaceSpec(repo_id="alice/demo", app_path="x", model_hub_repo_id="a/m",
                     placeholders={"COLOR": "red", "TITLE": "T"})
    use = PlaceholderUse(frozenset({"COLOR"}), ("app.py:12: ${SIZE}", "app.py:3: ${WIDTH}", "README.md:1: $COLOUR"), 3)
    error, warning = templates.check_placeholder_use(spec, use)
    assert error is None
    assert warning.startswith(
        "placeholders: README.md:1: $COLOUR; app.py:3: ${WIDTH}; app.py:12: ${SIZE} have no value; "
        "$MODEL_REPO_ID (model_hub_repo_id), $TITLE (placeholders.TITLE) are defined but used by no file"
    )
    strict = SpaceSpec(repo_id="alice/demo", app_path="x", placeholders={"COLOR": "red"}, strict_placeholders=True)
    error, warning = templates.check_placeholder_use(strict, PlaceholderUse(frozenset(), ("a.py:1: ${X}",), 1))
    assert warning is None
    assert error.startswith("alice/demo: a.py:1: ${X} has no value; $COLOR (placeholders.COLOR) is defined but used")
    assert "strict_placeholders is on" in error and "$${NAME}" in error
    assert templates.check_placeholder_use(strict, PlaceholderUse(frozenset({"COLOR"}))) == (None, None)
    # SPACE_REPO_ID is every Space's: a template need not use it.
    assert "SPACE_REPO_ID" not in templates.defined_placeholders(strict)
