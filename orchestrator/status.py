"""``orchestrate status``: a table per job, readable after the fact."""
from __future__ import annotations

from artifacts import Manifest, RunPaths
from orchestrator.report_sections import describe_degraded


def status_rows(manifest: Manifest) -> list[dict]:
    rows = []
    for name, entry in manifest.jobs.items():
        rows.append({
            "job": name, "state": entry.state, "attempts": entry.attempts,
            "duration": f"{entry.duration_s:.1f} s" if entry.duration_s is not None else "",
            "peak RSS": f"{entry.peak_rss_bytes / 2**20:,.0f} MB" if entry.peak_rss_bytes else "",
            "degraded": describe_degraded(entry.degraded),
            "reason": entry.reason or "",
        })
    return rows


def render_status(run: RunPaths, manifest: Manifest) -> None:
    """Print the status table with rich (plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {run.root}")
    columns = ["job", "state", "attempts", "duration", "peak RSS", "degraded", "reason"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in status_rows(manifest):
        table.add_row(*(str(row[column]) for column in columns))
    Console(width=160).print(table)
