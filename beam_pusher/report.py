"""What people read after ``beam-pusher deploy``: a line per Space as results arrive, a progress bar, a final table.

Presentation only: ``ConsoleReport`` prints what it is given, ``write_report`` writes the JSON report. Running the
pipeline and collecting its results is ``beam_pusher.runner``'s job; a caller composes the two by passing
``ConsoleReport.add`` as ``run_deploy``'s ``on_result``.

Results can arrive from several pipeline threads at once (DirectRunner ``multi_threading``), so ``ConsoleReport``
serialises its writes with a lock. When the results only come back after the run (a remote runner such as Dataflow),
the lines are printed then, so the output is the same, only later.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from beam_pusher.errors import SpecError
from beam_pusher.selection import describe_exclusions
from beam_pusher.settings import SettingChange
from beam_pusher.spec import ChangeAction, Outcome, PushResult

__all__ = ["ConsoleReport", "check_report_path", "format_size", "symbols_for", "write_report"]

logger = logging.getLogger(__name__)

_UNICODE = {"ok": "✓", "fail": "✗", "plan": "·", "why": "↳", "done": "█", "todo": "░", "sep": "·"}
_ASCII = {"ok": "ok", "fail": "x", "plan": "-", "why": "->", "done": "#", "todo": ".", "sep": "|"}
_BAR_WIDTH = 24


def check_report_path(path: str | os.PathLike) -> None:
    """Checks that a report can be written to ``path``, before a run writes anything anywhere.

    Raises:
      SpecError: ``path`` is a directory, its folder does not exist, or either cannot be written.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not path:
        problem = "is empty"
    elif os.path.isdir(path):
        problem = "is a directory"
    elif not os.path.isdir(folder):
        problem = f"is in a folder that does not exist ({folder})"
    elif not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        problem = "cannot be written (no write permission)"
    else:
        return
    raise SpecError(
        f"--report {path}: the path {problem}; give a file in a folder you can write to, such as "
        f"{os.path.join(path if os.path.isdir(path) else '.', 'report.json')}."
    )


def write_report(path: str | os.PathLike, results: Sequence[PushResult]) -> None:
    """Writes every result as JSON, atomically: a list of ``PushResult.to_dict()`` with its ``outcome`` (committed,
    unchanged, failed, not attempted, ...), sorted by repo id."""
    path = os.fspath(path)
    data = [{**r.to_dict(), "outcome": r.outcome.value} for r in sorted(results, key=lambda r: r.repo_id)]
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def format_size(size: int) -> str:
    """``1536`` -> ``1.5 kB``: sizes people read at a glance."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _short(commit: str | None) -> str:
    return commit[:7] if commit else "-"


def _counts(r: PushResult) -> str:
    return f"+{r.files_added} ~{r.files_updated} -{r.files_deleted}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _settings(r: PushResult) -> str:
    """The table's Settings cell: how many settings writes were planned, made, or made of those planned."""
    if r.dry_run:
        return f"{len(r.settings_planned)} planned" if r.settings_planned else "-"
    if r.pr_num is not None:
        return f"{len(r.settings_planned)} not written" if r.settings_planned else "-"
    if r.settings_failed:
        return f"{len(r.settings_applied)}/{len(r.settings_applied) + len(r.settings_failed)} applied"
    return f"{len(r.settings_applied)} applied" if r.settings_applied else "-"


def _setting_lines(changes: Sequence[SettingChange], prefix: str = "") -> list[str]:
    # A SettingChange never holds a secret's value, only its name and why it is written.
    return [f"    {c.mark} {prefix}{c}" for c in changes]


def _reason(r: PushResult) -> str:
    # Messages are written to stand alone, so they start with the repo id; the line already shows it.
    return (r.error or "").replace(f"{r.repo_id}: ", "")


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def symbols_for(stream: TextIO) -> dict[str, str]:
    """The marks to print on ``stream``: ✓ ✗ and friends, or ASCII when its encoding cannot show them."""
    return _UNICODE if _can_encode(stream, "".join(_UNICODE.values())) else _ASCII


