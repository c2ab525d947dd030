"""Checks of the options a loader accepts (``--data-option key=value``), shared by every loader."""
from __future__ import annotations

from typing import Any, Iterable

from workers.data.errors import DataError


def check_option_names(options: dict[str, Any], allowed: dict[str, str], source: str) -> None:
    """A misspelt option must fail loudly, not silently use the default."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = "; ".join(f"{name} ({help_text})" for name, help_text in allowed.items())
        raise DataError(f"unknown option(s) {', '.join(unknown)} for data source {source}. Valid options: {valid}")


def select_faults(options: dict[str, Any], available: Iterable[int] | None, source: str) -> list[int] | None:
    """Faulty classes to keep from ``faults`` (an int or list of ints); None = all.

    Fault 0 (in control) is always kept, so listing it is allowed and changes nothing.
    ``available`` (None when not known before streaming) is checked against the request.
    """
    if options.get("faults") is None:
        return None if available is None else sorted(available)
    requested = options["faults"] if isinstance(options["faults"], list) else [options["faults"]]
    if not all(isinstance(f, int) and not isinstance(f, bool) and f >= 0 for f in requested):
        raise DataError(f"option faults={options['faults']!r} for {source}: give fault numbers, e.g. faults=[1,2,6]")
    faults = sorted({f for f in requested if f != 0})
    if not faults:
        raise DataError(f"option faults={options['faults']!r} for {source} selects no faulty class; "
                        "leave it out to keep all faults, or list some, e.g. faults=[1,2]")
    if available is not None:
        check_faults_present(faults, available, source)
    return faults


def check_faults_present(faults: Iterable[int], available: Iterable[int], source: str) -> None:
    missing = sorted(set(faults) - set(available))
    if missing:
        raise DataError(f"fault(s) {missing} are not in {source}; it has faults {sorted(set(available))}")


def fraction_option(options: dict[str, Any], name: str, default: float, source: str) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise DataError(f"option {name}={value!r} for {source} must be a fraction in [0, 1), e.g. {name}={default}")
    return float(value)


def count_option(options: dict[str, Any], name: str, source: str) -> int | None:
    value = options.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DataError(f"option {name}={value!r} for {source} must be a whole number >= 1, e.g. {name}=10")
    return value
