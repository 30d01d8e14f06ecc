"""The local Hub's web pages: what they list and show, who sees private repositories, and no clash with git routes."""

from __future__ import annotations

import http.client
import subprocess
import urllib.parse

from huggingface_hub import CommitOperationAdd, HfApi

from beam_pusher.localhub import LocalHub


def _setup(hub: LocalHub) -> HfApi:
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    api.create_repo("user/shown", repo_type="space", space_sdk="gradio")
    api.create_commit("user/shown", repo_type="space", commit_message="Add the app", operations=[
        CommitOperationAdd("app.py", b"print('hi')\n")])
    api.add_space_secret("user/shown", "API_KEY", "value-that-stays-on-the-server")
    api.add_space_variable("user/shown", "GREETING", "hello")
    api.create_repo("user/hidden", repo_type="space", space_sdk="static", private=True)
    api.create_repo("user/weights")
    api.create_commit("user/weights", commit_message="Weights v1", operations=[
        CommitOperationAdd("model.bin", b"\0" * 10)])
    api.create_branch("user/weights", branch="experiment")
    return api


def test_the_index_lists_spaces_and_models_and_private_ones_only_to_a_member(local_hub, raw):
    _setup(local_hub)
    anonymous = raw("GET", f"{local_hub.endpoint}/")
    assert anonymous.status == 200 and anonymous.headers["Content-Type"].startswith("text/html")
    page = anonymous.body.decode()
    assert "/spaces/user/shown" in page and "RUNNING" in page and "Add the app" in page and "cpu-basic" in page
    assert "/user/weights" in page and "Weights v1" in page
    assert "user/hidden" not in page
    assert "<script" not in page and "script-src 'none'" in anonymous.headers["Content-Security-Policy"]

    assert "user/hidden" in raw("GET", f"{local_hub.endpoint}/", token=local_hub.token).body.decode()
    assert raw("GET", f"{local_hub.endpoint}/spaces/user/hidden").status == 404


def _post_form(endpoint: str, path: str, fields: dict[str, str]) -> http.client.HTTPResponse:
    """A form POST whose redirect is not followed, so its Set-Cookie header can be read."""
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(endpoint).netloc, timeout=30)
    connection.request("POST", path, body=urllib.parse.urlencode(fields),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_a_login_cookie_shows_private_repositories_and_never_the_token(local_hub, raw):
    _setup(local_hub)
    refused = _post_form(local_hub.endpoint, "/login", {"token": "hf_wrong"})
    assert refused.status == 401 and refused.getheader("Set-Cookie") is None
    signed = _post_form(local_hub.endpoint, "/login", {"token": local_hub.token})
    cookie = signed.getheader("Set-Cookie")
    assert signed.status == 303 and signed.getheader("Location") == "/"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = raw("GET", f"{local_hub.endpoint}/spaces/user/hidden", headers={"Cookie": cookie.split(";")[0]})
    assert page.status == 200 and "private" in page.body.decode() and "signed in as" in page.body.decode()
    assert local_hub.token not in page.body.decode()
    assert "Max-Age=0" in _post_form(local_hub.endpoint, "/logout", {}).getheader("Set-Cookie")


def test_a_space_page_shows_files_commits_settings_and_logs_but_no_secret_value(local_hub, raw):
    _setup(local_hub)
    page = raw("GET", f"{local_hub.endpoint}/spaces/user/shown").body.decode()
    head = local_hub.head("user/shown")
    for expected in ("app.py", "README.md", "Add the app", head[:7], "API_KEY", "GREETING=hello", "Build log",
                     "Run log", "Build Queued", "Application Startup", "--run-spaces"):
        assert expected in page, expected
    assert "value-that-stays-on-the-server" not in page


def test_a_model_page_shows_its_branches(local_hub, raw):
    _setup(local_hub)
    page = raw("GET", f"{local_hub.endpoint}/user/weights").body.decode()
    assert "experiment" in page and "main" in page and "model.bin" in page and "Weights v1" in page
    assert raw("GET", f"{local_hub.endpoint}/user/no-such-model").status == 404


def test_pages_do_not_take_git_or_file_routes(local_hub, tmp_path):
    _setup(local_hub)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", local_hub.url("user/shown"), str(clone)], check=True, timeout=60)
    assert (clone / "app.py").read_bytes() == b"print('hi')\n"
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    assert api.space_info("user/shown").id == "user/shown"
    assert api.hf_hub_download("user/weights", "model.bin", local_dir=tmp_path / "dl").endswith("model.bin")
