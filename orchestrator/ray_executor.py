"""The ``ray`` executor: every job is a Ray task, on any node of a Ray cluster.

A task runs the same worker entry point as ``python -m workers <job_dir>`` in a
Ray worker process that serves this one task only (``max_calls=1``), so
TensorFlow/GPU memory goes back to the node when the job ends, exactly as with
the subprocess executor. Nothing but the exit status travels back through Ray:
the worker writes its models, predictions and ``result.json`` into the run
directory, which therefore has to be visible at the same path on every node
(checked when the executor starts; see docs/cluster.md).

Ray is imported only here, and this module only when ``--executor ray`` is chosen.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from artifacts import JobPaths, JobSpec, RunPaths, atomic_write_bytes
from artifacts.records import KillReason
from orchestrator.executors import ExecutorUnavailable, RunningJob
from orchestrator.supervise import worker_environment

try:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError as missing:   # an optional extra: say how to get it, exit 2
    raise ExecutorUnavailable(
        f"--executor ray needs Ray, which is not importable here ({missing}); "
        "install it with: pip install -e '.[ray]' in the orchestrate checkout, or choose --executor subprocess"
    ) from None

#: exit status reported for a Ray worker that died without a result: Ray does not
#: pass on the real one (a segfault, os._exit or the kernel OOM killer look alike),
#: so this value only says "lost"; the job's stderr.log carries Ray's explanation.
LOST_WORKER_STATUS = 255
#: exit status of a task we cancelled (force=True kills its worker outright)
CANCELLED_STATUS = -signal.SIGKILL
#: nothing but exit statuses goes through Ray's object store, so keep it small
OBJECT_STORE_BYTES = 100 * 2**20
#: how long the start-up check waits for every node to read the token file
VISIBILITY_TIMEOUT_S = 120.0
#: how long ``wait`` waits for a cancelled task before giving it up as killed
CANCEL_WAIT_S = 30.0
TOKEN_PREFIX = ".ray-visibility-"


# ---- what runs on the Ray workers ------------------------------------------------------
@ray.remote(max_calls=1, max_retries=0)
def run_job_task(job_dir: str) -> int:
    """Inside a fresh Ray worker: the same entry point as ``python -m workers <job_dir>``."""
    paths = JobPaths(Path(job_dir))
    os.chdir(paths.root)   # as spawn_worker does: the worker's cwd is its job folder
    redirect_output(paths)
    from workers.__main__ import main

    return main(["workers", str(paths.root)])


def redirect_output(paths: JobPaths) -> None:
    """Point file descriptors 1 and 2 at the job's logs, so prints, tracebacks and
    faulthandler dumps land in stdout.log/stderr.log, not in Ray's worker logs."""
    sys.stdout.flush()
    sys.stderr.flush()
    for descriptor, log in ((1, paths.stdout), (2, paths.stderr)):
        with open(log, "ab") as handle:
            os.dup2(handle.fileno(), descriptor)


@ray.remote(num_cpus=0, max_retries=0)
def read_token_task(token_path: str) -> str:
    """What this node reads at ``token_path`` (or why it cannot)."""
    try:
        return Path(token_path).read_text()
    except OSError as error:
        return f"cannot read it ({type(error).__name__}: {error})"


# ---- the driver's side -----------------------------------------------------------------
@dataclass
class ClusterShape:
    """What the biggest node offers, so no task asks for more than any node has (it would wait forever)."""

    nodes: list[dict]       # alive nodes that can run jobs (CPU > 0), as ``ray.nodes()`` gives them
    max_cpus: int
    max_memory_bytes: int
    has_gpus: bool

    @classmethod
    def now(cls) -> "ClusterShape":
        nodes = [node for node in ray.nodes() if node.get("Alive") and node["Resources"].get("CPU", 0) > 0]
        if not nodes:
            raise ExecutorUnavailable("the Ray cluster has no alive node with CPUs; check 'ray status'")
        resources = [node["Resources"] for node in nodes]
        return cls(nodes=nodes, max_cpus=int(max(r.get("CPU", 0) for r in resources)),
                   max_memory_bytes=int(max(r.get("memory", 0) for r in resources)),
                   has_gpus=any(r.get("GPU", 0) > 0 for r in resources))


