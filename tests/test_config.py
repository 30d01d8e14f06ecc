"""Batch config: good files become the right SpaceSpecs; bad files list every problem with its line."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from beam_pusher.config import DeployConfig, load_config, parse_config
from beam_pusher.errors import ConfigError
from beam_pusher.spec import SpaceSpec

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(text: str, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text).lstrip("\n"), source="c.yaml", **kwargs)
    assert info.value.problems, "a ConfigError must list its problems"
    for problem in info.value.problems:
        assert problem in str(info.value)
    return info.value.problems


def lines_and_keys(problems: list[str]) -> list[tuple[int, str]]:
    out = []
    for problem in problems:
        match = re.match(r"^c\.yaml:(\d+): ([^:]+): ", problem)
        assert match, f"not FILE:LINE: key: ...: {problem}"
        out.append((int(match.group(1)), match.group(2)))
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A config folder with a local app template next to it, as users lay it out."""
    (tmp_path / "deploy" / "apps_local" / "my_app").mkdir(parents=True)
    (tmp_path / "deploy" / "apps_local" / "my_app" / "app.py").write_text("print('hi')\n")
    return tmp_path


def test_good_config_merges_defaults_and_resolves_paths_against_the_config_folder(project, monkeypatch):
    monkeypatch.chdir("/")  # resolution must not depend on the working directory
    path = write(project, "deploy/spaces.yaml", """
        endpoint: http://127.0.0.1:8080/
        token: env:MY_TOKEN
        x-hub-model: &hub
          model_hub_repo_id: org/model
          model_hub_repo_branch: v2
        defaults:
          app_path: apps_local/my_app
          private: true
          placeholders: {ORG: acme, CONTACT: me@example.com}
          variables: {LOG_LEVEL: info}
          keep: [data/*]
        spaces:
          - repo_id: org/one
            model_path: ../models/penguin
            placeholders: {CONTACT: null, TITLE: One}
          - repo_id: org/two
            <<: *hub
            app_path: memory://templates/two
            space_sdk: streamlit
            private: false
            keep: []
            secrets: {API_KEY: env:API_KEY}
            hardware: t4-small
            strict_placeholders: true
            commit_message: nightly
            title: Two
    """)
    config = load_config(path, environ={"MY_TOKEN": "x", "API_KEY": "y"})

    app = str(project / "deploy" / "apps_local" / "my_app")
    assert config == DeployConfig(
        specs=(
            SpaceSpec(
                repo_id="org/one",
                app_path=app,
                model_path=str(project / "models" / "penguin"),
                placeholders={"ORG": "acme", "TITLE": "One"},
                private=True,
                variables={"LOG_LEVEL": "info"},
                keep=("data/*",),
            ),
            SpaceSpec(
                repo_id="org/two",
                app_path="memory://templates/two",
                space_sdk="streamlit",
                model_hub_repo_id="org/model",
                model_hub_repo_branch="v2",
                placeholders={"ORG": "acme", "CONTACT": "me@example.com"},
                private=False,
                hardware="t4-small",
                secrets={"API_KEY": "env:API_KEY"},
                variables={"LOG_LEVEL": "info"},
                keep=(),
                commit_message="nightly",
                strict_placeholders=True,
                title="Two",
            ),
        ),
        path=str(path),
        endpoint="http://127.0.0.1:8080",
        token="env:MY_TOKEN",
    )
    assert config.repo_ids == ("org/one", "org/two")


def test_built_in_apps_are_kept_as_names_not_resolved_against_the_config_folder(tmp_path):
    path = write(tmp_path, "spaces.yaml", """
        spaces:
          - repo_id: user/a
            app_path: apps.gradio.img_classifier
          - repo_id: user/b
            app_path: apps/streamlit/img_classifier
            space_sdk: streamlit
          - repo_id: user/c
            app_path: apps.gradio.text_classifier
    """)
    config = load_config(path)
    assert [s.app_path for s in config.specs] == [
        "apps.gradio.img_classifier",
        "apps/streamlit/img_classifier",
        "apps.gradio.text_classifier",
    ]


def test_a_local_apps_folder_next_to_the_config_wins_over_the_built_in_one(tmp_path):
    (tmp_path / "apps" / "gradio" / "img_classifier").mkdir(parents=True)
    config = parse_config(
        "spaces: [{repo_id: user/a, app_path: apps/gradio/img_classifier}]", base_dir=str(tmp_path)
    )
    assert config.specs[0].app_path == str(tmp_path / "apps" / "gradio" / "img_classifier")


