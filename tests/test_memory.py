"""Memory-aware scheduling with real workers that allocate real memory in steps."""
from __future__ import annotations

import json

import pytest

from conftest import read_manifest, write_config

from artifacts import JobSpec, RunPaths
from orchestrator.memory import MemoryPolicy, extend_measurement, history_path, parse_size


def run_args(*extra: str) -> tuple[str, ...]:
    return ("run", "--size", "tiny", "--progress", "plain", "--config", "cfg.toml", *extra)


@pytest.mark.slow
def test_small_jobs_run_side_by_side_and_a_large_one_waits(tmp_path, orchestrate):
    hold = {"mode": "allocate", "allocate_mb": 120, "steps": 2, "step_s": 1.0}
    write_config(tmp_path / "cfg.toml", {"SMALL_A": dict(hold), "SMALL_B": dict(hold),
                                         "LARGE": {"mode": "allocate", "allocate_mb": 50, "memory_mb": 700}})
    result = orchestrate(*run_args("--only", "SMALL_A,SMALL_B,LARGE", "--memory-budget", "900MB",
                                   "--max-workers", "3"))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = read_manifest(tmp_path / "runs" / "default")["jobs"]
    a, b, large = jobs["SMALL_A"], jobs["SMALL_B"], jobs["LARGE"]
    assert a["started"] < b["ended"] and b["started"] < a["ended"]          # side by side
    assert large["started"] >= min(a["ended"], b["ended"]) - 0.05           # waited for room
    assert "waiting" in result.stdout and "LARGE" in result.stdout


@pytest.mark.slow
def test_the_watchdog_kills_a_worker_above_the_budget_and_the_others_finish(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"GOOD": {}, "HOG": {"mode": "allocate", "allocate_mb": 1500,
                                                             "steps": 6, "step_s": 0.5}})
    result = orchestrate(*run_args("--only", "GOOD,HOG", "--memory-budget", "500MB", "--max-workers", "1"))
    assert result.returncode == 1
    jobs = read_manifest(tmp_path / "runs" / "default")["jobs"]
    assert jobs["GOOD"]["state"] == "ok"
    assert jobs["HOG"]["state"] == "oom_killed"
    assert jobs["HOG"]["peak_rss_bytes"] > parse_size("500MB")
    assert "peak" in jobs["HOG"]["reason"]
    samples = (tmp_path / "runs" / "default" / "memory.jsonl").read_text().splitlines()
    assert any(json.loads(line)["job"] == "HOG" for line in samples)   # kept for the memory chart
    remembered = {entry["detector"]: entry["peak_bytes"] for entry in json.loads(history_path().read_text()).values()}
    assert remembered["HOG"] > parse_size("500MB")   # next time it starts alone or shrunk, not into the same kill


@pytest.mark.slow
def test_on_oom_shrink_retries_on_half_the_rows_and_records_the_degradation(tmp_path, orchestrate):
    # tiny synthetic data has 3,000 training rows: 150 KB/row = ~440 MB, half = ~220 MB
    write_config(tmp_path / "cfg.toml", {"SHRINKABLE": {"mode": "allocate", "allocate_per_row_kb": 150,
                                                        "steps": 4, "step_s": 0.4, "batch_size": 256}})
    result = orchestrate(*run_args("--only", "SHRINKABLE", "--memory-budget", "400MB", "--on-oom", "shrink"))
    assert result.returncode == 0, result.stdout + result.stderr
    run = tmp_path / "runs" / "default"
    job = read_manifest(run)["jobs"]["SHRINKABLE"]
    assert (job["state"], job["attempts"]) == ("ok", 2)
    assert job["degraded"] == {"train_fraction": 0.5, "batch_size": 128}
    trained_with = json.loads((run / "jobs" / "SHRINKABLE" / "result.json").read_text())["extra"]["params"]
    assert trained_with["batch_size"] == 128                           # the worker really got the smaller batch
    report = (run / "benchmark" / "report.md").read_text()
    assert "trained on 50% of training runs; batch size 128" in report


def test_a_budget_smaller_than_any_worker_is_a_clear_usage_error(orchestrate):
    result = orchestrate("run", "--all", "--memory-budget", "20MB")
    assert result.returncode == 2
    assert "below the smallest useful budget" in " ".join(result.stderr.split())


