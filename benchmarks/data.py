"""Preparation time and peak RSS of the data sources, each prepared in a fresh process.

    .venv/bin/python benchmarks/data.py [--rows 1000000]

Cases: ``synthetic`` at size full, and a Rieth-layout CSV folder whose TEP_Faulty_Testing.csv
has about ``--rows`` rows (generated into a temporary folder from the synthetic plant), which
``rieth`` streams chunk by chunk. Peak RSS is sampled every 20 ms over the whole process tree
(psutil). Target: peak RSS < 3x the largest prepared array.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sampling import run_sampled  # noqa: E402  (benchmarks/sampling.py, next to this script)

PREPARE = ("import sys; from artifacts import DatasetPaths; from workers.data.prepare import prepare_dataset; "
           "prepare_dataset(sys.argv[1], sys.argv[2] or None, __import__('json').loads(sys.argv[3]), "
           "DatasetPaths(__import__('pathlib').Path(sys.argv[4])), 'benchmark')")
MB = 1 << 20


def measure_prepare(kind: str, location: str, options: str, out: Path) -> tuple[float, int]:
    """Seconds and peak tree RSS (bytes) of one preparation in a fresh interpreter."""
    result = run_sampled([sys.executable, "-c", PREPARE, kind, location, options, str(out)], ROOT, interval_s=0.02)
    if result.returncode != 0:
        raise SystemExit(f"preparing {kind}:{location} failed with exit status {result.returncode}")
    return result.seconds, result.peak_tree_bytes


def write_rieth_csv(folder: Path, rows: int) -> int:
    """Fault-free training (50 runs) and faulty testing with ~``rows`` rows; returns the latter's rows."""
    from workers.data.rieth_fixture import write_rieth_table

    runs_per_fault = max(1, rows // (20 * 960))
    write_rieth_table(folder / "TEP_FaultFree_Training.csv", [0], 50, 500, seed=1)
    write_rieth_table(folder / "TEP_Faulty_Testing.csv", list(range(1, 21)), runs_per_fault, 960, seed=2)
    return 20 * runs_per_fault * 960


def report_row(case: str, input_rows: int, seconds: float, peak: int, out: Path) -> str:
    largest = max(path.stat().st_size for path in out.glob("*.npy"))
    ratio = peak / largest
    return (f"| {case:<34} | {input_rows:>10,} | {seconds:>7.1f} | {peak / MB:>8.0f} | {largest / MB:>9.0f} | "
            f"{ratio:>5.2f} | {'yes' if ratio < 3 else 'NO':<4} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the Rieth testing CSV (default 1e6)")
    args = parser.parse_args()
    lines = ["| case                               | input rows | seconds | peak MB | largest MB | ratio | <3x  |",
             "|------------------------------------|-----------:|--------:|--------:|-----------:|------:|------|"]
    with tempfile.TemporaryDirectory(prefix="orchestrate-bench-data-") as folder:
        folder = Path(folder)
        seconds, peak = measure_prepare("synthetic", "", '{"size": "full"}', folder / "synthetic")
        lines.append(report_row("synthetic, size full", 250_000 + 25_000 + 211_200, seconds, peak, folder / "synthetic"))
        (folder / "rieth").mkdir()
        started = time.perf_counter()
        test_rows = write_rieth_csv(folder / "rieth", args.rows)
        print(f"generated Rieth-layout CSV ({test_rows:,} test rows) in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        size = (folder / "rieth" / "TEP_Faulty_Testing.csv").stat().st_size
        seconds, peak = measure_prepare("rieth", str(folder / "rieth"), "{}", folder / "rieth_out")
        lines.append(report_row(f"rieth CSV ({size / MB:.0f} MB test file)", test_rows + 25_000, seconds, peak,
                                folder / "rieth_out"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
