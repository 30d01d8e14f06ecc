"""Deploys as pull requests (``deploy --pr``, ``create_pr``) and ``merge``, against the local Hub over HTTP.

The fleet test runs the CLI end to end: real Beam pipelines, the real huggingface_hub client, real git refs
(``refs/pr/N``) and real merges on the local Hub.
"""

from __future__ import annotations

import json
import textwrap

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from huggingface_hub import CommitOperationAdd

from beam_pusher import PushResult, SpaceSpec, cli
from beam_pusher.commit import Committer, HubSettings
from beam_pusher.errors import SpecError
from beam_pusher.pullrequests import DEPLOY_MARKER, find_pull_request
from beam_pusher.spec import Outcome
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV
from beam_pusher.transforms import DeploySpaces

NAMES = ("one", "two", "three", "four", "other")


def write_app(root, files: dict[str, str]) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def write_config(tmp_path, spaces: str) -> str:
    path = tmp_path / "spaces.yaml"
    path.write_text(textwrap.dedent(spaces).lstrip(), encoding="utf-8")
    return str(path)


def hub_args(hub) -> list[str]:
    return ["--endpoint", hub.endpoint, "--token-env", LOCAL_HUB_TOKEN_ENV]


def _fleet(tmp_path, user: str) -> str:
    """Five static Spaces: four share the template ``app``, ``other`` has a template of its own."""
    write_app(tmp_path / "app", {"index.html": "<h1>$TITLE v1</h1>\n", "style.css": "h1 {}\n"})
    write_app(tmp_path / "other", {"index.html": "<p>other</p>\n"})
    spaces = "\n".join(f"  - repo_id: {user}/{name}\n    placeholders: {{TITLE: {name}}}" for name in NAMES[:4])
    return write_config(tmp_path, f"""
defaults:
  space_sdk: static
  app_path: app
spaces:
{spaces}
  - repo_id: {user}/other
    app_path: other
""")


def _open_prs(api, repo_id: str) -> list[int]:
    return sorted(d.num for d in api.get_repo_discussions(repo_id, repo_type="space", discussion_type="pull_request",
                                                          discussion_status="open"))


def _report(path) -> dict[str, PushResult]:
    return {item["repo_id"]: PushResult.from_dict(item) for item in json.loads(path.read_text())}


