"""Docker's timestamp forms: RFC3339Nano output, RFC3339 parsing, API since/until."""

from __future__ import annotations

import time

import pytest

from dockyard.engine.daemon import timefmt
from dockyard.errors import InvalidArgument

# 2026-11-27T21:50:15Z
BASE = 1795816215


def test_known_instant_formats_like_go() -> None:
    assert timefmt.rfc3339_nano(BASE * 10**9 + 123456789) == "2026-11-27T21:50:15.123456789Z"


@pytest.mark.parametrize(
    ("frac", "text"),
    [
        (0, "2026-11-27T21:50:15Z"),
        (500_000_000, "2026-11-27T21:50:15.5Z"),
        (120_000_000, "2026-11-27T21:50:15.12Z"),
        (1, "2026-11-27T21:50:15.000000001Z"),
        (100, "2026-11-27T21:50:15.0000001Z"),
    ],
)
def test_trailing_zeros_trimmed(frac: int, text: str) -> None:
    assert timefmt.rfc3339_nano(BASE * 10**9 + frac) == text


def test_epoch_and_zero_time() -> None:
    assert timefmt.rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert timefmt.rfc3339_nano(timefmt.ZERO_TIME_NS) == timefmt.ZERO_TIME == "0001-01-01T00:00:00Z"
    assert timefmt.parse_rfc3339(timefmt.ZERO_TIME) == timefmt.ZERO_TIME_NS
    assert timefmt.is_zero(timefmt.ZERO_TIME)
    assert timefmt.is_zero("") and timefmt.is_zero(None)
    assert not timefmt.is_zero("1970-01-01T00:00:00Z")


def test_before_epoch_fraction() -> None:
    assert timefmt.rfc3339_nano(-1) == "1969-12-31T23:59:59.999999999Z"


def test_parse_roundtrip_and_offsets() -> None:
    ns = BASE * 10**9 + 123456789
    assert timefmt.parse_rfc3339("2026-11-27T21:50:15.123456789Z") == ns
    assert timefmt.parse_rfc3339("2026-11-27T22:50:15.123456789+01:00") == ns
    assert timefmt.parse_rfc3339("2026-11-27T16:20:15.123456789-05:30") == ns
    assert timefmt.parse_rfc3339("2026-11-27T21:50:15Z") == BASE * 10**9
    assert timefmt.parse_rfc3339("2026-11-27T21:50:15.5Z") == BASE * 10**9 + 500_000_000
    # more than nine digits are truncated, as Go does
    assert timefmt.parse_rfc3339("2026-11-27T21:50:15.1234567891Z") == ns


@pytest.mark.parametrize("bad", ["", "2026-11-27", "2026-13-01T00:00:00Z", "2026-11-27T21:50:15", "junk"])
def test_parse_rejects_junk(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        timefmt.parse_rfc3339(bad)


def test_now() -> None:
    before = time.time_ns()
    text = timefmt.now_rfc3339()
    after = time.time_ns()
    assert text.endswith("Z")
    assert before // 10**9 <= timefmt.parse_rfc3339(text) // 10**9 <= after // 10**9 + 1


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("1795816215", BASE * 10**9),
        ("1795816215.5", BASE * 10**9 + 500_000_000),
        ("1795816215.000000001", BASE * 10**9 + 1),
        ("1795816215.123456789", BASE * 10**9 + 123456789),
        ("0", 0),
        ("-5", -5 * 10**9),
    ],
)
def test_api_timestamp(value: str, ns: int) -> None:
    assert timefmt.parse_api_timestamp(value) == ns


def test_api_timestamp_junk_message() -> None:
    with pytest.raises(InvalidArgument) as exc:
        timefmt.parse_api_timestamp("yesterday")
    assert str(exc.value) == 'strconv.ParseInt: parsing "yesterday": invalid syntax'
    with pytest.raises(InvalidArgument) as exc:
        timefmt.parse_api_timestamp("10.x")
    assert str(exc.value) == 'strconv.ParseInt: parsing "x": invalid syntax'
    for bad in ("", " 1", "1_000", "1.", "99999999999999999999"):
        with pytest.raises(InvalidArgument):
            timefmt.parse_api_timestamp(bad)


def test_unix_seconds_floors() -> None:
    assert timefmt.unix_seconds(BASE * 10**9 + 999_999_999) == BASE
    assert timefmt.unix_seconds(-1) == -1