def test_a_bad_config_reports_every_problem_with_its_line():
    problems = problems_of(
        """
        defaults:
          space_sdk: gradoi
          privat: true
        spaces:
          - repo_id: user/a
            app_path: /
            private: "yes"
            placeholders: [A, B]
          - repo_id: not a repo id
            app_path: /
          - repo_id: user/c
            app_path: ./no/such/folder
            model_hub_repo_id: also bad
            keep: [1]
          - repo_id: user/d
          - just a string
        """,
        environ={},
    )
    assert lines_and_keys(problems) == [
        (2, "defaults.space_sdk"),
        (3, "defaults.privat"),
        (7, "spaces[0].private"),
        (8, "spaces[0].placeholders"),
        (9, "spaces[1].repo_id"),
        (12, "spaces[2].app_path"),
        (13, "spaces[2].model_hub_repo_id"),
        (14, "spaces[2].keep"),
        (15, "spaces[3]"),
        (16, "spaces[4]"),
    ]
    text = "\n".join(problems)
    assert "'gradoi' is not a Space SDK: use one of gradio, streamlit, docker, static" in text
    assert "private='yes' must be true or false (without quotes: a quoted value is text)." in text
    assert "placeholders: must be a mapping" in text
    assert "'not a repo id' is not a Hub repository id" in text
    assert "spaces[2].app_path: app_path='./no/such/folder' was not found" in text
    assert "keep=[1] must be a list of glob patterns" in text
    assert "spaces[3]: missing app_path" in text
    assert "spaces[4]: each Space must be a mapping" in text


def test_a_bad_default_is_reported_once_not_again_for_every_space():
    problems = problems_of(
        """
        defaults:
          app_path: ./missing
          private: maybe
        spaces:
          - repo_id: user/a
          - repo_id: user/b
            private: false
        """
    )
    assert lines_and_keys(problems) == [(2, "defaults.app_path"), (3, "defaults.private")]
    assert problems[1].endswith("private='maybe' must be true or false.")


def test_a_space_without_app_path_and_no_default_is_reported():
    problems = problems_of("spaces:\n  - repo_id: user/a\n  - app_path: /\n")
    assert problems == [
        "c.yaml:2: spaces[0]: missing app_path; give it in this Space or under 'defaults' "
        "(e.g. 'app_path: apps.gradio.img_classifier').",
        "c.yaml:3: spaces[1]: missing repo_id; every Space needs 'repo_id: namespace/name'.",
    ]


def test_unknown_keys_suggest_the_close_match():
    problems = problems_of(
        """
        spaces:
          - repo_id: user/a
            app_path: /
            spcae_sdk: gradio
            options: {A: b}
            zzz: 1
        endpiont: http://x
        """
    )
    assert problems[0].startswith("c.yaml:4: spaces[0].spcae_sdk: unknown key; did you mean 'space_sdk'? allowed keys:")
    # The TFX component's name for placeholders points at the field that does the job here.
    assert problems[1].startswith("c.yaml:5: spaces[0].options: unknown key; did you mean 'placeholders'?")
    assert problems[2].startswith("c.yaml:6: spaces[0].zzz: unknown key; allowed keys: repo_id, app_path,")
    assert problems[3].startswith("c.yaml:7: endpiont: unknown key; did you mean 'endpoint'?")
    assert len(problems) == 4


def test_duplicate_repo_ids_name_both_lines():
    problems = problems_of(
        """
        defaults: {app_path: /}
        spaces:
          - repo_id: user/a
          - repo_id: user/b
          - title: A again
            repo_id: user/a
        """
    )
    assert problems == [
        "c.yaml:6: spaces[2].repo_id: 'user/a' is listed twice (lines 3 and 6); each Space may appear once, "
        "so remove or rename one."
    ]


def test_duplicate_keys_in_a_mapping_are_reported_instead_of_silently_dropped():
    problems = problems_of("spaces:\n  - repo_id: user/a\n    app_path: /\n    private: true\n    private: false\n")
    assert lines_and_keys(problems) == [(5, "spaces[0].private")]
    assert "given twice (lines 4 and 5)" in problems[0]


