"""The local Hub's web pages: the index of Spaces and models, a Space's page and a model repository's page.

Server-side HTML from the Jinja2 templates in ``templates/`` (autoescaped), no JavaScript and no build step: a
page that is building refreshes itself with ``<meta http-equiv="refresh">``, and a running Space's app is embedded
in an ``<iframe>`` (the app is the only script on the page, and it runs from its own origin)::

    GET  /                      Spaces and model repositories: stage, last commit, hardware, visibility
    GET  /spaces/{ns}/{name}    a Space: app, stage, files, commits, settings (secret names only), build/run logs
    GET  /{ns}/{name}           a model repository (``/datasets/{ns}/{name}``: a dataset): branches, tags, files
    POST /login, /logout        keep a token of this Hub in an HttpOnly, SameSite=Strict cookie, or forget it

The read rules are the API's: a private repository is listed and shown only to a member of its namespace, known
by the ``Authorization`` header or by the cookie that ``/login`` sets. A token is never put in a URL or a page, and
secret values never leave the server: the pages show secret names, and the logs mask secret values.
"""

from __future__ import annotations

import functools
import http.cookies
import re
import time
from typing import Any

import jinja2

from beam_pusher.localhub.accounts import Identity, InvalidToken
from beam_pusher.localhub.protocol import URL_PREFIXES, Request, Response, can_see, iso_date
from beam_pusher.localhub.runtime import space_runtime, space_timeline
from beam_pusher.localhub.storage import Repository

__all__ = ["COOKIE", "index", "repo_page", "sign_in", "sign_out"]

COOKIE = "localhub_token"
BUSY_STAGES = ("BUILDING", "APP_STARTING")
_LIST_LIMIT = 200  # files and commits shown on a page
_LOG_LIMIT = 400  # last lines of each log shown on a page
_CSP = ("default-src 'self'; script-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-src http://127.0.0.1:* http://localhost:*; form-action 'self'; base-uri 'none'")