@pytest.mark.slow
def test_measured_history_improves_the_next_estimate(tmp_path, orchestrate, cache_dir):
    write_config(tmp_path / "cfg.toml", {"HUNGRY": {"mode": "allocate", "allocate_mb": 300, "steps": 3,
                                                    "step_s": 0.3}})
    assert orchestrate(*run_args("--only", "HUNGRY", "--memory-budget", "2GB")).returncode == 0
    run = RunPaths.at(tmp_path / "runs" / "default")
    spec = JobSpec.load(run.job("HUNGRY").job_json)
    history = json.loads(history_path().read_text())
    assert any(entry["detector"] == "HUNGRY" and entry["points"][0]["peak_bytes"] > 300 * 2**20
               for entry in history.values())
    with_history = MemoryPolicy(None, "fail", run, [], {"HUNGRY": "numpy"}).estimate_bytes(spec)
    history_path().unlink()
    model_only = MemoryPolicy(None, "fail", run, [], {"HUNGRY": "numpy"}).estimate_bytes(spec)
    assert model_only < 150 * 2**20 < 300 * 2**20 < with_history


@pytest.mark.slow
def test_a_spike_between_two_samples_still_counts_as_the_peak(tmp_path, orchestrate, cache_dir):
    """400 MB held for a few milliseconds: the parent's samples miss it, the worker's own
    getrusage does not (and it is all a Ray worker on another node can tell)."""
    write_config(tmp_path / "cfg.toml", {"SPIKE": {"mode": "allocate", "allocate_mb": 400, "steps": 1, "step_s": 0.0}})
    assert orchestrate(*run_args("--only", "SPIKE", "--memory-budget", "2GB")).returncode == 0
    run = RunPaths.at(tmp_path / "runs" / "default")
    reported = json.loads(run.job("SPIKE").result.read_text())["peak_rss_bytes"]
    assert reported > 400 * 2**20
    assert read_manifest(run.root)["jobs"]["SPIKE"]["peak_rss_bytes"] >= reported
    history = json.loads(history_path().read_text())
    assert [entry["peak_bytes"] for entry in history.values() if entry["detector"] == "SPIKE"] == [
        read_manifest(run.root)["jobs"]["SPIKE"]["peak_rss_bytes"]]


def test_a_worker_does_not_report_the_peak_of_the_process_that_spawned_it():
    """ru_maxrss carries a parent's peak over exec: a notebook holding 300 MB would make every
    worker it starts look 300 MB large, and the history would remember that."""
    import subprocess
    import sys

    parent = ("import subprocess, sys, numpy as np\n"
              "held = np.ones(300 * 2**20 // 8)\n"
              "child = 'from workers.runtime import own_peak_rss_bytes; print(own_peak_rss_bytes())'\n"
              "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True, check=True).stdout)")
    reported = int(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True,
                                  timeout=60).stdout.split()[0])
    assert reported < 100 * 2**20


def test_an_expected_duration_is_never_negative(tmp_path, cache_dir):
    from artifacts import JobState, atomic_write_json

    run = RunPaths.at(tmp_path)
    run.dataset.root.mkdir(parents=True)
    policy = MemoryPolicy(None, "fail", run, [], {"QUICK": "numpy"})
    quick = JobSpec("QUICK", "detector", "m:C", {}, "", "", "", "f")
    atomic_write_json(run.dataset.meta, {"shapes": {"train": [250_000, 52]}})
    policy.record_measurement(quick, 100 * 2**20, 0.5, JobState.OK)
    atomic_write_json(run.dataset.meta, {"shapes": {"train": [3_000, 52]}})
    assert policy.expected_seconds(quick) == 0.0   # 0.5 s minus the prior's 0.99 s


def test_a_duration_measured_only_on_a_tiny_run_is_not_scaled_in_proportion_to_rows(tmp_path, cache_dir):
    """3 s on 3,000 rows is mostly imports: in proportion it would be 250 s at full size and start
    ahead of a TensorFlow job measured at 40 s there."""
    from artifacts import JobState, atomic_write_json

    run = RunPaths.at(tmp_path)
    run.dataset.root.mkdir(parents=True)
    policy = MemoryPolicy(None, "fail", run, [], {"QUICK": "numpy", "DEEP": "tensorflow"})
    quick, deep = (JobSpec(name, "detector", "m:C", {}, "", "", "", "f") for name in ("QUICK", "DEEP"))
    atomic_write_json(run.dataset.meta, {"shapes": {"train": [3_000, 52]}})
    policy.record_measurement(quick, 100 * 2**20, 3.0, JobState.OK)
    atomic_write_json(run.dataset.meta, {"shapes": {"train": [250_000, 52]}})
    policy.record_measurement(deep, 900 * 2**20, 40.0, JobState.OK)
    assert policy.expected_seconds(quick) == pytest.approx(3.0 + 1.0 * 247_000 / 250_000)
    assert [spec.name for spec in policy.longest_first([quick, deep])] == ["DEEP", "QUICK"]


