"""Resume and input edge cases found in review: each is a real run through real workers."""
from __future__ import annotations

import json
import signal

import pytest

from conftest import read_manifest, write_config

from artifacts import JobSpec, RunPaths
from artifacts.records import KillReason, JobState
from orchestrator.supervise import classify_outcome

TINY = ("--size", "tiny", "--progress", "plain")


@pytest.mark.slow
def test_retries_count_per_run_so_a_resumed_run_retries_again(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"BAD": {"mode": "exit"}})
    args = ("run", "--only", "BAD", "--config", "cfg.toml", "--retries", "1", *TINY)
    assert orchestrate(*args).returncode == 1
    assert read_manifest(tmp_path / "runs" / "default")["jobs"]["BAD"]["attempts"] == 2
    assert orchestrate(*args).returncode == 1
    assert read_manifest(tmp_path / "runs" / "default")["jobs"]["BAD"]["attempts"] == 4


@pytest.mark.slow
def test_a_corrupt_manifest_is_moved_aside_and_finished_jobs_are_not_retrained(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}})
    args = ("run", "--only", "GOOD", "--config", "cfg.toml", *TINY)
    assert orchestrate(*args).returncode == 0
    run_dir = tmp_path / "runs" / "default"
    (run_dir / "manifest.json").write_text('{"jobs": [1, 2')   # truncated
    result = orchestrate(*args)
    assert result.returncode == 0, result.stderr
    assert "Moved it to manifest.json.corrupt-" in result.stderr
    assert read_manifest(run_dir)["jobs"]["GOOD"]["state"] == "skipped"
    assert list(run_dir.glob("manifest.json.corrupt-*"))


def test_status_on_a_manifest_with_an_unknown_state_is_a_clear_error(tmp_path, orchestrate):
    run_dir = tmp_path / "runs" / "default"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"schema_version": 1, "run": "default",
                                                       "jobs": {"X": {"state": "weird"}}}))
    result = orchestrate("status")
    assert result.returncode == 2
    assert "unknown state 'weird'" in result.stderr


def test_an_unusable_runs_dir_is_a_usage_error(tmp_path, orchestrate):
    (tmp_path / "afile").write_text("")
    result = orchestrate("run", "--only", "PCA_T2_SPE", "--runs-dir", "afile/sub", *TINY)
    assert result.returncode == 2
    assert "cannot use" in result.stderr and "--runs-dir" in result.stderr


@pytest.mark.slow
def test_a_detector_left_from_other_data_is_a_none_row_not_mixed_in(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "OTHER": {}})
    assert orchestrate("run", "--only", "GOOD,OTHER", "--config", "cfg.toml", *TINY).returncode == 0
    assert orchestrate("run", "--only", "GOOD", "--config", "cfg.toml", "--seed", "1", *TINY).returncode == 0
    metrics = json.loads((tmp_path / "runs" / "default" / "benchmark" / "metrics.json").read_text())
    text = json.dumps(metrics)
    assert "stale: OTHER was trained on another dataset" in text


@pytest.mark.slow
def test_the_run_seed_reaches_the_detectors(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}})
    assert orchestrate("run", "--only", "GOOD", "--config", "cfg.toml", "--seed", "7", *TINY).returncode == 0
    result = json.loads((tmp_path / "runs" / "default" / "jobs" / "GOOD" / "result.json").read_text())
    assert result["extra"]["params"]["random_state"] == 7


@pytest.mark.slow
def test_a_runs_folder_inside_the_data_folder_does_not_defeat_resume(tmp_path, orchestrate):
    from workers.data.rieth_fixture import write_rieth_table

    data = tmp_path / "rieth"
    data.mkdir()
    write_rieth_table(data / "TEP_FaultFree_Training.csv", [0], 4, 200, seed=1)
    write_rieth_table(data / "TEP_Faulty_Testing.csv", [1, 2], 1, 400, seed=2)
    args = ("run", "--only", "PCA_T2_SPE", "--data", f"rieth:{data}", "--runs-dir", str(data / "runs"),
            "--progress", "plain")
    assert orchestrate(*args).returncode == 0
    again = orchestrate(*args)
    assert again.returncode == 0
    assert "started" not in again.stdout   # prepare and PCA_T2_SPE both skipped


@pytest.mark.slow
def test_a_verified_result_counts_even_if_a_kill_came_just_after_it(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}})
    assert orchestrate("run", "--only", "GOOD", "--config", "cfg.toml", *TINY).returncode == 0
    spec = JobSpec.load(RunPaths.at(tmp_path / "runs" / "default").job("GOOD").job_json)
    outcome = classify_outcome(spec, -signal.SIGKILL, KillReason.MEMORY)
    assert outcome.state is JobState.OK
