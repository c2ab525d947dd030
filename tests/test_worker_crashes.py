"""Real workers failing in every way: each becomes a job state with a reason; the others finish."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import read_manifest, write_config

BASE_ARGS = ("run", "--only", "GOOD,BAD", "--size", "tiny", "--progress", "plain", "--config", "cfg.toml")

CASES = {
    # mode: (extra params, extra CLI args, expected state, text expected in the reason)
    "raise": ({}, (), "failed", "RuntimeError: scripted failure"),
    "exit": ({}, (), "crashed", "EXIT(3)"),
    "sigkill": ({}, (), "crashed", "SIGKILL(-9)"),
    "segfault": ({}, (), "crashed", "SIGSEGV(-11)"),
    "sleep": ({"sleep_s": 120}, ("--timeout", "4"), "timed_out", "timed out"),
    "partial": ({}, (), "crashed", "result.json was never written"),
}


def digest_folder(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file: proves artifacts were neither changed nor rewritten."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".log")}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(CASES))
def test_a_failing_worker_becomes_a_state_and_the_others_finish(tmp_path, orchestrate, mode):
    params, cli_args, state, reason = CASES[mode]
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "BAD": {"mode": mode, **params}})
    result = orchestrate(*BASE_ARGS, *cli_args)
    assert result.returncode == 1, result.stderr
    run_dir = tmp_path / "runs" / "default"
    jobs = read_manifest(run_dir)["jobs"]
    assert jobs["GOOD"]["state"] == "ok"
    assert jobs["BAD"]["state"] == state
    assert reason in jobs["BAD"]["reason"]
    assert "BAD" in (run_dir / "benchmark" / "report.md").read_text()   # a None row, not a crash
    if mode == "segfault":
        assert "Fatal Python error: Segmentation fault" in (run_dir / "jobs" / "BAD" / "stderr.log").read_text()
    if mode == "partial":
        assert (run_dir / "jobs" / "BAD" / "scores.npy").exists()   # written, but never trusted
        metrics = json.loads((run_dir / "benchmark" / "metrics.json").read_text())
        assert "BAD" in json.dumps(metrics)

    # Resume: the same command retrains only the failed detector; GOOD is byte-identical, not rewritten.
    good_before = digest_folder(run_dir / "jobs" / "GOOD")
    again = orchestrate(*BASE_ARGS, *cli_args)
    assert again.returncode == 1
    jobs = read_manifest(run_dir)["jobs"]
    assert jobs["GOOD"]["state"] == "skipped"
    assert jobs["BAD"]["attempts"] == 2
    assert digest_folder(run_dir / "jobs" / "GOOD") == good_before


@pytest.mark.slow
def test_retries_rerun_a_crashed_worker_until_it_succeeds(tmp_path, orchestrate):
    marker = tmp_path / "crashed-once"
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "BAD": {"mode": "sigkill", "marker": str(marker)}})
    result = orchestrate(*BASE_ARGS, "--retries", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    bad = read_manifest(tmp_path / "runs" / "default")["jobs"]["BAD"]
    assert (bad["state"], bad["attempts"]) == ("ok", 2)


@pytest.mark.slow
def test_a_corrupted_model_is_detected_by_checksum_and_retrained(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "BAD": {}})
    assert orchestrate(*BASE_ARGS).returncode == 0
    model = tmp_path / "runs" / "default" / "jobs" / "BAD" / "model" / "model.joblib"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    assert orchestrate(*BASE_ARGS).returncode == 0
    jobs = read_manifest(tmp_path / "runs" / "default")["jobs"]
    assert jobs["GOOD"]["state"] == "skipped"
    assert (jobs["BAD"]["state"], jobs["BAD"]["attempts"]) == ("ok", 2)


@pytest.mark.slow
def test_changing_parameters_reruns_only_that_detector_and_force_reruns_all(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "BAD": {}})
    assert orchestrate(*BASE_ARGS).returncode == 0
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "BAD": {"threshold_percentile": 95.0}})
    assert orchestrate(*BASE_ARGS).returncode == 0
    jobs = read_manifest(tmp_path / "runs" / "default")["jobs"]
    assert jobs["GOOD"]["state"] == "skipped" and jobs["BAD"]["state"] == "ok"
    assert orchestrate(*BASE_ARGS, "--force").returncode == 0
    jobs = read_manifest(tmp_path / "runs" / "default")["jobs"]
    assert {jobs[name]["state"] for name in ("GOOD", "BAD")} == {"ok"}
    assert jobs["prepare"]["state"] == "skipped"   # --force reruns detectors; data is redone when it changes
