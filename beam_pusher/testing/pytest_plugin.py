"""pytest fixtures for the local Hub: ``pytest_plugins = ["beam_pusher.testing.pytest_plugin"]``.

- ``local_hub``: a fresh, started ``LocalHub`` per test, its data under the test's ``tmp_path``. Options of
  ``LocalHub`` come from the test's ``local_hub`` marker::

      @pytest.mark.local_hub(rate_limit="20/2", commit_quota="3/60", runtime_delay=0.5)
      def test_deploy_under_quota(local_hub): ...

  Several users and organisations: ``@pytest.mark.local_hub(users_file="users.yaml")`` (a path relative to the
  test's own file; format in ``beam_pusher.localhub.users_file``); ``local_hub.users`` lists them.

- ``local_hub_session``: one ``LocalHub`` shared by the whole session (use distinct repo names per test).
- ``hub_api``: a ``huggingface_hub.HfApi`` bound to ``local_hub`` with the default user's write token.
- ``local_hub_token``: the token *reference* (``env:BEAM_PUSHER_LOCAL_HUB_TOKEN``) to give ``DeploySpaces`` and the
  components, which refuse literal tokens; the variable holds ``local_hub``'s token for the test's duration.

Local cloud services, for deployments that run on Dataflow (they need the ``test`` extra):

- ``local_secret_manager``: a started ``testing.secret_manager.LocalSecretManager``; the real Secret Manager client
  of this process (and of processes it starts) reaches it, so ``gcp-secret:`` references resolve against it.
- ``local_gcs``: a GCS emulator (gcp-storage-emulator, in memory) with the bucket ``bucket``, reached through
  ``STORAGE_EMULATOR_HOST`` by google-cloud-storage (Beam's staging and ``gs://`` files); yields its URL.

Nothing heavy is imported here at module level: huggingface_hub reads ``HF_ENDPOINT`` and ``HF_HUB_DISABLE_XET``
once, at import, so it must be imported after a conftest has set them, whatever the plugin load order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from beam_pusher.testing import LOCAL_HUB_TOKEN_ENV, free_port

__all__ = [
    "LOCAL_HUB_TOKEN_ENV",
    "hub_api",
    "local_gcs",
    "local_hub",
    "local_hub_session",
    "local_hub_token",
    "local_secret_manager",
]


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "local_hub(**options): LocalHub options for the local_hub fixture, e.g. rate_limit='20/2', "
        "commit_quota='3/60', runtime_delay=0.5, free_account_policy=True, users_file='users.yaml'",
    )


def _marker_options(request: Any) -> dict[str, Any]:
    marker = request.node.get_closest_marker("local_hub")
    if marker is None:
        return {}
    if marker.args or "data_dir" in marker.kwargs:
        raise pytest.UsageError(
            f"@pytest.mark.local_hub{marker.args or ''} on {request.node.nodeid}: give LocalHub options by keyword "
            "(rate_limit='20/2', runtime_delay=0.5, ...); the data directory is always under the test's tmp_path"
        )
    options = dict(marker.kwargs)
    users_file = options.get("users_file")
    if users_file is not None:  # relative to the test's file, wherever pytest runs
        options["users_file"] = Path(request.node.path).parent / users_file
    return options


@pytest.fixture
def local_hub(tmp_path: Any, request: Any) -> Iterator[Any]:
    """A started local Hub with one user (``local_hub.username`` / ``local_hub.token``), stopped after the test.

    ``@pytest.mark.local_hub(**options)`` passes ``options`` to ``LocalHub`` (``rate_limit``, ``commit_quota``,
    ``runtime_delay``, ``latency``, ``free_account_policy``, ...).
    """
    from beam_pusher.localhub import LocalHub

    with LocalHub(tmp_path / "local-hub", **_marker_options(request)) as hub:
        yield hub


@pytest.fixture(scope="session")
def local_hub_session(tmp_path_factory: Any) -> Iterator[Any]:
    """A local Hub shared by every test of the session."""
    from beam_pusher.localhub import LocalHub

    with LocalHub(tmp_path_factory.mktemp("local-hub-session")) as hub:
        yield hub


@pytest.fixture
def hub_api(local_hub: Any) -> Any:
    """``HfApi(endpoint=local_hub.endpoint, token=local_hub.token)``."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=local_hub.endpoint, token=local_hub.token)


@pytest.fixture
def local_hub_token(local_hub: Any, monkeypatch: Any) -> str:
    """``env:BEAM_PUSHER_LOCAL_HUB_TOKEN``, with that variable set to ``local_hub.token`` during the test."""
    monkeypatch.setenv(LOCAL_HUB_TOKEN_ENV, local_hub.token)
    return f"env:{LOCAL_HUB_TOKEN_ENV}"


@pytest.fixture
def local_secret_manager(monkeypatch: Any) -> Iterator[Any]:
    """A started local Google Secret Manager; ``gcp-secret:`` references resolve against it during the test."""
    from beam_pusher.secretstores import GCP_EMULATOR_ENV
    from beam_pusher.testing.secret_manager import LocalSecretManager

    with LocalSecretManager() as store:
        monkeypatch.setenv(GCP_EMULATOR_ENV, store.host)
        yield store


@pytest.fixture
def local_gcs(monkeypatch: Any) -> Iterator[str]:
    """A local GCS with the bucket ``bucket``, in memory; yields its URL (also set as ``STORAGE_EMULATOR_HOST``).

    ``NO_GCE_CHECK`` spares Google clients their wait for a metadata server; gcsfs's hierarchical-namespace probe
    (``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT``) is turned off, as it waits a minute per bucket on an emulator.
    """
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="bucket")
    server.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    try:
        yield url
    finally:
        server.stop()
