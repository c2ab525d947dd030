"""Build the benchmark of a run: metrics.csv, metrics.json, report.md, report.html, figures/.

``build_benchmark`` is the one entry point (``orchestrate report`` and the end of
``orchestrate run`` call it). It reads only files of the run directory, so it
can be rerun at any time, and a rerun on the same directory rewrites every file
byte for byte: no clock, no random state, no path outside the run directory's own records.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artifacts import ManifestEntry, RunPaths, atomic_write_bytes, atomic_write_json
from orchestrator import figures
from orchestrator.benchmark_inputs import (
    BenchmarkError, PredictionError, Predictions, RunInputs, describe_failure, load_memory_samples, load_predictions,
    load_run_inputs, manifest_entry, succeeded,
)
from orchestrator.metrics import (
    DEFAULT_K_CONSECUTIVE, HARD_FAULTS, METRIC_DEFINITIONS, TestLayout, measure_detector, metric_names,
    missing_detector_records,
)
from orchestrator.report_document import Image, Section, render_html, render_markdown
from orchestrator.report_sections import (
    definitions_section, failures_section, metric_sections, run_facts_section, summary_section,
)

__all__ = ["Benchmark", "BenchmarkError", "build_benchmark", "records_to_dataframe", "write_metrics_csv"]

FIGURE_FILES = {"fdr_heatmap": "fdr_heatmap.png", "monitoring_chart": "monitoring_chart.png",
                "memory": "memory.png"}
DEFAULT_CHART_FAULT = 1


@dataclass
class Benchmark:
    """What ``build_benchmark`` produced: metric records, failed detectors, files written."""

    records: list[dict]
    failures: list[dict]                     # {"detector", "state", "reason"}
    paths: dict[str, Path] = field(default_factory=dict)
    succeeded: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every detector produced predictions."""
        return not self.failures


@dataclass(frozen=True)
class ChartRun:
    """The test run on the monitoring chart; ``rows`` (n_samples,) in sample order."""

    fault: int
    run_id: int
    rows: np.ndarray


@dataclass
class _Scored:
    records: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    charts: list[figures.ChartSeries] = field(default_factory=list)


def build_benchmark(run_paths: RunPaths | str | os.PathLike, *, k_consecutive: int = DEFAULT_K_CONSECUTIVE,
                    chart_fault: int | None = None) -> Benchmark:
    """Compute every metric from the run's saved predictions and write ``benchmark/``.

    Raises ``BenchmarkError`` when the run has no manifest or dataset, or no detector succeeded.
    """
    paths = run_paths if isinstance(run_paths, RunPaths) else RunPaths.at(run_paths)
    if k_consecutive < 1:
        raise ValueError(f"k_consecutive must be at least 1 (alarms in a row), got {k_consecutive}")
    inputs = load_run_inputs(paths)
    chart = choose_chart_run(inputs.layout, chart_fault)
    scored = score_detectors(inputs, k_consecutive, chart)
    if not scored.succeeded:
        raise BenchmarkError(no_success_message(paths, scored.failures))
    images = draw_figures(inputs, scored, chart)
    written = write_benchmark(inputs, scored, images, k_consecutive)
    return Benchmark(scored.records, scored.failures, written, scored.succeeded)


def choose_chart_run(layout: TestLayout, chart_fault: int | None) -> ChartRun:
    """The test run drawn on the monitoring chart: the first run of ``chart_fault``.

    The default fault is 1 when present, else the first fault of the test split.
    """
    faults = layout.fault_ids
    if not faults:
        raise BenchmarkError("the test split has no faulty runs; nothing to detect. Check the data source.")
    if chart_fault is None:
        chart_fault = DEFAULT_CHART_FAULT if DEFAULT_CHART_FAULT in faults else faults[0]
    if chart_fault not in faults:
        raise BenchmarkError(f"chart fault {chart_fault} has no test runs; choose one of {faults}")
    run_id = layout.rows_of(chart_fault).run_ids[0]
    rows = np.flatnonzero(layout.run_id == run_id)
    return ChartRun(chart_fault, run_id, rows[np.argsort(layout.sample[rows], kind="stable")])


def score_detectors(inputs: RunInputs, k: int, chart: ChartRun) -> _Scored:
    """Metrics of every detector; one without usable predictions becomes rows of None with its reason."""
    scored = _Scored()
    for name in inputs.detectors:
        entry = manifest_entry(inputs.manifest, name)
        predictions, reason = predictions_or_reason(inputs, name, entry)
        if predictions is None:
            scored.failures.append({"detector": name, "state": entry.state, "reason": reason})
            scored.records += missing_detector_records(name, inputs.layout, entry.state, reason)
            continue
        scored.succeeded.append(name)
        scored.records += measure_detector(name, predictions.scores, predictions.alarms, inputs.layout,
                                           entry.state, k)
        scored.charts.append(figures.ChartSeries(name, inputs.layout.sample[chart.rows],
                                                 predictions.scores[chart.rows], predictions.threshold))
    return scored


def predictions_or_reason(inputs: RunInputs, name: str,
                          entry: ManifestEntry) -> tuple[Predictions | None, str | None]:
    """The detector's predictions, or why there are none (its manifest state, or a bad file)."""
    job = inputs.paths.job(name)
    if not succeeded(entry):
        return None, describe_failure(entry, job, inputs.paths)
    try:
        return load_predictions(job, inputs.layout.n_rows, inputs.meta.get("fingerprint")), None
    except PredictionError as error:
        return None, f"predictions unusable: {error}"


