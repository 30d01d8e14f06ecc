"""pytest fixtures for the local Hub: ``pytest_plugins = ["beam_pusher.testing.pytest_plugin"]``.

- ``local_hub``: a fresh, started ``LocalHub`` per test, its data under the test's ``tmp_path``.
- ``local_hub_session``: one ``LocalHub`` shared by the whole session (use distinct repo names per test).
- ``hub_api``: a ``huggingface_hub.HfApi`` bound to ``local_hub`` with the default user's write token.
- ``local_hub_token``: the token *reference* (``env:BEAM_PUSHER_LOCAL_HUB_TOKEN``) to give ``DeploySpaces`` and the
  components, which refuse literal tokens; the variable holds ``local_hub``'s token for the test's duration.

Nothing heavy is imported here at module level: huggingface_hub reads ``HF_ENDPOINT`` and ``HF_HUB_DISABLE_XET``
once, at import, so it must be imported after a conftest has set them, whatever the plugin load order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from beam_pusher.testing import LOCAL_HUB_TOKEN_ENV

__all__ = ["LOCAL_HUB_TOKEN_ENV", "hub_api", "local_hub", "local_hub_session", "local_hub_token"]



@pytest.fixture
def local_hub(tmp_path: Any) -> Iterator[Any]:
    """A started local Hub with one user (``local_hub.username`` / ``local_hub.token``), stopped after the test."""
    from beam_pusher.localhub import LocalHub

    with LocalHub(tmp_path / "local-hub") as hub:
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
