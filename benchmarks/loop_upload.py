"""The baselines a user would write instead of beam_pusher: a loop of ``HfApi.upload_folder``, or a thread pool.

Run as a process of its own, as a shell loop of ``hf upload`` would be (``create_repo(exist_ok=True)`` first, since
``upload_folder`` does not create the Space)::

    python benchmarks/loop_upload.py JOBS.json ENDPOINT TOKEN_ENV_NAME [THREADS]

With ``THREADS`` above 1 the Spaces are pushed by a pool of that many threads, the twenty lines a skilled user
writes (and the parallelism beam_pusher uses: 16 pushes at once per worker); one ``HfApi`` is shared, as its
session is thread-safe.

``JOBS.json`` is a list of ``[repo_id, folder]``. Prints one JSON line: the commit id per Space and the wall time of
the loop itself (after imports). A call the Hub refuses for its rate limit (429) is sent again after the
``Retry-After`` the Hub gives, as a careful script would do (huggingface_hub does so itself for some calls only).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402


def _patient(fn, *args, **kwargs):
    from huggingface_hub.errors import HfHubHTTPError

    while True:
        try:
            return fn(*args, **kwargs)
        except HfHubHTTPError as exc:
            if exc.response is None or exc.response.status_code != 429:
                raise
            time.sleep(float(exc.response.headers.get("Retry-After", "1")))


def main(argv: list[str]) -> int:
    jobs_path, endpoint, token_env, *rest = argv
    threads = int(rest[0]) if rest else 1
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=os.environ[token_env])
    jobs = json.loads(open(jobs_path, encoding="utf-8").read())

    def deploy(job: list[str]) -> str:
        repo_id, folder = job
        _patient(api.create_repo, repo_id, repo_type="space", space_sdk="gradio", exist_ok=True)
        info = _patient(api.upload_folder, repo_id=repo_id, folder_path=folder, repo_type="space",
                        commit_message=f"Deploy {repo_id}")
        return info.oid

    start = time.perf_counter()
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            oids = list(pool.map(deploy, jobs))
    else:
        oids = [deploy(job) for job in jobs]
    commits = {repo_id: oid for (repo_id, _), oid in zip(jobs, oids)}
    print(json.dumps({"seconds": time.perf_counter() - start, "commits": commits}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