class RayJob(RunningJob):
    """A submitted Ray task; ``poll`` turns its end (value or Ray error) into an exit status."""

    def __init__(self, spec: JobSpec, ref: "ray.ObjectRef") -> None:
        super().__init__(spec, None)   # the worker's pid lives on some node; Ray does not say which
        self.ref = ref
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _ = ray.wait([self.ref], timeout=0)
            if ready:
                self.returncode = self.collect()
        return self.returncode

    def collect(self) -> int:
        try:
            return int(ray.get(self.ref))
        except ray.exceptions.OutOfMemoryError as error:
            self.kill_reason = self.kill_reason or KillReason.MEMORY   # Ray's memory monitor killed it: oom_killed
            self.kill_detail = f"by Ray's memory monitor: {' '.join(str(error).split())[:300]}"
            return self.record_ray_error(error, CANCELLED_STATUS)
        except ray.exceptions.RayError as error:
            status = CANCELLED_STATUS if self.kill_reason else LOST_WORKER_STATUS
            return self.record_ray_error(error, status)

    def record_ray_error(self, error: Exception, status: int) -> int:
        """Append Ray's account to stderr.log: classify_outcome quotes the log's tail as the reason."""
        summary = " ".join(str(error).split()) or "(no message)"
        if self.kill_reason:
            note = f"ray: the task was cancelled ({self.kill_reason}): {type(error).__name__}: {summary}"
        else:
            note = (f"ray: the worker running {self.spec.name} died without a result ({type(error).__name__}: "
                    f"{summary}); Ray does not pass on its exit status, see its logs under "
                    f"/tmp/ray/session_latest/logs on the node")
        try:
            with open(JobPaths(Path(self.spec.job_dir)).stderr, "a", encoding="utf-8") as log:
                log.write(f"{note}\n")
        except OSError:
            pass   # the reason still says crashed; a read-only log must not stop the run
        return status

    def current_rss(self) -> int:
        return 0   # the worker may be on another node; Ray's memory monitor guards memory there

    def kill(self, reason: str) -> None:
        """Cancel the task without blocking; force=True has Ray kill the worker process running it."""
        if self.kill_reason is not None or self.returncode is not None:
            return
        self.kill_reason = reason
        ray.cancel(self.ref, force=True)

    def wait(self) -> int:
        """Block until the task has ended (a cancelled one within CANCEL_WAIT_S); its exit status."""
        ray.wait([self.ref], timeout=CANCEL_WAIT_S)
        returncode = self.poll()
        return CANCELLED_STATUS if returncode is None else returncode


