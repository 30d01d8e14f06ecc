"""One deploy in a process of its own, for the large-model and TFX benchmarks: prints its timings and peak RSS.

::

    python benchmarks/deploy_child.py SPEC.json ENDPOINT TOKEN_ENV_NAME

``SPEC.json`` holds ``SpaceSpec`` keyword arguments. The process runs ``run_deploy`` (the real pipeline, default
local runner) and prints one JSON line: ``import_s`` (importing Beam and beam_pusher), ``run_s`` (the whole
``run_deploy`` call: pipeline construction, start-up, hashing, upload, commit), ``run_started``/``run_finished``
(the same call in ``time.time()`` seconds, to line up with the local Hub's request timeline), ``maxrss_kib`` (this
process's peak resident memory, from ``getrusage``) and the ``PushResult``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402


def main(argv: list[str]) -> int:
    spec_path, endpoint, token_env = argv
    start = time.perf_counter()
    # beam_pusher.runner loads Beam and the transforms on first use (so the CLI's --help stays fast); import them
    # here so that run_s measures the deploy, not the imports, as it did when runner.py imported Beam itself.
    import apache_beam  # noqa: F401
    import beam_pusher.transforms  # noqa: F401
    from beam_pusher.runner import run_deploy
    from beam_pusher.spec import SpaceSpec

    spec = SpaceSpec(**json.loads(open(spec_path, encoding="utf-8").read()))
    imported, started = time.perf_counter(), time.time()
    (result,) = run_deploy([spec], endpoint=endpoint, token=f"env:{token_env}")
    done, finished = time.perf_counter(), time.time()
    print(json.dumps({
        "import_s": imported - start,
        "run_s": done - imported,
        "run_started": started,
        "run_finished": finished,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "result": result.to_dict(),
    }))
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
