"""Ctrl-C / SIGTERM of the parent become one exception the run loop handles in one place."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from types import FrameType
from typing import Iterator


class Interrupted(KeyboardInterrupt):
    """The orchestrator was asked to stop (SIGINT or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class InterruptGuard:
    """While active, SIGINT and SIGTERM raise ``Interrupted`` in the main thread.

    ``shield()`` turns further signals into no-ops while cleanup runs, so a second
    Ctrl-C cannot tear the manifest write in half.
    """

    HANDLED = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "InterruptGuard":
        for signum in self.HANDLED:
            self._previous[signum] = signal.signal(signum, self._raise)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def shield(self) -> None:
        for signum in self.HANDLED:
            signal.signal(signum, signal.SIG_IGN)

    @staticmethod
    def _raise(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)


@contextmanager
def signals_deferred(active: bool = True) -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends (e.g. between spawning a worker and recording it).

    A child spawned meanwhile inherits the blocked mask; the worker unblocks it first thing.
    """
    if not active:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, InterruptGuard.HANDLED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