class ConsoleReport:
    """Prints a deploy's progress and outcome.

    Args:
      total: Number of Spaces in the run (for the progress bar and the summary).
      stream: Where to write (default ``sys.stdout``).
      progress: Show a progress bar; default: when ``stream`` is a terminal.
      endpoint: Hub URL, used for the URL of a Space whose result has none.
      dry_run: The run only plans; the summary then counts what would be committed.
      started: When the run started, a ``time.monotonic()`` value, for the wall time in the summary (default: now).

    Example::

        report = ConsoleReport(total=len(specs))
        report.start(runner=describe_runner(options))
        with contextlib.closing(report):  # stops the progress bar if the run fails
            results = run_deploy(specs, pipeline_args=options, on_result=report.add)
        results = report.finish(results, [s.repo_id for s in specs])
    """

    def __init__(
        self,
        *,
        total: int,
        stream: TextIO | None = None,
        progress: bool | None = None,
        endpoint: str | None = None,
        dry_run: bool = False,
        started: float | None = None,
    ):
        self.total = total
        self.dry_run = dry_run
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.progress = bool(isatty()) if progress is None else progress
        self.endpoint = (endpoint or "https://huggingface.co").rstrip("/")
        self.symbols = symbols_for(self.stream)
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._started = time.monotonic() if started is None else started
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._bar_shown = False

    # -- while running ------------------------------------------------------------------------------------------

    def start(self, *, runner: str | None = None) -> None:
        """Starts the progress bar when enabled (redrawn twice a second until ``finish``).

        Args:
          runner: How the pipeline runs, for people (``runner.describe_runner(options)``); when given, a first line
            says what is deployed where, and on which runner.
        """
        if runner is not None:
            with self._lock:
                self.stream.write(f"{self.heading()} with {runner}\n")
                self.stream.flush()
        if self.progress and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="beam-pusher-progress", daemon=True)
            self._ticker.start()

    def heading(self) -> str:
        """``Deploying 3 Spaces to https://huggingface.co``, or what a dry run plans."""
        noun = "Space" if self.total == 1 else "Spaces"
        if self.dry_run:
            return f"Planning {self.total} {noun} against {self.endpoint} (dry run: nothing is written)"
        return f"Deploying {self.total} {noun} to {self.endpoint}"

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                self._draw_bar()

    def _draw_bar(self) -> None:
        done = len(self._seen)
        filled = _BAR_WIDTH * done // self.total if self.total else _BAR_WIDTH
        bar = self.symbols["done"] * filled + self.symbols["todo"] * (_BAR_WIDTH - filled)
        elapsed = time.monotonic() - self._started
        self.stream.write(f"\r[{bar}] {done}/{self.total} Spaces  {elapsed:.0f} s\033[K")
        self.stream.flush()
        self._bar_shown = True

    def close(self) -> None:
        """Stops the progress bar and erases it (``finish`` does this too)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            self._clear_bar()
            self.stream.flush()

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\033[K")
            self._bar_shown = False

    def add(self, result: PushResult) -> None:
        """Prints the line of one Space (once, however often its result is seen). Safe from any thread."""
        with self._lock:
            if result.repo_id in self._seen:
                return
            self._seen.add(result.repo_id)
            self._clear_bar()
            for line in self.lines(result):
                self.stream.write(line + "\n")
            if self.progress and not self._stop.is_set():
                self._draw_bar()
            self.stream.flush()

    def lines(self, r: PushResult) -> list[str]:
        """The line(s) for one Space: outcome, commit and file counts, then its settings changes.

        A dry run lists each planned file and settings change, and what the listing left out and why; a deploy the
        settings it wrote, and what was left out only when a ``.env``-like file was (once; the JSON report lists
        every exclusion); a failed Space what was applied and what was not.
        """
        s = self.symbols
        if r.error:
            failed = [f"{s['fail']} {r.repo_id}  failed: {_reason(r)}"]
            applied = _setting_lines(r.settings_applied, "applied: ")
            return failed + applied + _setting_lines(r.settings_failed, "not applied: ")
        if r.skipped:
            return [f"{s['plan']} {r.repo_id}  not attempted: the run was stopped before its commit was sent"]
        if r.dry_run:
            return self._plan_lines(r)
        if r.pr_num is not None:
            return self._proposed_lines(r)
        stage = f"  {r.runtime_stage}" if r.runtime_stage else ""
        settings = f"  {len(r.settings_applied)} settings written" if r.settings_applied else ""
        what, uploaded = "unchanged", "nothing uploaded"
        if r.committed:
            what, uploaded = "committed", f"{format_size(r.bytes_uploaded)} uploaded"
        line = f"{s['ok']} {r.repo_id}  {what} {_short(r.commit_id)}  {_counts(r)}  ({uploaded}){settings}{stage}"
        return [line, *_setting_lines(r.settings_applied), *self._excluded(r, always=False)]

    def _proposed_lines(self, r: PushResult) -> list[str]:
        """A Space deployed as a pull request: the change against main, the pull request, the settings not written."""
        what = f"{format_size(r.bytes_uploaded)} uploaded" if r.committed else "already in it"
        line = f"{self.symbols['ok']} {r.repo_id}  proposed {_counts(r)} in pull request #{r.pr_num} ({what})"
        return [f"{line}  {r.pr_url}", *_setting_lines(r.settings_planned, "not written: ")]

    def _plan_lines(self, r: PushResult) -> list[str]:
        head = f"{self.symbols['plan']} {r.repo_id}  "
        settings = f"; would write {_plural(len(r.settings_planned), 'setting')}" if r.settings_planned else ""
        unchanged = _plural(r.files_unchanged, "file") + " unchanged"
        if not r.planned:
            lines = [head + f"up to date at {_short(r.commit_id)}: no commit ({unchanged}){settings}"]
        else:
            base = f"on {_short(r.commit_id)}" if r.commit_id else "new Space"
            lines = [head + f"would commit {_counts(r)} ({base}, {unchanged}){settings}"]
        for change in r.planned:
            size = f"  ({format_size(change.size)})" if change.action is not ChangeAction.DELETE else ""
            lines.append(f"    {change.action.mark} {change.path}{size}")
        return lines + _setting_lines(r.settings_planned) + self._excluded(r, always=True)

    @staticmethod
    def _excluded(r: PushResult, *, always: bool) -> list[str]:
        if not r.excluded or not (always or any(e.is_secret for e in r.excluded)):
            return []
        return [f"    {describe_exclusions(r.excluded)}"]

    # -- at the end ---------------------------------------------------------------------------------------------

    def finish(
        self, results: Sequence[PushResult], expected: Sequence[str] = (), *, missing: str | None = None
    ) -> list[PushResult]:
        """Prints what was not printed yet, the table and the summary line; returns the results, one per Space.

        A Space of ``expected`` without a result is reported as failed, so it cannot pass for a success; ``missing``
        says why it has none (default: the pipeline lost it).
        """
        self.close()
        results = list(results)
        found = {r.repo_id for r in results}
        why = missing or "the pipeline returned no result for this Space."
        results += [PushResult(rid, pushed=False, error=f"{rid}: {why}") for rid in expected if rid not in found]
        for r in results:
            self.add(r)
        with self._lock:
            self._clear_bar()
            self.stream.write("\n" + "\n".join(self.table(results)) + "\n" + self.summary(results) + "\n")
            self.stream.flush()
        return results

    def table(self, results: Sequence[PushResult]) -> list[str]:
        """The final table: Space, result, commit, files and settings changed, URL; a Space's failure or warnings under
        its row."""
        header = ("Space", "Result", "Commit", "Files", "Settings", "URL")
        rows = [
            (
                r.repo_id,
                r.outcome.value,
                _short(r.commit_id),
                "-" if (r.error and not r.committed) or r.skipped else _counts(r),
                _settings(r),
                r.pr_url or r.repo_url or f"{self.endpoint}/spaces/{r.repo_id}",
            )
            for r in results
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths)) + "  " + cells[-1]

        out = [line(header), line(["-" * w for w in widths] + ["-" * 3])]
        for r, row in zip(results, rows):
            out.append(line(row))
            if r.error:
                out.append(f"  {self.symbols['why']} {_reason(r)}")
            out += [f"  warning: {warning}" for warning in r.warnings]
        return out

    def summary(self, results: Sequence[PushResult]) -> str:
        """One line: how many Spaces did what, how much was uploaded, and the run's wall time."""
        elapsed = time.monotonic() - self._started
        n = collections.Counter(r.outcome for r in results)
        sep = f" {self.symbols['sep']} "
        stopped = f", {n[Outcome.NOT_ATTEMPTED]} not attempted" if n[Outcome.NOT_ATTEMPTED] else ""
        if self.dry_run:
            parts = [
                f"{_plural(len(results), 'Space')} planned: {n[Outcome.WOULD_COMMIT]} would commit, "
                + (f"{n[Outcome.WOULD_SET]} would only write settings, " if n[Outcome.WOULD_SET] else "")
                + f"{n[Outcome.UP_TO_DATE]} up to date, {n[Outcome.FAILED]} failed{stopped}",
                "nothing was written",
            ]
        else:
            files = sum(r.files_added + r.files_updated for r in results if not r.error and r.committed)
            uploaded = sum(r.bytes_uploaded for r in results if not r.error)
            proposed = f"{n[Outcome.PROPOSED]} proposed as pull requests, " if n[Outcome.PROPOSED] else ""
            parts = [
                f"{_plural(len(results), 'Space')}: {n[Outcome.COMMITTED]} committed, {proposed}"
                f"{n[Outcome.UNCHANGED]} unchanged, {n[Outcome.FAILED]} failed{stopped}",
                f"{_plural(files, 'file')} uploaded ({format_size(uploaded)})",
            ]
            written = sum(len(r.settings_applied) for r in results)
            if written:
                parts.append(f"{_plural(written, 'setting')} written")
        return sep.join([*parts, f"{elapsed:.1f} s"])