def test_unset_secret_env_var_is_named_and_secret_values_are_never_printed():
    secret = "hf_SuperSecretValue123"
    problems = problems_of(
        f"""
        token: {secret}
        defaults:
          app_path: /
        spaces:
          - repo_id: user/a
            secrets:
              API_KEY: env:WEATHER_KEY
              PASTED: {secret}
          - repo_id: user/b
            secrets: {secret}
        """,
        environ={"HF_TOKEN": "present"},
    )
    text = "\n".join(problems)
    assert secret not in text
    assert lines_and_keys(problems) == [
        (1, "token"),
        (7, "spaces[0].secrets.API_KEY"),
        (8, "spaces[0].secrets.PASTED"),
        (10, "spaces[1].secrets"),
    ]
    assert "refers to the environment variable WEATHER_KEY, which is not set" in problems[1]
    assert "is not a reference: write 'env:NAME'" in problems[2]


def test_secret_references_resolve_against_the_given_environment_and_can_be_left_unchecked():
    text = "token: env:TOK\nspaces:\n  - {repo_id: user/a, app_path: /, secrets: {K: env:K_SRC}}\n"
    config = parse_config(text, environ={"TOK": "t", "K_SRC": "v"})
    assert config.specs[0].secrets == {"K": "env:K_SRC"}
    assert config.token == "env:TOK"
    unchecked = parse_config(text, check_secrets=False, environ={})
    assert unchecked == config


def test_yaml_syntax_error_is_reported_with_its_line():
    problems = problems_of("spaces:\n  - repo_id: user/a\n    app_path: /\n   title: x\n")
    assert len(problems) == 1
    assert problems[0].startswith("c.yaml:4: yaml: invalid YAML:")
    assert "fix the syntax on this line" in problems[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "c.yaml:1: (top level): the config must be a mapping"),
        ("- a\n- b\n", "c.yaml:1: (top level): the config must be a mapping"),
        ("defaults: {app_path: /}\n", "c.yaml:1: spaces: missing;"),
        ("spaces: []\n", "c.yaml:1: spaces: must be a list of Spaces, got an empty list"),
        ("defaults: [a]\nspaces: [{repo_id: u/a, app_path: /}]\n", "c.yaml:1: defaults: must be a mapping"),
        ("defaults: {repo_id: u/a}\nspaces: [{repo_id: u/b, app_path: /}]\n", "c.yaml:1: defaults.repo_id: "),
        ("endpoint: ftp://x\nspaces: [{repo_id: u/a, app_path: /}]\n", "c.yaml:1: endpoint: 'ftp://x' is not"),
        ("spaces: [{repo_id: u/a, app_path: apps.gradio.nope}]\n", "c.yaml:1: spaces[0].app_path: app_path='apps.gra"),
        (
            "spaces: [{repo_id: u/a, app_path: /, title: 3}]\n",
            "c.yaml:1: spaces[0].title: title=3 must be a non-empty string (YAML read it as a number: quote it).",
        ),
        (
            "spaces: [{repo_id: u/a, app_path: /, model_hub_repo_branch: 3}]\n",
            "c.yaml:1: spaces[0].model_hub_repo_branch: model_hub_repo_branch=3 must be a non-empty string (YAML read "
            "it as a number: quote it).",
        ),
        ("spaces: [{repo_id: u/a, app_path: /, keep: 5}]\n", "c.yaml:1: spaces[0].keep: keep=5 must be a list"),
        (
            "spaces: [{repo_id: u/a, app_path: /, commit_message: ''}]\n",
            "c.yaml:1: spaces[0].commit_message: commit_message='' must be a non-empty string.",
        ),
        ("spaces: [{repo_id: u/a, app_path: /, keep: {a: 1}}]\n", "c.yaml:1: spaces[0].keep: keep={'a': 1} must be"),
        ("spaces: [{repo_id: u/a, app_path: /, exclude: 5}]\n", "c.yaml:1: spaces[0].exclude: exclude=5 must be a "
         "list of glob patterns in .gitignore syntax, such as '*.ipynb'"),
        ("spaces: [{repo_id: u/a, app_path: /, include: ['!']}]\n", "c.yaml:1: spaces[0].include: include: '!' is "
         "not a .gitignore pattern"),
        ("spaces: [{repo_id: u/a, app_path: /, 1: x}]\n", "c.yaml:1: spaces[0]: the key 1 is not a name"),
        ("spaces: [{repo_id: u/a, app_path: /}]\n---\nspaces: []\n", "c.yaml:2: yaml: invalid YAML: expected a single"),
        ("spaces: [{repo_id: u/a, app_path: !!python/name:os.system }]\n", "c.yaml:1: spaces[0].app_path: cannot"),
    ],
)
def test_structural_problems(text, expected):
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems[0]


