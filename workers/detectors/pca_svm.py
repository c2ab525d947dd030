"""PCA_SVM: principal-component scores of standardized rows -> one-class SVM
(Nystroem RBF features + SGD, see ``oneclass``), as in the seed notebook but
linear in rows."""
from __future__ import annotations

import numpy as np

from workers.detectors.oneclass import OneClassSVMDetector
from workers.detectors.projection import check_n_components, count_components, fit_pca


class PCASVM(OneClassSVMDetector):
    """PCA (variance fraction or fixed count) -> one-class SVM."""

    defaults = {**OneClassSVMDetector.defaults, "n_components": 0.90}

    def _fit_features(self, Xs: np.ndarray) -> None:
        n_components = check_n_components(type(self).__name__, self.n_components, Xs.shape[1], allow_all=True)
        eigvals, eigvecs = fit_pca(Xs)
        self.n_components_ = count_components(eigvals, n_components)
        self.components_ = eigvecs[:, :self.n_components_].astype(np.float32)   # (n_features, k)

    def _transform_features(self, Xs: np.ndarray) -> np.ndarray:
        # standardized data has zero training mean, so no centring is needed
        return Xs @ self.components_
