"""beam_pusher.readahead: a local deploy reads its Spaces while the pipeline starts, and never trusts a stale read."""

from __future__ import annotations

from huggingface_hub import CommitOperationAdd

from beam_pusher.commit import HubSettings
from beam_pusher.hub import SpacePusher
from beam_pusher.readahead import reading_ahead, take_read
from beam_pusher.runner import run_deploy
from beam_pusher.spec import SpaceSpec
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV
from beam_pusher.hashing import hash_bytes
from beam_pusher.spec import AppFile


def static_space(repo_id: str, body: bytes = b"<p>hi</p>\n") -> list[AppFile]:
    files = []
    for path, data in (("README.md", b"---\nsdk: static\n---\n"), ("index.html", body)):
        h = hash_bytes(data)
        files.append(AppFile(repo_id, path, h.size, content=data, sha256=h.sha256, git_sha1=h.git_sha1))
    return files


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {route: after.get(route, 0) - before.get(route, 0) for route in set(after) | set(before)
            if after.get(route, 0) != before.get(route, 0)}


def _specs(hub, tmp_path, n: int) -> list[SpaceSpec]:
    (tmp_path / "tpl").mkdir(exist_ok=True)
    (tmp_path / "tpl" / "index.html").write_text("<p>read ahead</p>\n")
    return [SpaceSpec(repo_id=f"{hub.username}/ahead-{i}", app_path=str(tmp_path / "tpl"), space_sdk="static")
            for i in range(n)]


def test_a_local_no_op_redeploy_reads_each_space_once(hub, tmp_path):
    """The reads sent ahead are the push's own reads: none is sent twice, and every Space is still unchanged."""
    specs = _specs(hub, tmp_path, 4)
    first = run_deploy(specs, endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    assert all(r.committed for r in first)
    counts = hub.request_counts()
    again = run_deploy(specs, endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    assert [r.error for r in again] == [None] * 4 and not any(r.committed for r in again)
    changed = delta(hub.request_counts(), counts)
    assert changed == {"whoami": 1, "repo-info": 4, "space-secrets": 4, "space-variables": 4}


def test_a_space_changed_after_it_was_read_ahead_is_replanned_before_a_commit(hub, api):
    """A push that commits sends the head it read as parent_commit: a change made since is re-planned (412),
    never overwritten unseen. A push that finds nothing to change is judged on the read made when the run started,
    and says which head that was."""
    repo_id = f"{hub.username}/stale-read"
    settings = HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", backoff_seconds=0.01)
    spec = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static")
    pusher = SpacePusher(settings)
    read_head = pusher.push(spec, static_space(repo_id)).commit_id

    with reading_ahead(settings, [spec]) as reads:
        reads.wait()  # the read is made, then the Space changes
        other = api.create_commit(repo_id, [CommitOperationAdd("index.html", b"<p>by someone else</p>\n")],
                                  commit_message="meanwhile", repo_type="space").oid
        unchanged = pusher.push(spec, static_space(repo_id))
    assert unchanged.error is None and not unchanged.committed and unchanged.commit_id == read_head

    with reading_ahead(settings, [spec]) as reads:
        reads.wait()
        api.create_commit(repo_id, [CommitOperationAdd("notes.txt", b"more\n")], commit_message="again",
                          repo_type="space")
        result = pusher.push(spec, static_space(repo_id, b"<p>v2</p>\n"))
    assert result.error is None and result.committed
    commits = api.list_repo_commits(repo_id, repo_type="space")
    assert [c.title for c in commits[:3]][1:] == ["again", "meanwhile"] and commits[2].commit_id == other
    assert hub.read_file(repo_id, "index.html") == b"<p>v2</p>\n"
    assert "notes.txt" not in hub.list_files(repo_id)  # re-planned against the new head: mirrored, knowingly


def test_a_read_is_taken_once_and_dropped_when_nobody_takes_it(hub):
    settings = HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    spec = SpaceSpec(repo_id=f"{hub.username}/never-pushed", app_path="unused", space_sdk="static")
    with reading_ahead(settings, [spec]):
        state, current = take_read(settings, spec)
        assert not state.exists and current is None
        assert take_read(settings, spec) is None  # once
    with reading_ahead(settings, [spec]):
        pass
    assert take_read(settings, spec) is None  # dropped on exit
    other = HubSettings(endpoint=hub.endpoint, token="env:ANOTHER_TOKEN")
    with reading_ahead(settings, [spec]):
        assert take_read(other, spec) is None  # another token's pusher never takes it
