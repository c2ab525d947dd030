"""``orchestrate doctor``: real probe interpreters, numbers checked against psutil."""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import time

import psutil
import pytest
from click.testing import CliRunner

from orchestrator.cli import run_command
from orchestrator.doctor import (GIB, Diagnosis, ImportProbe, diagnose, doctor_command, full_size_worker_bytes,
                                 nearest_existing, probe_import, recommend)

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None


def machine(total_gib: float, available_gib: float, cpus: int, tensorflow: bool = True,
            disk_free_gib: float = 100) -> Diagnosis:
    """A diagnosis of a described machine, for the recommendation rules (no probing)."""
    probe_error = None if tensorflow else "ModuleNotFoundError: No module named 'tensorflow'"
    return Diagnosis(
        python="3.11", executable="python", total_ram_bytes=int(total_gib * GIB),
        available_ram_bytes=int(available_gib * GIB), swap_total_bytes=0, swap_free_bytes=0,
        disk_path="/", disk_free_bytes=int(disk_free_gib * GIB), disk_total_bytes=int(500 * GIB),
        cpu_count=cpus, gpus=[], tensorflow=ImportProbe("tensorflow", tensorflow, 5.0, error=probe_error),
        sklearn=ImportProbe("sklearn", True, 1.0, version="1.5"),
    )


def test_nearest_existing_climbs_to_the_folder_that_exists(tmp_path):
    assert nearest_existing(tmp_path / "runs" / "overnight") == tmp_path
    assert nearest_existing(tmp_path) == tmp_path


def test_probe_import_times_a_real_import_in_a_fresh_interpreter():
    probe = probe_import("sklearn")
    assert probe.ok and probe.version and probe.seconds > 0


def test_probe_import_reports_a_missing_module_with_its_error():
    probe = probe_import("no_such_module_for_doctor")
    assert not probe.ok
    assert "ModuleNotFoundError" in probe.error and "no_such_module_for_doctor" in probe.error


def test_probe_import_gives_up_on_a_hanging_import(tmp_path, monkeypatch):
    (tmp_path / "hangs_on_import.py").write_text("import time\ntime.sleep(60)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    start = time.monotonic()
    probe = probe_import("hangs_on_import", timeout_s=1.0)
    assert time.monotonic() - start < 20
    assert not probe.ok and "within 1 s" in probe.error


def test_diagnose_measures_this_machine(tmp_path):
    d = diagnose(tmp_path / "runs")
    assert d.disk_path == str(tmp_path)
    assert d.total_ram_bytes == psutil.virtual_memory().total
    assert d.cpu_count == os.cpu_count()
    assert d.sklearn.ok and d.exit_code == 0
    assert d.tensorflow.ok is HAS_TENSORFLOW
    assert 1 <= d.max_workers <= d.cpu_count
    assert d.budget_bytes <= d.available_ram_bytes


def test_doctor_prints_tables_and_copyable_commands(tmp_path):
    result = CliRunner().invoke(doctor_command, ["--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    for text in ("this machine", "scikit-learn", "TensorFlow", "--max-workers", "--memory-budget",
                 "--profile", "--on-oom", "all together:"):
        assert text in result.output, text


def test_doctor_json_matches_psutil(tmp_path):
    result = CliRunner().invoke(doctor_command, ["--runs-dir", str(tmp_path / "runs"), "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    memory = psutil.virtual_memory()
    assert d["total_ram_bytes"] == memory.total
    assert abs(d["available_ram_bytes"] - memory.available) < max(GIB, 0.25 * memory.available)
    assert d["swap_total_bytes"] == psutil.swap_memory().total
    assert abs(d["disk_free_bytes"] - shutil.disk_usage(tmp_path).free) < GIB
    assert d["cpu_count"] == os.cpu_count() and d["disk_path"] == str(tmp_path)
    assert d["sklearn"]["ok"] and d["sklearn"]["seconds"] > 0
    assert d["tensorflow"]["ok"] is HAS_TENSORFLOW
    assert d["profile"] in ("fast", "production") and d["on_oom"] in ("fail", "shrink")
    assert d["exit_code"] == 0


def test_doctor_help_ends_with_examples():
    result = CliRunner().invoke(doctor_command, ["--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "orchestrate doctor --json" in result.output


def test_an_8gb_laptop_gets_fast_profile_and_shrink():
    d = recommend(machine(total_gib=8, available_gib=5, cpus=4))
    assert d.profile == "fast" and d.on_oom == "shrink"
    assert d.budget_bytes == 3 * 10**9   # 70% of 5 GiB = 3.76 GB, rounded down to whole GB
    assert d.max_workers == 3 * 10**9 // full_size_worker_bytes("tensorflow") == 3


def test_a_big_workstation_gets_production_and_one_worker_per_cpu():
    d = recommend(machine(total_gib=64, available_gib=60, cpus=16))
    assert (d.profile, d.on_oom, d.max_workers) == ("production", "fail", 16)


def test_without_tensorflow_workers_are_sized_for_scikit_learn_and_a_warning_says_what_to_skip():
    d = recommend(machine(total_gib=8, available_gib=2, cpus=8, tensorflow=False))
    assert d.worker_bytes == full_size_worker_bytes("sklearn")
    assert any("--skip LSTM_VAE,VAE_T2,PCA_AE" in warning for warning in d.warnings)


def test_low_disk_is_a_warning_naming_the_folder():
    d = recommend(machine(total_gib=32, available_gib=30, cpus=8, disk_free_gib=0.5))
    assert any("--runs-dir" in warning and d.disk_path in warning for warning in d.warnings)


@pytest.mark.parametrize("shape", [(8, 5, 4), (64, 60, 16), (4, 1, 2)])
def test_every_recommended_command_is_accepted_by_orchestrate_run(shape):
    """The commands are meant to be copied: the real ``run`` command must parse each one."""
    d = recommend(machine(*shape))
    for advice in d.advice:
        words = shlex.split(advice.command)
        assert words[:2] == ["orchestrate", "run"], advice.command
        context = run_command.make_context("run", words[2:])
        assert context.params["select_all"], advice.command
