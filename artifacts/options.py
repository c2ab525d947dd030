"""``key=value`` data options (``--data-option faults=[1,2]``), parsed alike in parent and worker.

A value is read as JSON when it parses (``[1,2]`` -> list, ``10`` -> int, ``0.2`` -> float,
``true`` -> bool, ``null`` -> None), otherwise kept as the plain string (``size=tiny``), so
users need no shell quoting for the common cases.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from artifacts.sources import SourceError


def parse_option(text: str) -> tuple[str, Any]:
    """Split ``key=value``; raise ``SourceError`` showing the expected form."""
    key, separator, raw = text.partition("=")
    if not separator or not key.strip():
        raise SourceError(f"data option {text!r} is not key=value; e.g. faults=[1,2] or runs=10")
    return key.strip(), parse_option_value(raw.strip())


def parse_option_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["faults=[1,2]", "runs=10"]`` -> ``{"faults": [1, 2], "runs": 10}``; a repeated key wins last."""
    return dict(parse_option(pair) for pair in pairs)
