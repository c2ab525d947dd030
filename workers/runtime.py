"""Process-level guards every worker installs before doing any work."""
from __future__ import annotations

import ctypes
import faulthandler
import os
import resource
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def unblock_stop_signals() -> None:
    """The parent spawns workers with SIGINT/SIGTERM blocked (so none is orphaned); undo that here."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def enable_crash_tracebacks() -> None:
    """faulthandler on stderr: a segfault still leaves a Python traceback in stderr.log."""
    faulthandler.enable(file=sys.stderr, all_threads=True)


def die_with_parent(parent_pid: int | None) -> None:
    """Make sure this worker never outlives the orchestrator that spawned it.

    On Linux the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG);
    elsewhere, or as a belt to those braces, a daemon thread watches the parent.
    """
    if parent_pid is None:
        return
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    # The parent may have died before prctl took effect: then we were re-parented.
    if os.getppid() != parent_pid:
        os._exit(70)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()


def _watch_parent(parent_pid: int, interval: float = 1.0) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent_pid:
            # Kill our whole process group too (loky/TF helpers), then ourselves.
            try:
                os.killpg(os.getpgrp(), signal.SIGKILL)
            finally:
                os._exit(70)


def own_peak_rss_bytes() -> int:
    """Peak resident memory of this worker, or of the largest process it waited for (a data
    source's simulation pool). Linux: ``VmHWM``, which starts afresh at exec; ``ru_maxrss``
    would carry over the peak of the process that spawned us (a notebook holding gigabytes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    unit = 1 if sys.platform == "darwin" else 1024   # ru_maxrss: bytes on macOS, KiB elsewhere
    return max(own_high_water_mark_bytes(), unit * children)


def own_high_water_mark_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024   # "VmHWM:   123456 kB"
    except (OSError, ValueError, IndexError):
        pass
    unit = 1 if sys.platform == "darwin" else 1024
    return unit * resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def configure_tensorflow_threads(threads: int) -> None:
    """TF intra/inter-op threads from the job; call before TensorFlow runs an op."""
    import tensorflow as tf  # only TensorFlow detectors call this

    tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    for gpu in tf.config.list_physical_devices("GPU"):
        # Memory growth must be set before the device is touched; without it TF
        # grabs the whole card.
        tf.config.experimental.set_memory_growth(gpu, True)
