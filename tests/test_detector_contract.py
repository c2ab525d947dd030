"""One contract, every registered detector (sklearn ``parametrize_with_checks`` /
PyOD style): fitting, scores, alarms, persistence, input errors and a ROC AUC
floor on an easy synthetic fault. A new registry entry is picked up here."""
from __future__ import annotations


import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from artifacts.registry import builtin_registry
from workers.data.synthetic import load
from workers.detectors.base import NotFittedError
from workers.detectors.loading import import_detector_class

REGISTRY = builtin_registry()
#: on top of the "fast" profile: keep each detector's fit to seconds here
SMALL_OVERRIDES = {
    "PCA_SVM": {"max_samples": 2000},
    "KPCA_SVM": {"max_samples": 2000, "n_kernel_features": 200},
    "ICA_SVM": {"max_samples": 2000},
    "LSTM_VAE": {"epochs": 2},
    "VAE_T2": {"epochs": 2},
    "PCA_AE": {"epochs": 2},
}
EASY_FAULT = 6          # a large step in a latent factor of the synthetic plant
AUC_FLOOR = 0.8
ALARM_RATE_TOLERANCE = 0.05


def small_params(name: str) -> dict:
    return {**REGISTRY[name].params("fast"), **SMALL_OVERRIDES.get(name, {})}


def detector_class(name: str):
    """The detector's class; a registry entry whose module is missing is a failure, not a skip."""
    return import_detector_class(REGISTRY[name].entry)


@pytest.fixture(scope="module")
def data():
    return load(None, {"size": "tiny"}, seed=0)


@pytest.fixture(scope="module", params=sorted(REGISTRY))
def name(request):
    return request.param


@pytest.fixture(scope="module")
def fitted(name, data):
    """(detector, value returned by fit), fitted once per detector for the module."""
    detector = detector_class(name)(**small_params(name))
    returned = detector.fit(data.train, groups=data.train_groups, X_valid=data.valid, groups_valid=data.valid_groups)
    return detector, returned


@pytest.fixture(scope="module")
def test_scores(fitted, data):
    detector, _ = fitted
    return detector.decision_function(data.test, groups=data.test_groups)


def test_fit_returns_self_and_scores_every_row(fitted, test_scores, data):
    detector, returned = fitted
    assert returned is detector
    assert test_scores.shape == (len(data.test),)
    assert np.all(np.isfinite(test_scores)), "every row must get a finite score"
    assert np.isfinite(detector.threshold_)


def test_predict_is_binary_with_in_control_rate_near_one_minus_percentile(fitted, data):
    detector, _ = fitted
    alarms = detector.predict(data.test, groups=data.test_groups)
    assert set(np.unique(alarms)) <= {0, 1}
    in_control_rate = alarms[data.test_labels == 0].mean()    # held-out: fault-free run + pre-onset rows
    expected = 1.0 - detector.threshold_percentile / 100.0
    assert abs(in_control_rate - expected) <= ALARM_RATE_TOLERANCE, (
        f"{type(detector).__name__}: in-control alarm rate {in_control_rate:.3f}, expected about {expected:.3f}")


def test_save_then_load_gives_identical_scores(fitted, test_scores, data, tmp_path):
    detector, _ = fitted
    detector.save(tmp_path)
    loaded = type(detector).load(tmp_path)
    np.testing.assert_allclose(loaded.decision_function(data.test, groups=data.test_groups), test_scores,
                               rtol=1e-6, atol=1e-9)
    assert loaded.threshold_ == detector.threshold_


def test_predict_before_fit_raises_not_fitted(name, data):
    detector = detector_class(name)(**small_params(name))
    for method in (detector.predict, detector.statistics, detector.score_with_statistics):
        with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
            method(data.test[:10])


def test_wrong_feature_count_raises_value_error(fitted, data):
    detector, _ = fitted
    for method in (detector.decision_function, detector.statistics, detector.score_with_statistics):
        with pytest.raises(ValueError, match="has 33 features, but .* was fitted with 52"):
            method(data.test[:20, :33])


def test_score_with_statistics_is_decision_function_and_statistics(fitted, test_scores, data):
    """What a worker saves (one pass) equals the two public methods called one by one."""
    detector, _ = fitted
    scores, statistics = detector.score_with_statistics(data.test, groups=data.test_groups)
    np.testing.assert_allclose(scores, test_scores, rtol=1e-6, atol=1e-9)
    separately = detector.statistics(data.test, groups=data.test_groups)
    assert set(statistics) == set(separately)
    for name, values in separately.items():
        assert values.shape == (len(data.test),)
        np.testing.assert_allclose(statistics[name], values, rtol=1e-6, atol=1e-9)


def test_unknown_parameter_lists_valid_ones(name):
    cls = detector_class(name)
    with pytest.raises(TypeError, match="no parameter 'not_a_parameter'; its parameters are: .*threshold_percentile"):
        cls(not_a_parameter=1)


def test_roc_auc_floor_on_easy_fault(fitted, test_scores, data):
    detector, _ = fitted
    in_control, faulty = data.test_labels == 0, data.test_labels == EASY_FAULT
    y = np.r_[np.zeros(in_control.sum()), np.ones(faulty.sum())]
    auc = roc_auc_score(y, np.r_[test_scores[in_control], test_scores[faulty]])
    assert auc >= AUC_FLOOR, f"{type(detector).__name__}: ROC AUC {auc:.3f} on fault {EASY_FAULT} < {AUC_FLOOR}"
