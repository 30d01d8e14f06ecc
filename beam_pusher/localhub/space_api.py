"""Space endpoints: secrets (write-only), variables, hardware, sleep time, runtime, restart, pause and logs.

Secret values are stored so the test helpers can check them, but no endpoint ever returns them. Logs are
server-sent events, one ``data: {"data": LINE, "timestamp": ISO_DATE}`` event per line, as ``fetch_space_logs``
reads them: the lines written so far at once, then each later line of the current build or start when it is
written; the stream ends when the build (``/logs/build``) or the app's start or crash (``/logs/run``) is over.
A Space that the local Spaces runtime really runs (``spacerun``) streams its real build's and app's lines alike.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

from beam_pusher.localhub import spaces
from beam_pusher.localhub.protocol import HubError, Request, Response, find_repo, iso_date, json_response
from beam_pusher.localhub.runtime import LogLine, space_runtime, space_timeline, start_build
from beam_pusher.localhub.storage import Repository

__all__ = ["hardware", "logs", "pause", "restart", "runtime", "secrets", "sleep_time", "variables"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _space(request: Request, repo_id: str, *, write: bool = False, member: bool = False) -> Repository:
    return find_repo(request, "space", repo_id, write=write, member=member)


def _key(body: dict[str, Any]) -> str:
    key = body.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise HubError(400, f"Invalid key {key!r}: use letters, digits and '_', not starting with a digit")
    return key


def _rebuild(repo: Repository, *, factory: bool = False) -> None:
    """Settings changes restart the Space on the Hub: it builds again. Call with the repo lock held."""
    start_build(repo.settings, factory=factory)
    repo.settings["paused"] = False


def _variables_json(repo: Repository) -> dict[str, Any]:
    with repo.lock:  # writers change the dict under the same lock
        return {key: {"value": item["value"], "description": item.get("description"),
                      "updatedAt": item.get("updatedAt")}
                for key, item in sorted(repo.settings.get("variables", {}).items())}


def secrets(request: Request, repo_id: str) -> Response:
    if request.method == "GET":
        repo = _space(request, repo_id, member=True)
        with repo.lock:  # only keys, descriptions and dates: secret values are never returned
            listed = {key: {"description": item.get("description"), "updatedAt": item.get("updatedAt")}
                      for key, item in sorted(repo.settings.get("secrets", {}).items())}
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
    state = request.state
    return json_response(space_runtime(_space(request, repo_id), state.config.runtime_delay, runner=state.runner))


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
        repo.settings["sleep_time_set_at"] = time.time()  # a change of sleep time counts as activity
        repo.save_settings()
    return runtime(request, repo_id)


def restart(request: Request, repo_id: str) -> Response:
    """Builds the Space again (``?factory=true``: from scratch, without cache); wakes a sleeping or paused Space."""
    repo = _space(request, repo_id, write=True)
    with repo.lock:
        _rebuild(repo, factory=request.flag("factory"))
        repo.save_settings()
    return runtime(request, repo_id)


def pause(request: Request, repo_id: str) -> Response:
    repo = _space(request, repo_id, write=True)
    with repo.lock:
        if not repo.settings.get("paused"):
            repo.settings["paused_at"] = time.time()
        repo.settings["paused"] = True
        repo.save_settings()
    return runtime(request, repo_id)


def logs(request: Request, repo_id: str, kind: str) -> Response:
    """``GET /api/spaces/{repo_id}/logs/build`` or ``/logs/run``: the build's or the app's lines as SSE events."""
    repo = _space(request, repo_id)
    timeline = space_timeline(repo, request.state.config.runtime_delay)
    runner = request.state.runner
    if runner is not None and runner.status(repo, timeline) is not None:
        run = runner.run_of(repo)
        if run is not None:
            return Response(content_type="text/event-stream", events=_live_events(request, run, kind))
        return Response(content_type="text/event-stream", events=iter(()))  # the build starts within a moment
    if kind == "build":
        lines = runner.build_log(repo, timeline) if runner is not None else timeline.build_log()
    else:
        lines = timeline.run_log()
    return Response(content_type="text/event-stream", events=_events(request, lines))


def _events(request: Request, lines: tuple[LogLine, ...]) -> Iterator[bytes]:
    """Each line as an event once its time has come; lines still to come are waited for, checking for shutdown."""
    stopping = request.state.stopping
    for line in lines:
        while (wait := line.at - time.time()) > 0:
            if stopping.wait(min(wait, 0.2)):
                return
        yield _event(line)


def _event(line: LogLine) -> bytes:
    return b"data: " + json.dumps({"data": line.text + "\n", "timestamp": iso_date(line.at)}).encode() + b"\n\n"


def _live_events(request: Request, run: Any, kind: str) -> Iterator[bytes]:
    """A really run Space's lines: those written so far, then each new one until the build or the start is over."""
    seen = 0
    while not request.state.stopping.is_set():
        lines, ended = run.wait_lines(kind, seen, timeout=0.2)
        seen += len(lines)
        yield from (_event(line) for line in lines)
        if ended:
            return