def test_problems_name_the_file_as_the_user_wrote_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "cfg/bad.yaml", "spaces:\n  - repo_id: user/a\n    app_path: missing_app\n")
    with pytest.raises(ConfigError) as info:
        load_config(os.path.join("cfg", "bad.yaml"))
    (problem,) = info.value.problems
    assert problem.startswith("cfg/bad.yaml:3: spaces[0].app_path: app_path='missing_app' was not found")
    assert str(tmp_path / "cfg" / "missing_app") in problem


@pytest.mark.parametrize(
    "text, expected",
    [
        ("spaces:\n  - repo_id: u/a\x00\n", "c.yaml:2: yaml: the character #x0000 (a NUL byte) in column 17"),
        ("spaces:\n  - repo_id: u/a\n    title: \x07bell\n", "c.yaml:3: yaml: the character #x0007 in column 12"),
    ],
)
def test_characters_yaml_refuses_are_problems_with_their_line(text, expected):
    (problem,) = problems_of(text)
    assert problem.startswith(expected), problem
    assert "remove it" in problem


def test_a_file_that_is_not_utf8_is_a_problem_with_its_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("spaces:\n  - repo_id: u/a\n    title: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:3: yaml: not UTF-8 text (byte 0xe9 in column 15)"), problem
    assert "save the file as UTF-8" in problem


def test_an_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read the config file" in str(info.value)
    assert len(info.value.problems) == 1


def test_select_keeps_spaces_matching_repo_id_or_name_patterns():
    config = parse_config(
        "defaults: {app_path: /}\nspaces:\n  - repo_id: a/penguin-x\n  - repo_id: a/text\n  - repo_id: b/penguin-y\n"
    )
    assert config.select([]).repo_ids == config.repo_ids
    assert config.select(["penguin-*"]).repo_ids == ("a/penguin-x", "b/penguin-y")
    assert config.select(["a/*"]).repo_ids == ("a/penguin-x", "a/text")
    assert config.select(["nothing"]).repo_ids == ()


def test_example_config_loads_and_names_every_spec_field():
    environ = {"HF_TOKEN": "t", "WEATHER_API_KEY": "k"}
    config = load_config(CONFIGS / "example.yaml", environ=environ)
    assert config.endpoint == "https://huggingface.co"
    assert config.token == "env:HF_TOKEN"
    assert config.repo_ids == ("my-org/penguin-demo", "my-org/penguin-streamlit", "my-org/review-sentiment")
    streamlit = config.specs[1]
    assert streamlit.model_hub_repo_id == "my-org/penguin-classifier"
    assert streamlit.placeholders == {"ORG_NAME": "My Org", "TITLE": "Penguins, in Streamlit"}
    assert streamlit.secrets == {}
    text = (CONFIGS / "example.yaml").read_text()
    for field in SpaceSpec.__dataclass_fields__:
        assert re.search(rf"^\s*-?\s*{field}:", text, re.M), f"example.yaml does not show {field}"
    # Without the referenced variables set, validation names each one.
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "example.yaml", environ={})
    text = str(info.value)
    assert "HF_TOKEN, which is not set" in text and "WEATHER_API_KEY, which is not set" in text


def test_demo_config_loads_with_three_spaces_and_an_embedded_model():
    config = load_config(CONFIGS / "demo.yaml", environ={})
    assert len(config.specs) >= 3
    assert all(spec.repo_id.startswith("user/") for spec in config.specs)
    # Both built-in frameworks; the Streamlit app as the Hub takes new ones, a Docker Space on port 8501.
    assert {spec.space_sdk for spec in config.specs} >= {"gradio", "docker"}
    streamlit = [spec for spec in config.specs if spec.app_path == "apps.streamlit.img_classifier"]
    assert [(spec.space_sdk, spec.app_port) for spec in streamlit] == [("docker", 8501)]
    assert config.warnings == ()
    assert any(spec.model_hub_repo_id for spec in config.specs)
    assert not any(spec.secrets for spec in config.specs)
    # The path is resolved against configs/, whatever the working directory; once the lead's small model is in
    # place it must be a non-empty folder there.
    model = REPO / "examples" / "models" / "tiny_classifier"
    embedded = [spec for spec in config.specs if spec.model_path]
    assert embedded and all(spec.model_path == str(model) for spec in embedded)
    if model.exists():
        assert model.is_dir() and any(model.iterdir())