@pytest.mark.parametrize("text, expected", [("4GB", 4_000_000_000), ("512MiB", 512 * 2**20), ("1.5g", 1_500_000_000)])
def test_parse_size_reads_common_units(text, expected):
    assert parse_size(text) == expected


def test_tensorflow_jobs_get_gpus_round_robin_and_others_none(tmp_path, monkeypatch):
    """No GPU here: the device list comes from CUDA_VISIBLE_DEVICES, as on a box whose admin set it."""
    from orchestrator.memory import detect_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert detect_gpus() == ["2", "3"]
    run = RunPaths.at(tmp_path)
    policy = MemoryPolicy(None, "fail", run, detect_gpus(), {"LSTM_VAE": "tensorflow", "VAE_T2": "tensorflow",
                                                             "PCA_AE": "tensorflow", "PCA_SVM": "sklearn"})
    specs = {name: JobSpec(name, "detector", "m:C", {}, "", "", "", "f") for name in policy.frameworks}
    assert [policy.gpu_for(specs[n]) for n in ("LSTM_VAE", "VAE_T2", "PCA_AE")] == ["2", "3", "2"]
    assert policy.gpu_for(specs["PCA_SVM"]) == ""   # scikit-learn workers see no GPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert detect_gpus() == []


@pytest.mark.slow
def test_a_job_that_does_not_fit_waits_while_smaller_ones_behind_it_start(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {
        "FIRST": {"mode": "allocate", "allocate_mb": 100, "steps": 2, "step_s": 1.0, "memory_mb": 300},
        "BIG": {"mode": "allocate", "allocate_mb": 50, "memory_mb": 700},
        "SMALL": {"mode": "allocate", "allocate_mb": 50, "steps": 1, "step_s": 0.1, "memory_mb": 100}})
    result = orchestrate(*run_args("--only", "FIRST,BIG,SMALL", "--memory-budget", "900MB", "--max-workers", "3"))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = read_manifest(tmp_path / "runs" / "default")["jobs"]
    assert jobs["SMALL"]["started"] < jobs["FIRST"]["ended"]            # backfilled next to FIRST
    assert jobs["BIG"]["started"] >= jobs["FIRST"]["ended"] - 0.05      # 300 + 700 > 900: waited


@pytest.mark.slow
def test_measured_durations_start_the_longest_job_first(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"SHORT": {"mode": "sleep", "sleep_s": 0.1},
                                         "LONG": {"mode": "sleep", "sleep_s": 2.0}})
    args = run_args("--only", "SHORT,LONG", "--max-workers", "1")
    assert orchestrate(*args).returncode == 0
    first = read_manifest(tmp_path / "runs" / "default")["jobs"]
    assert first["SHORT"]["started"] < first["LONG"]["started"]          # no history: registry order
    assert orchestrate(*args, "--force").returncode == 0
    second = read_manifest(tmp_path / "runs" / "default")["jobs"]
    assert second["LONG"]["started"] < second["SHORT"]["started"]        # history: longest first
    durations = {entry["detector"]: entry["points"][-1]["seconds"]
                 for entry in json.loads(history_path().read_text()).values()}
    assert durations["LONG"] > 2.0 > durations["SHORT"]


def test_without_history_tensorflow_jobs_start_before_classical_ones(tmp_path, cache_dir):
    frameworks = {"PCA_SVM": "sklearn", "LSTM_VAE": "tensorflow", "PCA_T2_SPE": "numpy", "VAE_T2": "tensorflow"}
    policy = MemoryPolicy(None, "fail", RunPaths.at(tmp_path), [], frameworks)
    specs = [JobSpec(name, "detector", "m:C", {}, "", "", "", "f") for name in frameworks]
    assert [spec.name for spec in policy.longest_first(specs)] == ["LSTM_VAE", "VAE_T2", "PCA_SVM", "PCA_T2_SPE"]


def test_before_any_history_each_builtin_detector_has_its_own_size_model(tmp_path, cache_dir):
    from artifacts import atomic_write_json
    from artifacts.registry import builtin_registry

    run = RunPaths.at(tmp_path)
    run.dataset.root.mkdir(parents=True)
    atomic_write_json(run.dataset.meta, {"shapes": {"train": [250_000, 52]}})
    registry = builtin_registry()
    policy = MemoryPolicy(None, "fail", run, [], {name: info.framework for name, info in registry.items()},
                          data_factors={name: info.memory_per_data_byte for name, info in registry.items()
                                        if info.memory_per_data_byte})
    estimate = {name: policy.estimate_bytes(JobSpec(name, "detector", info.entry, {}, "", "", "", "f")) / 2**20
                for name, info in registry.items()}
    data_mb = 250_000 * 52 * 4 / 2**20
    assert estimate["LSTM_VAE"] == pytest.approx(800 + 6.0 * data_mb)     # its own factor, not TensorFlow's 3.0
    assert estimate["LSTM_VAE"] > estimate["PCA_AE"] > estimate["VAE_T2"]   # the order measured at full size
    assert estimate["PCA_T2_SPE"] == pytest.approx(200 + 4.0 * data_mb)   # no factor of its own: the framework's


