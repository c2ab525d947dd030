"""One orchestrator per run directory: an ``fcntl`` lock that dies with its holder."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


class RunLockedError(RuntimeError):
    """Another orchestrator holds this run directory."""


class RunLock:
    """``with RunLock(path):`` holds an exclusive, non-blocking lock; the file holds our pid.

    The kernel releases an ``flock`` when its holder dies (even by SIGKILL), so a
    stale lock file never blocks the next run.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"run directory {self.path.parent} is in use by another orchestrate process (pid {holder}). "
                f"Wait for it to finish, stop it (kill {holder}), or choose another run with --run NAME."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
