"""The TensorFlow/Keras detectors (LSTM_VAE, VAE_T2, PCA_AE), with real TensorFlow on tiny data.

The general contract (fit returns self, predict is 0/1, error messages) is in
test_detector_contract.py; here: run-aware windows, save/load, progress, seeding.
"""
from __future__ import annotations

import numpy as np
import pytest

from workers.data import synthetic
from workers.detectors.base import NotFittedError
from workers.detectors.keras_support import find_run_starts, window_rows
from workers.detectors.lstm_vae import LSTMVAE
from workers.detectors.pca_ae import PCAAE
from workers.detectors.vae_t2 import VAET2

QUICK = {"epochs": 2, "batch_size": 128, "patience": 1}
DETECTORS = {
    "LSTM_VAE": (LSTMVAE, {**QUICK, "sequence_length": 4, "latent_dim": 3, "lstm_units": 8}),
    "VAE_T2": (VAET2, {**QUICK, "latent_dim": 4, "hidden_units": 16}),
    "PCA_AE": (PCAAE, {**QUICK, "hidden_units": 8}),
}


@pytest.fixture(scope="module")
def data():
    return synthetic.load(None, {"size": "tiny"}, seed=0)


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted detector per name, with the progress events it reported."""
    models = {}
    for name, (cls, params) in DETECTORS.items():
        events: list[dict] = []
        detector = cls(**params)
        detector.set_progress_callback(lambda **fields: events.append(fields))
        detector.fit(data.train, groups=data.train_groups, X_valid=data.valid, groups_valid=data.valid_groups)
        models[name] = (detector, events)
    return models


def two_runs(data, rows_per_run: int = 120):
    """Two in-control runs back to back: rows and run ids."""
    X = np.concatenate([data.valid[:rows_per_run], data.valid[-rows_per_run:]]).copy()
    return X, np.repeat([7, 8], rows_per_run)


# ---- windows ------------------------------------------------------------------------
def test_windows_are_padded_with_the_first_row_of_their_run():
    starts = find_run_starts(np.array([5, 5, 5, 9, 9, 9, 9]), 7)
    windows = window_rows(np.arange(7), starts, 3)
    assert windows.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [3, 3, 3], [3, 3, 4], [3, 4, 5], [4, 5, 6]]


def test_groups_of_the_wrong_length_name_the_fix():
    with pytest.raises(ValueError, match="groups has 3 entries but X has 5 rows"):
        find_run_starts(np.zeros(3), 5)


def test_an_extreme_first_row_of_a_run_does_not_change_the_previous_run(data, fitted):
    detector, _ = fitted["LSTM_VAE"]
    X, groups = two_runs(data)
    boundary = int(np.flatnonzero(groups == 8)[0])
    shocked = X.copy()
    shocked[boundary] += 50 * X.std(axis=0)
    before = detector.decision_function(X, groups=groups)
    after = detector.decision_function(shocked, groups=groups)
    np.testing.assert_allclose(after[boundary - 1], before[boundary - 1], rtol=1e-6)
    assert after[boundary] > 10 * before[boundary]


def test_an_extreme_last_row_of_a_run_does_not_reach_into_the_next_run(data, fitted):
    detector, _ = fitted["LSTM_VAE"]
    X, groups = two_runs(data)
    boundary = int(np.flatnonzero(groups == 8)[0])
    shocked = X.copy()
    shocked[boundary - 1] += 50 * X.std(axis=0)
    next_run = slice(boundary, boundary + detector.sequence_length)
    before = detector.decision_function(X, groups=groups)[next_run]
    np.testing.assert_allclose(detector.decision_function(shocked, groups=groups)[next_run], before, rtol=1e-6)
    # Sensitivity check: as one run (groups=None) the same shock does reach those rows.
    one_run = detector.decision_function(shocked, groups=None)[next_run]
    assert one_run[0] > 10 * before[0]


# ---- every detector -------------------------------------------------------------------
@pytest.mark.parametrize("name", DETECTORS)
def test_save_then_load_gives_identical_scores(name, data, fitted, tmp_path):
    detector, _ = fitted[name]
    written = detector.save(tmp_path)
    assert {"model.keras", "savedmodel", "state.joblib"} <= set(written)
    assert all((tmp_path / entry).exists() for entry in written)
    assert (tmp_path / "savedmodel" / "saved_model.pb").is_file()
    reloaded = type(detector).load(tmp_path)
    expected = detector.decision_function(data.test, groups=data.test_groups)
    np.testing.assert_array_equal(reloaded.decision_function(data.test, groups=data.test_groups), expected)
    assert reloaded.threshold_ == detector.threshold_


def test_a_model_saved_before_a_parameter_existed_loads_with_its_default(data, fitted, tmp_path):
    """state.joblib written before intra_op_threads existed: get_params, repr and scoring still work."""
    import joblib

    detector, _ = fitted["LSTM_VAE"]
    detector.save(tmp_path)
    saved = joblib.load(tmp_path / "state.joblib")
    del saved["state"]["intra_op_threads"]
    joblib.dump(saved, tmp_path / "state.joblib")
    reloaded = LSTMVAE.load(tmp_path)
    assert reloaded.get_params()["intra_op_threads"] == 1 and "LSTMVAE(" in repr(reloaded)
    np.testing.assert_array_equal(reloaded.decision_function(data.test[:300], groups=data.test_groups[:300]),
                                  detector.decision_function(data.test[:300], groups=data.test_groups[:300]))


def test_loading_a_saved_model_as_another_detector_names_the_right_class(fitted, tmp_path):
    fitted["VAE_T2"][0].save(tmp_path)
    with pytest.raises(TypeError, match="holds a VAET2, not a PCAAE"):
        PCAAE.load(tmp_path)


@pytest.mark.parametrize("name", DETECTORS)
def test_progress_reports_every_epoch(name, fitted):
    _, events = fitted[name]
    assert [event["epoch"] for event in events] == list(range(1, len(events) + 1))
    assert 1 <= len(events) <= QUICK["epochs"]
    assert all(event["epochs"] == QUICK["epochs"] and np.isfinite(event["loss"]) for event in events)
    assert all(event["val_loss"] is not None for event in events)


@pytest.mark.parametrize("name", DETECTORS)
def test_groups_none_and_no_validation_data_work(name, data):
    cls, params = DETECTORS[name]
    detector = cls(**{**params, "epochs": 1}).fit(data.train[:600])
    alarms = detector.predict(data.test[:500])
    assert alarms.shape == (500,) and set(np.unique(alarms)) <= {0, 1}
    assert np.isfinite(detector.decision_function(data.test[:500])).all()


def test_the_savedmodel_export_serves_the_same_statistic(fitted, data, tmp_path):
    import tensorflow as tf

    detector, _ = fitted["VAE_T2"]
    detector.save(tmp_path)
    batch = detector.standardizer_(data.test[:256])
    exported = tf.saved_model.load(str(tmp_path / "savedmodel"))   # kept alive while serving
    served = exported.serve(batch)
    np.testing.assert_allclose(np.asarray(served[0]), detector.scorer_.predict(batch, verbose=0)[0], rtol=1e-5)


def test_the_same_seed_gives_the_same_scores(data):
    cls, params = DETECTORS["VAE_T2"]
    first, second = (cls(**params, random_state=3).fit(data.train[:1000]) for _ in range(2))
    np.testing.assert_allclose(first.decision_function(data.test[:300]), second.decision_function(data.test[:300]),
                               rtol=1e-5)


LSTM_IN_A_FRESH_PROCESS = r"""
import sys
import numpy as np
from workers.data import synthetic
from workers.detectors.lstm_vae import LSTMVAE
data = synthetic.load(None, {"size": "small"}, seed=0)
# the production shapes: with smaller ones the ops are too small to be split between threads
detector = LSTMVAE(epochs=2, batch_size=512, sequence_length=10, latent_dim=8, lstm_units=32, patience=5)
detector.fit(data.train, groups=data.train_groups, X_valid=data.valid, groups_valid=data.valid_groups)
np.save(sys.argv[1], detector.decision_function(data.test[:2000], groups=data.test_groups[:2000]))
"""


@pytest.mark.slow
def test_lstm_vae_trains_the_same_model_whatever_the_workers_share_of_cores(tmp_path):
    """Two threads split an LSTM's sums differently and the difference grows over the epochs (at
    full size early stopping came at epoch 29 instead of 40): the default intra_op_threads=1 keeps
    the model independent of how many workers ran side by side."""
    import os
    import subprocess
    import sys

    scores = {}
    for share in (1, 2):
        env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(share), "OMP_NUM_THREADS": str(share),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        out = tmp_path / f"share{share}.npy"
        subprocess.run([sys.executable, "-c", LSTM_IN_A_FRESH_PROCESS, str(out)], env=env, check=True, timeout=300)
        scores[share] = np.load(out)
    np.testing.assert_array_equal(scores[1], scores[2])


def test_a_wrong_thread_count_names_the_fix(data):
    with pytest.raises(ValueError, match="intra_op_threads=-1 must be an integer >= 0"):
        LSTMVAE(intra_op_threads=-1, epochs=1).fit(data.train[:200])


def test_combined_statistics_are_saved_per_row(fitted, data):
    stats = fitted["PCA_AE"][0].statistics(data.test[:100])
    assert set(stats) == {"t2", "spe", "ae"} and all(v.shape == (100,) for v in stats.values())


def test_errors_before_fit_and_for_unknown_parameters():
    with pytest.raises(TypeError, match="lstm_unit"):
        LSTMVAE(lstm_unit=3)
    with pytest.raises(NotFittedError):
        PCAAE().decision_function(np.zeros((3, 52)))


def test_a_wrong_ae_input_names_the_choices(data):
    with pytest.raises(ValueError, match="scores, residual"):
        PCAAE(ae_input="latent").fit(data.train[:200])
