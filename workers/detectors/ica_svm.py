"""ICA_SVM: FastICA independent components of standardized rows -> one-class
SVM (Nystroem RBF features + SGD, see ``oneclass``)."""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import FastICA

from workers.detectors.oneclass import OneClassSVMDetector, sample_rows
from workers.detectors.projection import check_positive_int


class ICASVM(OneClassSVMDetector):
    """FastICA (``n_components`` sources) -> one-class SVM."""

    defaults = {**OneClassSVMDetector.defaults, "n_components": 30}

    def _fit_features(self, Xs: np.ndarray) -> None:
        name = type(self).__name__
        n_components = check_positive_int(name, "n_components", self.n_components)
        if n_components > Xs.shape[1]:
            raise ValueError(f"{name}: n_components={n_components} exceeds the {Xs.shape[1]} features; "
                             f"choose at most {Xs.shape[1]}.")
        # the unmixing of 52 variables is well determined by max_samples rows;
        # FastICA on all rows only costs time
        rows = sample_rows(Xs.shape[0], self.max_samples, self.random_state)
        ica = FastICA(n_components=n_components, whiten="unit-variance", whiten_solver="eigh",
                      max_iter=400, random_state=self.random_state).fit(Xs[rows])
        self.ica_mean_ = ica.mean_.astype(np.float32)
        self.unmixing_ = ica.components_.T.astype(np.float32)     # (n_features, n_components)
        self.ica_iterations_ = int(ica.n_iter_)

    def _transform_features(self, Xs: np.ndarray) -> np.ndarray:
        return (Xs - self.ica_mean_) @ self.unmixing_
