"""Durations and sizes as rules files write them: `30`, `"30s"`, `"10m"`, `"2h"`, `"1d"`; `"512m"`, `"2g"`.

Each parser raises ValueError with a message that says what is accepted (the caller names the file and rule).
"""

from __future__ import annotations

import math
import re

_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_NUMBER_UNIT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def duration_s(value: object) -> float:
    """Seconds from a number of seconds or a string such as "30s", "10m", "2h", "1d" (not negative)."""
    return _number(
        value, _DURATION_UNITS, 'seconds as a number, or a string such as "30s", "10m", "2h", "1d"'
    )


def size_bytes(value: object) -> int:
    """Bytes from a whole number of bytes or a string such as "512m", "2g" (1024-based, as docker's `-m`)."""
    return int(_number(value, _SIZE_UNITS, 'bytes as a whole number, or a string such as "512m", "2g"'))


def _number(value: object, units: dict[str, int], accepted: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not {accepted}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and (match := _NUMBER_UNIT.fullmatch(value)):
        unit = match[2].lower()
        if unit.endswith("b") and len(unit) == 2:  # "2gb" reads as "2g"
            unit = unit[0]
        if unit not in units:
            raise ValueError(f"{value!r}: unknown unit {match[2]!r}; use {accepted}")
        number = float(match[1]) * units[unit]
    else:
        raise ValueError(f"{value!r} is not {accepted}")
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} must be finite and not negative; use {accepted}")
    return number


def text_duration(seconds: float) -> str:
    """A short human form: 90 -> "1m30s", 3600 -> "1h", 0.5 -> "0.5s"."""
    if seconds < 60:
        return f"{seconds:g}s"
    parts, left = [], int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)


def text_size(size: int) -> str:
    """A short form docker's `-m` reads back: 2147483648 -> "2g", 1000 -> "1000"; 0 or less -> "unlimited"."""
    if size <= 0:
        return "unlimited"
    for unit, scale in (("t", 1024**4), ("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)
