"""The parent's own life: Ctrl-C, SIGKILL, a second orchestrator, usage errors, import hygiene."""
from __future__ import annotations

import signal
import subprocess
import sys

import psutil
import pytest

from conftest import REPO_ROOT, read_manifest, running_pid, wait_for, write_config

SLEEPY_ARGS = ("run", "--only", "GOOD,SLEEPY", "--size", "tiny", "--progress", "plain", "--config", "cfg.toml")


def sleepy_config(tmp_path):
    marker = tmp_path / "slept-once"
    return write_config(tmp_path / "cfg.toml", {"GOOD": {}, "SLEEPY": {"mode": "sleep", "sleep_s": 300,
                                                                       "marker": str(marker)}})


def assert_gone(pid: int, timeout: float = 10.0) -> None:
    def gone():
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    wait_for(gone, timeout=timeout)


@pytest.mark.slow
def test_sigint_stops_every_worker_exits_130_and_the_next_run_resumes(tmp_path, start_orchestrate, orchestrate):
    sleepy_config(tmp_path)
    run_dir = tmp_path / "runs" / "default"
    parent = start_orchestrate(*SLEEPY_ARGS)
    worker = wait_for(lambda: running_pid(run_dir, "SLEEPY"))
    wait_for(lambda: (tmp_path / "slept-once").exists())
    parent.send_signal(signal.SIGINT)
    assert parent.wait(timeout=30) == 130
    assert_gone(worker)
    jobs = read_manifest(run_dir)["jobs"]
    assert jobs["SLEEPY"]["state"] == "interrupted"
    resumed = orchestrate(*SLEEPY_ARGS)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_manifest(run_dir)["jobs"]["SLEEPY"]["state"] == "ok"


@pytest.mark.slow
def test_a_sigkilled_parent_leaves_no_worker_and_stale_entries_become_interrupted(tmp_path, start_orchestrate,
                                                                                   orchestrate):
    sleepy_config(tmp_path)
    run_dir = tmp_path / "runs" / "default"
    parent = start_orchestrate(*SLEEPY_ARGS)
    worker = wait_for(lambda: running_pid(run_dir, "SLEEPY"))
    wait_for(lambda: (tmp_path / "slept-once").exists())
    parent.kill()
    parent.wait()
    assert_gone(worker, timeout=5)
    assert read_manifest(run_dir)["jobs"]["SLEEPY"]["state"] == "running"   # what the dead parent left
    resumed = orchestrate(*SLEEPY_ARGS)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    events = (run_dir / "events.jsonl").read_text()
    assert read_manifest(run_dir)["jobs"]["SLEEPY"]["state"] == "ok"
    assert "job_started" in events


@pytest.mark.slow
def test_a_second_orchestrator_on_the_same_run_refuses_naming_the_holder(tmp_path, start_orchestrate, orchestrate):
    sleepy_config(tmp_path)
    run_dir = tmp_path / "runs" / "default"
    first = start_orchestrate(*SLEEPY_ARGS)
    wait_for(lambda: running_pid(run_dir, "SLEEPY"))
    second = orchestrate(*SLEEPY_ARGS)
    assert second.returncode == 2
    assert f"pid {first.pid}" in second.stderr
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 130


@pytest.mark.parametrize("args, message", [
    (("run", "--only", "NOPE"), "unknown detector 'NOPE'; valid detectors: PCA_T2_SPE"),
    (("run",), "--all, or --only"),
    (("run", "--all", "--data", "mystery"), "unknown data source 'mystery'"),
    (("run", "--all", "--data", "braatz:/does/not/exist"), "does not exist"),
    (("run", "--all", "--memory-budget", "lots"), "cannot read memory size 'lots'"),
    (("run", "--all", "--config", "missing.toml"), "config file missing.toml does not exist"),
    (("run", "--all", "--profile", "turbo"), "'turbo' is not one of"),
    (("status",), "is not a run directory"),
])
def test_usage_errors_exit_2_with_a_clear_message(orchestrate, args, message):
    result = orchestrate(*args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


def test_every_command_help_has_examples(orchestrate):
    for command in ((), ("run",), ("status",), ("report",), ("list",), ("doctor",), ("data",),
                    ("data", "inspect"), ("data", "download")):
        result = orchestrate(*command, "--help")
        assert result.returncode == 0 and "Examples:" in result.stdout, command


def test_list_shows_every_detector_with_both_profiles(orchestrate):
    result = orchestrate("list")
    for name in ("PCA_T2_SPE", "PCA_SVM", "KPCA_SVM", "ICA_SVM", "LSTM_VAE", "VAE_T2", "PCA_AE"):
        assert name in result.stdout
    assert "production" in result.stdout and "fast" in result.stdout


def test_the_parent_never_imports_tensorflow_or_sklearn(tmp_path, cache_dir):
    """A notebook calling orchestrator.run trains in workers; its own kernel stays clean."""
    code = (
        "import sys, orchestrator, orchestrator.cli, orchestrator.runner, orchestrator.report\n"
        "result = orchestrator.run(['PCA_T2_SPE'], size='tiny', run_dir='runs/api', progress='quiet')\n"
        "assert result.exit_code == 0, result\n"
        "assert any(r['detector'] == 'PCA_T2_SPE' for r in result.records), result.records[:3]\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'scipy', 'joblib', 'pandas') if m in sys.modules]\n"
        "# fingerprinting locates detector modules with find_spec, which imports only the (empty) packages\n"
        "heavy += [m for m in sys.modules if m.startswith('workers.') and m not in ('workers.detectors', 'workers.data')]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


@pytest.mark.slow
def test_the_inline_executor_runs_the_same_jobs_in_one_process(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "BAD": {"mode": "raise"}})
    result = orchestrate("run", "--only", "GOOD,BAD,PCA_T2_SPE", "--size", "tiny", "--config", "cfg.toml",
                         "--executor", "inline", "--progress", "plain")
    assert result.returncode == 1, result.stderr
    jobs = read_manifest(tmp_path / "runs" / "default")["jobs"]
    assert [jobs[n]["state"] for n in ("GOOD", "BAD", "PCA_T2_SPE")] == ["ok", "failed", "ok"]
    assert {jobs[n]["pid"] for n in ("GOOD", "PCA_T2_SPE")} == {jobs["BAD"]["pid"]}   # one process


@pytest.mark.slow
def test_status_reads_the_run_after_the_fact(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "BAD": {"mode": "exit"}})
    orchestrate("run", "--only", "GOOD,BAD", "--size", "tiny", "--config", "cfg.toml", "--progress", "quiet")
    result = orchestrate("status")
    assert result.returncode == 0
    assert "GOOD" in result.stdout and "EXIT(3)" in result.stdout and "crashed" in result.stdout


def test_python_dash_m_workers_rejects_a_bad_job_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "workers", str(tmp_path / "nope")], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 2
    assert "cannot read" in result.stderr
