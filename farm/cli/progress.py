"""Sweep progress on stderr: rich's progress bar with elapsed time, ETA
and the running jobs with their worker (on a terminal), or one plain line
per change (piped, e.g. in CI logs)."""

from __future__ import annotations

import sys
import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from farm.cli.output import color_enabled
from farm.terminal import printable


def describe_job(job: dict) -> str:
    worker = job.get("worker") or "?"
    settings = f" {job['settings']}" if job.get("settings") else ""
    return printable(f"{job['backend']} {job['precision']} b{job['batch_size']} {job['profile']}{settings} on {worker}")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SweepProgress:
    """``update(status, running)`` after each poll; a context manager."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self.first_finished: int | None = None
        self.last_line = ""
        self.live: Live | None = None

    def __enter__(self) -> "SweepProgress":
        if self.tty:
            console = Console(file=self.stream, no_color=not color_enabled(self.stream), highlight=False)
            self.bar = Progress(TextColumn("[bold]sweep[/]"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("jobs finished"), TextColumn("elapsed"), TimeElapsedColumn(),
                                TextColumn("ETA {task.fields[eta]}"), console=console)
            self.task = self.bar.add_task("sweep", total=None, eta=_clock(None))
            self.running = Text()
            self.live = Live(Group(self.bar, self.running), console=console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def eta(self, finished: int, total: int) -> float | None:
        """Remaining time at the rate of jobs finished since the start
        (jobs reused at submission do not count as speed)."""
        if self.first_finished is None:
            self.first_finished = finished
        done_here = finished - self.first_finished
        if finished >= total:
            return 0.0
        if done_here <= 0:
            return None
        return (time.monotonic() - self.started) / done_here * (total - finished)

    def update(self, status: dict, running: list[dict]) -> None:
        finished, total = status["finished"], status["total"]
        eta = self.eta(finished, total)
        if self.live is not None:
            self.bar.update(self.task, total=total, completed=finished, eta=_clock(eta))
            self.running.plain = "\n".join(f"  running: {describe_job(j)}" for j in running)
            self.live.refresh()
            return
        jobs = "; ".join(describe_job(j) for j in running)
        line = (f"{finished}/{total} jobs finished, {len(running)} running"
                + (f" ({jobs})" if jobs else "")
                + f"; elapsed {_clock(time.monotonic() - self.started)}, ETA {_clock(eta)}")
        if line.split("; elapsed")[0] != self.last_line.split("; elapsed")[0]:
            print(line, file=self.stream, flush=True)
        self.last_line = line