def no_success_message(paths: RunPaths, failures: list[dict]) -> str:
    if not failures:
        return (f"run {paths.name} has no detector jobs in its manifest; run 'orchestrate run' "
                "with at least one detector first.")
    lines = "; ".join(f"{f['detector']}: {f['state']} ({f['reason']})" for f in failures)
    return (f"no detector of run {paths.name} produced predictions, so there is no benchmark: {lines}. "
            f"Fix the cause and rerun 'orchestrate run' (logs are in {paths.jobs_dir}/<detector>/stderr.log).")


def draw_figures(inputs: RunInputs, scored: _Scored, chart: ChartRun) -> dict[str, bytes]:
    """PNG bytes by figure key; a figure without data (no memory samples) is left out."""
    detectors = inputs.detectors
    faults = inputs.layout.fault_ids
    by_key = {(r["detector"], r["fault"]): r["fdr"] for r in scored.records}
    fdr = np.array([[np.nan if by_key[(d, f)] is None else by_key[(d, f)] for f in faults] for d in detectors])
    states = {f["detector"]: f["state"] for f in scored.failures}
    labels = [f"{d} ({states[d]})" if d in states else d for d in detectors]
    images = {
        "fdr_heatmap": figures.plot_fdr_heatmap(labels, faults, fdr),
        "monitoring_chart": figures.plot_monitoring_chart(scored.charts, chart.fault, chart.run_id,
                                                          inputs.layout.onset),
    }
    memory = figures.plot_memory(load_memory_samples(inputs.paths),
                                 inputs.manifest.settings.get("memory_budget_bytes"))
    if memory is not None:
        images["memory"] = memory
    return images


def write_benchmark(inputs: RunInputs, scored: _Scored, images: dict[str, bytes], k: int) -> dict[str, Path]:
    """Write figures, metrics and both reports; returns the paths by short name."""
    paths = inputs.paths
    written = write_figures(paths, images)
    written["metrics.csv"] = write_metrics_csv(paths.benchmark_file("metrics.csv"), scored.records)
    written["metrics.json"] = atomic_write_json(paths.benchmark_file("metrics.json"),
                                                metrics_document(inputs, scored, k))
    title = f"Fault detection benchmark: run {inputs.manifest.run}"
    sections = report_sections(inputs, scored, images, k)
    written["report.md"] = atomic_write_bytes(paths.benchmark_file("report.md"),
                                              render_markdown(title, sections).encode("utf-8"))
    written["report.html"] = atomic_write_bytes(paths.benchmark_file("report.html"),
                                                render_html(title, sections).encode("utf-8"))
    return written


def write_figures(paths: RunPaths, images: dict[str, bytes]) -> dict[str, Path]:
    """Write each PNG; remove one this build did not draw, so no stale figure outlives its data."""
    written = {}
    for key, filename in FIGURE_FILES.items():
        target = paths.figures_dir / filename
        if key in images:
            written[f"figures/{filename}"] = atomic_write_bytes(target, images[key])
        elif target.exists():
            target.unlink()
    return written


def write_metrics_csv(path: Path, records: list[dict]) -> Path:
    """Tidy CSV ``detector,fault,metric,value``: one line per detector x fault x metric, None empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["detector", "fault", "metric", "value"])
    for record in records:
        for metric in metric_names(record["fault"]):
            value = record.get(metric)
            writer.writerow([record["detector"], record["fault"], metric, "" if value is None else repr(value)])
    return atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def metrics_document(inputs: RunInputs, scored: _Scored, k: int) -> dict:
    """Everything ``metrics.json`` holds: settings of the computation, detector states, records."""
    return {
        "run": inputs.manifest.run,
        "source": inputs.meta.get("source"),
        "faults": inputs.layout.fault_ids,
        "hard_faults": list(HARD_FAULTS),
        "onset": inputs.layout.onset,
        "sampling_minutes": inputs.layout.sampling_minutes,
        "k_consecutive": k,
        "definitions": METRIC_DEFINITIONS,
        "succeeded": scored.succeeded,
        "failures": scored.failures,
        "records": scored.records,
    }


def report_sections(inputs: RunInputs, scored: _Scored, images: dict[str, bytes], k: int) -> list[Section]:
    detectors = inputs.detectors
    faults = inputs.layout.fault_ids
    return [
        summary_section(scored.records, detectors, scored.failures),
        failures_section(scored.failures),
        *metric_sections(scored.records, detectors, faults, k),
        figures_section(images),
        run_facts_section(inputs.manifest, inputs.meta, detectors, k),
        definitions_section(k),
    ]


def figures_section(images: dict[str, bytes]) -> Section:
    titles = {"fdr_heatmap": "FDR per detector and fault",
              "monitoring_chart": "Monitoring chart: score, threshold and onset",
              "memory": "Worker memory over time against the budget"}
    blocks: list = [Image(titles[key], f"figures/{FIGURE_FILES[key]}", png) for key, png in images.items()]
    if "memory" not in images:
        blocks.append("No memory samples were recorded for this run (memory.jsonl is absent or empty).")
    return Section("Figures", blocks)


def records_to_dataframe(records: list[dict]):
    """The records as a pandas DataFrame (one row per detector x fault) when pandas is installed, else None."""
    try:
        import pandas
    except ImportError:
        return None
    return pandas.DataFrame.from_records(records)
