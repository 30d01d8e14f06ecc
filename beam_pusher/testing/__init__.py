"""Test helpers for projects that deploy with beam_pusher: pytest fixtures around the local Hub.

Add ``pytest_plugins = ["beam_pusher.testing.pytest_plugin"]`` to a ``conftest.py`` and use the ``local_hub``,
``hub_api`` and ``local_hub_token`` fixtures. The server itself is ``beam_pusher.localhub.LocalHub``.
"""

from __future__ import annotations

import socket

__all__ = ["LOCAL_HUB_TOKEN_ENV", "free_port"]

LOCAL_HUB_TOKEN_ENV = "BEAM_PUSHER_LOCAL_HUB_TOKEN"
"""The variable ``local_hub_token`` sets, so its ``env:`` reference resolves on in-process workers."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now: for a local server to bind, or to be refused on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