class RayExecutor:
    """Submit each job as a Ray task; with no address, start (and later stop) a local Ray."""

    name = "ray"
    parallel = True
    isolated = True

    def __init__(self, address: str | None = None, run: RunPaths | None = None, memory=None) -> None:
        self.memory = memory   # the MemoryPolicy: its estimate becomes the task's memory request
        self.jobs: list[RayJob] = []
        connect_ray(address)
        try:
            self.cluster = ClusterShape.now()
            if run is not None:
                check_run_dir_visible(run, self.cluster.nodes)
        except BaseException:
            ray.shutdown()
            raise

    def start(self, spec: JobSpec) -> RunningJob:
        options = self.task_options(spec)
        spec.parent_pid = None   # the Ray worker's parent is the raylet: die_with_parent must not watch it
        spec.cuda_visible_devices = None if options["num_gpus"] else ""   # None: keep the GPU Ray assigned
        spec.save(JobPaths(Path(spec.job_dir)).job_json)
        # Thread counts must be in the environment when the worker process starts (BLAS reads them
        # once), hence runtime_env rather than os.environ inside the task.
        env = worker_environment(spec, base={"PYTHONPATH": "${PYTHONPATH}"})
        ref = run_job_task.options(runtime_env={"env_vars": env}, **options).remote(spec.job_dir)
        job = RayJob(spec, ref)
        self.jobs.append(job)
        return job

    def task_options(self, spec: JobSpec) -> dict:
        """Resources of one job: its threads, its memory estimate, a GPU for TensorFlow if the cluster has one."""
        tensorflow = self.memory is not None and self.memory.framework(spec) == "tensorflow"
        options = {"num_cpus": max(1, min(spec.threads, self.cluster.max_cpus)),
                   "num_gpus": 1 if tensorflow and self.cluster.has_gpus else 0}
        if self.memory is not None and self.cluster.max_memory_bytes > 0:
            options["memory"] = max(1, min(self.memory.estimate_bytes(spec), self.cluster.max_memory_bytes))
        return options

    def close(self) -> None:
        """Cancel whatever still runs (an interrupted run), then leave Ray (stopping a local one).

        Jobs that have ended, including those the session already stopped and waited for,
        are left alone: waiting on them again would only repeat their cancel timeout."""
        unfinished = [job for job in self.jobs if job.poll() is None]
        for job in unfinished:
            job.kill(KillReason.INTERRUPT)
        for job in unfinished:
            job.wait()
        self.jobs.clear()
        ray.shutdown()


def connect_ray(address: str | None) -> None:
    """Start a local Ray (no address) or join a cluster, keeping our Ctrl-C/SIGTERM handling."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        if address is None:
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     object_store_memory=OBJECT_STORE_BYTES, logging_level=logging.WARNING)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "start a local Ray instance" if address is None else f"join the Ray cluster at {address!r}"
        raise ExecutorUnavailable(f"could not {where}: {error}; is 'ray start --head' running there? "
                                  "see docs/cluster.md") from None
    finally:
        # ray.init installs its own SIGTERM handler, which would bypass the run's
        # interrupt handling (cancel every task, mark jobs interrupted).
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def check_run_dir_visible(run: RunPaths, nodes: list[dict]) -> None:
    """Every node that may run a job must see the run directory at the same path: the
    driver writes a token file there and a task on each node reads it back."""
    token = uuid.uuid4().hex
    path = run.root / f"{TOKEN_PREFIX}{token}"
    atomic_write_bytes(path, token.encode())
    deadline = time.monotonic() + VISIBILITY_TIMEOUT_S
    try:
        reads = {node_label(node): read_token_on(node, path) for node in nodes}
        problems = {label: token_problem(ref, token, deadline) for label, ref in reads.items()}
    finally:
        path.unlink(missing_ok=True)
    problems = {label: problem for label, problem in problems.items() if problem is not None}
    if problems:
        listing = "; ".join(f"node {label} {problem}" for label, problem in problems.items())
        raise ExecutorUnavailable(
            f"the run directory {run.root} is not visible from every Ray node: {listing}. Put it on "
            "storage every node mounts at the same path (NFS, a cluster file system) and pass that path, "
            "e.g. --runs-dir /shared/runs; see docs/cluster.md"
        )


def node_label(node: dict) -> str:
    return f"{node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"


def read_token_on(node: dict, path: Path) -> "ray.ObjectRef":
    strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
    return read_token_task.options(scheduling_strategy=strategy).remote(str(path))


def token_problem(ref: "ray.ObjectRef", token: str, deadline: float) -> str | None:
    """None if the node read the token, else what went wrong there."""
    try:
        text = ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        return f"did not answer within {VISIBILITY_TIMEOUT_S:.0f} s"
    except ray.exceptions.RayError as error:   # e.g. orchestrate is not installed on that node
        return f"could not run the check ({type(error).__name__}: {' '.join(str(error).split())[:300]})"
    if text == token:
        return None
    return text if text.startswith("cannot read") else "found another file at the token's path"
