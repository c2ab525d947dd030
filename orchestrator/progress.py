"""Live progress: a rich table on a terminal, one timestamped line per event otherwise."""
from __future__ import annotations

import sys
import time
from typing import Any

from artifacts import Manifest

PROGRESS_MODES = ("auto", "live", "plain", "quiet")
_SHOWN_EVENTS = {"job_started", "job_ended", "job_skipped", "job_waiting", "job_admitted", "job_shrunk",
                 "job_over_memory", "run_interrupted", "progress"}


def make_display(mode: str, names: list[str]):
    if mode == "auto":
        mode = "live" if sys.stdout.isatty() else "plain"
    if mode == "live":
        return LiveDisplay(names)
    if mode == "plain":
        return PlainDisplay()
    return QuietDisplay()


def describe_progress(progress: dict) -> str:
    """``epoch 3/30 loss 0.1234`` from a worker's progress event."""
    if not progress:
        return ""
    parts = []
    if "epoch" in progress:
        parts.append(f"epoch {progress['epoch']}" + (f"/{progress['epochs']}" if progress.get("epochs") else ""))
    for key, value in progress.items():
        if key in ("epoch", "epochs"):
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " ".join(parts)


def describe_event(event: dict) -> str | None:
    kind, job = event.get("event"), event.get("job")
    if kind not in _SHOWN_EVENTS:
        return None
    if kind == "progress":
        return f"{job}: {describe_progress({k: v for k, v in event.items() if k not in ('ts', 'event', 'job')})}"
    if kind == "job_ended":
        peak = event.get("peak_rss_bytes")
        peak_text = f", peak {peak / 2**20:,.0f} MB" if peak else ""
        reason = f" — {event['reason']}" if event.get("reason") else ""
        return f"{job}: {event.get('state')} in {event.get('duration_s', 0):.1f} s{peak_text}{reason}"
    if kind == "job_started":
        return f"{job}: started (attempt {event.get('attempt')}, {event.get('threads')} thread(s))"
    if kind == "run_interrupted":
        return "interrupted: stopping every worker"
    return f"{job}: {kind.removeprefix('job_').replace('_', ' ')}" + (f" — {event['reason']}" if event.get("reason") else "")


class PlainDisplay:
    """For logs and overnight runs: one timestamped line per event."""

    def event(self, event: dict) -> None:
        text = describe_event(event)
        if text:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.get("ts", time.time())))
            print(f"{stamp} {text}", flush=True)

    def update(self, manifest: Manifest, running: dict) -> None:
        pass

    def close(self) -> None:
        pass


class QuietDisplay(PlainDisplay):
    def event(self, event: dict) -> None:
        pass


class LiveDisplay:
    """A rich live table: job, state, elapsed, worker RSS, the worker's own progress."""

    def __init__(self, names: list[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.names = names
        self.console = Console()
        self.live = Live(console=self.console, refresh_per_second=4, transient=True)   # the status table follows
        self.live.start()

    def event(self, event: dict) -> None:
        if event.get("event") in ("job_ended", "job_waiting", "job_admitted", "job_shrunk", "run_interrupted"):
            text = describe_event(event)
            if text:
                self.live.console.print(text)

    def update(self, manifest: Manifest, running: dict) -> None:
        self.live.update(self.render(manifest, running))

    def render(self, manifest: Manifest, running: dict) -> Any:
        from rich.table import Table

        table = Table(title="orchestrate", expand=False)
        for column in ("job", "state", "elapsed", "RSS", "progress"):
            table.add_column(column)
        for name in self.names:
            entry = manifest.jobs.get(name)
            job = running.get(name)
            state = entry.state if entry else "pending"
            elapsed = f"{job.elapsed():.0f} s" if job else (f"{entry.duration_s:.0f} s" if entry and entry.duration_s else "")
            rss = job.current_rss() if job else (entry.peak_rss_bytes if entry else None)
            table.add_row(name, state, elapsed, f"{rss / 2**20:,.0f} MB" if rss else "",
                          describe_progress(job.progress) if job else (entry.reason or "" if entry else ""))
        return table

    def close(self) -> None:
        self.live.stop()
