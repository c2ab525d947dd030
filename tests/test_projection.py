"""The shared standardizer and PCA of every detector (workers/detectors/projection.py):
block-wise moments on a memmap agree with numpy on the whole array, and models saved
before it existed (Keras state naming its old home, classical models with their own
mean/scale arrays) still load and score."""
from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest

from workers.detectors.projection import Standardizer, count_components, fit_pca


@pytest.fixture(scope="module")
def memmapped(tmp_path_factory):
    """Correlated float32 rows far from zero (as in engineering units), memmapped like a dataset."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(1000, 6)) @ rng.normal(size=(6, 6)) + 1000.0).astype(np.float32)
    X[:, 2] = 5.0   # a constant column
    path = tmp_path_factory.mktemp("projection") / "train.npy"
    np.save(path, X)
    return np.load(path, mmap_mode="r")


def test_blockwise_standardizer_matches_numpy_on_the_whole_array(memmapped):
    standardizer = Standardizer.fit(memmapped, chunk_rows=97)   # many blocks, the last one short
    whole = np.asarray(memmapped, dtype=np.float64)
    np.testing.assert_allclose(standardizer.mean, whole.mean(axis=0), rtol=1e-12)
    expected_scale = whole.std(axis=0, ddof=1)
    expected_scale[2] = 1.0   # constant: scale 1, so it standardizes to 0
    np.testing.assert_allclose(standardizer.scale, expected_scale, rtol=1e-9)
    standardized = standardizer(memmapped[:10])
    assert standardized.dtype == np.float32 and np.all(standardized[:, 2] == 0.0)


def test_blockwise_pca_is_the_eigen_decomposition_of_the_correlation(memmapped):
    standardizer = Standardizer.fit(memmapped)
    eigvals, eigvecs = fit_pca(memmapped, standardizer, chunk_rows=97)
    correlation = np.cov(standardizer(memmapped, np.float64), rowvar=False, ddof=1)
    np.testing.assert_allclose(np.diag(correlation)[[0, 1, 3]], 1.0, rtol=1e-6)   # ddof=1 throughout
    np.testing.assert_allclose(eigvals, np.sort(np.linalg.eigvalsh(correlation))[::-1], atol=1e-9)
    np.testing.assert_allclose(correlation @ eigvecs, eigvecs * eigvals, atol=1e-9)
    assert np.all(np.diff(eigvals) <= 0) and np.all(eigvals >= 0)


def test_component_count_from_a_fraction_and_with_a_residual_direction():
    eigvals = np.array([5.0, 3.0, 1.5, 0.5])          # cumulative 0.5, 0.8, 0.95, 1.0
    assert count_components(eigvals, 0.8) == 2        # exactly reached: no extra component for round-off
    assert count_components(eigvals, 0.81) == 3
    assert count_components(eigvals, 1.0) == 4
    assert count_components(eigvals, 1.0, keep_residual=True) == 3
    assert count_components(eigvals, 2) == 2


def test_a_standardizer_pickled_under_its_old_module_path_still_loads(memmapped):
    """state.joblib of LSTM_VAE / VAE_T2 / PCA_AE saved before the standardizer moved to
    projection.py names workers.detectors.keras_support.Standardizer and holds mean, scale."""
    old = Standardizer.__new__(Standardizer)
    old.__dict__.update(mean=np.full(6, 1000.0), scale=np.full(6, 2.0))
    saved = pickle.dumps(old, protocol=0)   # protocol 0 names classes as plain text
    assert b"workers.detectors.projection\nStandardizer" in saved
    saved = saved.replace(b"workers.detectors.projection\n", b"workers.detectors.keras_support\n")
    loaded = pickle.loads(saved)
    assert isinstance(loaded, Standardizer)
    np.testing.assert_allclose(loaded(memmapped[:5]), (memmapped[:5] - 1000.0) / 2.0, rtol=1e-6)


@pytest.mark.parametrize("name", ["PCA_T2_SPE", "PCA_SVM"])
def test_a_classical_model_saved_before_the_shared_standardizer_still_scores(tmp_path, memmapped, name):
    """Such a model.joblib kept mean_/scale_ (and its SVM head mean/scale) as attributes of their own."""
    from artifacts.registry import builtin_registry
    from workers.detectors.base import Detector
    from workers.detectors.loading import build_detector

    info = builtin_registry()[name]
    detector = build_detector(info.entry, info.params("fast"))
    X = np.asarray(memmapped)
    detector.fit(X[:800], X_valid=X[800:])
    expected = detector.decision_function(X)
    standardizer = detector.__dict__.pop("standardizer_")
    detector.__dict__.update(mean_=standardizer.mean, scale_=standardizer.scale)
    head = getattr(detector, "head_", None)
    if head is not None:
        head_standardizer = head.__dict__.pop("standardizer")
        head.__dict__.update(mean=head_standardizer.mean, scale=head_standardizer.scale)
    joblib.dump(detector, tmp_path / "model.joblib")   # the old layout, as an old version wrote it
    loaded = Detector.load(tmp_path)
    np.testing.assert_array_equal(loaded.decision_function(X), expected)
