"""The model-repo push engine behind HFModelPusher, against the local Hub over HTTP."""

from __future__ import annotations

import pickle
import re
import time

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from huggingface_hub import HfApi

from beam_pusher.errors import SpecError
from beam_pusher.hub import HubSettings
from beam_pusher.models import ModelRepoPusher, ModelRepoSpec, PushModels, list_model_files
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV

WEIGHTS = bytes(range(256)) * 64


@pytest.fixture
def pusher(hub):
    return ModelRepoPusher(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", backoff_seconds=0.05))


@pytest.fixture
def model_dir(tmp_path):
    root = tmp_path / "serving"
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"\x08\x01graph")
    (root / "variables" / "variables.data-00000-of-00001").write_bytes(WEIGHTS)
    (root / "variables" / "variables.index").write_bytes(b"\x00index")
    return root


def test_push_creates_repo_and_branch_and_an_unchanged_push_makes_no_commit(hub, pusher, model_dir):
    repo_id = f"{hub.username}/penguin-model"
    spec = ModelRepoSpec(repo_id, str(model_dir), "v1")

    first = pusher.push(spec)
    second = pusher.push(spec)

    assert first.error is None and first.pushed and first.committed
    assert first.commit_id == hub.head(repo_id, repo_type="model", revision="v1")
    assert first.repo_url == f"{hub.endpoint}/{repo_id}" and first.pushed_version == "v1"
    assert first.files_added == 4  # the three model files and the model card
    files = hub.list_files(repo_id, repo_type="model", revision="v1")
    assert {"saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001"} <= set(files)
    weights = hub.read_file(repo_id, "variables/variables.data-00000-of-00001", repo_type="model", revision="v1")
    assert weights == WEIGHTS
    assert second.pushed and not second.committed and second.commit_id == first.commit_id
    assert second.files_unchanged == 4


def test_each_version_gets_its_own_branch_and_main_holds_the_latest(hub, pusher, model_dir):
    repo_id = f"{hub.username}/versions"
    v1 = pusher.push(ModelRepoSpec(repo_id, str(model_dir), "v1"))
    (model_dir / "variables" / "variables.index").unlink()
    (model_dir / "saved_model.pb").write_bytes(b"\x08\x02graph-v2")
    v2 = pusher.push(ModelRepoSpec(repo_id, str(model_dir), "v2"))

    assert v1.error is None and v2.error is None and v1.commit_id != v2.commit_id
    assert hub.read_file(repo_id, "saved_model.pb", repo_type="model", revision="v1") == b"\x08\x01graph"
    assert hub.read_file(repo_id, "saved_model.pb", repo_type="model", revision="v2") == b"\x08\x02graph-v2"
    assert "variables/variables.index" in hub.list_files(repo_id, repo_type="model", revision="v1")
    assert "variables/variables.index" not in hub.list_files(repo_id, repo_type="model", revision="v2")
    # v2 is one commit on main after v1: the changed graph and card, the removed index; the weights stay.
    assert (v2.files_added, v2.files_updated, v2.files_deleted, v2.files_unchanged) == (0, 2, 1, 1)
    assert hub.head(repo_id, repo_type="model") == v2.commit_id == hub.head(repo_id, repo_type="model", revision="v2")
    assert set(hub.list_files(repo_id, repo_type="model")) == set(
        hub.list_files(repo_id, repo_type="model", revision="v2")
    )


def test_a_pushed_version_never_changes(hub, pusher, model_dir):
    repo_id = f"{hub.username}/immutable"
    v1 = pusher.push(ModelRepoSpec(repo_id, str(model_dir), "v1"))
    (model_dir / "variables" / "variables.index").unlink()
    (model_dir / "saved_model.pb").write_bytes(b"\x08\x02graph-v2")
    commits = hub.commit_count(repo_id, repo_type="model")

    again = pusher.push(ModelRepoSpec(repo_id, str(model_dir), "v1"))  # a fixed version name, other content

    assert not again.pushed and again.pushed_version == "v1"
    assert "version 'v1' already exists with other model files" in again.error
    assert "~saved_model.pb" in again.error and "-variables/variables.index" in again.error
    assert "give a new model_version" in again.error and hub.token not in again.error
    assert hub.head(repo_id, repo_type="model", revision="v1") == v1.commit_id
    assert hub.read_file(repo_id, "saved_model.pb", repo_type="model", revision="v1") == b"\x08\x01graph"
    assert hub.commit_count(repo_id, repo_type="model") == commits