@functools.lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("beam_pusher.localhub", "templates"),
                              autoescape=jinja2.select_autoescape(("html",)), trim_blocks=True,
                              lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _html(template: str, status: int = 200, **context: Any) -> Response:
    body = _templates().get_template(template).render(**context).encode()
    headers = {"Content-Security-Policy": _CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    return Response(status, body, "text/html; charset=utf-8", headers)


def _viewer(request: Request) -> Identity | None:
    """Who looks: the ``Authorization`` header's identity, else the ``/login`` cookie's (None if unknown)."""
    if request.identity is not None:
        return request.identity
    cookies = http.cookies.SimpleCookie()
    try:
        cookies.load(request.headers.get("Cookie") or "")
    except http.cookies.CookieError:
        return None
    morsel = cookies.get(COOKIE)
    if morsel is None or not morsel.value:
        return None
    try:
        return request.state.accounts.authenticate(f"Bearer {morsel.value}")
    except InvalidToken:
        return None


def _page(request: Request, viewer: Identity | None, template: str, status: int = 200, **context: Any) -> Response:
    return _html(template, status, viewer=viewer.name if viewer else None, **context)


def _commit(repo: Repository, sha: str | None) -> dict[str, str] | None:
    if sha is None:
        return None
    commit = repo.git.read_commit(sha)
    return {"sha": sha, "short": sha[:7], "title": commit.title, "author": commit.author.name,
            "date": iso_date(commit.author.timestamp)[:16].replace("T", " ")}


def _visibility(repo: Repository) -> str:
    return "private" if repo.private else "public"


def index(request: Request) -> Response:
    """``GET /``: the Spaces and model repositories the viewer may see."""
    viewer = _viewer(request)
    state = request.state
    space_rows, model_rows = [], []
    for repo in state.store.all("space"):
        if can_see(viewer, repo):
            runtime = space_runtime(repo, state.config.runtime_delay, runner=state.runner)
            space_rows.append({"id": repo.repo_id, "url": f"/spaces/{repo.repo_id}", "sdk": repo.settings.get("sdk"),
                               "stage": runtime["stage"], "hardware": runtime["hardware"]["requested"],
                               "visibility": _visibility(repo), "commit": _commit(repo, repo.branch_head("main"))})
    for repo in state.store.all("model"):
        if can_see(viewer, repo):
            model_rows.append({"id": repo.repo_id, "url": f"/{repo.repo_id}", "visibility": _visibility(repo),
                               "branches": len(repo.branches()), "commit": _commit(repo, repo.branch_head("main"))})
    return _page(request, viewer, "index.html", spaces=space_rows, models=model_rows, title="Local Hub")


def repo_page(request: Request, repo_type: str, repo_id: str) -> Response:
    """``GET /spaces/{id}`` or ``GET /{id}``: the repository's page; 404 when it is missing or hidden."""
    viewer = _viewer(request)
    repo = request.state.store.get(repo_type, repo_id)
    if repo is None or not can_see(viewer, repo):
        message = (f"There is no {repo_type} {repo_id!r} on this local Hub, or it is private and you are not signed "
                   "in as a member of its namespace.")
        return _page(request, viewer, "missing.html", 404, title="Not found", message=message)
    head = repo.branch_head("main")
    context: dict[str, Any] = {
        "repo": {"id": repo.repo_id, "type": repo_type, "visibility": _visibility(repo),
                 "clone": f"{request.base_url}/{URL_PREFIXES[repo_type]}{repo.repo_id}"},
        "head": _commit(repo, head),
        "files": _files(repo, head),
        "commits": [_commit(repo, sha) for sha in (repo.history(head)[:_LIST_LIMIT] if head else [])],
        "title": repo.repo_id,
    }
    if repo_type != "space":
        branches = sorted(repo.branches().items())
        context["branches"] = [{"name": name, "commit": _commit(repo, sha)} for name, sha in branches]
        context["tags"] = [{"name": name, "commit": _commit(repo, sha)} for name, sha in sorted(repo.tags().items())]
        return _page(request, viewer, "repo.html", **context)
    context.update(_space_context(request, repo))
    return _page(request, viewer, "space.html", **context)


def _files(repo: Repository, head: str | None) -> list[dict[str, Any]]:
    if head is None:
        return []
    rows = []
    for path, blob in sorted(repo.snapshot(head).files.items())[:_LIST_LIMIT]:
        info = repo.file_info(path, blob)
        rows.append({"path": path, "size": _size(info.size), "lfs": bool(info.lfs_oid)})
    return rows


def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"  # unreachable: GB ends the loop


def _space_context(request: Request, repo: Repository) -> dict[str, Any]:
    """The Space's runtime, app, settings (secret names, not values) and logs."""
    state = request.state
    runtime = space_runtime(repo, state.config.runtime_delay, runner=state.runner)
    timeline = space_timeline(repo, state.config.runtime_delay)
    run = state.runner.run_of(repo) if state.runner is not None else None
    live = run is not None and not run.simulated and state.runner.status(repo, timeline) is not None
    if live:
        logs = {kind: [line.text for line in run.lines(kind)] for kind in ("build", "run")}
    else:
        build_log = state.runner.build_log(repo, timeline) if state.runner is not None else timeline.build_log()
        logs = {"build": _until_now(build_log), "run": _until_now(timeline.run_log())}
    with repo.lock:
        settings = repo.settings
        secrets = sorted(settings.get("secrets", {}))
        variables = [(key, item["value"]) for key, item in sorted(settings.get("variables", {}).items())]
        sleep_time = settings.get("sleep_time")
        sdk = settings.get("sdk")
    stage = runtime["stage"]
    return {
        "space": {"sdk": (timeline.plan.sdk if timeline.plan else None) or sdk, "stage": stage,
                  "error": runtime.get("errorMessage"), "hardware": runtime["hardware"]["requested"],
                  "sleep_time": sleep_time, "secrets": secrets, "variables": variables,
                  "app_url": run.status().url if live and stage == "RUNNING" else None,
                  "description": run.description if live else None,
                  "simulated": _simulated(state.runner, run, live)},
        "logs": {kind: lines[-_LOG_LIMIT:] for kind, lines in logs.items()},
        "refresh": stage in BUSY_STAGES,
    }


def _simulated(runner: Any, run: Any, live: bool) -> str | None:
    if live:
        return None
    if runner is None:
        return "This local Hub simulates Spaces (start it with --run-spaces to build and run them)."
    reason = run.simulated if run is not None else None
    return f"Simulated: {reason}." if reason else None


def _until_now(lines: tuple[Any, ...]) -> list[str]:
    now = time.time()
    return [line.text for line in lines if line.at <= now]


def sign_in(request: Request) -> Response:
    """``POST /login`` with a form field ``token``: a cookie for the pages, if the token is one of this Hub's."""
    token = (request.form().get("token") or [""])[-1].strip()
    try:
        identity = request.state.accounts.authenticate(f"Bearer {token}") if token else None
    except InvalidToken:
        identity = None
    if identity is None or not re.fullmatch(r"[\x21-\x7e]+", token) or ";" in token or "," in token:
        return _page(request, None, "missing.html", 401, title="Sign-in failed",
                     message="That is not a token of this local Hub: use the token it was started with.")
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    return Response(303, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})


def sign_out(request: Request) -> Response:
    """``POST /logout``: forgets the cookie."""
    cookie = f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    return Response(303, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