def test_a_fleet_change_is_reviewed_as_pull_requests_then_merged(hub, api, tmp_path, capsys):
    user = hub.username
    config = _fleet(tmp_path, user)
    ids = [f"{user}/{name}" for name in NAMES]
    changed = ids[:4]
    assert cli.main(["deploy", config, *hub_args(hub)]) == 0
    heads = {rid: hub.head(rid) for rid in ids}
    capsys.readouterr()

    # A template change, deployed as pull requests: one per changed Space; "other" is up to date and gets none.
    write_app(tmp_path / "app", {"index.html": "<h1>$TITLE v2</h1>\n", "extra.txt": "only in v2\n"})
    report = tmp_path / "pr.json"
    assert cli.main(["deploy", config, "--pr", *hub_args(hub), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    results = _report(report)
    assert {rid: hub.head(rid) for rid in ids} == heads  # main is untouched
    for rid in changed:
        r = results[rid]
        assert r.outcome is Outcome.PROPOSED and r.committed and r.pr_num == 1
        assert r.pr_url == f"{hub.endpoint}/spaces/{rid}/discussions/1"
        assert (r.files_added, r.files_updated, r.files_deleted) == (1, 1, 0)  # planned against main
        assert r.commit_id == hub.head(rid, revision="refs/pr/1") != heads[rid]
        assert f"✓ {rid}  proposed +1 ~1 -0 in pull request #1" in out and r.pr_url in out
        assert _open_prs(api, rid) == [1]
        assert hub.read_file(rid, "index.html", revision="refs/pr/1") == f"<h1>{rid.split('/')[1]} v2</h1>\n".encode()
    other = results[f"{user}/other"]
    assert other.outcome is Outcome.UNCHANGED and other.pr_num is None and not other.committed
    assert _open_prs(api, f"{user}/other") == []
    assert "5 Spaces: 0 committed, 4 proposed as pull requests, 1 unchanged, 0 failed" in out

    # Another change: the rerun adds a commit to the same pull requests. extra.txt is gone again, so the pull
    # request's files are exactly the new ones (its diff against main is the change, not the history of the PR).
    write_app(tmp_path / "app", {"index.html": "<h1>$TITLE v3</h1>\n"})
    (tmp_path / "app" / "extra.txt").unlink()
    first_pr_heads = {rid: results[rid].commit_id for rid in changed}
    assert cli.main(["deploy", config, "--pr", *hub_args(hub), "--report", str(report)]) == 0
    results = _report(report)
    for rid in changed:
        r = results[rid]
        assert r.pr_num == 1 and r.committed and (r.files_added, r.files_updated, r.files_deleted) == (0, 1, 0)
        assert _open_prs(api, rid) == [1]
        assert r.commit_id == hub.head(rid, revision="refs/pr/1") != first_pr_heads[rid]
        assert set(hub.list_files(rid, revision="refs/pr/1")) == set(hub.list_files(rid))  # extra.txt is gone
        assert hub.read_file(rid, "index.html", revision="refs/pr/1").endswith(b" v3</h1>\n")
    assert {rid: hub.head(rid) for rid in ids} == heads

    # The same change again: the pull requests already hold it; nothing is committed, nothing opened.
    assert cli.main(["deploy", config, "--pr", *hub_args(hub), "--report", str(report)]) == 0
    again = _report(report)
    for rid in changed:
        assert again[rid].pr_num == 1 and not again[rid].committed
        assert again[rid].commit_id == results[rid].commit_id and again[rid].bytes_uploaded == 0
    capsys.readouterr()

    # merge lands them; a plain deploy afterwards has nothing left to do.
    assert cli.main(["merge", config, *hub_args(hub)]) == 0
    out = capsys.readouterr().out
    for rid in changed:
        assert f"✓ {rid}  merged pull request #1 into main at {hub.head(rid)[:7]}" in out
        assert _open_prs(api, rid) == []
        assert hub.read_file(rid, "index.html").endswith(b" v3</h1>\n")
        assert "extra.txt" not in hub.list_files(rid)
    assert f"{user}/other  no open pull request" in out
    assert "5 Spaces: 4 merged, 1 without a pull request, 0 failed" in out
    merged = {rid: hub.head(rid) for rid in ids}
    assert cli.main(["deploy", config, *hub_args(hub), "--report", str(report)]) == 0
    final = _report(report)
    assert all(r.outcome is Outcome.UNCHANGED for r in final.values())
    assert {rid: hub.head(rid) for rid in ids} == merged


def test_settings_are_not_written_in_a_pull_request(hub, api, tmp_path, capsys):
    write_app(tmp_path / "app", {"index.html": "<p>v1</p>\n"})
    config = write_config(tmp_path, f"""
spaces:
  - repo_id: {hub.username}/site
    space_sdk: static
    app_path: app
    variables: {{COLOR: blue}}
""")
    assert cli.main(["deploy", config, *hub_args(hub)]) == 0
    write_app(tmp_path / "app", {"index.html": "<p>v2</p>\n"})
    (tmp_path / "spaces.yaml").write_text((tmp_path / "spaces.yaml").read_text().replace("blue", "red"))
    report = tmp_path / "r.json"
    assert cli.main(["deploy", config, "--pr", *hub_args(hub), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    [r] = _report(report).values()
    assert r.pr_num == 1 and [str(c) for c in r.settings_planned] and not r.settings_applied
    assert any("not part of a pull request" in w for w in r.warnings)
    assert "not written: " in out
    assert api.get_space_variables(r.repo_id)["COLOR"].value == "blue"
    # After the merge, a plain deploy writes the setting and commits nothing.
    assert cli.main(["merge", config, *hub_args(hub)]) == 0
    head = hub.head(r.repo_id)
    assert cli.main(["deploy", config, *hub_args(hub), "--report", str(report)]) == 0
    [after] = _report(report).values()
    assert not after.committed and hub.head(r.repo_id) == head and len(after.settings_applied) == 1
    assert api.get_space_variables(r.repo_id)["COLOR"].value == "red"


def test_a_pull_request_needs_an_existing_space(hub, tmp_path, capsys):
    write_app(tmp_path / "app", {"index.html": "<p>v1</p>\n"})
    config = write_config(tmp_path, f"""
spaces:
  - repo_id: {hub.username}/new-site
    space_sdk: static
    app_path: app
""")
    assert cli.main(["deploy", config, "--pr", *hub_args(hub)]) == 1
    out = capsys.readouterr().out
    assert "the Space does not exist, and a pull request needs a Space" in out and "without --pr" in out
    assert hub.head(f"{hub.username}/new-site") is None


def test_deploy_spaces_create_pr_leaves_pull_requests_of_people_alone(hub, api, local_hub_token, tmp_path):
    repo_id = f"{hub.username}/site"
    write_app(tmp_path / "app", {"index.html": "<p>v1</p>\n"})
    spec = SpaceSpec(repo_id, str(tmp_path / "app"), space_sdk="static")
    committer = Committer.connect(HubSettings(endpoint=hub.endpoint, token=local_hub_token))
    committer.api.create_repo(repo_id, repo_type="space", space_sdk="static")
    api.create_commit(repo_id, [CommitOperationAdd("notes.md", b"mine\n")], commit_message="A person's change",
                      repo_type="space", create_pr=True)
    assert find_pull_request(api, repo_id) is None  # no marker: not this tool's

    with BeamTestPipeline() as p:
        results = p | beam.Create([spec]) | DeploySpaces(endpoint=hub.endpoint, token=local_hub_token, create_pr=True)
        outcomes = results | beam.Map(lambda r: (r.outcome.value, r.pr_num, r.error))
        assert_that(outcomes, equal_to([("proposed", 2, None)]))
    assert _open_prs(api, repo_id) == [1, 2]
    pr = find_pull_request(api, repo_id)
    assert pr is not None and pr.num == 2 and pr.revision == "refs/pr/2"
    details = api.get_discussion_details(repo_id, 2, repo_type="space")
    assert DEPLOY_MARKER in details.events[0].content
    assert hub.read_file(repo_id, "index.html", revision="refs/pr/2") == b"<p>v1</p>\n"
    assert "index.html" not in hub.list_files(repo_id)


def test_create_pr_must_be_a_bool():
    with pytest.raises(SpecError, match="create_pr='yes' must be true or false"):
        DeploySpaces(create_pr="yes")
