"""The ``simulate`` source: real TEP runs from tep-studio, simulated in spawned processes."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tep_studio")

from workers.data.dataset import TEP_VARIABLES  # noqa: E402
from workers.data.errors import DataError  # noqa: E402
from workers.data.simulate import load  # noqa: E402

# 2 h training runs (40 samples), 3 h test runs (60 samples) with the fault from 1 h (sample 20)
TINY = {"train_runs": 2, "valid_runs": 1, "test_runs_per_fault": 1, "faults": [1, 2],
        "train_hours": 2, "test_hours": 3, "onset_hours": 1, "workers": 2}


@pytest.fixture(scope="module")
def tiny():
    return load(None, TINY, seed=0)


def test_tiny_simulation_has_tep_shapes_names_and_run_ids(tiny):
    assert tiny.variables == TEP_VARIABLES
    assert (tiny.train.shape, tiny.valid.shape, tiny.test.shape) == ((80, 52), (40, 52), (180, 52))
    assert np.array_equal(np.unique(tiny.train_groups), [0, 1])
    assert np.array_equal(np.unique(tiny.valid_groups), [2])
    assert np.array_equal(np.unique(tiny.test_groups), [3, 4, 5])
    assert (tiny.onset, tiny.sampling_minutes) == (20, 3.0)
    assert np.isfinite(tiny.test).all()


def test_rows_before_the_onset_are_labelled_in_control(tiny):
    fault, run, sample = tiny.test_meta.T
    assert np.array_equal(np.unique(fault), [0, 1, 2])
    assert np.array_equal(tiny.test_labels, np.where(sample >= 20, fault, 0))
    assert np.array_equal(sample[run == 4], np.arange(60))


def test_same_seed_gives_the_same_runs_and_another_seed_does_not(tiny):
    again = load(None, TINY, seed=0)
    assert np.array_equal(again.train, tiny.train) and np.array_equal(again.test, tiny.test)
    other = load(None, {**TINY, "faults": [1], "train_runs": 1}, seed=1)
    assert not np.array_equal(other.train, tiny.train[:40])


def test_a_plant_shutdown_ends_the_run_and_is_recorded():
    # IDV(6), A feed loss, trips the plant about 7 h after its onset under Ricker's control
    data = load(None, {**TINY, "train_runs": 1, "faults": [6], "test_hours": 12, "workers": 1}, seed=0)
    faulty = data.test_meta[:, 0] == 6
    assert 20 < faulty.sum() < 240
    assert data.details["shutdowns"][str(data.test_meta[faulty][0, 1])]["fault"] == 6


@pytest.mark.parametrize("options, message", [
    ({"runs": 3}, "unknown option(s) runs for data source simulate. Valid options: train_runs"),
    ({"faults": [29]}, "fault(s) [29] are not in simulate"),
    ({"onset_hours": 5, "test_hours": 4}, "must be earlier than the end of a test run"),
    ({"train_hours": 0}, "option train_hours=0 for simulate must be a number of hours"),
])
def test_bad_options_are_refused_with_the_fix(options, message):
    with pytest.raises(DataError) as error:
        load(None, options)
    assert message in str(error.value)


@pytest.mark.slow
def test_orchestrate_runs_a_detector_on_simulated_data(orchestrate, tmp_path):
    options = [arg for key, value in TINY.items() for arg in ("--data-option", f"{key}={json.dumps(value)}")]
    result = orchestrate("run", "--only", "PCA_T2_SPE", "--data", "simulate", *options, "--progress", "plain")
    assert result.returncode == 0, result.stdout + result.stderr
    meta_file = next(tmp_path.glob("runs/*/dataset/meta.json"))
    meta = json.loads(meta_file.read_text())
    assert meta["source"].startswith("simulate (tep-studio") and meta["faults"] == [0, 1, 2]
    again = orchestrate("run", "--only", "PCA_T2_SPE", "--data", "simulate", *options, "--progress", "plain")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(meta_file.read_text())["created"] == meta["created"]   # cached, not simulated again
