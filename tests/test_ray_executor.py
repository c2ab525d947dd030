"""The ray executor end to end, through the real CLI: each run starts and stops its own local Ray.

A Ray start costs seconds, so the module starts it four times in all: one run
compared with the subprocess executor (and holding a crash and a timeout), its
resume, one interrupted run, and one in-process check of the start-up guard.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess

import psutil
import pytest

from conftest import orchestrate_command, read_manifest, wait_for, write_config

pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.slow]

RUN_ARGS = ("run", "--only", "PCA_T2_SPE,GOOD,BAD,SLOW", "--size", "tiny", "--progress", "plain",
            "--timeout", "12")


def misbehaving_config(folder, name: str):
    """GOOD works; BAD is SIGKILLed and SLOW times out — each only once (a marker file remembers)."""
    return write_config(folder / f"{name}.toml", {
        "GOOD": {},
        "BAD": {"mode": "sigkill", "marker": str(folder / f"{name}-bad-once")},
        "SLOW": {"mode": "sleep", "sleep_s": 120, "marker": str(folder / f"{name}-slow-once")},
    })


def run_cli(folder, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ORCHESTRATE_CACHE_DIR": str(folder / "cache")}
    return subprocess.run(orchestrate_command(*args), cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory):
    """The same jobs through the subprocess executor and through Ray, on the same data."""
    folder = tmp_path_factory.mktemp("ray-vs-subprocess")
    misbehaving_config(folder, "subprocess")
    misbehaving_config(folder, "ray")
    by_subprocess = run_cli(folder, *RUN_ARGS, "--config", "subprocess.toml", "--run", "subprocess")
    by_ray = run_cli(folder, *RUN_ARGS, "--config", "ray.toml", "--run", "ray", "--executor", "ray")
    return folder, by_subprocess, by_ray


def test_ray_gives_the_same_metrics_as_the_subprocess_executor(first_runs):
    folder, by_subprocess, by_ray = first_runs
    assert by_subprocess.returncode == 1, by_subprocess.stderr
    assert by_ray.returncode == 1, by_ray.stdout + by_ray.stderr
    metrics = [(folder / "runs" / run / "benchmark" / "metrics.csv").read_text() for run in ("subprocess", "ray")]
    assert "PCA_T2_SPE," in metrics[0] and "GOOD," in metrics[0]
    assert metrics[0] == metrics[1]


def test_a_crashed_or_timed_out_ray_task_is_a_none_row_and_the_others_finish(first_runs):
    folder, _, by_ray = first_runs
    run_dir = folder / "runs" / "ray"
    jobs = read_manifest(run_dir)["jobs"]
    assert [jobs[name]["state"] for name in ("PCA_T2_SPE", "GOOD", "BAD", "SLOW")] == \
           ["ok", "ok", "crashed", "timed_out"]
    assert "WorkerCrashedError" in jobs["BAD"]["reason"]
    assert jobs["SLOW"]["reason"].startswith("timed out")
    assert "ray: the worker running BAD died" in (run_dir / "jobs" / "BAD" / "stderr.log").read_text()
    assert "BAD" in (run_dir / "benchmark" / "report.md").read_text()   # a None row, not a crash


def test_a_ray_job_reports_its_own_peak_and_it_joins_the_history(first_runs):
    """The parent cannot sample a Ray worker (it may be on another node): the worker's own
    getrusage peak goes into the manifest and the per-user history instead."""
    folder, _, _ = first_runs
    jobs = read_manifest(folder / "runs" / "ray")["jobs"]
    assert jobs["PCA_T2_SPE"]["peak_rss_bytes"] > 50 * 2**20   # at least Python, numpy and the data
    history = json.loads((folder / "cache" / "memory_history.json").read_text())
    assert {"PCA_T2_SPE", "GOOD"} <= {entry["detector"] for entry in history.values()}


def test_resuming_a_ray_run_reruns_only_the_failed_jobs(first_runs):
    folder, _, _ = first_runs
    run_dir = folder / "runs" / "ray"
    good_result = (run_dir / "jobs" / "GOOD" / "result.json").stat().st_mtime_ns
    again = run_cli(folder, *RUN_ARGS, "--config", "ray.toml", "--run", "ray", "--executor", "ray")
    assert again.returncode == 0, again.stdout + again.stderr
    jobs = read_manifest(run_dir)["jobs"]
    assert [jobs[name]["state"] for name in ("PCA_T2_SPE", "GOOD", "BAD", "SLOW")] == \
           ["skipped", "skipped", "ok", "ok"]
    assert (jobs["BAD"]["attempts"], jobs["SLOW"]["attempts"]) == (2, 2)
    assert (run_dir / "jobs" / "GOOD" / "result.json").stat().st_mtime_ns == good_result


def test_sigint_cancels_every_ray_task_exits_130_and_stops_ray(tmp_path, start_orchestrate):
    marker = tmp_path / "slept-once"
    write_config(tmp_path / "cfg.toml", {"SLEEPY": {"mode": "sleep", "sleep_s": 300, "marker": str(marker)}})
    parent = start_orchestrate("run", "--only", "SLEEPY", "--size", "tiny", "--progress", "plain",
                               "--config", "cfg.toml", "--executor", "ray")
    wait_for(marker.exists, timeout=120)
    worker = int(wait_for(lambda: marker.read_text().strip()))   # the scripted detector writes its pid
    ray_processes = psutil.Process(parent.pid).children(recursive=True)   # gcs, raylet, Ray workers
    assert worker in {process.pid for process in ray_processes}
    parent.send_signal(signal.SIGINT)
    assert parent.wait(timeout=60) == 130, parent.stderr.read()
    assert read_manifest(tmp_path / "runs" / "default")["jobs"]["SLEEPY"]["state"] == "interrupted"
    wait_for(lambda: not [p for p in ray_processes if is_alive(p)], timeout=20)
    assert not [p for p in psutil.process_iter(["cmdline"]) if is_alive(p) and runs_our_job(p, tmp_path)]


def is_alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def runs_our_job(process: psutil.Process, folder) -> bool:
    """A Ray worker or ``python -m workers`` process whose job lives under ``folder``."""
    try:
        command = " ".join(process.cmdline())
        cwd = process.cwd()
    except psutil.Error:
        return False
    return ("ray::" in command or "workers" in command) and cwd.startswith(str(folder))


def test_a_node_that_cannot_run_the_visibility_check_stops_the_run_with_a_clear_error(tmp_path):
    """A second machine cannot run here, so the unreachable node is a made-up node id."""
    import ray

    from artifacts import RunPaths
    from orchestrator.executors import ExecutorUnavailable
    from orchestrator.ray_executor import RayExecutor, check_run_dir_visible

    run = RunPaths.at(tmp_path / "run")
    run.root.mkdir()
    executor = RayExecutor(run=run)   # the real check passes: one node, one file system
    try:
        ghost = {"NodeID": "ab" * 28, "NodeManagerAddress": "10.9.9.9"}
        with pytest.raises(ExecutorUnavailable) as raised:
            check_run_dir_visible(run, [ghost])
    finally:
        executor.close()
    message = str(raised.value)
    assert str(run.root) in message and "node 10.9.9.9" in message and "--runs-dir" in message
    assert list(run.root.iterdir()) == []   # the token file is cleaned up
    assert not ray.is_initialized()