def extended_peak(points: list[dict], rows: int, per_row: float) -> int:
    return int(extend_measurement(points, rows, "peak_bytes", model_per_row=per_row))


def test_a_small_run_does_not_make_a_large_run_look_enormous():
    """One 3,000-row measurement: extend it by the size model's slope, not in proportion to rows
    (which multiplied the imports and test scoring too, and once estimated 60 GB for PCA_T2_SPE)."""
    small = [{"rows": 3_000, "features": 52, "peak_bytes": 400 * 2**20}]
    per_row = 4.0 * 52 * 4
    assert extended_peak(small, 250_000, per_row) == 400 * 2**20 + per_row * 247_000   # ~450 MB
    # two measured sizes: their own slope, from the nearest one
    two = small + [{"rows": 100_000, "features": 52, "peak_bytes": 600 * 2**20}]
    slope = 200 * 2**20 / 97_000
    assert extended_peak(two, 250_000, per_row) == pytest.approx(600 * 2**20 + slope * 150_000, rel=1e-6)
    assert extended_peak(two, 3_000, per_row) == 400 * 2**20     # measured at this size


def test_a_history_file_from_an_older_version_still_gives_estimates_and_is_upgraded(tmp_path, cache_dir):
    from artifacts import atomic_write_json
    from orchestrator.memory import history_key

    run = RunPaths.at(tmp_path)
    run.dataset.root.mkdir(parents=True)
    atomic_write_json(run.dataset.meta, {"shapes": {"train": [3_000, 52]}})
    spec = JobSpec("OLD", "detector", "m:C", {}, "", "", "", "f")
    history_path().parent.mkdir(parents=True, exist_ok=True)
    history_path().write_text(json.dumps({history_key(spec): {"detector": "OLD", "rows": 3_000, "features": 52,
                                                              "peak_bytes": 500 * 2**20, "framework": "numpy"}}))
    policy = MemoryPolicy(None, "fail", run, [], {"OLD": "numpy"})
    assert policy.estimate_bytes(spec) == 500 * 2**20
    atomic_write_json(run.dataset.meta, {"shapes": {"train": [30_000, 52]}})
    from artifacts import JobState
    policy.record_measurement(spec, 520 * 2**20, 3.0, JobState.OK)
    entry = json.loads(history_path().read_text())[history_key(spec)]
    assert entry["points"] == [{"rows": 3_000, "features": 52, "peak_bytes": 500 * 2**20},
                               {"rows": 30_000, "features": 52, "peak_bytes": 520 * 2**20, "seconds": 3.0}]


def test_beyond_the_sizes_measured_a_flat_pair_of_small_runs_does_not_promise_a_flat_line():
    flat = [{"rows": 3_000, "features": 52, "peak_bytes": 400 * 2**20},
            {"rows": 6_000, "features": 52, "peak_bytes": 400 * 2**20}]
    per_row = 4.0 * 52 * 4
    assert extended_peak(flat, 250_000, per_row) == int(400 * 2**20 + per_row * 244_000)


@pytest.mark.slow
def test_a_job_too_large_for_the_budget_runs_alone_and_the_log_says_so(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"BIG": {"mode": "allocate", "allocate_mb": 50, "memory_mb": 900},
                                         "SMALL": {"mode": "allocate", "allocate_mb": 50, "memory_mb": 100}})
    result = orchestrate(*run_args("--only", "BIG,SMALL", "--memory-budget", "500MB", "--max-workers", "2"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BIG: admitted" in result.stdout and "running it alone" in result.stdout
    jobs = read_manifest(tmp_path / "runs" / "default")["jobs"]
    big, small = jobs["BIG"], jobs["SMALL"]
    assert big["ended"] <= small["started"] + 0.05 or small["ended"] <= big["started"] + 0.05   # never side by side


@pytest.mark.slow
def test_the_inline_executor_keeps_its_whole_process_peak_out_of_the_history(tmp_path, orchestrate):
    write_config(tmp_path / "cfg.toml", {"QUICK": {}})
    assert orchestrate(*run_args("--only", "QUICK", "--executor", "inline")).returncode == 0
    assert not history_path().exists() or "QUICK" not in history_path().read_text()
    assert orchestrate(*run_args("--only", "QUICK", "--force")).returncode == 0
    assert "QUICK" in history_path().read_text()        # the subprocess executor does record it
