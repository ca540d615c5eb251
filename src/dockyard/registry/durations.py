"""Go-style durations ("300ms", "10m", "1h30m", "168h") as seconds, for configuration values.

distribution's configuration uses Go's ``time.ParseDuration`` syntax: a sequence of
decimal numbers, each with a unit (ns, us/µs, ms, s, m, h), optionally signed.
A bare number is accepted as seconds (YAML often turns "60" into an int).
"""

from __future__ import annotations

import re

from dockyard.errors import InvalidArgument

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str | float, where: str) -> float:
    """Seconds in ``text``; InvalidArgument "configuration: <where> ..." when it is not a duration."""
    if isinstance(text, bool):
        raise InvalidArgument(f"configuration: {where} must be a duration like 10m or 1h30m, got {text!r}")
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    sign = -1.0 if s.startswith("-") else 1.0
    body = s.lstrip("+-")
    if body == "0" or (body and body.replace(".", "", 1).isdigit()):
        return sign * float(body)
    total, pos = 0.0, 0
    for m in _PART.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise InvalidArgument(f"configuration: {where} must be a duration like 10m or 1h30m, got {text!r}")
    return sign * total
