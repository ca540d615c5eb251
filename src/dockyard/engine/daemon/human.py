"""Human-readable durations and sizes, as Docker prints them (go-units rules).

``docker ps`` Status text ("Up 5 minutes", "Exited (0) About an hour ago")
comes from the daemon, so these must match go-units' ``HumanDuration`` and
``HumanSize`` exactly, including their rounding quirks.
"""

from __future__ import annotations

NS_PER_S = 1_000_000_000
_NS_PER_MIN = 60 * NS_PER_S
_NS_PER_HOUR = 3600 * NS_PER_S

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _trunc_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, like Go's int(float) conversion."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration(ns: int) -> str:
    """go-units ``HumanDuration``: "Less than a second" ... "N years".

    Seconds and minutes truncate; hours round half up; days, weeks, months
    (30 days) and years (365 days, from truncated hours) derive from those.
    """
    seconds = _trunc_div(ns, NS_PER_S)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = _trunc_div(ns, _NS_PER_MIN)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(ns / _NS_PER_HOUR + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{_trunc_div(ns, _NS_PER_HOUR) // 24 // 365} years"


def _scaled(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(size: float, precision: int = 4) -> str:
    """go-units ``HumanSize``: decimal units, 4 significant digits ("1.234MB", "796kB", "0B")."""
    value, unit = _scaled(float(size), 1000.0, _DECIMAL_UNITS)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units ("44KiB", "1.5MiB")."""
    value, unit = _scaled(float(size), 1024.0, _BINARY_UNITS)
    return f"{value:.4g}{unit}"
