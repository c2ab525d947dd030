"""What does each executor cost? One ``orchestrate run`` per executor, side by side.

    .venv/bin/python benchmarks/executors.py                          # --all, size tiny
    .venv/bin/python benchmarks/executors.py --size small --executors subprocess,ray
    .venv/bin/python benchmarks/executors.py --only PCA_T2_SPE,PCA_SVM --repeat 3

Each executor runs the same command in a fresh run directory (same data, same
seed) as a child process: ``python -m orchestrator run ... --executor X``. While
it runs, the RSS of the orchestrator and all its descendants (workers; for Ray
also gcs_server, raylet, agents and Ray's worker processes) is summed every
50 ms; the table shows the peak of that sum and the wall time (without building
the report, which is the same work for every executor). RSS counts shared
pages once per process, so the sums overstate what the tree really holds, the
same way for every executor. "sum of job s" adds the jobs' durations from the
manifest. On a busy machine, use --repeat: runs alternate between executors.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sampling import TreePeak  # noqa: E402  (benchmarks/sampling.py, next to this script)

EXECUTORS = ("subprocess", "inline", "ray")
MB = 2**20


def run_command(executor: str, selection: list[str], size: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "run", *selection, "--size", size, "--executor", executor,
            "--progress", "quiet", "--no-report"]


def measure(executor: str, selection: list[str], size: str, folder: Path) -> dict:
    """Run one executor to its end; wall time, peak tree RSS, exit code, job states and job time."""
    env = {**os.environ, "ORCHESTRATE_CACHE_DIR": str(folder / "cache")}   # no memory history carried over
    started = time.perf_counter()
    with open(folder / "output.log", "w") as log:
        process = subprocess.Popen(run_command(executor, selection, size), cwd=folder, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        with TreePeak(process.pid) as peak:
            returncode = process.wait()
    wall_s = time.perf_counter() - started
    jobs = json.loads((folder / "runs" / "default" / "manifest.json").read_text())["jobs"]
    return {"executor": executor, "exit": returncode, "wall_s": wall_s, "peak_mb": peak.peak_bytes / MB,
            "ok": sum(entry["state"] == "ok" for entry in jobs.values()), "jobs": len(jobs),
            "job_s": sum(entry.get("duration_s") or 0.0 for entry in jobs.values())}


def print_table(rows: list[dict]) -> None:
    header = f"{'executor':<11} {'exit':>4} {'jobs ok':>8} {'wall s':>7} {'sum of job s':>12} {'peak tree RSS MB':>17}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['executor']:<11} {row['exit']:>4} {row['ok']:>3}/{row['jobs']:<4} {row['wall_s']:>7.1f} "
              f"{row['job_s']:>12.1f} {row['peak_mb']:>17,.0f}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", help="synthetic size: tiny, small, full (default: tiny)")
    parser.add_argument("--only", default=None, metavar="A,B", help="detectors to run (default: --all)")
    parser.add_argument("--executors", default=",".join(EXECUTORS),
                        help=f"comma separated, in this order (default: {','.join(EXECUTORS)})")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all executors (default: 1)")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    selection = ["--only", args.only] if args.only else ["--all"]
    executors = [name.strip() for name in args.executors.split(",") if name.strip()]
    unknown = sorted(set(executors) - set(EXECUTORS))
    if unknown:
        sys.exit(f"unknown executor(s) {', '.join(unknown)}; choose from {', '.join(EXECUTORS)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="executors_") as tmp:
        for round_number in range(args.repeat):
            for executor in executors:
                folder = Path(tmp) / f"{executor}-{round_number}"
                folder.mkdir()
                rows.append(measure(executor, selection, args.size, folder))
                report_progress(rows[-1], folder)
    print(f"\norchestrate run {' '.join(selection)} --size {args.size}, {os.cpu_count()} CPUs")
    print_table(sorted(rows, key=lambda row: executors.index(row["executor"])))


def report_progress(row: dict, folder: Path) -> None:
    print(f"{row['executor']}: done in {row['wall_s']:.1f} s (exit {row['exit']})", file=sys.stderr)
    if row["exit"] not in (0, 1):   # a usage or setup error: show why
        print((folder / "output.log").read_text()[-3000:], file=sys.stderr)


if __name__ == "__main__":
    main()
