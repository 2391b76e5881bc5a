"""Durations as people type them: a whole number and a unit, ``30s``, ``10m``, ``6h``, ``90d``
(a schedule's period, an API key's lifetime)."""

import re

from driftloop.platform.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]{1,9})([smhd])")


def parse_duration(value: object, *, field: str, maximum: int) -> int:
    """``value`` as seconds, from 1 to ``maximum``; refused with an error that names ``field``."""
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    shown = repr(value)
    shown = shown if len(shown) <= 100 else f"{shown[:100]}…"
    if match is None:
        raise InvalidInput(f"{field}: {shown} is not a duration: use a whole number and a unit, e.g. 30s, 10m, 6h, 1d", field=field)
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= maximum:
        raise InvalidInput(f"{field}: {shown} must be from 1s to {format_duration(maximum)}", field=field)
    return seconds


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
