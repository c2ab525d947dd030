"""Fit and scoring speed and peak memory of each detector, one subprocess each.

Targets (issue 4, classical detectors, production profile, one core):
fit <= 60 s on 250,000 x 52 rows, worker peak RSS <= 1.5 GB, scoring
>= 200,000 rows/s on 1,000,000 rows (PCA_T2_SPE >= 2,000,000 rows/s).

The parent generates the synthetic TEP-shaped data (size full: 250,000
training rows), standardizes it with training statistics as ``prepare`` does,
tiles the test set to ``--test-rows`` and saves .npy files; each detector then
runs in a fresh ``python benchmarks/detectors.py --child NAME DIR`` with one
BLAS/OpenMP thread, and the parent samples that process tree's RSS with psutil.

    .venv/bin/python benchmarks/detectors.py
    .venv/bin/python benchmarks/detectors.py --detectors PCA_T2_SPE,PCA_SVM --test-rows 200000
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.supervise import thread_environment  # noqa: E402  (after the path: runs from a checkout)
from sampling import run_sampled  # noqa: E402  (benchmarks/sampling.py, next to this script)

FIT_LIMIT_S = 60.0
RSS_LIMIT_MB = 1536.0
SCORE_TARGET = {"PCA_T2_SPE": 2_000_000}
SCORE_TARGET_DEFAULT = 200_000
CLASSICAL = ("PCA_T2_SPE", "PCA_SVM", "KPCA_SVM", "ICA_SVM")


def prepare_data(directory: Path, test_rows: int, size: str) -> dict:
    """Generate, standardize and save train/valid/test(+labels) as float32 .npy."""
    import numpy as np
    from workers.data.synthetic import load
    data = load(None, {"size": size}, seed=0)
    mean, std = data.train.mean(axis=0, dtype=np.float64), data.train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    scale = lambda X: ((X - mean) / std).astype(np.float32)   # noqa: E731
    np.save(directory / "train.npy", scale(data.train))
    np.save(directory / "valid.npy", scale(data.valid))
    reps = -(-test_rows // len(data.test))
    np.save(directory / "test.npy", np.tile(scale(data.test), (reps, 1))[:test_rows])
    np.save(directory / "test_labels.npy", data.test_labels)    # labels of the untiled rows
    return {"train_rows": len(data.train), "test_rows": test_rows}


def run_child(name: str, directory: Path, profile: str) -> dict:
    """Inside the worker: fit, score, and report timings as one JSON line."""
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from artifacts.registry import builtin_registry
    from workers.detectors.loading import build_detector
    info = builtin_registry()[name]
    train, valid = np.load(directory / "train.npy"), np.load(directory / "valid.npy")
    test, labels = np.load(directory / "test.npy", mmap_mode="r"), np.load(directory / "test_labels.npy")
    detector = build_detector(info.entry, info.params(profile))
    start = time.perf_counter()
    detector.fit(train, X_valid=valid)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = detector.decision_function(test)
    score_s = time.perf_counter() - start
    labels = labels[:len(scores)]   # the test set is tiled (or cut) to --test-rows
    head = scores[:len(labels)]
    return {"fit_s": fit_s, "score_s": score_s, "rows_per_s": len(test) / score_s,
            "auc": float(roc_auc_score(labels > 0, head)),
            "far": float(np.mean(head[labels == 0] > detector.threshold_))}


def child_environment(threads: int) -> dict:
    return {**os.environ, **thread_environment(threads), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}


def measure_detector(name: str, directory: Path, profile: str, threads: int) -> dict:
    """Run the child, sampling its process tree's RSS; return its report + peak RSS."""
    command = [sys.executable, __file__, "--child", name, str(directory), "--profile", profile]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        result = run_sampled(command, ROOT, interval_s=0.05, stdout=stdout, stderr=stderr,
                             env=child_environment(threads))
        stdout.seek(0), stderr.seek(0)
        out, err = stdout.read().strip(), stderr.read().strip()
    if result.returncode != 0:
        return {"error": f"exit {result.returncode}: {err.splitlines()[-1] if err else ''}"}
    report = json.loads(out.splitlines()[-1])
    report["peak_rss_mb"] = result.peak_tree_bytes / 2**20
    return report


def judge(name: str, report: dict) -> str:
    """PASS/FAIL against the issue-4 targets; deep detectors have none here."""
    if name not in CLASSICAL:
        return "-"
    target = SCORE_TARGET.get(name, SCORE_TARGET_DEFAULT)
    ok = report["fit_s"] <= FIT_LIMIT_S and report["peak_rss_mb"] <= RSS_LIMIT_MB and report["rows_per_s"] >= target
    return "PASS" if ok else "FAIL"


def format_row(name: str, report: dict) -> str:
    if "error" in report or "skipped" in report:
        return f"| {name} | {report.get('error') or report.get('skipped')} | | | | | | |"
    return (f"| {name} | {report['fit_s']:.1f} | {report['rows_per_s']:,.0f} | {report['peak_rss_mb']:,.0f} | "
            f"{report['auc']:.3f} | {report['far']:.3f} | {judge(name, report)} |")


def module_exists(entry: str) -> bool:
    return importlib.util.find_spec(entry.partition(":")[0]) is not None


def main(argv=None) -> int:
    from artifacts.registry import builtin_registry
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", default="", help="comma-separated names (default: all registered)")
    parser.add_argument("--profile", default="production", help="registry profile (default: production)")
    parser.add_argument("--test-rows", type=int, default=1_000_000, help="scored rows (default: 1,000,000)")
    parser.add_argument("--size", default="full", help="synthetic size: tiny, small, full (default: full)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads per worker (default: 1)")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child[0], Path(args.child[1]), args.profile)))
        return 0
    registry = builtin_registry()
    names = [n.strip() for n in args.detectors.split(",") if n.strip()] or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        parser.error(f"unknown detector(s) {', '.join(unknown)}; registered: {', '.join(registry)}")
    with tempfile.TemporaryDirectory(prefix="bench-detectors-") as tmp:
        shape = prepare_data(Path(tmp), args.test_rows, args.size)
        print(f"synthetic size={args.size}: {shape['train_rows']:,} training rows, {shape['test_rows']:,} scored rows, "
              f"profile={args.profile}, threads={args.threads}\n")
        print("| detector | fit s | score rows/s | peak RSS MB | ROC AUC | FAR | targets |")
        print("|---|---|---|---|---|---|---|")
        for name in names:
            if not module_exists(registry[name].entry):
                report = {"skipped": f"skipped: module {registry[name].entry.partition(':')[0]} does not exist"}
            else:
                report = measure_detector(name, Path(tmp), args.profile, args.threads)
            print(format_row(name, report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
