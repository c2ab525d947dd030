"""All seven detectors on the real Braatz TEP data, through ``orchestrate run`` itself.

Unlike ``braatz_comparison.py`` (classical detectors fitted in one process, T2 and SPE
separately), this runs the real pipeline — prepare job, one worker per detector, saved
predictions, the benchmark — and prints the per-fault detection rates from its
``metrics.csv`` as a Markdown table. Usage:

    python benchmarks/braatz_pipeline.py [--data-dir ../shared/data/tep-braatz] [--profile production]
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARD_FAULTS = {3, 9, 15}


def run_pipeline(data_dir: Path, profile: str, runs_dir: Path) -> Path:
    command = [sys.executable, "-m", "orchestrator", "run", "--all", "--data", f"braatz:{data_dir}",
               "--profile", profile, "--runs-dir", str(runs_dir), "--progress", "quiet"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        raise SystemExit(f"orchestrate run failed ({result.returncode}):\n{result.stderr}")
    return runs_dir / "default" / "benchmark" / "metrics.csv"


def read_metrics(path: Path) -> dict[tuple[str, str, str], float]:
    with open(path, newline="") as handle:
        return {(row["detector"], row["fault"], row["metric"]): float(row["value"])
                for row in csv.DictReader(handle) if row["value"] != ""}


def format_table(metrics: dict) -> str:
    detectors = list(dict.fromkeys(key[0] for key in metrics))
    faults = sorted({int(key[1]) for key in metrics if key[1].isdigit()})
    lines = ["| fault | " + " | ".join(detectors) + " |", "|---" * (len(detectors) + 1) + "|"]
    for fault in faults:
        cells = [f"{metrics.get((d, str(fault), 'fdr'), float('nan')):.3f}" for d in detectors]
        lines.append(f"| {fault}{' (hard)' if fault in HARD_FAULTS else ''} | " + " | ".join(cells) + " |")
    for label, fault, metric in (("mean FDR", "mean", "fdr"), ("mean FDR without 3, 9, 15", "mean_without_hard", "fdr"),
                                 ("pooled FAR", "pooled", "far"), ("pooled ROC AUC", "pooled", "auc")):
        cells = [f"{metrics.get((d, fault, metric), float('nan')):.3f}" for d in detectors]
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "tep-braatz")
    parser.add_argument("--profile", default="production", choices=["fast", "production"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchestrate-braatz-") as folder:
        metrics = read_metrics(run_pipeline(args.data_dir.resolve(), args.profile, Path(folder)))
    print(format_table(metrics))


if __name__ == "__main__":
    main()
