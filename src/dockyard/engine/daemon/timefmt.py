"""Timestamps in the shapes Docker's Engine API uses.

Docker serialises Go ``time.Time`` values with RFC3339Nano (UTC, up to nine
fraction digits, trailing zeros trimmed, no dot at all for whole seconds), and
takes ``since``/``until`` query parameters as Unix seconds with an optional
``.nanoseconds`` fraction. Internally Dockyard keeps integer nanoseconds since
the Unix epoch, so nothing here goes through floats.
"""

from __future__ import annotations

import datetime as _dt
import re
import time

from dockyard.errors import InvalidArgument

NS_PER_S = 1_000_000_000

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero ``time.Time`` as Docker prints it (e.g. FinishedAt of a fresh container)."""

ZERO_TIME_NS = -62_135_596_800 * NS_PER_S
"""Nanoseconds since the Unix epoch of :data:`ZERO_TIME`."""

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
_INT_RE = re.compile(r"^[+-]?[0-9]+$")


def rfc3339_nano(ts_ns: int) -> str:
    """Format nanoseconds since the epoch like Go's ``time.RFC3339Nano`` in UTC."""
    secs, frac = divmod(ts_ns, NS_PER_S)
    moment = _EPOCH + _dt.timedelta(seconds=secs)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.year < 1000:  # strftime does not zero-pad years below 1000 everywhere
        text = f"{moment.year:04d}" + text[text.index("-"):]
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def now_ns() -> int:
    """The current wall-clock time in nanoseconds since the epoch."""
    return time.time_ns()


def now_rfc3339() -> str:
    """The current time in Docker's JSON form."""
    return rfc3339_nano(time.time_ns())


def is_zero(value: str | int | None) -> bool:
    """True for Go's zero time, given as text, nanoseconds, or missing."""
    if value is None or value == "":
        return True
    if isinstance(value, int):
        return value == ZERO_TIME_NS
    try:
        return parse_rfc3339(value) == ZERO_TIME_NS
    except InvalidArgument:
        return False


def parse_rfc3339(s: str) -> int:
    """Parse an RFC3339 timestamp (Go's forms: Z or +hh:mm, 0-9+ fraction digits) to ns.

    Fraction digits beyond nine are truncated, as Go does.
    """
    m = _RFC3339_RE.match(s)
    if m is None:
        raise InvalidArgument(f'parsing time "{s}" as "2006-01-02T15:04:05Z07:00": cannot parse')
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        moment = _dt.datetime(year, month, day, hour, minute, second, tzinfo=_dt.timezone.utc)
    except ValueError as exc:
        raise InvalidArgument(f'parsing time "{s}": {exc}') from None
    delta = moment - _EPOCH
    secs = delta.days * 86400 + delta.seconds
    frac_text = (m.group(7) or "")[:9]
    frac = int(frac_text.ljust(9, "0")) if frac_text else 0
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        secs -= offset if m.group(9) == "+" else -offset
    return secs * NS_PER_S + frac


def _go_parse_int(text: str) -> int:
    """``strconv.ParseInt(text, 10, 64)`` with Go's error message."""
    if not _INT_RE.match(text):
        raise InvalidArgument(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise InvalidArgument(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_api_timestamp(value: str) -> int:
    """Parse the API's ``since``/``until`` value (``SECONDS[.FRACTION]``) to ns.

    A fraction shorter than nine digits is scaled up (``.5`` is half a second),
    as Docker's ``ParseTimestamps`` does. Junk raises InvalidArgument with Go's
    ``strconv.ParseInt`` message, which is what Docker answers.
    """
    secs_text, dot, frac_text = value.partition(".")
    secs = _go_parse_int(secs_text)
    if not dot:
        return secs * NS_PER_S
    frac = _go_parse_int(frac_text)
    digits = len(frac_text)
    if digits <= 9:
        frac *= 10 ** (9 - digits)
    else:
        frac //= 10 ** (digits - 9)
    return secs * NS_PER_S + frac


def unix_seconds(ts_ns: int) -> int:
    """Whole Unix seconds of a nanosecond timestamp (floor, like Go's ``Time.Unix``)."""
    return ts_ns // NS_PER_S
