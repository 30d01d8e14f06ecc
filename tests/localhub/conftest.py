"""Helpers for the local Hub's own tests: raw HTTP requests (to see exact statuses, headers and bodies)."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from typing import Any

import pytest


@dataclasses.dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(method: str, url: str, token: str | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> RawResponse:
    """One HTTP request with the standard library; never raises on 4xx/5xx."""
    data = None
    all_headers = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return RawResponse(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as err:
        return RawResponse(err.code, dict(err.headers), err.read())


@pytest.fixture
def raw() -> Any:
    """``raw(method, url, token=None, body=None, headers=None) -> RawResponse``."""
    return raw_request


@pytest.fixture(autouse=True)
def bare_hub_client():
    """The local Hub's own tests speak to the bare huggingface_hub client.

    A deploy earlier in the same process installs beam_pusher's request budget as a client hook (see
    ``retries.install_request_budget``); it holds requests back until the window resets, so a test that drives the
    server into a 429 on purpose would wait forever. The hook comes back after the test.
    """
    from huggingface_hub.utils import _http

    previous = _http._GLOBAL_CLIENT_FACTORY
    _http.set_client_factory(_http.default_client_factory)
    yield
    _http.set_client_factory(previous)
