"""Space settings endpoints: secrets (write-only), variables, hardware, sleep time, runtime, restart and pause.

Secret values are stored so the test helpers can check them, but no endpoint ever returns them.
"""

from __future__ import annotations

import re
import time
from typing import Any

from beam_pusher.localhub import spaces
from beam_pusher.localhub.protocol import HubError, Request, Response, find_repo, iso_date, json_response
from beam_pusher.localhub.repo_api import space_runtime
from beam_pusher.localhub.storage import Repository

__all__ = ["hardware", "pause", "restart", "runtime", "secrets", "sleep_time", "variables"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _space(request: Request, repo_id: str, *, write: bool = False, member: bool = False) -> Repository:
    return find_repo(request, "space", repo_id, write=write, member=member)


def _key(body: dict[str, Any]) -> str:
    key = body.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise HubError(400, f"Invalid key {key!r}: use letters, digits and '_', not starting with a digit")
    return key


def _rebuild(repo: Repository) -> None:
    """Settings changes restart the Space on the Hub: it builds again. Call with the repo lock held."""
    repo.settings["build_started_at"] = time.time()
    repo.settings["paused"] = False


def _variables_json(repo: Repository) -> dict[str, Any]:
    with repo.lock:  # writers change the dict under the same lock
        return {key: {"value": item["value"], "description": item.get("description"),
                      "updatedAt": item.get("updatedAt")}
                for key, item in sorted(repo.settings.get("variables", {}).items())}  # fmt: skip


def secrets(request: Request, repo_id: str) -> Response:
    if request.method == "GET":
        repo = _space(request, repo_id, member=True)
        with repo.lock:  # only keys, descriptions and dates: secret values are never returned
            listed = {key: {"description": item.get("description"), "updatedAt": item.get("updatedAt")}
                      for key, item in sorted(repo.settings.get("secrets", {}).items())}  # fmt: skip
        return json_response(listed)
    _write_setting(request, _space(request, repo_id, write=True), "secret")
    return json_response({})


def variables(request: Request, repo_id: str) -> Response:
    if request.method == "GET":
        return json_response(_variables_json(_space(request, repo_id, member=True)))
    repo = _space(request, repo_id, write=True)
    _write_setting(request, repo, "variable")
    return json_response(_variables_json(repo))


def _write_setting(request: Request, repo, kind: str) -> None:
    """POST stores a secret or variable (``kind``), DELETE removes it; either way the Space rebuilds."""
    body = request.json_object()
    key = _key(body)
    with repo.lock:
        stored = repo.settings.setdefault(f"{kind}s", {})
        if request.method == "DELETE":
            stored.pop(key, None)
        else:
            value = body.get("value", "")
            if not isinstance(value, str):
                raise HubError(400, f"The value of {kind} {key!r} must be a string")
            stored[key] = {"value": value, "description": body.get("description"), "updatedAt": iso_date(time.time())}
        _rebuild(repo)
        repo.save_settings()


def runtime(request: Request, repo_id: str) -> Response:
    return json_response(space_runtime(_space(request, repo_id), request.state.config.runtime_delay))


def hardware(request: Request, repo_id: str) -> Response:
    repo = _space(request, repo_id, write=True)
    body = request.json_object()
    flavor = body.get("flavor")
    if flavor not in spaces.HARDWARE_FLAVORS:
        raise HubError(400, f"Invalid hardware flavor {flavor!r}: use one of {', '.join(spaces.HARDWARE_FLAVORS)}")
    refusal = spaces.payment_required(request.state.config.free_account_policy, repo.settings.get("sdk"), flavor)
    if refusal is not None:
        raise HubError(402, refusal)
    with repo.lock:
        repo.settings["hardware"] = flavor
        if body.get("sleepTimeSeconds") is not None:
            repo.settings["sleep_time"] = _seconds(body["sleepTimeSeconds"])
        _rebuild(repo)
        repo.save_settings()
    return runtime(request, repo_id)


def _seconds(value: Any) -> int:
    if not isinstance(value, int) or value < -1:
        raise HubError(400, f"Invalid sleep time {value!r}: use a number of seconds, or -1 to never sleep")
    return value


def sleep_time(request: Request, repo_id: str) -> Response:
    repo = _space(request, repo_id, write=True)
    seconds = _seconds(request.json_object().get("seconds"))
    with repo.lock:
        repo.settings["sleep_time"] = seconds
        repo.save_settings()
    return runtime(request, repo_id)


def restart(request: Request, repo_id: str) -> Response:
    repo = _space(request, repo_id, write=True)
    with repo.lock:
        _rebuild(repo)
        repo.save_settings()
    return runtime(request, repo_id)


def pause(request: Request, repo_id: str) -> Response:
    repo = _space(request, repo_id, write=True)
    with repo.lock:
        repo.settings["paused"] = True
        repo.save_settings()
    return runtime(request, repo_id)
