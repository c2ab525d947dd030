"""``events.jsonl``: an append-only log that parent and workers both write.

Each event is one JSON line written with a single ``write`` on an ``O_APPEND``
descriptor, so concurrent writers never interleave inside a line.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def append_event(path: str | os.PathLike, event: str, **fields: Any) -> None:
    """Append ``{"ts", "event", **fields}`` as one line."""
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    line = (json.dumps(record, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_events(path: str | os.PathLike, offset: int = 0) -> tuple[list[dict], int]:
    """Read complete events from byte ``offset``; returns them and the new offset.

    A trailing partial line (a writer mid-write) is left for the next call.
    """
    path = Path(path)
    if not path.exists():
        return [], offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn line from a killed writer is skipped, not fatal
    return events, offset + end
