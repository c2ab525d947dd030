"""Does memory go back to the OS between detectors? One process vs one fresh process per detector.

    .venv/bin/python benchmarks/memory_release.py                   # size small, profile production
    .venv/bin/python benchmarks/memory_release.py --size tiny --profile fast

(a) in-process, the notebook's way: one long-lived Python process imports the
    three Keras detectors, fits and scores them one after another, calling
    ``keras.backend.clear_session()`` and ``gc.collect()`` in between;
(b) one fresh ``python -c`` process per detector (what ``python -m workers``
    does for the orchestrator); the long-lived process only waits.
For each: the long-lived process's RSS after each model, and the peak RSS of the
whole process tree (psutil, sampled every 50 ms, children included;
benchmarks/sampling.py).

With ``--orchestrator`` it also runs the real CLI, ``orchestrate run --executor
inline`` (detectors inside the orchestrator) vs ``--executor subprocess``, one
worker at a time, and prints the orchestrator's RSS at its end and the tree peak.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import psutil
from sampling import TreePeak, run_sampled   # benchmarks/sampling.py, next to this script

ROOT = Path(__file__).resolve().parents[1]
DEEP = ("LSTM_VAE", "VAE_T2", "PCA_AE")
GB = 2**30

# Fits and scores the named detectors in this one process; prints its RSS after each.
FIT_AND_SCORE = r"""
import gc, json, sys
import numpy as np, psutil
from artifacts.registry import builtin_registry
from workers.detectors.loading import build_detector
profile, folder, names = sys.argv[1], sys.argv[2], sys.argv[3:]
a = {k: np.load(f"{folder}/{k}.npy", mmap_mode="r") for k in ("train", "train_groups", "valid", "valid_groups", "test", "test_groups")}
for name in names:
    info = builtin_registry()[name]
    detector = build_detector(info.entry, info.params(profile))
    detector.fit(a["train"], groups=a["train_groups"], X_valid=a["valid"], groups_valid=a["valid_groups"])
    detector.decision_function(a["test"], groups=a["test_groups"])
    del detector
    import keras
    keras.backend.clear_session()
    gc.collect()
    print(json.dumps({"after": name, "rss_gb": psutil.Process().memory_info().rss / 2**30}), flush=True)
"""


def run_python(script_args: list[str]) -> list[dict]:
    """Run FIT_AND_SCORE in a fresh interpreter; returns its JSON lines."""
    done = subprocess.run([sys.executable, "-c", FIT_AND_SCORE, *script_args], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"child {script_args} exited {done.returncode}; stderr tail:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def measure_in_process(profile: str, folder: Path) -> tuple[list[dict], int]:
    """(a): the notebook is ONE long-lived process (here a child, so the tree is just it)."""
    with TreePeak() as peak:
        rows = run_python([profile, str(folder), *DEEP])
    return rows, peak.peak_bytes


def measure_subprocess_per_detector(profile: str, folder: Path) -> tuple[list[dict], int]:
    """(b): the long-lived process is this one; each detector gets a fresh interpreter."""
    rows = []
    with TreePeak() as peak:
        for name in DEEP:
            child = run_python([profile, str(folder), name])[-1]
            rows.append({"after": name, "rss_gb": psutil.Process().memory_info().rss / GB,
                         "worker_rss_gb": child["rss_gb"]})
    return rows, peak.peak_bytes


def measure_orchestrator(executor: str, size: str, profile: str, runs_dir: Path) -> tuple[int, int]:
    """(orchestrator RSS at its last sample, tree peak) for one real ``orchestrate run``."""
    command = [sys.executable, "-m", "orchestrator", "run", "--only", ",".join(DEEP), "--size", size,
               "--profile", profile, "--executor", executor, "--max-workers", "1", "--runs-dir", str(runs_dir),
               "--run", executor, "--progress", "quiet", "--no-report", "--force"]
    log = runs_dir / f"{executor}.stderr.log"   # a file, not a pipe: nobody reads a pipe while it runs
    with open(log, "w") as stderr:
        measured = run_sampled(command, ROOT, interval_s=0.05, stdout=subprocess.DEVNULL, stderr=stderr)
    if measured.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {measured.returncode}; stderr tail:\n{log.read_text()[-3000:]}")
    last_parent = next((parent for _, _, parent in reversed(measured.samples) if parent), 0)
    return last_parent, measured.peak_tree_bytes


def compare_executors(size: str, profile: str) -> None:
    with tempfile.TemporaryDirectory(prefix="memory_release_runs_") as runs:
        results = {executor: measure_orchestrator(executor, size, profile, Path(runs))
                   for executor in ("inline", "subprocess")}
    print("\n(c) the real CLI: orchestrate run --only LSTM_VAE,VAE_T2,PCA_AE --max-workers 1")
    for executor, (last, peak) in results.items():
        print(f"  --executor {executor:<10} orchestrator RSS at the end {last / GB:.2f} GB, "
              f"tree peak {peak / GB:.2f} GB")
    print(f"  peak tree RSS ratio inline/subprocess: {results['inline'][1] / results['subprocess'][1]:.2f}")


def write_dataset(folder: Path, size: str) -> None:
    sys.path.insert(0, str(ROOT))
    from workers.data import synthetic

    data = synthetic.load(None, {"size": size}, seed=0)
    for key in ("train", "train_groups", "valid", "valid_groups", "test", "test_groups"):
        np.save(folder / f"{key}.npy", np.asarray(getattr(data, key)))


def print_table(title: str, rows: list[dict], peak: int) -> None:
    print(f"\n{title}")
    for row in rows:
        extra = f"  (worker at exit {row['worker_rss_gb']:.2f} GB)" if "worker_rss_gb" in row else ""
        print(f"  after {row['after']:<9} long-lived process RSS {row['rss_gb']:.2f} GB{extra}")
    print(f"  peak RSS of the process tree: {peak / GB:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", help="synthetic size: tiny, small, full (default: small)")
    parser.add_argument("--profile", default="production", help="registry profile (default: production)")
    parser.add_argument("--orchestrator", action="store_true",
                        help="also compare the real CLI's inline and subprocess executors")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memory_release_") as tmp:
        write_dataset(Path(tmp), args.size)
        inline_rows, inline_peak = measure_in_process(args.profile, Path(tmp))
        worker_rows, worker_peak = measure_subprocess_per_detector(args.profile, Path(tmp))
    print(f"synthetic size={args.size}, profile={args.profile}, detectors {', '.join(DEEP)}")
    print_table("(a) one process, clear_session() + gc.collect() between models", inline_rows, inline_peak)
    print_table("(b) one fresh process per detector", worker_rows, worker_peak)
    print(f"\npeak tree RSS ratio (a)/(b): {inline_peak / worker_peak:.2f}")
    if args.orchestrator:
        compare_executors(args.size, args.profile)


if __name__ == "__main__":
    main()
