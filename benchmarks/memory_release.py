"""Does memory go back to the OS between detectors? One process vs one fresh process per detector.

    .venv/bin/python benchmarks/memory_release.py                   # size small, profile production
    .venv/bin/python benchmarks/memory_release.py --size tiny --profile fast

(a) in-process, the notebook's way: one long-lived Python process imports the
    three Keras detectors, fits and scores them one after another, calling
    ``keras.backend.clear_session()`` and ``gc.collect()`` in between;
(b) one fresh ``python -c`` process per detector (what ``python -m workers``
    does for the orchestrator); the long-lived process only waits.
For each: the long-lived process's RSS after each model, and the peak RSS of the
whole process tree (psutil, sampled every 50 ms, children included).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import psutil

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


class TreePeak:
    """Samples the RSS of this process plus all its descendants; keeps the peak."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s, self.peak = interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.interval_s):
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass   # exited between listing and reading
            self.peak = max(self.peak, total)


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
    return rows, peak.peak


def measure_subprocess_per_detector(profile: str, folder: Path) -> tuple[list[dict], int]:
    """(b): the long-lived process is this one; each detector gets a fresh interpreter."""
    rows = []
    with TreePeak() as peak:
        for name in DEEP:
            child = run_python([profile, str(folder), name])[-1]
            rows.append({"after": name, "rss_gb": psutil.Process().memory_info().rss / GB,
                         "worker_rss_gb": child["rss_gb"]})
    return rows, peak.peak


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memory_release_") as tmp:
        write_dataset(Path(tmp), args.size)
        inline_rows, inline_peak = measure_in_process(args.profile, Path(tmp))
        worker_rows, worker_peak = measure_subprocess_per_detector(args.profile, Path(tmp))
    print(f"synthetic size={args.size}, profile={args.profile}, detectors {', '.join(DEEP)}")
    print_table("(a) one process, clear_session() + gc.collect() between models", inline_rows, inline_peak)
    print_table("(b) one fresh process per detector", worker_rows, worker_peak)
    print(f"\npeak tree RSS ratio (a)/(b): {inline_peak / worker_peak:.2f}")


if __name__ == "__main__":
    main()
