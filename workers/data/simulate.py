"""``simulate``: normal and faulty runs of the real Tennessee Eastman Process, simulated here.

Uses the ``tep-studio`` package (optional extra ``[simulate]``): the modified TEP kernel of
Bathelt, Ricker & Jelali (2015) under Ricker's (1996) decentralized control, integrated with
fixed-step RK4 at a 0.01 h control interval and sampled every 3 minutes. Each row is
XMEAS(1..41) then XMV(1..11), the valve positions actually applied (XMV(12), the agitator
speed, is left out as in the Braatz and Rieth files).

Train and validation runs are in control. Test runs are one set per fault (fault 0 = in
control) with the disturbance IDV(fault) switched on at ``onset_hours``; with the defaults
(48 h runs, onset at 8 h) that is the Braatz/Rieth layout: 960 samples, rows >= 160 faulty.
Faults are the kernel's IDV(1..28); the default is IDV(1..20), the classic set. IDV(21..28)
are the modified kernel's extra random disturbances, NOT Braatz's fault 21 (a fixed valve).

Runs are simulated in parallel in fresh interpreters (a "spawn" process pool), each seeded
from (seed, split, fault, run number), so a run does not change when other runs or faults
are added. A run that trips the plant's shutdown (IDV(6), A feed loss, does within hours)
ends there and is kept as it is; ``details["shutdowns"]`` lists such runs.
"""
from __future__ import annotations

import faulthandler
import importlib.util
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from artifacts import DatasetPaths
from workers.data.dataset import TEP_VARIABLES, LoadedData, label_from_onset, whole_runs_test_meta
from workers.data.errors import DataError
from workers.data.options import check_option_names, count_option, select_faults
from workers.data.writer import RUNS_PER_CHUNK, SPLIT_CODE, Chunk, ChunkedSource, load_chunks, write_prepared_chunks

SOURCE = "simulate"
SAMPLING_MINUTES = 3.0
CONTROL_INTERVAL_H = 0.01     # tep-studio's FDD-benchmark step; its 0.0005 h default is 20x slower
ALL_FAULTS = tuple(range(1, 29))
DEFAULT_FAULTS = tuple(range(1, 21))
INSTALL_HINT = "the simulate source needs the tep-studio package: pip install -e '.[simulate]' (in the orchestrate checkout)"
OPTIONS = {
    "train_runs": "in-control training runs; default 4",
    "valid_runs": "in-control validation runs; default 1",
    "test_runs_per_fault": "test runs per fault, fault 0 included; default 1",
    "faults": "IDV numbers 1..28 to test, e.g. [1,2,6]; default 1..20",
    "train_hours": "length of a training/validation run in hours; default 25 (500 samples)",
    "test_hours": "length of a test run in hours; default 48 (960 samples)",
    "onset_hours": "time the fault starts in a test run, in hours; default 8 (sample 160)",
    "workers": "parallel simulator processes; default min(4, CPU count)",
}


@dataclass(frozen=True)
class RunSpec:
    """One simulated run: what a worker process needs, and where its rows go."""

    split: str
    run_id: int
    fault: int
    hours: float
    onset_hours: float
    kernel_seed: float


@dataclass
class SimulationPlan:
    runs: dict[str, list[RunSpec]]
    onset: int
    workers: int
    details: dict = field(default_factory=dict)


def samples_in(hours: float) -> int:
    return int(round(hours * 60.0 / SAMPLING_MINUTES))


