"""What does the orchestration itself cost? The parent's memory and a worker's start time.

    .venv/bin/python benchmarks/overhead.py                      # 5 repeats
    .venv/bin/python benchmarks/overhead.py --repeats 9 --only PCA_T2_SPE,PCA_SVM,ICA_SVM

(a) peak RSS of the orchestrator process alone (psutil every 10 ms, children
    not counted) during a real ``python -m orchestrator run --size small``;
    target < 100 MB.
(b) spawn-to-first-line of a real worker: ``python -m workers <job_dir>`` with
    the worker's own environment (``worker_environment``) on a job whose
    detector module imports one library, prints a line and exits. Minus the
    same measurement of a bare ``python -c "<the same import>; print()"``,
    that is the worker's own start cost beyond the imports it needs (reading
    job.json, the crash guards, opening the memmapped dataset, the detector
    registry); target <= 0.3 s.
Every number is the median of ``--repeats`` runs (one warm-up run first).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artifacts import JobSpec  # noqa: E402  (after the path: runs from a checkout)
from orchestrator.supervise import worker_environment  # noqa: E402
from sampling import run_sampled  # noqa: E402  (benchmarks/sampling.py, next to this script)

PARENT_TARGET_MB = 100
START_TARGET_S = 0.3
#: what each kind of worker imports; the bare baseline imports exactly the same
IMPORTS = {
    "numpy": "import numpy",
    "scikit-learn": "import sklearn.decomposition, sklearn.svm",
    "tensorflow": "import tensorflow",
}
# The detector module of the probe job: import the library, say so, leave at once.
PROBE_MODULE = "{imports}\nimport os\nprint('first line', flush=True)\nos._exit(0)\n"


# ---- (a) the parent's memory ---------------------------------------------------------------
def measure_parent_run(workdir: Path, only: str, size: str) -> tuple[int, float]:
    """(peak RSS of the orchestrator in bytes, wall seconds) of one fresh run in ``workdir``."""
    command = [sys.executable, "-m", "orchestrator", "run", "--only", only, "--size", size,
               "--progress", "quiet", "--runs-dir", str(workdir / "runs")]
    env = {**os.environ, "ORCHESTRATE_CACHE_DIR": str(workdir / "cache"), "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as stderr:
        result = run_sampled(command, workdir, interval_s=0.01, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace").splitlines()[-10:]
    if result.returncode != 0:
        raise SystemExit(f"'{' '.join(command)}' exited {result.returncode}:\n" + "\n".join(tail))
    return result.peak_parent_bytes, result.seconds


# ---- (b) a worker's start ------------------------------------------------------------------
def time_to_first_line(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds from Popen to the first line on the child's stdout."""
    log = cwd / "overhead_stderr.log"
    with open(log, "wb") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd, start_new_session=True)
        line = process.stdout.readline()
        elapsed = time.perf_counter() - start
    process.stdout.close()
    process.wait()
    if not line:
        raise SystemExit(f"'{' '.join(command)}' printed nothing (exit {process.returncode}):\n"
                         f"{log.read_text(errors='replace')[-2000:]}")
    return elapsed


def write_probe_job(template: JobSpec, library: str, folder: Path) -> JobSpec:
    """A job like ``template`` (same run, same dataset) whose detector is the probe module."""
    module = "overhead_probe_" + library.replace("-", "_")
    (folder / f"{module}.py").write_text(PROBE_MODULE.format(imports=IMPORTS[library]))
    job_dir = Path(template.run_dir) / "jobs" / module
    job_dir.mkdir(parents=True, exist_ok=True)
    spec = replace(template, name=module, entry=f"{module}:Probe", params={}, job_dir=str(job_dir),
                   output_dir=str(job_dir), python_path=[str(folder)], parent_pid=os.getpid())
    spec.save(job_dir / "job.json")
    return spec


def measure_worker_starts(template: JobSpec, folder: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Per library: median first-line seconds of the bare import, of the worker, and of their
    difference within each round (pairs taken back to back, so load drift cancels)."""
    times = {library: {"bare": [], "worker": []} for library in IMPORTS}
    specs = {library: write_probe_job(template, library, folder) for library in IMPORTS}
    for round_number in range(repeats + 1):
        for library, spec in specs.items():
            env = worker_environment(spec)
            bare = [sys.executable, "-c", f"{IMPORTS[library]}; print('first line', flush=True)"]
            worker = [sys.executable, "-m", "workers", spec.job_dir]
            for kind, command in (("bare", bare), ("worker", worker)):
                seconds = time_to_first_line(command, env, Path(spec.job_dir))
                if round_number:   # round 0 warms the page cache
                    times[library][kind].append(seconds)
    return {library: {"bare": statistics.median(t["bare"]), "worker": statistics.median(t["worker"]),
                      "overhead": statistics.median(w - b for w, b in zip(t["worker"], t["bare"]))}
            for library, t in times.items()}


# ---- the table -----------------------------------------------------------------------------
def print_tables(parent: list[tuple[int, float]], only: str, size: str, starts: dict, repeats: int) -> None:
    peak_mb = statistics.median(p[0] for p in parent) / 2**20
    wall = statistics.median(p[1] for p in parent)
    verdict = "ok" if peak_mb < PARENT_TARGET_MB else "OVER"
    print(f"\n(a) orchestrator process alone, 'orchestrate run --only {only} --size {size}', "
          f"median of {len(parent)}")
    print(f"{'peak RSS':>12} {'max':>8} {'min':>8} {'run wall':>9} {'target':>9}  verdict")
    print(f"{peak_mb:9.1f} MB {max(p[0] for p in parent) / 2**20:5.1f} MB {min(p[0] for p in parent) / 2**20:5.1f} MB"
          f" {wall:7.1f} s {'< ' + str(PARENT_TARGET_MB) + ' MB':>9}  {verdict}")
    print(f"\n(b) spawn to first output line, median of {repeats}")
    print(f"{'worker imports':<15} {'bare import':>12} {'python -m workers':>18} {'worker overhead':>16}  verdict")
    for library, median in starts.items():
        verdict = "ok" if median["overhead"] <= START_TARGET_S else "OVER"
        print(f"{library:<15} {median['bare']:10.3f} s {median['worker']:16.3f} s "
              f"{median['overhead']:14.3f} s  {verdict}")
    print(f"(worker overhead = median over rounds of worker minus bare, run back to back; "
          f"target <= {START_TARGET_S} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="measurements per number (median shown)")
    parser.add_argument("--only", default="PCA_T2_SPE,PCA_SVM", help="detectors of the run in (a)")
    parser.add_argument("--size", default="small", choices=["tiny", "small", "full"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchestrate-overhead-") as tmp:
        parent = []
        for repeat in range(args.repeats):
            workdir = Path(tmp) / f"run{repeat}"
            workdir.mkdir()
            parent.append(measure_parent_run(workdir, args.only, args.size))
            print(f"run {repeat + 1}/{args.repeats}: parent peak {parent[-1][0] / 2**20:.1f} MB", file=sys.stderr)
        detector = args.only.split(",")[0]
        template = JobSpec.load(Path(tmp) / "run0" / "runs" / "default" / "jobs" / detector / "job.json")
        starts = measure_worker_starts(template, Path(tmp), args.repeats)
    print_tables(parent, args.only, args.size, starts, args.repeats)
    print(json.dumps({"parent_peak_rss_bytes": [p[0] for p in parent], "starts_median_s": starts}))


if __name__ == "__main__":
    main()
