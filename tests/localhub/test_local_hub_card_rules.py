"""validate-yaml and README commits: the Hub's license ids and model-index shape, through the real client."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd

from beam_pusher.localhub.card_rules import LICENSE_IDS

GOOD_INDEX = """model-index:
- name: demo
  results:
  - task: {type: image-classification}
    dataset: {type: beans, name: Beans}
    metrics:
    - {type: accuracy, value: 0.97}
"""


def _readme(front_matter: str) -> list[CommitOperationAdd]:
    return [CommitOperationAdd("README.md", f"---\n{front_matter}---\n\n# Demo\n".encode())]


@pytest.mark.parametrize("front_matter, message", [
    ("license: apache 2\n", "\"license\" must be one of [apache-2.0, mit, openrail,"),
    ("license: [mit, my-own]\n", "got 'my-own'"),
    ("model-index: foo\n", '"model-index" must be an array'),
    ("model-index:\n- results: []\n", '"model-index[0].name" is required'),
    ("model-index:\n- name: x\n", '"model-index[0].results" is required'),
    ("model-index:\n- name: x\n  results:\n  - metrics: []\n", '"model-index[0].results[0].task" is required'),
    ("model-index:\n- name: x\n  results:\n  - task: {name: t}\n    metrics: []\n",
     '"model-index[0].results[0].task.type" is required'),
    ("model-index:\n- name: x\n  results:\n  - task: {type: t}\n    metrics:\n    - {type: acc}\n",
     '"model-index[0].results[0].metrics[0].value" is required'),
])
@pytest.mark.parametrize("repo_type", ["model", "space"])
def test_invalid_license_and_model_index_fail_the_commit_early(local_hub, hub_api, repo_type, front_matter, message):
    repo_id = f"{local_hub.username}/card-{repo_type}"
    hub_api.create_repo(repo_id, repo_type=repo_type, space_sdk="static" if repo_type == "space" else None)
    with pytest.raises(ValueError, match="Invalid metadata in README.md") as err:
        hub_api.create_commit(repo_id, _readme(front_matter) + [CommitOperationAdd("weights.bin", b"\0w")],
                              commit_message="card", repo_type=repo_type)
    assert message in str(err.value)
    assert local_hub.commit_count(repo_id, repo_type) == 1
    assert local_hub.request_count("lfs-batch") == 0  # refused before any upload, as on the Hub


def test_valid_licenses_and_model_index_are_accepted(local_hub, hub_api, raw):
    repo_id = f"{local_hub.username}/card-ok"
    hub_api.create_repo(repo_id)
    hub_api.create_commit(repo_id, _readme("license: cc-by-4.0\n" + GOOD_INDEX), commit_message="card")
    assert local_hub.commit_count(repo_id, "model") == 2
    for license_id in ("apache-2.0", "mit", "openrail", "other", ["mit", "apache-2.0"]):
        answer = raw("POST", f"{local_hub.endpoint}/api/validate-yaml", local_hub.token,
                     {"content": f"---\nlicense: {license_id}\n---\n", "repoType": "dataset"})
        assert (answer.status, answer.json()["errors"]) == (200, [])
    assert len(LICENSE_IDS) == len(set(LICENSE_IDS)) and all(i == i.lower() for i in LICENSE_IDS)