def hours_option(options: dict, name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or samples_in(value) < 2:
        raise DataError(f"option {name}={value!r} for {SOURCE} must be a number of hours of at least "
                        f"{2 * SAMPLING_MINUTES / 60:g} (two 3-minute samples), e.g. {name}={default:g}")
    return float(value)


def read_settings(options: dict) -> dict:
    """The validated options, defaults filled in."""
    check_option_names(options, OPTIONS, SOURCE)
    settings = {
        "train_runs": count_option(options, "train_runs", SOURCE) or 4,
        "valid_runs": count_option(options, "valid_runs", SOURCE) or 1,
        "test_runs_per_fault": count_option(options, "test_runs_per_fault", SOURCE) or 1,
        "faults": list(DEFAULT_FAULTS) if options.get("faults") is None
        else select_faults(options, ALL_FAULTS, SOURCE),
        "train_hours": hours_option(options, "train_hours", 25.0),
        "test_hours": hours_option(options, "test_hours", 48.0),
        "onset_hours": hours_option(options, "onset_hours", 8.0),
        "workers": count_option(options, "workers", SOURCE) or min(4, os.cpu_count() or 1),
    }
    if samples_in(settings["onset_hours"]) >= samples_in(settings["test_hours"]):
        raise DataError(f"option onset_hours={settings['onset_hours']:g} for {SOURCE} must be earlier than the "
                        f"end of a test run (test_hours={settings['test_hours']:g}); e.g. onset_hours=8 test_hours=48")
    return settings


def check_tep_studio_installed() -> None:
    if importlib.util.find_spec("tep_studio") is None:
        raise DataError(INSTALL_HINT)


def kernel_seed(seed: int, split: str, fault: int, number: int) -> float:
    """A noise seed for the TEP kernel from (seed, split, fault, run number): a positive whole
    number below 2**31, like the kernel's own default seed 1431655765."""
    state = np.random.SeedSequence([seed, SPLIT_CODE[split], fault, number]).generate_state(1)[0]
    return float(1 + int(state) % (2**31 - 2))


def plan_simulation(options: dict, seed: int) -> SimulationPlan:
    """Every run to simulate, with consecutive run ids: train, then valid, then test."""
    settings = read_settings(options)
    check_tep_studio_installed()
    runs: dict[str, list[RunSpec]] = {"train": [], "valid": [], "test": []}
    cases = [("train", 0, n) for n in range(settings["train_runs"])]
    cases += [("valid", 0, n) for n in range(settings["valid_runs"])]
    cases += [("test", fault, n) for fault in [0, *settings["faults"]] for n in range(settings["test_runs_per_fault"])]
    for run_id, (split, fault, number) in enumerate(cases):
        hours = settings["test_hours"] if split == "test" else settings["train_hours"]
        runs[split].append(RunSpec(split, run_id, fault, hours, settings["onset_hours"],
                                   kernel_seed(seed, split, fault, number)))
    details = {**settings, "seed": seed, "control_interval_hours": CONTROL_INTERVAL_H,
               "tep_studio_version": installed_version(), "shutdowns": {}}
    return SimulationPlan(runs, samples_in(settings["onset_hours"]), settings["workers"], details)


def installed_version() -> str:
    from importlib.metadata import version

    return version("tep-studio")


# --- in the worker processes ---

def simulate_run(spec: RunSpec) -> tuple[np.ndarray, float | None]:
    """Run the closed loop; return rows (n_samples, 52) and the shutdown time in hours, or None."""
    from tep_studio import TEP_SCHEMA, ClosedLoopSimulation, TennesseeEastmanProcess

    schedule = None
    if spec.fault:
        off = np.zeros(len(TEP_SCHEMA.disturbances))
        on = off.copy()
        on[TEP_SCHEMA.index("disturbances", f"idv_{spec.fault:02d}")] = 1.0
        # Half a step early: simulated time accumulates float error, and the step that starts
        # at the onset must already be disturbed (it is recorded as the first faulty sample).
        start = spec.onset_hours - CONTROL_INTERVAL_H / 2
        schedule = (lambda t: on if t >= start else off)
    every = int(round(SAMPLING_MINUTES / 60 / CONTROL_INTERVAL_H))
    simulation = ClosedLoopSimulation(simulator=TennesseeEastmanProcess(), control_interval=CONTROL_INTERVAL_H,
                                      horizon=spec.hours)
    result = simulation.run(seed=spec.kernel_seed, disturbance_schedule=schedule, record_every=every)
    recorded = list(result.results)
    if result.terminated and (result.n_steps - 1) % every:
        recorded.pop()   # the shutdown step is recorded off the 3-minute grid
    rows = np.array([np.concatenate([r.measurements, r.implemented_action[:11]]) for r in recorded])
    return rows[:samples_in(spec.hours)], (float(result.final_time) if result.terminated else None)


def start_worker() -> None:
    faulthandler.enable()   # a crash in the C kernel still leaves a traceback on stderr


# --- in the prepare process ---

@contextmanager
def open_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Fresh interpreters ("spawn"), never forks of a parent that has imported numpy."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=start_worker)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def collect_run(future: Future, spec: RunSpec) -> tuple[np.ndarray, float | None]:
    """The result of one run; a failure names the run and what to try."""
    what = f"{SOURCE}: the {spec.split} run {spec.run_id} (fault {spec.fault}, {spec.hours:g} h)"
    try:
        return future.result()
    except BrokenProcessPool as error:
        raise DataError(f"{what} failed: a simulator process died ({error}). Its traceback is on stderr; "
                        "if memory ran out, lower --data-option workers=N") from error
    except RuntimeError as error:   # tep-studio reports a diverged integration this way
        raise DataError(f"{what} failed in tep-studio: {error}") from error


def read_chunks(plan: SimulationPlan, pool: ProcessPoolExecutor, split: str) -> Iterator[Chunk]:
    """Simulate ``split`` RUNS_PER_CHUNK runs at a time (the writer makes one pass per split)."""
    specs = plan.runs[split]
    for start in range(0, len(specs), RUNS_PER_CHUNK):
        batch = specs[start:start + RUNS_PER_CHUNK]
        futures = [pool.submit(simulate_run, spec) for spec in batch]
        runs = [collect_run(future, spec) for future, spec in zip(futures, batch)]
        for spec, (_, shutdown) in zip(batch, runs):
            if shutdown is not None:
                plan.details["shutdowns"][str(spec.run_id)] = {"fault": spec.fault, "hours": round(shutdown, 2)}
        yield build_chunk(plan, batch, [rows for rows, _ in runs])


def build_chunk(plan: SimulationPlan, specs: list[RunSpec], runs: list[np.ndarray]) -> Chunk:
    lengths = [len(rows) for rows in runs]   # a run that tripped a shutdown is shorter
    groups = np.repeat([spec.run_id for spec in specs], lengths).astype(np.int32)
    if specs[0].split != "test":
        return Chunk(np.concatenate(runs), groups)
    meta = whole_runs_test_meta([spec.fault for spec in specs], [spec.run_id for spec in specs], lengths)
    return Chunk(np.concatenate(runs), groups, label_from_onset(meta, plan.onset), meta)


def describe_source(plan: SimulationPlan, pool: ProcessPoolExecutor) -> ChunkedSource:
    d = plan.details
    return ChunkedSource(
        read_chunks=lambda split: read_chunks(plan, pool, split), variables=list(TEP_VARIABLES),
        onset=plan.onset, sampling_minutes=SAMPLING_MINUTES,
        source=(f"simulate (tep-studio {d['tep_studio_version']}, seed={d['seed']}, "
                f"{d['train_runs']}+{d['valid_runs']} in-control runs, faults {d['faults']})"),
        notes=["Simulated TEP (tep-studio: modified kernel, Ricker decentralized control). Close to, but not "
               "the same process as, the Braatz/Rieth files: compare numbers within this source only.",
               "The control strategy holds some valves fixed (e.g. XMV(5), XMV(9)); such constant "
               "variables are dropped."],
        details=d,
    )


def prepare(location: str | None, options: dict, out: DatasetPaths, fingerprint: str, seed: int = 0) -> dict:
    """Simulate and write ``dataset/`` chunk by chunk. ``location`` is unused (there are no files)."""
    plan = plan_simulation(options, seed)
    with open_pool(plan.workers) as pool:
        return write_prepared_chunks(describe_source(plan, pool), out, fingerprint)


def load(location: str | None, options: dict, seed: int = 0) -> LoadedData:
    """The same rows as ``prepare`` writes, in memory (for tests, benchmarks and notebooks).

    The simulator processes are spawned, so a script calling this needs the
    ``if __name__ == "__main__":`` guard (a spawned child imports the main module again)."""
    plan = plan_simulation(options, seed)
    with open_pool(plan.workers) as pool:
        return load_chunks(describe_source(plan, pool))
