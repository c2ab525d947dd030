"""Rieth-layout files generated from the synthetic plant: for tests, the benchmark, and trying
the ``rieth:`` source without the multi-gigabyte download. Not TEP data (see ``synthetic``)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from workers.data.rieth import FEATURE_COLUMNS, KEY_COLUMNS
from workers.data.synthetic import build_plant, simulate_test_run


def generate_runs(faults: list[int], runs: int, length: int, seed: int = 0,
                  lengths: dict[int, int] | None = None) -> Iterator[np.ndarray]:
    """One array (n_samples, 55) per run, columns ``KEY_COLUMNS + FEATURE_COLUMNS``, in file order.

    ``lengths`` maps a simulationRun number to a shorter length (runs cut short).
    """
    plant, rng = build_plant(), np.random.default_rng(seed)
    for fault in faults:
        for run in range(1, runs + 1):
            n = (lengths or {}).get(run, length)
            x = simulate_test_run(rng, plant, fault, length)[:n].astype(np.float64)
            keys = np.column_stack([np.full(n, fault), np.full(n, run), np.arange(1, n + 1)])
            yield np.column_stack([keys, x])


def write_rieth_table(path: Path, faults: list[int], runs: int, length: int, seed: int = 0,
                      lengths: dict[int, int] | None = None) -> Path:
    """Write one table (format from the suffix: .csv, .parquet or .RData), run by run for CSV and
    Parquet so a million-row file needs memory for one batch of runs only."""
    import pandas as pd

    columns = KEY_COLUMNS + FEATURE_COLUMNS
    frames = (to_frame(pd, block, columns) for block in generate_runs(faults, runs, length, seed, lengths))
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        for index, frame in enumerate(frames):
            frame.to_csv(path, mode="w" if index == 0 else "a", header=index == 0, index=False)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        writer.close()
    else:
        import pyreadr

        pyreadr.write_rdata(str(path), pd.concat(list(frames), ignore_index=True), df_name=Path(path).stem)
    return Path(path)


def to_frame(pd, block: np.ndarray, columns: list[str]):
    frame = pd.DataFrame(block, columns=columns)
    return frame.astype({name: "int64" for name in KEY_COLUMNS})
