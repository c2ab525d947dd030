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
from functools import partial
from typing import Iterator

import numpy as np

from artifacts import DatasetPaths
from workers.data.dataset import TEP_VARIABLES, LoadedData, label_from_onset, whole_runs_test_meta
from workers.data.errors import DataError
from workers.data.options import check_option_names
from workers.data.writer import RUNS_PER_CHUNK, SPLIT_CODE, Chunk, ChunkedSource, load_chunks, write_prepared_chunks

ONSET = 160
SAMPLING_MINUTES = 3.0
N_LATENT = 12
BURN_IN = 100
_STRUCTURE_SEED = 20170101   # the "plant"; fixed so train and test share it

OPTIONS = {"size": "tiny, small or full; default small"}
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
    shocks = rng.standard_normal((n_runs, length + BURN_IN, N_LATENT)) * np.sqrt(1 - plant.phi**2)
    latent = np.empty_like(shocks)
    state = np.zeros((n_runs, N_LATENT))
    # A plain loop over time, vectorized over runs and factors: scipy.signal.lfilter would do
    # the same but importing scipy.signal costs ~75 MB of RSS in the prepare worker.
    for t in range(shocks.shape[1]):
        state = plant.phi * state + shocks[:, t]
        latent[:, t] = state
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


def split_runs(shape: dict) -> dict[str, tuple[int, int]]:
    """(first run id, number of runs) of each split; test runs cover faults 0..21."""
    n_test = (1 + len(FAULTS)) * shape["test_runs_per_fault"]
    return {"train": (0, shape["train_runs"]),
            "valid": (shape["train_runs"], shape["valid_runs"]),
            "test": (shape["train_runs"] + shape["valid_runs"], n_test)}


def read_chunks(shape: dict, seed: int, split: str) -> Iterator[Chunk]:
    """Generate ``split`` in chunks of runs, memory staying at one chunk; each chunk has its own
    stream, seeded by (seed, split, chunk number), so its rows depend on nothing generated before."""
    plant = build_plant()
    first_id, n_runs = split_runs(shape)[split]
    for chunk_index, start in enumerate(range(0, n_runs, RUNS_PER_CHUNK)):
        rng = np.random.default_rng([seed, SPLIT_CODE[split], chunk_index])
        run_ids = np.arange(first_id + start, first_id + min(n_runs, start + RUNS_PER_CHUNK), dtype=np.int32)
        if split == "test":
            yield _test_chunk(rng, plant, shape, run_ids, first_id)
        else:
            yield _in_control_chunk(rng, plant, shape["run_length"], run_ids)


def _in_control_chunk(rng, plant: Plant, length: int, run_ids: np.ndarray) -> Chunk:
    x = to_engineering_units(plant, observe(rng, plant, simulate_latent(rng, plant, len(run_ids), length)))
    return Chunk(x.reshape(len(run_ids) * length, -1), np.repeat(run_ids, length))


def _test_chunk(rng, plant: Plant, shape: dict, run_ids: np.ndarray, first_test_id: int) -> Chunk:
    length, per_fault = shape["test_length"], shape["test_runs_per_fault"]
    fault_order = [0, *FAULTS]   # per_fault runs of each fault, fault 0 (in control) first
    faults = [fault_order[(run_id - first_test_id) // per_fault] for run_id in run_ids]
    runs = [simulate_test_run(rng, plant, fault, length) for fault in faults]
    test_meta = whole_runs_test_meta(faults, run_ids, [length] * len(run_ids))
    return Chunk(np.concatenate(runs), test_meta[:, 1].copy(), label_from_onset(test_meta, ONSET), test_meta)


def describe(options: dict, seed: int) -> tuple[dict, ChunkedSource]:
    check_option_names(options, OPTIONS, "synthetic")
    size = options.get("size", "small")
    if size not in SIZES:
        raise DataError(f"unknown synthetic size {size!r}; choose one of: {', '.join(SIZES)}")
    shape = SIZES[size]
    source = ChunkedSource(
        read_chunks=partial(read_chunks, shape, seed), variables=list(TEP_VARIABLES), onset=ONSET,
        sampling_minutes=SAMPLING_MINUTES,
        source=f"synthetic (size={size}, seed={seed}; TEP-shaped generator, not the TEP simulator)",
        notes=["Synthetic TEP-shaped data: results are not comparable with published TEP numbers."],
        details={"size": size, "hard_faults": list(HARD_FAULTS), **shape},
    )
    return shape, source


def prepare(location: str | None, options: dict, out: DatasetPaths, fingerprint: str, seed: int = 0) -> dict:
    """Generate and write ``dataset/`` chunk by chunk (full size stays well under 3x its largest array)."""
    _, source = describe(options, seed)
    return write_prepared_chunks(source, out, fingerprint)


def load(location: str | None, options: dict, seed: int = 0) -> LoadedData:
    """The same rows as ``prepare`` writes, in memory (for tests, benchmarks and notebooks)."""
    _, source = describe(options, seed)
    return load_chunks(source)
