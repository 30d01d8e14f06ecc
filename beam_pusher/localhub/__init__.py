"""The local Hub: an offline Hugging Face Hub server for demos, CI and users' own tests, and helpers to inspect it.

The real ``huggingface_hub`` client talks to it over HTTP exactly as to the Hub (set ``HF_HUB_DISABLE_XET=1`` before
importing huggingface_hub so large files use classic LFS)::

    from beam_pusher.localhub import LocalHub
    from huggingface_hub import HfApi

    with LocalHub() as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        api.create_repo(f"{hub.username}/demo", repo_type="space", space_sdk="gradio")
        print(hub.list_files(f"{hub.username}/demo"))

Repositories are real git repositories (``git clone ENDPOINT/spaces/user/demo`` works). Pull requests
(``create_commit(create_pr=True)``, ``refs/pr/N``) and discussions work as on the Hub, and merging one is a real git
merge; preupload follows the repository's ``.gitattributes`` and ``.gitignore``.

In pytest, add ``pytest_plugins = ["beam_pusher.testing.pytest_plugin"]`` and use the ``local_hub`` fixture. From
the command line: ``python -m beam_pusher.localhub.serve --port 0`` prints the endpoint, then serves.
"""

from __future__ import annotations

from beam_pusher.localhub.accounts import HubUser
from beam_pusher.localhub.faults import DEFAULT_FAULT_ROUTES, FaultInjector
from beam_pusher.localhub.hub import LocalHub, SpaceState, StoredFile

__all__ = ["DEFAULT_FAULT_ROUTES", "FaultInjector", "HubUser", "LocalHub", "SpaceState", "StoredFile"]
