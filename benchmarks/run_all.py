"""``orchestrate run --all`` at Rieth scale, orchestrate's way against the notebook's way.

(a) subprocess executor with a memory budget (default 4GB), (b) the inline executor (every
detector in one process, one after another, as the seed notebook ran them, but with the same
streaming detectors as the workers), optionally (c) a 2GB budget with --on-oom shrink.
Prints wall time and peak RSS of the whole process tree for each, side by side in one run,
and the ratios a/b. Usage:

    python benchmarks/run_all.py                      # full size, production profile
    python benchmarks/run_all.py --size small --profile fast --also-2gb
    python benchmarks/run_all.py --also-2gb --repeat 2   # two interleaved rounds: the spread of the ratios

Each case starts from an empty run directory, so every detector trains; the memory and
duration history in ~/.cache/orchestrate (or $ORCHESTRATE_CACHE_DIR) is kept between cases,
as it is between a user's runs.

Measured (three rounds, 2 cores, both executors training the same models): README.md,
"Low-memory machines". Wall (a)/(b) 0.83-0.91; peak (a)/(b) 1.39; (c) completes at
1.15-1.17 GB.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from sampling import MB, ROOT, run_sampled

from orchestrator.memory import parse_size


def orchestrate_run(runs_dir: Path, executor: str, size: str, profile: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "run", "--all", "--size", size, "--profile", profile,
            "--executor", executor, "--runs-dir", str(runs_dir), "--progress", "plain", *extra]


def measure_case(label: str, command: list[str], log: Path, budget: int | None) -> dict:
    with open(log, "w") as handle:
        result = run_sampled(command, ROOT, stdout=handle, stderr=handle)
    # The parent itself is outside the workers' budget; the tree minus the parent is what the budget bounds.
    workers_peak = max((tree - parent for _, tree, parent in result.samples), default=0)
    return {"case": label, "seconds": result.seconds, "peak": result.peak_tree_bytes, "workers_peak": workers_peak,
            "parent_peak": result.peak_parent_bytes, "exit": result.returncode, "budget": budget, "log": log}


def print_table(rows: list[dict]) -> None:
    print(f"{'case':<44} {'exit':>4} {'wall s':>8} {'tree peak MB':>13} {'workers peak MB':>16} "
          f"{'parent peak MB':>15} {'budget MB':>10}")
    for row in rows:
        budget = f"{row['budget'] / MB:,.0f}" if row["budget"] else "-"
        print(f"{row['case']:<44} {row['exit']:>4} {row['seconds']:>8.1f} {row['peak'] / MB:>13,.0f} "
              f"{row['workers_peak'] / MB:>16,.0f} {row['parent_peak'] / MB:>15,.0f} {budget:>10}")


def print_ratios(a: dict, b: dict) -> None:
    print(f"\npeak ratio (a)/(b): {a['peak'] / b['peak']:.2f}   (target <= 0.6)")
    print(f"wall ratio (a)/(b): {a['seconds'] / b['seconds']:.2f}   (target <= 0.8)")
    if a["budget"]:
        print(f"(a) workers stayed within the budget: {a['workers_peak'] <= a['budget']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", choices=["tiny", "small", "full"])
    parser.add_argument("--profile", default="production", choices=["fast", "production"])
    parser.add_argument("--budget", default="4GB", help="memory budget of case (a)")
    parser.add_argument("--also-2gb", action="store_true", help="also run (c): 2GB budget with --on-oom shrink")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the cases this many times, interleaved (a, b, a, b...): this machine is noisy")
    args = parser.parse_args()
    budget = parse_size(args.budget)
    cases = [("(a) subprocess, budget " + args.budget, "subprocess", budget, ("--memory-budget", args.budget)),
             ("(b) inline (one process, the notebook's way)", "inline", None, ())]
    if args.also_2gb:
        cases.append(("(c) subprocess, budget 2GB, --on-oom shrink", "subprocess", parse_size("2GB"),
                      ("--memory-budget", "2GB", "--on-oom", "shrink", "--max-workers", "1")))
    rounds = []
    with tempfile.TemporaryDirectory(prefix="orchestrate-run-all-") as folder:
        folder = Path(folder)
        for repetition in range(args.repeat):
            rows = []
            for index, (label, executor, case_budget, extra) in enumerate(cases):
                name = f"r{repetition}c{index}"
                command = orchestrate_run(folder / name, executor, args.size, args.profile, *extra)
                rows.append(measure_case(label, command, folder / f"{name}.log", case_budget))
                print(f"done: {label} in {rows[-1]['seconds']:.0f} s (exit {rows[-1]['exit']})", file=sys.stderr)
                if rows[-1]["exit"] != 0:
                    print((folder / f"{name}.log").read_text()[-3000:], file=sys.stderr)
            rounds.append(rows)
    print(f"\norchestrate run --all --size {args.size} --profile {args.profile} on {cpu_count()} cores")
    for repetition, rows in enumerate(rounds, 1):
        print(f"\nround {repetition} of {len(rounds)}\n")
        print_table(rows)
        print_ratios(rows[0], rows[1])


def cpu_count() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