def test_an_unchanged_model_keeps_the_version_it_was_pushed_as(hub, pusher, model_dir):
    import yaml

    repo_id = f"{hub.username}/auto"
    spec = ModelRepoSpec(repo_id, str(model_dir), pipeline_tag="image-classification", blessed=True,
                         pipeline_name="penguin")
    first = pusher.push(spec)
    rerun = pusher.push(spec)
    assert first.error is None and re.fullmatch(r"v\d{10}", first.pushed_version)
    assert rerun.pushed_version == first.pushed_version and not rerun.committed
    assert rerun.commit_id == first.commit_id == hub.head(repo_id, repo_type="model")
    branches = hub_branches(hub, repo_id)
    assert branches == {"main", first.pushed_version}

    # main carries the model card the Hub reads: metadata and how to load this version.
    card = hub.read_file(repo_id, "README.md", repo_type="model").decode()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["library_name"] == "tfx" and metadata["pipeline_tag"] == "image-classification"
    assert metadata["model_version"] == first.pushed_version and metadata["tfx_blessed"] is True
    assert metadata["tfx_pipeline"] == "penguin" and metadata["model_fingerprint"].startswith("sha256:")
    assert f'snapshot_download("{repo_id}", revision="{first.pushed_version}")' in card

    original = (model_dir / "saved_model.pb").read_bytes()
    (model_dir / "saved_model.pb").write_bytes(b"\x08\x03graph-v3")
    time.sleep(1.1)  # a new version is named after the second it is pushed in
    changed = pusher.push(spec)
    assert changed.committed and changed.pushed_version not in (None, first.pushed_version)
    (model_dir / "saved_model.pb").write_bytes(original)
    back = pusher.push(spec)  # the first model again: its version again, and main holds it again
    assert back.pushed_version == first.pushed_version and back.commit_id == first.commit_id
    assert hub.read_file(repo_id, "saved_model.pb", repo_type="model") == original
    assert hub_branches(hub, repo_id) == {"main", first.pushed_version, changed.pushed_version}


def hub_branches(hub, repo_id: str) -> set[str]:
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    return {b.name for b in api.list_repo_refs(repo_id, repo_type="model").branches}


def test_a_missing_model_is_reported_and_nothing_is_created(hub, pusher, tmp_path):
    result = pusher.push(ModelRepoSpec(f"{hub.username}/missing", str(tmp_path / "nope"), "v1"))
    assert not result.pushed and "nope" in result.error
    assert hub.token not in result.error
    assert not hub.repo_exists(f"{hub.username}/missing", repo_type="model")


def test_push_models_transform_pushes_every_version(hub, model_dir):
    specs = [ModelRepoSpec(f"{hub.username}/m{i}", str(model_dir), "v1") for i in range(2)]
    with test_pipeline.TestPipeline() as p:
        results = (
            p
            | beam.Create(specs)
            | PushModels(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", backoff_seconds=0.05)
            | beam.Map(lambda r: (r.repo_id, r.pushed, r.committed, r.error))
        )
        assert_that(results, equal_to([(s.repo_id, True, True, None) for s in specs]))
    assert all(hub.head(s.repo_id, repo_type="model", revision="v1") for s in specs)


def test_list_model_files_hashes_each_file(model_dir):
    files = {f.path: f for f in list_model_files(ModelRepoSpec("a/b", str(model_dir), "v1"))}
    assert set(files) == {"saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001"}
    data = files["variables/variables.data-00000-of-00001"]
    assert data.size == len(WEIGHTS) and data.content is None and len(data.sha256) == 64 and len(data.git_sha1) == 40


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repo_id": "no-namespace"}, "is not a Hub repository id"),
        ({"model_path": " "}, "model_path=' ' must be a non-empty"),
        ({"version": "v1..2"}, "not a usable branch name"),
        ({"version": "refs/heads/v1"}, "not a usable branch name"),
        ({"version": "v1.lock"}, "not a usable branch name"),
        ({"private": "yes"}, "private='yes' must be true or false"),
        ({"version": "main"}, "version='main' is not a version"),
        ({"pipeline_tag": "Image Classification"}, "is not a Hub task name"),
        ({"blessed": 1}, "blessed=1 must be true, false or None"),
    ],
)
def test_model_repo_spec_validates_on_construction(kwargs, message):
    args = {"repo_id": "alice/model", "model_path": "/models/m", "version": "v1", **kwargs}
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        ModelRepoSpec(**args)


def test_tokens_stay_out_of_the_pipeline(hub, pusher):
    with pytest.raises(SpecError, match="must be a reference"):
        PushModels(token=hub.token)
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(pusher)


def test_hub_errors_name_the_endpoint_and_a_missing_token(hub, model_dir, monkeypatch):
    unreachable = ModelRepoPusher(HubSettings(endpoint="http://127.0.0.1:9", token=f"env:{TOKEN_ENV}", max_attempts=1))
    result = unreachable.push(ModelRepoSpec(f"{hub.username}/offline", str(model_dir), "v1"))
    assert not result.pushed and "cannot reach the Hub at http://127.0.0.1:9" in result.error

    monkeypatch.delenv("HF_TOKEN", raising=False)
    anonymous = ModelRepoPusher(HubSettings(endpoint=hub.endpoint, max_attempts=1))
    result = anonymous.push(ModelRepoSpec(f"{hub.username}/anonymous", str(model_dir), "v1"))
    assert "HTTP 401" in result.error and "no Hub token was sent" in result.error
    assert "rejected the token" not in result.error
