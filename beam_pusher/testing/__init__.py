"""Test helpers for projects that deploy with beam_pusher: pytest fixtures around the local Hub.

Add ``pytest_plugins = ["beam_pusher.testing.pytest_plugin"]`` to a ``conftest.py`` and use the ``local_hub``,
``hub_api`` and ``local_hub_token`` fixtures. The server itself is ``beam_pusher.localhub.LocalHub``.
"""

from __future__ import annotations

__all__ = ["LOCAL_HUB_TOKEN_ENV"]

LOCAL_HUB_TOKEN_ENV = "BEAM_PUSHER_LOCAL_HUB_TOKEN"
"""The variable ``local_hub_token`` sets, so its ``env:`` reference resolves on in-process workers."""
