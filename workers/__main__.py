"""``python -m workers <job_dir>``: load the job, run it, write the result, exit.

Exit 0 when ``result.json`` says ok, 1 when the job raised (the error result is
written first), 2 when the job folder itself is unusable.
"""
from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m workers <job_dir>", file=sys.stderr)
        return 2
    from workers.runtime import enable_crash_tracebacks, unblock_stop_signals

    unblock_stop_signals()
    enable_crash_tracebacks()
    from artifacts import JobPaths, JobSpec
    from workers.runtime import die_with_parent

    paths = JobPaths(Path(argv[1]).resolve())
    try:
        spec = JobSpec.load(paths.job_json)
    except (OSError, ValueError) as error:
        print(f"worker: cannot read {paths.job_json}: {error}", file=sys.stderr)
        return 2
    die_with_parent(spec.parent_pid)
    from workers.jobs import run_job

    return run_job(spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
