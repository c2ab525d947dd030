"""build_benchmark on real run directories: a crashed detector, reruns, the HTML file, imports."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from artifacts import Manifest, ManifestEntry, ResultRecord, RunPaths, atomic_save_npy
from artifacts.checksums import digest_tree
from orchestrator.benchmark_inputs import BenchmarkError
from orchestrator.metrics import FAULT_METRICS, MEAN_METRICS, POOLED_METRICS
from orchestrator.report import build_benchmark, records_to_dataframe

REPO = Path(__file__).resolve().parents[1]
OOM_REASON = "crashed: SIGKILL(-9) — likely out of memory"
BUDGET = 2 * 1024 ** 3


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    """One prepared tiny synthetic dataset, copied into each run directory."""
    from workers.data import synthetic, writer
    paths = RunPaths.at(tmp_path_factory.mktemp("prepared"))
    writer.write_prepared(synthetic.load(None, {"size": "tiny"}), paths.dataset, "fp")
    return paths.dataset.root


def make_run(root: Path, dataset_dir: Path, jobs: dict[str, str]) -> RunPaths:
    """A run directory whose jobs are ``{name: state}``; ok jobs get a norm-of-row score."""
    paths = RunPaths.at(root)
    paths.dataset.root.mkdir(parents=True)
    for source in dataset_dir.iterdir():
        (paths.dataset.root / source.name).write_bytes(source.read_bytes())
    manifest = Manifest(run=paths.name, created=1_700_000_000.0, settings={
        "profile": "fast", "data": "synthetic", "memory_budget_bytes": BUDGET, "detectors": list(jobs)})
    manifest.jobs["prepare"] = ManifestEntry(state="ok", attempts=1, duration_s=0.5)
    for name, state in jobs.items():
        if state == "ok":
            save_predictions(paths, name)
            manifest.jobs[name] = ManifestEntry(state="ok", attempts=2, duration_s=4.25, peak_rss_bytes=300 << 20,
                                                degraded={"train_fraction": 0.5})
        else:
            manifest.jobs[name] = ManifestEntry(state=state, attempts=2, reason=OOM_REASON)
    manifest.save(paths.manifest)
    return paths


def save_predictions(paths: RunPaths, name: str) -> None:
    test = np.load(paths.dataset.array("test"))
    labels = np.load(paths.dataset.array("test_labels"))
    scores = np.square(test).sum(axis=1)
    threshold = float(np.percentile(scores[labels == 0], 99))
    job = paths.job(name)
    atomic_save_npy(job.scores, scores)
    atomic_save_npy(job.alarms, (scores > threshold).astype(np.int8))
    files = digest_tree(job.root, [job.scores.name, job.alarms.name])
    dataset_fingerprint = json.loads(paths.dataset.meta.read_text())["fingerprint"]
    ResultRecord(name=name, status="ok", fingerprint="f", started=0.0, ended=1.0, threshold=threshold,
                 files=files, extra={"dataset_fingerprint": dataset_fingerprint}).save(job.result)


def write_memory_samples(paths: RunPaths) -> None:
    lines = [json.dumps({"ts": 100.0 + t, "job": job, "rss_bytes": (200 + 10 * t) << 20})
             for t in range(5) for job in ("PCA_T2_SPE", "LSTM_VAE")]
    paths.memory_samples.write_text("\n".join(lines) + "\n")


@pytest.fixture
def run_with_crash(tmp_path, dataset_dir) -> RunPaths:
    paths = make_run(tmp_path / "run1", dataset_dir, {"PCA_T2_SPE": "ok", "LSTM_VAE": "crashed"})
    write_memory_samples(paths)
    return paths


def benchmark_bytes(paths: RunPaths) -> dict[str, bytes]:
    return {p.relative_to(paths.benchmark_dir).as_posix(): p.read_bytes()
            for p in sorted(paths.benchmark_dir.rglob("*")) if p.is_file()}


def test_crashed_detector_is_a_row_of_none_with_its_reason(run_with_crash):
    benchmark = build_benchmark(run_with_crash)
    assert benchmark.succeeded == ["PCA_T2_SPE"]
    assert benchmark.failures == [{"detector": "LSTM_VAE", "state": "crashed", "reason": OOM_REASON}]
    assert not benchmark.complete
    crashed = [r for r in benchmark.records if r["detector"] == "LSTM_VAE"]
    assert crashed and all(r["fdr"] is None and r["reason"] == OOM_REASON for r in crashed)
    report = run_with_crash.benchmark_file("report.md").read_text()
    assert "## Failures" in report and f"LSTM_VAE: crashed — {OOM_REASON}" in report
    assert "| 1 | " in report and "| crashed | — |" in report
    assert "trained on 50% of training runs" in report and "300.0 MiB" in report
    assert "Profile: fast" in report and "synthetic" in report


def test_outputs_are_written_where_run_paths_says(run_with_crash):
    benchmark = build_benchmark(run_with_crash)
    expected = {"metrics.csv", "metrics.json", "report.md", "report.html",
                "figures/fdr_heatmap.png", "figures/monitoring_chart.png", "figures/memory.png"}
    assert set(benchmark.paths) == expected
    assert all(path.is_file() and path.is_relative_to(run_with_crash.benchmark_dir)
               for path in benchmark.paths.values())
    assert all(png.read_bytes().startswith(b"\x89PNG") for png in run_with_crash.figures_dir.iterdir())


def test_metrics_csv_is_tidy_with_empty_values_for_the_crashed_detector(run_with_crash):
    build_benchmark(run_with_crash)
    with open(run_with_crash.benchmark_file("metrics.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    faults = json.loads(run_with_crash.dataset.meta.read_text())["faults"]
    per_detector = (len(faults) - 1) * len(FAULT_METRICS) + 2 * len(MEAN_METRICS) + len(POOLED_METRICS)
    assert len(rows) == 2 * per_detector
    assert list(rows[0]) == ["detector", "fault", "metric", "value"]
    assert all(r["value"] == "" for r in rows if r["detector"] == "LSTM_VAE")
    fdr = [r for r in rows if r["detector"] == "PCA_T2_SPE" and r["metric"] == "fdr" and r["fault"] == "1"]
    assert len(fdr) == 1 and 0.0 <= float(fdr[0]["value"]) <= 1.0


def test_metrics_json_names_the_failure(run_with_crash):
    build_benchmark(run_with_crash, k_consecutive=3)
    document = json.loads(run_with_crash.benchmark_file("metrics.json").read_text())
    assert document["k_consecutive"] == 3
    assert document["failures"][0]["reason"] == OOM_REASON
    assert document["succeeded"] == ["PCA_T2_SPE"]


def test_building_twice_gives_byte_identical_files(run_with_crash):
    build_benchmark(run_with_crash)
    first = benchmark_bytes(run_with_crash)
    build_benchmark(run_with_crash)
    assert benchmark_bytes(run_with_crash) == first


class ReferenceCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.references: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.references += [value for name, value in attrs if name in ("src", "href") and value]


def test_html_is_one_self_contained_file(run_with_crash):
    build_benchmark(run_with_crash)
    text = run_with_crash.benchmark_file("report.html").read_text(encoding="utf-8")
    parser = ReferenceCollector()
    parser.feed(text)
    parser.close()
    assert parser.references, "figures should be embedded as data URIs"
    assert all(ref.startswith("data:image/png;base64,") for ref in parser.references)
    assert "link" not in parser.tags and "script" not in parser.tags
    assert parser.tags.count("img") == 3 and "style" in parser.tags
    assert "LSTM_VAE: crashed" in text and "http://" not in text and "https://" not in text


def test_stale_memory_figure_is_removed_when_samples_are_gone(run_with_crash):
    build_benchmark(run_with_crash)
    run_with_crash.memory_samples.unlink()
    benchmark = build_benchmark(run_with_crash)
    assert "figures/memory.png" not in benchmark.paths
    assert not (run_with_crash.figures_dir / "memory.png").exists()
    assert "No memory samples" in run_with_crash.benchmark_file("report.md").read_text()


def test_ok_detector_with_missing_alarms_becomes_a_failure(tmp_path, dataset_dir):
    paths = make_run(tmp_path / "run", dataset_dir, {"PCA_T2_SPE": "ok", "PCA_SVM": "ok"})
    paths.job("PCA_SVM").alarms.unlink()
    benchmark = build_benchmark(paths)
    assert benchmark.succeeded == ["PCA_T2_SPE"]
    [failure] = benchmark.failures
    assert failure["detector"] == "PCA_SVM" and failure["state"] == "ok"
    assert "predictions unusable" in failure["reason"] and "alarms.npy is missing" in failure["reason"]


def test_no_successful_detector_is_a_clear_error(tmp_path, dataset_dir):
    paths = make_run(tmp_path / "run", dataset_dir, {"VAE_T2": "crashed", "PCA_AE": "oom_killed"})
    with pytest.raises(BenchmarkError, match="no detector of run run produced predictions") as error:
        build_benchmark(paths)
    assert "VAE_T2: crashed" in str(error.value) and "PCA_AE: oom_killed" in str(error.value)


def test_chart_fault_must_have_test_runs(run_with_crash):
    with pytest.raises(BenchmarkError, match="chart fault 99 has no test runs"):
        build_benchmark(run_with_crash, chart_fault=99)
    assert build_benchmark(run_with_crash, chart_fault=6).succeeded == ["PCA_T2_SPE"]


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(BenchmarkError, match="no manifest.json"):
        build_benchmark(tmp_path)


def test_records_to_dataframe(run_with_crash):
    records = build_benchmark(run_with_crash).records
    frame = records_to_dataframe(records)
    if importlib.util.find_spec("pandas") is None:
        assert frame is None
    else:
        assert len(frame) == len(records) and {"detector", "fault", "fdr"} <= set(frame.columns)


def test_report_modules_import_no_ml_framework():
    code = ("import sys, orchestrator.metrics, orchestrator.report, orchestrator.figures\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'scipy') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
