"""The report's content: tables of metrics (faults as rows, detectors as columns), failures, run facts.

Only text is decided here; ``report_document`` renders it as Markdown and HTML.
Nothing here reads a clock: every fact comes from the manifest or the dataset
meta, so a rebuilt report is byte-identical.
"""
from __future__ import annotations

import datetime
from typing import Callable

from artifacts import Manifest
from artifacts.records import PREPARE_JOB
from orchestrator.metrics import (
    HARD_FAULTS, MEAN_ROW, MEAN_WITHOUT_HARD_ROW, METRIC_DEFINITIONS, POOLED_ROW,
)
from orchestrator.report_document import Section, Table

MISSING = "—"
_ROW_TITLES = {MEAN_ROW: "mean over faults",
               MEAN_WITHOUT_HARD_ROW: "mean without " + ", ".join(map(str, HARD_FAULTS)),
               POOLED_ROW: "pooled"}


def format_number(value, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def format_bytes(value: int | None) -> str:
    if value is None:
        return MISSING
    for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def describe_degraded(degraded: dict | None) -> str:
    """E.g. ``{"train_fraction": 0.5, "batch_size": 256}`` -> "trained on 50% of training runs; batch size 256"
    (the fraction first: the manifest stores the keys sorted)."""
    if not degraded:
        return ""
    parts = []
    for key, value in sorted(degraded.items(), key=lambda item: (item[0] != "train_fraction", item[0])):
        if key == "train_fraction":
            parts.append(f"trained on {float(value):.0%} of training runs")
        elif key == "batch_size":
            parts.append(f"batch size {value}")
        else:
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def index_records(records: list[dict]) -> dict[tuple[str, int | str], dict]:
    return {(r["detector"], r["fault"]): r for r in records}


def fault_table(caption: str, records: list[dict], detectors: list[str], faults: list[int],
                cell: Callable[[dict], str], summary_rows: tuple[str, ...]) -> Table:
    """Faults as rows, detectors as columns, then the summary rows that carry the metric."""
    by_key = index_records(records)
    rows = [[str(fault)] + [cell(by_key[(d, fault)]) for d in detectors] for fault in faults]
    rows += [[_ROW_TITLES[name]] + [cell(by_key[(d, name)]) for d in detectors] for name in summary_rows]
    return Table(["fault"] + detectors, rows, caption)


def rate_cell(metric: str) -> Callable[[dict], str]:
    return lambda record: format_number(record.get(metric))


def delay_cell(kind: str) -> Callable[[dict], str]:
    """Mean delay in minutes, and how many runs were never detected."""
    def cell(record: dict) -> str:
        text = format_number(record.get(f"{kind}_mean_minutes"), 1)
        undetected = record.get(f"{kind}_undetected_runs")
        if undetected:
            text += f" ({undetected}/{record['runs']} undetected)"
        return text
    return cell


def metric_sections(records: list[dict], detectors: list[str], faults: list[int], k: int) -> list[Section]:
    """FDR, FAR, delay and AUC tables."""
    means = (MEAN_ROW, MEAN_WITHOUT_HARD_ROW)
    return [
        Section("Fault detection rate (FDR)", [
            fault_table("FDR per fault", records, detectors, faults, rate_cell("fdr"), means + (POOLED_ROW,))]),
        Section("False alarm rate (FAR)", [
            "Per fault: alarms on that fault's pre-onset rows. Pooled: alarms on every in-control row "
            "(fault-free runs and all pre-onset rows).",
            fault_table("FAR per fault", records, detectors, faults, rate_cell("far"), means + (POOLED_ROW,))]),
        Section("Detection delay", [
            "Minutes from onset; mean over the runs that were detected.",
            fault_table("first alarm at or after onset", records, detectors, faults, delay_cell("delay"), means),
            fault_table(f"first of {k} consecutive alarms", records, detectors, faults,
                        delay_cell("delay_k"), means)]),
        Section("ROC AUC", [
            fault_table("AUC of scores, post-onset rows against all in-control rows", records, detectors,
                        faults, rate_cell("auc"), means + (POOLED_ROW,))]),
    ]


def summary_section(records: list[dict], detectors: list[str], failures: list[dict]) -> Section:
    """One line per detector with its headline numbers."""
    by_key = index_records(records)
    rows = []
    for name in detectors:
        mean, easy, pooled = (by_key[(name, row)] for row in (MEAN_ROW, MEAN_WITHOUT_HARD_ROW, POOLED_ROW))
        rows.append([name, mean["state"], format_number(mean["fdr"]), format_number(easy["fdr"]),
                     format_number(pooled["far"]), format_number(mean["auc"]),
                     format_number(mean["delay_mean_minutes"], 1)])
    header = ["detector", "state", "mean FDR", "mean FDR without " + ",".join(map(str, HARD_FAULTS)),
              "pooled FAR", "mean AUC", "mean delay (min)"]
    done = len(detectors) - len(failures)
    return Section("Summary", [f"{done} of {len(detectors)} detectors produced predictions.",
                               Table(header, rows)])


def failures_section(failures: list[dict]) -> Section:
    if not failures:
        return Section("Failures", ["Every detector produced predictions."])
    return Section("Failures", [
        "These detectors have no results; their rows above are empty.",
        [f"{f['detector']}: {f['state']} — {f['reason']}" for f in failures]])


def run_facts_section(manifest: Manifest, meta: dict, detectors: list[str], k: int) -> Section:
    """Data, profile, settings, and each job's state, duration, peak memory and degradation."""
    settings = manifest.settings
    shapes = meta.get("shapes", {})
    runs = meta.get("runs", {})
    facts = [
        f"Run: {manifest.run} (created {_utc(manifest.created)})",
        f"Data source: {meta.get('source', settings.get('data', MISSING))}",
        "Rows: " + ", ".join(f"{split} {shapes[split][0]}" + (f" in {runs[split]} runs" if split in runs else "")
                             for split in ("train", "valid", "test") if split in shapes),
        f"Variables: {shapes.get('test', [0, '?'])[1]}"
        + (f" (dropped as constant: {', '.join(meta['dropped_constant_variables'])})"
           if meta.get("dropped_constant_variables") else ""),
        f"Fault onset: sample {meta.get('onset')}; sampling interval {meta.get('sampling_minutes')} min",
        f"Profile: {settings.get('profile', MISSING)}",
        f"Memory budget: {format_bytes(settings.get('memory_budget_bytes'))}",
        f"k for the consecutive-alarm delay: {k}",
    ] + [f"Note: {note}" for note in meta.get("notes", [])]
    return Section("Run facts", [facts, jobs_table(manifest, detectors)])


def jobs_table(manifest: Manifest, detectors: list[str]) -> Table:
    names = [PREPARE_JOB] if PREPARE_JOB in manifest.jobs else []
    names += [name for name in detectors if name in manifest.jobs]
    rows = []
    for name in names:
        entry = manifest.jobs[name]
        rows.append([name, entry.state, str(entry.attempts), format_number(entry.duration_s, 1),
                     format_bytes(entry.peak_rss_bytes), describe_degraded(entry.degraded), entry.reason or ""])
    return Table(["job", "state", "attempts", "duration (s)", "peak RSS", "degraded", "reason"], rows, "Jobs")


def definitions_section(k: int) -> Section:
    return Section("Definitions", [[f"{name}: {text}".replace("k consecutive", f"k={k} consecutive")
                                    for name, text in METRIC_DEFINITIONS.items()]])


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return MISSING
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
