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
merge; preupload follows the repository's ``.gitattributes`` and ``.gitignore``. Gated repositories, moves
(``move_repo``) and ``super_squash_history`` work too. Several users and organisations with the Hub's roles come from
a users file: ``LocalHub(users_file="users.yaml")`` (format in ``users_file``).

In pytest, add ``pytest_plugins = ["beam_pusher.testing.pytest_plugin"]`` and use the ``local_hub`` fixture. From
the command line: ``python -m beam_pusher.localhub.serve --port 0`` prints the endpoint, then serves.

Spaces really run with ``LocalHub(run_spaces=True)`` (``--run-spaces``): each commit, restart or secret/variable
change builds the Space (an environment from its requirements.txt, ``appenv``) and starts its app on a loopback
port (``spacerun``, ``appcommand``), with real stages and logs; otherwise they are simulated (``runtime``). Web pages
(``web``): ``/`` lists the Spaces and models, ``/spaces/ns/name`` shows a Space and its running app.

It is as strict as the Hub where that decides whether a deploy works: access rules, the Space builder's checks
(``CONFIG_ERROR`` / ``BUILD_ERROR`` / ``RUNTIME_ERROR`` with build and run logs), and, opt-in, the Hub's request rate
limit and commit quota (``LocalHub(rate_limit="1000/300", commit_quota="128/3600")``).
"""

from __future__ import annotations

from beam_pusher.localhub.accounts import HubUser
from beam_pusher.localhub.faults import DEFAULT_FAULT_ROUTES, FaultInjector
from beam_pusher.localhub.hub import LocalHub, SpaceState, StoredFile
from beam_pusher.localhub.ratelimit import RateLimit
from beam_pusher.localhub.runtime import RUNTIME_ERROR_MARKER

__all__ = [
    "DEFAULT_FAULT_ROUTES",
    "RUNTIME_ERROR_MARKER",
    "FaultInjector",
    "HubUser",
    "LocalHub",
    "RateLimit",
    "SpaceState",
    "StoredFile",
]
