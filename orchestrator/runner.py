"""``orchestrate run`` as a library function: plan, schedule, supervise, record, report.

The command layer (cli.py) parses and validates; ``execute_run`` does the work
and returns a ``RunReport`` whose ``exit_code`` states the policy.
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifacts import JobSpec, JobState, Manifest, RunPaths, append_event, read_events
from artifacts.records import PREPARE_JOB, KillReason
from artifacts.sources import SourceError, parse_source
from orchestrator.config import ConfigError, load_config
from orchestrator.executors import ExecutorUnavailable, RunningJob, make_executor
from orchestrator.lock import RunLock, RunLockedError
from orchestrator.memory import MemoryPolicy, check_budget, degradation
from orchestrator.plan import Plan, PlanError, build_plan, select_detectors
from orchestrator.progress import make_display
from orchestrator.run_files import (InputError, attach_benchmark, create_run_directory, is_up_to_date,
                                    load_manifest, prepare_job_folder)
from orchestrator.signals import Interrupted, InterruptGuard, signals_deferred
from orchestrator.supervise import Outcome, classify_outcome, input_error_message, kill_stale_worker_group

POLL_INTERVAL_S = 0.2


@dataclass
class RunOptions:
    run_dir: Path
    data: str = "synthetic"
    data_options: dict[str, Any] = field(default_factory=dict)
    profile: str = "fast"
    config: Path | None = None
    select_all: bool = False
    only: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    force: bool = False
    timeout_s: float | None = None
    retries: int = 0
    executor: str = "subprocess"
    executor_options: dict[str, Any] = field(default_factory=dict)
    max_workers: int | None = None
    memory_budget_bytes: int | None = None
    on_oom: str = "fail"
    seed: int = 0
    progress: str = "auto"
    report: bool = True
    k_consecutive: int = 6


@dataclass
class RunReport:
    run: RunPaths
    manifest: Manifest
    selected: list[str]
    interrupted: bool = False
    benchmark: Any = None
    report_error: str | None = None
    input_errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.input_errors:
            return 2
        states = [self.manifest.jobs[name].job_state for name in self.selected]
        return 0 if all(state.succeeded for state in states) else 1


def execute_run(options: RunOptions) -> RunReport:
    """Run the selected detectors; raises ``InputError`` (exit 2) for bad options or data."""
    run, plan = plan_run(options)
    try:
        with RunLock(run.lock), InterruptGuard() as guard:
            report = run_session(run, options, plan, guard)
            if options.report and not report.interrupted:
                try:
                    attach_benchmark(report, options)
                except Interrupted:   # Ctrl-C while the report is built: results are saved, say 130
                    report.interrupted = True
    except (RunLockedError, ExecutorUnavailable) as error:
        raise InputError(str(error)) from None
    return report


def plan_run(options: RunOptions) -> tuple[RunPaths, Plan]:
    """Validate every option and input that can be checked before a worker starts."""
    try:
        source = parse_source(options.data, options.data_options)
        config = load_config(options.config)
        selected = select_detectors(config.registry, select_all=options.select_all,
                                    only=options.only, skip=options.skip)
        check_budget(options.memory_budget_bytes)
        run = RunPaths.at(options.run_dir)
        create_run_directory(run)
        return run, build_plan(run, source, config, selected, profile=options.profile, seed=options.seed)
    except (SourceError, ConfigError, PlanError, ModuleNotFoundError, ValueError) as error:
        raise InputError(str(error)) from None


def run_session(run: RunPaths, options: RunOptions, plan: Plan, guard: InterruptGuard) -> RunReport:
    try:
        session = RunSession(run, options, plan, guard)
    except Interrupted:   # Ctrl-C while an executor starts (Ray takes seconds): nothing ran yet
        return RunReport(run, load_manifest(run), plan.names, interrupted=True)
    return session.execute()


def measured_peak(job: RunningJob, outcome: Outcome) -> int:
    """The higher of the parent's samples of the worker's process tree and the peak the worker
    reported itself (0 if neither): samples miss what lies between them, and a Ray worker,
    maybe on another node, is not sampled at all."""
    reported = outcome.record.peak_rss_bytes if outcome.record is not None else None
    return max(job.peak_rss_bytes or 0, reported or 0)


class RunSession:
    """One orchestrator working on one run directory (holds the lock)."""

    def __init__(self, run: RunPaths, options: RunOptions, plan: Plan, guard: InterruptGuard) -> None:
        self.run, self.options, self.plan, self.guard = run, options, plan, guard
        self.manifest = load_manifest(run)
        self.memory = MemoryPolicy.create(options, run, plan)
        self.executor = make_executor(options.executor, run=run, memory=self.memory, **options.executor_options)
        self.display = make_display(options.progress, [PREPARE_JOB, *plan.names])
        self.events_offset = run.events.stat().st_size if run.events.exists() else 0
        self.running: dict[str, RunningJob] = {}
        self.session_attempts: dict[str, int] = {}   # --retries counts attempts of this run only

    # ---- top level -----------------------------------------------------------------
    def execute(self) -> RunReport:
        report = RunReport(self.run, self.manifest, self.plan.names)
        try:
            self.mark_stale_running_as_interrupted()
            self.record_settings()
            if self.ensure_dataset():
                self.run_jobs(self.plan.detectors)
            else:
                self.mark_blocked_by_dataset()
        except Interrupted as interrupt:
            self.guard.shield()
            self.interrupt_all(interrupt)
            report.interrupted = True
        except BaseException:
            # Any other failure of the parent itself: never leave workers unsupervised
            # (in a notebook the process lives on after this exception).
            self.guard.shield()
            self.stop_running(KillReason.INTERRUPT)
            raise
        finally:
            self.save_manifest()
            self.display.close()
            self.executor.close()
        report.input_errors = self.input_errors()
        return report

    def mark_stale_running_as_interrupted(self) -> None:
        """A previous orchestrator died (SIGKILL, power loss) while these were running."""
        for name, entry in self.manifest.jobs.items():
            if entry.job_state is JobState.RUNNING:
                if entry.pid:
                    kill_stale_worker_group(entry.pid)   # helpers a SIGKILLed worker left behind
                entry.state = JobState.INTERRUPTED.value
                entry.reason = "interrupted: the previous orchestrator died while this job ran"
        self.save_manifest()

    def record_settings(self) -> None:
        self.manifest.settings = {
            "data": self.plan.prepare.entry, "profile": self.options.profile,
            "detectors": self.plan.names, "executor": self.options.executor,
            "memory_budget_bytes": self.memory.budget_bytes, "max_workers": self.max_workers(),
            "seed": self.options.seed,
        }
        self.save_manifest()

    # ---- dataset -------------------------------------------------------------------
    def ensure_dataset(self) -> bool:
        """Prepare ``dataset/`` unless it is up to date; raise InputError on bad data."""
        self.run_jobs([self.plan.prepare], force=False)
        entry = self.manifest.jobs[PREPARE_JOB]
        if entry.job_state.succeeded:
            return True
        message = input_error_message(entry.reason)
        if message is not None:
            raise InputError(f"data source {self.plan.prepare.entry}: {message}")
        return False

    def mark_blocked_by_dataset(self) -> None:
        reason = f"not run: preparing the dataset failed ({self.manifest.jobs[PREPARE_JOB].reason})"
        for spec in self.plan.detectors:
            entry = self.manifest.entry(spec.name)
            entry.state, entry.reason = JobState.FAILED.value, reason

    # ---- scheduling ----------------------------------------------------------------
    def run_jobs(self, specs: list[JobSpec], force: bool | None = None) -> None:
        force = self.options.force if force is None else force
        to_run = [spec for spec in specs if not self.skip_if_up_to_date(spec, force)]
        pending = deque(self.memory.longest_first(to_run))
        while pending or self.running:
            self.start_admissible(pending)
            self.supervise_running(pending)
            self.display.update(self.manifest, self.running)
            if self.running:
                time.sleep(POLL_INTERVAL_S)
        self.read_worker_events()

    def skip_if_up_to_date(self, spec: JobSpec, force: bool) -> bool:
        if force or not is_up_to_date(spec):
            return False
        entry = self.manifest.entry(spec.name)
        entry.state, entry.fingerprint, entry.reason = JobState.SKIPPED.value, spec.fingerprint, None
        self.save_manifest()
        self.log_event("job_skipped", spec.name, reason="up to date (fingerprint and checksums match)")
        return True

    def start_admissible(self, pending: deque) -> None:
        """Start pending jobs in order while workers are free; one that does not fit the budget
        waits, and smaller ones behind it may start (every job ends, so none waits forever)."""
        for spec in list(pending):
            if len(self.running) >= self.max_workers():
                return
            decision = self.memory.admit(spec, self.running)
            if not decision.start:
                if decision.message:
                    self.log_event("job_waiting", spec.name, reason=decision.message)
                continue
            pending.remove(spec)
            if decision.message:   # e.g. "running it alone", "training on 25% of the rows"
                self.log_event("job_admitted", spec.name, reason=decision.message)
            self.start_job(spec, decision.limit_bytes, len(pending))

    def start_job(self, spec: JobSpec, limit_bytes: int | None, still_pending: int) -> None:
        entry = self.manifest.entry(spec.name)
        spec.attempt = entry.attempts + 1 if entry.fingerprint == spec.fingerprint else 1
        spec.threads = self.threads_per_worker(still_pending)
        spec.memory_limit_bytes = limit_bytes
        spec.cuda_visible_devices = self.memory.gpu_for(spec)
        prepare_job_folder(spec)
        entry.state, entry.fingerprint, entry.attempts = JobState.RUNNING.value, spec.fingerprint, spec.attempt
        entry.started, entry.ended, entry.reason, entry.pid, entry.files = time.time(), None, None, None, {}
        entry.degraded = degradation(spec, self.plan.spec(spec.name))
        self.save_manifest()
        self.log_event("job_started", spec.name, attempt=spec.attempt, threads=spec.threads)
        self.session_attempts[spec.name] = self.session_attempts.get(spec.name, 0) + 1
        with signals_deferred(self.executor.parallel):   # a Ctrl-C here must not orphan the new worker
            job = self.executor.start(spec)
            self.running[spec.name] = job
        entry.pid = job.pid
        self.save_manifest()

    def supervise_running(self, pending: deque) -> None:
        self.read_worker_events()
        for name, job in list(self.running.items()):
            returncode = job.poll()
            if returncode is None:
                self.watch(job)
                continue
            del self.running[name]
            self.finish_job(job, returncode, pending)
        self.enforce_budget()

    def enforce_budget(self) -> None:
        """All workers together above the budget: kill the one furthest above its estimate."""
        victim = self.memory.over_budget({n: j for n, j in self.running.items() if j.kill_reason is None})
        if victim is not None:
            self.log_event("job_over_memory", victim.spec.name, rss_bytes=victim.last_rss_bytes,
                           budget_bytes=self.memory.budget_bytes)
            victim.kill(KillReason.MEMORY)

    def watch(self, job: RunningJob) -> None:
        """Watchdog: memory samples and limits, timeouts."""
        rss = job.sample_rss()
        self.memory.record_sample(job.spec.name, rss)
        limit = job.spec.memory_limit_bytes
        if limit and rss > limit:
            self.log_event("job_over_memory", job.spec.name, rss_bytes=rss, limit_bytes=limit)
            job.kill(KillReason.MEMORY)
        elif self.options.timeout_s and job.elapsed() > self.options.timeout_s:
            job.kill(KillReason.TIMEOUT)

    def finish_job(self, job: RunningJob, returncode: int, pending: deque) -> None:
        outcome = classify_outcome(job.spec, returncode, job.kill_reason)
        if outcome.state is JobState.OOM_KILLED:
            outcome.reason = (f"oom_killed {job.kill_detail}" if job.kill_detail
                              else f"{outcome.reason} (peak {job.peak_rss_bytes / 2**20:.0f} MB)")
        self.record_outcome(job, outcome)
        retry = self.retry_spec(job.spec, outcome)
        if retry is not None:
            pending.appendleft(retry)

    def record_outcome(self, job: RunningJob, outcome: Outcome) -> None:
        entry = self.manifest.entry(job.spec.name)
        entry.state, entry.reason = outcome.state.value, outcome.reason
        entry.ended = time.time()
        entry.duration_s = round(entry.ended - job.started, 3)
        entry.peak_rss_bytes = measured_peak(job, outcome) or entry.peak_rss_bytes
        entry.files = outcome.record.files if outcome.record and outcome.state is JobState.OK else {}
        self.save_manifest()
        if self.executor.isolated:   # inline, the process's RSS holds every earlier detector too
            self.memory.record_measurement(job.spec, entry.peak_rss_bytes, entry.duration_s, outcome.state)
        self.log_event("job_ended", job.spec.name, state=outcome.state.value, reason=outcome.reason,
                       duration_s=entry.duration_s, peak_rss_bytes=entry.peak_rss_bytes)

    def retry_spec(self, spec: JobSpec, outcome: Outcome) -> JobSpec | None:
        """Shrink-and-retry after OOM (with --on-oom shrink), else retry up to --retries times."""
        entry = self.manifest.jobs[spec.name]
        shrunk = self.memory.shrink_retry(spec, outcome, entry)
        if shrunk is not None:
            self.log_event("job_shrunk", spec.name, train_fraction=shrunk.train_fraction,
                           batch_size=shrunk.params.get("batch_size"))
            return shrunk
        if outcome.state.retryable and self.session_attempts.get(spec.name, 0) <= self.options.retries:
            return spec
        return None

    def interrupt_all(self, interrupt: Interrupted) -> None:
        """Terminate every worker group, mark them interrupted; the next run resumes."""
        self.log_event("run_interrupted", None, signal=interrupt.signum)
        self.stop_running(KillReason.INTERRUPT)
        for name, entry in self.manifest.jobs.items():
            if entry.job_state is JobState.RUNNING:
                entry.state = JobState.INTERRUPTED.value
                entry.reason = "interrupted: the orchestrator was stopped (Ctrl-C/SIGTERM); rerun to resume"
                entry.ended = time.time()

    def stop_running(self, reason: str) -> None:
        """Kill every running worker (TERM, then KILL after the grace period) and wait for them."""
        for job in self.running.values():
            job.kill(reason)
        for job in self.running.values():
            job.wait()
        self.running.clear()

    def input_errors(self) -> list[str]:
        """Reasons of detectors that failed because of what the user gave (e.g. an unknown parameter)."""
        return [f"{name}: {entry.reason}" for name, entry in self.manifest.jobs.items()
                if name in self.plan.names and entry.job_state is JobState.FAILED
                and input_error_message(entry.reason) is not None]

    # ---- helpers -------------------------------------------------------------------
    def max_workers(self) -> int:
        if not self.executor.parallel:
            return 1
        return max(1, self.options.max_workers or os.cpu_count() or 1)

    def threads_per_worker(self, still_pending: int) -> int:
        """cores // workers running, so parallel workers do not oversubscribe the CPU."""
        concurrent = max(1, min(self.max_workers(), len(self.running) + 1 + still_pending))
        return max(1, (os.cpu_count() or 1) // concurrent)

    def read_worker_events(self) -> None:
        events, self.events_offset = read_events(self.run.events, self.events_offset)
        for event in events:
            job = self.running.get(event.get("job", ""))
            if event.get("event") == "progress" and job is not None:
                job.progress = {k: v for k, v in event.items() if k not in ("ts", "event", "job")}
            self.display.event(event)

    def log_event(self, event: str, job: str | None, **fields: Any) -> None:
        append_event(self.run.events, event, job=job, **fields)

    def save_manifest(self) -> None:
        self.manifest.save(self.run.manifest)
