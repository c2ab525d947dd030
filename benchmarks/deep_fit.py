"""Fit time, scoring speed and peak RSS of the Keras detectors, one fresh process each.

    .venv/bin/python benchmarks/deep_fit.py                       # production profile, size full
    .venv/bin/python benchmarks/deep_fit.py --profile fast --size small LSTM_VAE
    .venv/bin/python benchmarks/deep_fit.py --size small --param ae_input=residual PCA_AE

The dataset is generated once into a temporary folder as .npy files; each
detector then runs in its own ``python -c`` process that memmaps them, as a
worker does, so its peak RSS (``ru_maxrss``) is the worker's alone.

Measured (size full: 250,000 x 52 training rows, 211,200 test rows; 2 cores,
tensorflow-cpu 2.21, one TensorFlow thread per op (intra_op_threads=1); AUC over all
faults; FAR/FDR at threshold_):

    detector  profile     fit    epochs  score rows/s  peak RSS  AUC    FAR    FDR
    LSTM_VAE  production  157 s  40/40    126k         1.12 GB   0.804  0.009  0.359
    VAE_T2    production   14 s  11/50   1158k         0.92 GB   0.809  0.011  0.521
    PCA_AE    production   27 s  26/50    706k         0.92 GB   0.814  0.010  0.546

Earlier, with two TensorFlow threads (the fast profile was not measured again):

    LSTM_VAE  fast          29 s   5/5     562k         0.98 GB   0.750  0.052  0.404
    VAE_T2    fast          19 s   7/10   1090k         0.90 GB   0.743  0.009  0.307
    PCA_AE    fast          17 s   7/10    304k         0.91 GB   0.810  0.010  0.529
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEEP = ("LSTM_VAE", "VAE_T2", "PCA_AE")
ARRAYS = ("train", "train_groups", "valid", "valid_groups", "test", "test_groups", "test_labels")

CHILD = r"""
import json, resource, sys, time
import numpy as np
from artifacts.registry import builtin_registry
from workers.detectors.loading import build_detector
from sklearn.metrics import roc_auc_score
name, profile, folder, overrides = sys.argv[1:5]
a = {key: np.load(f"{folder}/{key}.npy", mmap_mode="r") for key in %(arrays)r}
info = builtin_registry()[name]
detector = build_detector(info.entry, {**info.params(profile), **json.loads(overrides)})
epochs = []
detector.set_progress_callback(lambda **f: epochs.append(f))
start = time.perf_counter()
detector.fit(a["train"], groups=a["train_groups"], X_valid=a["valid"], groups_valid=a["valid_groups"])
fit_s = time.perf_counter() - start
start = time.perf_counter()
scores = detector.decision_function(a["test"], groups=a["test_groups"])
score_s = time.perf_counter() - start
alarms = scores > detector.threshold_
in_control = np.asarray(a["test_labels"]) == 0
print(json.dumps({
    "detector": name, "profile": profile, "overrides": json.loads(overrides), "train_rows": int(a["train"].shape[0]), "fit_s": round(fit_s, 1),
    "epochs_run": len(epochs), "last_epoch": epochs[-1] if epochs else None,
    "score_rows": int(scores.shape[0]), "score_rows_per_s": round(scores.shape[0] / score_s),
    "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    "auc": round(float(roc_auc_score(~in_control, scores)), 3),
    "far": round(float(alarms[in_control].mean()), 4), "fdr": round(float(alarms[~in_control].mean()), 4),
}))
""" % {"arrays": ARRAYS}


def write_dataset(folder: Path, size: str) -> None:
    """Generate the synthetic dataset once; the children memmap the .npy files."""
    sys.path.insert(0, str(ROOT))
    from workers.data import synthetic

    data = synthetic.load(None, {"size": size}, seed=0)
    for key in ARRAYS:
        np.save(folder / f"{key}.npy", np.asarray(getattr(data, key)))


def measure_detector(name: str, profile: str, folder: Path, overrides: dict) -> dict:
    """Run one detector in a fresh interpreter; its last stdout line is the JSON result."""
    done = subprocess.run([sys.executable, "-c", CHILD, name, profile, str(folder), json.dumps(overrides)], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        return {"detector": name, "error": f"exit {done.returncode}: {done.stderr[-2000:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_override(item: str) -> tuple[str, object]:
    key, sep, raw = item.partition("=")
    if not sep:
        raise SystemExit(f"--param {item!r}: write KEY=VALUE, e.g. --param epochs=5")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("detectors", nargs="*", default=list(DEEP), help="default: all three")
    parser.add_argument("--profile", default="production", help="registry profile (default: production)")
    parser.add_argument("--size", default="full", help="synthetic size: tiny, small, full (default: full)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile parameter (value read as JSON when it can be); repeatable")
    args = parser.parse_args()
    overrides = dict(parse_override(item) for item in args.param)
    with tempfile.TemporaryDirectory(prefix="deep_fit_") as tmp:
        write_dataset(Path(tmp), args.size)
        for name in args.detectors:
            print(json.dumps(measure_detector(name, args.profile, Path(tmp), overrides)), flush=True)


if __name__ == "__main__":
    main()
