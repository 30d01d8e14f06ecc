"""Checks whether DirectRunner's multi_threading mode loses elements between stages (it does with Beam 2.74).

Not part of ``make bench``. The batch benchmark saw a no-op redeploy delete a Space's file: one element of a few
hundred kB went missing between ``ReadAppFiles`` and the push step. This reproduces it without beam_pusher: 50 keys
x 30 elements (every third one 200 kB) -> Reshuffle -> a side-input Map -> CoGroupByKey, counting each key's
elements. Run it after a Beam upgrade before making ``multi_threading`` the local default again::

    python benchmarks/multithreading_loss.py --rounds 10 --mode multi_threading   # "lost" > 0 with Beam 2.74
    python benchmarks/multithreading_loss.py --rounds 10 --mode in_memory         # 0 (the local default)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

KEYS, PER_KEY = 50, 30


def _elements(i: int, big: int):
    for j in range(PER_KEY):
        yield f"k{i}", j, os.urandom(big if j % 3 == 0 else 100)


def _slow_identity(element, context):
    time.sleep(0.001)  # a little work per element, as rendering does; without it the loss is rare
    return element


def _short_keys(kv) -> list[str]:
    key, groups = kv
    n = len(list(groups["values"]))
    return [f"{key}: {n} of {PER_KEY}"] if n != PER_KEY else []


def run_once(mode: str, workers: int, big: int) -> list[str]:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    options = PipelineOptions(
        ["--runner=DirectRunner", f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"]
    )
    short: list[str] = []
    try:
        with beam.Pipeline(options=options) as p:
            keys = p | "Keys" >> beam.Create(list(range(KEYS)))
            context = keys | "Context" >> beam.Map(lambda i: (f"k{i}", i))
            values = (
                keys
                | "Expand" >> beam.FlatMap(_elements, big)
                | "Reshuffle" >> beam.Reshuffle()
                | "SideInput" >> beam.Map(_slow_identity, beam.pvalue.AsDict(context))
                | "Key" >> beam.Map(lambda e: (e[0], e))
            )
            lost = {"spec": context, "values": values} | beam.CoGroupByKey() | beam.FlatMap(_short_keys)
            assert_that(lost, equal_to([]))
    except Exception as exc:  # noqa: BLE001 - the assertion names the short keys
        text = str(exc)
        start = text.find("unexpected elements")
        short.append(text[start : start + 200] if start >= 0 else text.splitlines()[-1][:200])
    return short


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--mode", default="multi_threading",
                        choices=["in_memory", "multi_threading", "multi_processing"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big", type=int, default=200_000, help="size of every third element, bytes")
    args = parser.parse_args(argv)
    lost_rounds = 0
    for round_ in range(args.rounds):
        short = run_once(args.mode, args.workers, args.big)
        lost_rounds += bool(short)
        print(f"round {round_}: {'lost elements: ' + short[0] if short else 'complete'}", flush=True)
    print(f"mode={args.mode} workers={args.workers} rounds={args.rounds} lost={lost_rounds}")
    return 1 if lost_rounds else 0


if __name__ == "__main__":
    sys.exit(main())