def test_exclude_and_include_are_gitignore_pattern_lists_replaced_as_a_whole():
    text = """
defaults:
  app_path: /
  exclude: ["*.ipynb", /notebooks/]
  include: .env.example
spaces:
  - repo_id: u/a
  - repo_id: u/b
    exclude:
    include: [debug.log]
"""
    a, b = parse_config(text, check_secrets=False).specs
    assert (a.exclude, a.include) == (("*.ipynb", "/notebooks/"), (".env.example",))
    assert (b.exclude, b.include) == ((), ("debug.log",))


def test_remote_runs_refuse_env_and_file_references_and_say_what_resolves_there(tmp_path):
    text = """
        token: env:HF_TOKEN
        spaces:
          - repo_id: user/a
            app_path: apps.gradio.img_classifier
            secrets: {API_KEY: "file:/run/secrets/key", OTHER: "gcp-secret:projects/p/secrets/o/versions/2",
                      THIRD: "aws-secret:app#KEY"}
    """
    problems = problems_of(text, remote=True, environ={"HF_TOKEN": "x"})
    assert lines_and_keys(problems) == [(1, "token"), (5, "spaces[0].secrets.API_KEY")]
    assert "the runner is remote: 'env:HF_TOKEN' reads an environment variable" in problems[0]
    assert "'file:/run/secrets/key' reads a file" in problems[1] and "aws-secret:NAME" in problems[1]
    config = parse_config(textwrap.dedent(text).replace("env:HF_TOKEN", "gcp-secret:projects/p/secrets/t/versions/1")
                          .replace('"file:/run/secrets/key"', "aws-secret:key"), remote=True)
    assert config.token == "gcp-secret:projects/p/secrets/t/versions/1"
    assert config.specs[0].secrets["THIRD"] == "aws-secret:app#KEY"


def test_local_runs_check_that_secret_files_exist(tmp_path):
    (tmp_path / "key").write_text("value\n")
    text = f"""
        spaces:
          - repo_id: user/a
            app_path: apps.gradio.img_classifier
            secrets: {{GOOD: "file:{tmp_path / 'key'}", BAD: "file:{tmp_path / 'missing'}"}}
    """
    problems = problems_of(text)
    assert len(problems) == 1 and f"the secret file {tmp_path / 'missing'} does not exist here" in problems[0]
    assert parse_config(textwrap.dedent(text), check_secrets=False).specs[0].secrets["BAD"].startswith("file:")


def test_a_url_whose_filesystem_is_missing_or_unknown_is_a_problem():
    problems = problems_of("""
        spaces:
          - repo_id: user/a
            app_path: nope://bucket/app
          - repo_id: user/b
            app_path: apps.gradio.img_classifier
            model_path: simplecache::oci://bucket/model
          - repo_id: user/c
            app_path: gs://bucket/app
            model_path: s3://bucket/model
    """)
    assert lines_and_keys(problems) == [(3, "spaces[0].app_path"), (6, "spaces[1].model_path")]
    assert "fsspec knows no filesystem for nope://" in problems[0]
    assert "the filesystem for oci:// is not installed here; Install ocifs" in problems[1]


def test_validate_warns_once_that_a_templates_env_file_is_not_uploaded(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text("import gradio\n")
    (app / "requirements.txt").write_text("gradio==6.31.0\n")
    (app / ".env").write_text("OPENAI_API_KEY=sk-live-123456\n")
    config = parse_config(f"spaces:\n  - repo_id: u/a\n    app_path: {app}\n", check_secrets=False)
    secret_warnings = [w for w in config.warnings if ".env" in w]
    assert len(secret_warnings) == 1 and "not uploading .env" in secret_warnings[0]
    assert "sk-live" not in " ".join(config.warnings)
