"""The one registry of detectors: name -> ``module:Class``, summary, profiles.

It lives in ``artifacts`` because it is part of the parent/worker contract:
the parent plans jobs and fingerprints them from it without importing any
detector module (so never scikit-learn or TensorFlow); the worker imports
``entry`` lazily. Adding a detector = one module in ``workers/detectors`` +
one ``DetectorInfo`` line here; the contract tests pick it up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROFILES = ("fast", "production")


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    entry: str                    # "package.module:Class", imported only in a worker
    summary: str
    framework: str = "sklearn"    # "numpy" | "sklearn" | "tensorflow" (GPU jobs)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    builtin: bool = True
    memory_hint_bytes: int | None = None   # a user's estimate of peak RSS, before history exists
    #: the size model: peak RSS = framework base + this x bytes of float32 training data (rows x
    #: features x 4); measured per built-in detector at 250,000 x 52, production profile. Until a
    #: job has measured history (keyed by its parameters) this is its estimate.
    memory_per_data_byte: float | None = None

    def params(self, profile: str) -> dict[str, Any]:
        """Parameters of ``profile``; unknown profiles are a usage error."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
        return dict(self.profiles.get(profile, {}))


BUILTIN_DETECTORS: tuple[DetectorInfo, ...] = (
    DetectorInfo(
        "PCA_T2_SPE", "workers.detectors.pca_t2_spe:PCAT2SPE",
        "Classical PCA monitoring: Hotelling T2 (F limit) and SPE/Q (Jackson-Mudholkar limit), alarm if either exceeds.",
        "sklearn",
        {"fast": {"n_components": 0.90, "confidence": 0.99},
         "production": {"n_components": 0.90, "confidence": 0.99}},
    ),
    DetectorInfo(
        "PCA_SVM", "workers.detectors.pca_svm:PCASVM",
        "PCA scores -> RBF one-class SVM trained on a seeded subsample of max_samples rows.",
        "sklearn",
        {"fast": {"n_components": 0.90, "nu": 0.01, "max_samples": 5000},
         "production": {"n_components": 0.90, "nu": 0.01, "max_samples": 10000}},
        memory_per_data_byte=5.5,
    ),
    DetectorInfo(
        "KPCA_SVM", "workers.detectors.kpca_svm:KPCASVM",
        "Kernel PCA by Nystroem approximation (never an n x n kernel) + kernel SPE -> RBF one-class SVM (subsample).",
        "sklearn",
        {"fast": {"n_components": 20, "n_kernel_features": 300, "nu": 0.01, "max_samples": 5000},
         "production": {"n_components": 30, "n_kernel_features": 500, "nu": 0.01, "max_samples": 10000}},
        memory_per_data_byte=4.5,
    ),
    DetectorInfo(
        "ICA_SVM", "workers.detectors.ica_svm:ICASVM",
        "FastICA independent components -> RBF one-class SVM trained on a seeded subsample of max_samples rows.",
        "sklearn",
        {"fast": {"n_components": 20, "nu": 0.01, "max_samples": 5000},
         "production": {"n_components": 30, "nu": 0.01, "max_samples": 10000}},
        memory_per_data_byte=4.5,
    ),
    DetectorInfo(
        "LSTM_VAE", "workers.detectors.lstm_vae:LSTMVAE",
        "Variational autoencoder over run-aware windows with LSTM encoder/decoder; score = window reconstruction error.",
        "tensorflow",
        {"fast": {"sequence_length": 3, "latent_dim": 3, "lstm_units": 16, "threshold_percentile": 95.0,
                  "epochs": 5, "batch_size": 256, "patience": 2},
         # production: 32 units (not 64) and an "epoch" of 250 random batches (128k windows), so it trains in
         # ~2.5-3 min on one thread and scores ~125k rows/s when the cores are free (40-70k when other processes
         # load them; sequence_length 5 doubles that at a small loss of detection, see lstm_vae.py).
         "production": {"sequence_length": 10, "latent_dim": 8, "lstm_units": 32, "threshold_percentile": 99.0,
                        "epochs": 40, "batch_size": 512, "patience": 3, "steps_per_epoch": 250}},
        memory_per_data_byte=6.0,
    ),
    DetectorInfo(
        "VAE_T2", "workers.detectors.vae_t2:VAET2",
        "Dense variational autoencoder; score = max of Hotelling T2 of the latent mean and reconstruction error, each / its in-control q99.",
        "tensorflow",
        {"fast": {"latent_dim": 8, "hidden_units": 32, "epochs": 10, "batch_size": 256, "patience": 2},
         "production": {"latent_dim": 12, "hidden_units": 64, "epochs": 50, "batch_size": 512, "patience": 4}},
        memory_per_data_byte=2.0,
    ),
    DetectorInfo(
        "PCA_AE", "workers.detectors.pca_ae:PCAAE",
        "Hybrid: PCA projection, then an autoencoder on the PCA residual; score = max of T2, SPE, AE error (each / its in-control q99).",
        "tensorflow",
        {"fast": {"n_components": 0.90, "hidden_units": 16, "ae_input": "residual", "epochs": 10, "batch_size": 256,
                  "patience": 2},
         "production": {"n_components": 0.90, "hidden_units": 32, "ae_input": "residual", "epochs": 50,
                        "batch_size": 512, "patience": 4}},
        memory_per_data_byte=2.5,
    ),
)


def builtin_registry() -> dict[str, DetectorInfo]:
    return {info.name: info for info in BUILTIN_DETECTORS}
