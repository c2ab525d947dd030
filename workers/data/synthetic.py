"""``synthetic``: a deterministic generator of TEP-shaped data (the built-in default).

This is NOT the Tennessee Eastman simulator. It reproduces the *shape* of the
benchmark so the tool runs with no data on disk: 52 named variables
(XMEAS(1..41), XMV(1..11)) driven by 12 correlated, autocorrelated latent AR(1)
factors plus measurement noise; 21 fault classes modelled on TEP's disturbance
kinds (steps, random variation, slow drift, valve sticking, a valve fixed, and
unknown mixtures); test runs of 960 samples with onset at sample 160; faults
3, 9 and 15 are deliberately (almost) invisible, as in TEP. The plant structure
is fixed; only the noise of each run depends on ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from workers.data.dataset import TEP_VARIABLES, LoadedData

ONSET = 160
SAMPLING_MINUTES = 3.0
N_LATENT = 12
BURN_IN = 100
_STRUCTURE_SEED = 20170101   # the "plant"; fixed so train and test share it

SIZES = {
    "tiny": {"train_runs": 6, "valid_runs": 2, "run_length": 500, "test_runs_per_fault": 1, "test_length": 960},
    "small": {"train_runs": 40, "valid_runs": 10, "run_length": 500, "test_runs_per_fault": 2, "test_length": 960},
    "full": {"train_runs": 500, "valid_runs": 50, "run_length": 500, "test_runs_per_fault": 10, "test_length": 960},
}

# fault -> list of (target, effect, columns, magnitude). target "z" = latent, "x" = variable.
# Columns of "x" are 0-based variable indices (XMV(k) is 40 + k).
FAULTS: dict[int, list[tuple[str, str, list[int], float]]] = {
    1: [("z", "step", [0], 6.0)],
    2: [("z", "step", [1], -5.5)],
    3: [("x", "step", [20], 0.03)],                       # hard, like TEP 3
    4: [("x", "step", [50, 8], 3.0)],
    5: [("z", "decaying_step", [2], 2.5), ("x", "step", [51], 1.5)],
    6: [("z", "step", [3], 9.0)],
    7: [("x", "step", [44], 4.0)],
    8: [("z", "variance", [4], 5.0)],
    9: [("x", "variance", [17], 1.03)],                   # hard, like TEP 9
    10: [("z", "variance", [5], 2.5)],
    11: [("x", "variance", [8, 50], 4.0)],
    12: [("z", "variance", [6], 6.0)],
    13: [("z", "drift", [7], 0.03)],
    14: [("x", "stick", [50], 1.0), ("x", "variance", [8], 6.0)],
    15: [("x", "stick", [51], 0.02)],                     # hard, like TEP 15
    16: [("z", "variance", [8], 2.0), ("z", "step", [8], 0.8)],
    17: [("x", "step", [20, 21], 3.0), ("x", "variance", [20, 21], 2.0)],
    18: [("x", "drift", [6, 7], 0.02)],
    19: [("z", "stick", [9], 1.5)],
    20: [("z", "variance", [10], 2.0), ("z", "step", [10], 0.8)],
    21: [("x", "fixed", [44], 0.0), ("x", "drift", [11], 0.003)],
}
HARD_FAULTS = (3, 9, 15)


@dataclass(frozen=True)
class Plant:
    mixing: np.ndarray       # (52, N_LATENT)
    phi: np.ndarray          # (N_LATENT,) AR(1) coefficients
    noise: np.ndarray        # (52,) measurement noise std
    offset: np.ndarray       # (52,) engineering-unit means
    scale: np.ndarray        # (52,) engineering-unit spreads


def build_plant() -> Plant:
    rng = np.random.default_rng(_STRUCTURE_SEED)
    n_vars = len(TEP_VARIABLES)
    mixing = rng.standard_normal((n_vars, N_LATENT)) * (rng.random((n_vars, N_LATENT)) < 0.35)
    mixing[np.arange(n_vars), np.arange(n_vars) % N_LATENT] += 1.0   # every variable sees a factor
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)
    return Plant(
        mixing=mixing,
        phi=rng.uniform(0.80, 0.98, N_LATENT),
        noise=rng.uniform(0.15, 0.4, n_vars),
        offset=rng.uniform(5, 100, n_vars).round(1),
        scale=rng.uniform(0.5, 10, n_vars).round(2),
    )


def simulate_latent(rng: np.random.Generator, plant: Plant, n_runs: int, length: int) -> np.ndarray:
    """Unit-variance AR(1) factors, shape (n_runs, length, N_LATENT), burn-in discarded."""
    shocks = rng.standard_normal((n_runs, length + BURN_IN, N_LATENT))
    latent = np.empty_like(shocks)
    for j, phi in enumerate(plant.phi):
        latent[..., j] = lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], shocks[..., j], axis=1)
    return latent[:, BURN_IN:]


def observe(rng: np.random.Generator, plant: Plant, latent: np.ndarray) -> np.ndarray:
    """Mix latent factors into 52 noisy variables in engineering units."""
    clean = latent @ plant.mixing.T
    noisy = clean + rng.standard_normal(clean.shape) * plant.noise
    return noisy


def to_engineering_units(plant: Plant, x: np.ndarray) -> np.ndarray:
    return (plant.offset + plant.scale * x).astype(np.float32)


def apply_effect(block: np.ndarray, effect: str, columns: list[int], magnitude: float) -> None:
    """Apply one disturbance in place to the post-onset ``block`` (rows, columns)."""
    elapsed = np.arange(block.shape[0], dtype=np.float64)[:, None]
    if effect == "step":
        block[:, columns] += magnitude
    elif effect == "decaying_step":   # a control loop pulls it back, like TEP fault 5
        block[:, columns] += magnitude * (0.3 + 0.7 * np.exp(-elapsed / 150.0))
    elif effect == "variance":
        mean = block[:, columns].mean(axis=0)
        block[:, columns] = mean + (block[:, columns] - mean) * magnitude
    elif effect == "drift":
        block[:, columns] += magnitude * elapsed
    elif effect == "stick":
        for column in columns:
            block[:, column] = stick_valve(block[:, column], deadband=magnitude)
    elif effect == "fixed":
        block[:, columns] = block[0, columns]
    else:
        raise ValueError(f"unknown fault effect {effect!r}")


def stick_valve(signal: np.ndarray, deadband: float) -> np.ndarray:
    """A sticking valve moves only when the demanded change exceeds its deadband."""
    out = np.empty_like(signal)
    current = signal[0]
    for i, demanded in enumerate(signal):
        if abs(demanded - current) > deadband:
            current = demanded
        out[i] = current
    return out


def simulate_test_run(rng: np.random.Generator, plant: Plant, fault: int, length: int) -> np.ndarray:
    latent = simulate_latent(rng, plant, 1, length)[0]
    for target, effect, columns, magnitude in FAULTS.get(fault, []):
        if target == "z":
            apply_effect(latent[ONSET:], effect, columns, magnitude)
    x = observe(rng, plant, latent)
    for target, effect, columns, magnitude in FAULTS.get(fault, []):
        if target == "x":
            apply_effect(x[ONSET:], effect, columns, magnitude)
    return to_engineering_units(plant, x)


def load(location: str | None, options: dict, seed: int = 0) -> LoadedData:
    """Generate the dataset; ``options["size"]`` is tiny, small (default) or full."""
    size = options.get("size", "small")
    if size not in SIZES:
        raise ValueError(f"unknown synthetic size {size!r}; choose one of: {', '.join(SIZES)}")
    shape = SIZES[size]
    plant = build_plant()
    rng = np.random.default_rng(seed)
    train, train_groups = _in_control_runs(rng, plant, shape["train_runs"], shape["run_length"], first_id=0)
    valid, valid_groups = _in_control_runs(rng, plant, shape["valid_runs"], shape["run_length"],
                                           first_id=shape["train_runs"])
    faults = [0, *FAULTS]
    test_runs, meta = [], []
    run_id = shape["train_runs"] + shape["valid_runs"]
    for fault in faults:
        for _ in range(shape["test_runs_per_fault"]):
            test_runs.append(simulate_test_run(rng, plant, fault, shape["test_length"]))
            samples = np.arange(shape["test_length"])
            meta.append(np.column_stack([np.full_like(samples, fault), np.full_like(samples, run_id), samples]))
            run_id += 1
    test_meta = np.concatenate(meta).astype(np.int32)
    labels = np.where(test_meta[:, 2] >= ONSET, test_meta[:, 0], 0)
    return LoadedData(
        train=train, train_groups=train_groups, valid=valid, valid_groups=valid_groups,
        test=np.concatenate(test_runs), test_groups=test_meta[:, 1].copy(), test_labels=labels,
        test_meta=test_meta, variables=list(TEP_VARIABLES), onset=ONSET, sampling_minutes=SAMPLING_MINUTES,
        source=f"synthetic (size={size}, seed={seed}; TEP-shaped generator, not the TEP simulator)",
        notes=["Synthetic TEP-shaped data: results are not comparable with published TEP numbers."],
        details={"size": size, "hard_faults": list(HARD_FAULTS), **shape},
    )


def _in_control_runs(rng, plant, n_runs: int, length: int, first_id: int) -> tuple[np.ndarray, np.ndarray]:
    x = to_engineering_units(plant, observe(rng, plant, simulate_latent(rng, plant, n_runs, length)))
    groups = np.repeat(np.arange(first_id, first_id + n_runs, dtype=np.int32), length)
    return x.reshape(n_runs * length, -1), groups
