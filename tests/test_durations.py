"""Spans and WHEN values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from nfdoctor.durations import format_span, parse_span, parse_when

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("3d", 259200),
        ("1w", 604800),
        (" 1.5h ", 5400),
    ],
)
def test_parse_span(text: str, seconds: float) -> None:
    assert parse_span(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "-5s", "1y", "forever"])
def test_parse_span_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a time span"):
        parse_span(text)


def test_parse_when_forms() -> None:
    assert parse_when("2h", now=NOW) == NOW - timedelta(hours=2)
    assert parse_when("2026-11-01", now=NOW) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    ict = timezone(timedelta(hours=7))
    assert parse_when("2026-11-01T08:00+07:00", now=NOW) == datetime(
        2026, 11, 1, 1, 0, tzinfo=timezone.utc
    )
    assert parse_when("2026-11-01T08:00", now=NOW, default_tz=ict) == datetime(
        2026, 11, 1, 1, 0, tzinfo=timezone.utc
    )
    with pytest.raises(ValueError, match="in the future"):
        parse_when("2027-01-01", now=NOW)
    with pytest.raises(ValueError, match="neither a date"):
        parse_when("yesterday", now=NOW)
    with pytest.raises(ValueError):
        parse_when("2026-13-45", now=NOW)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.12, "120 ms"),
        (42, "42 s"),
        (90, "90 s"),
        (150, "2.5 min"),
        (86400, "24 h"),
        (172800, "2 d"),
        (5 * 86400 + 3600, "5.0 d"),
    ],
)
def test_format_span(seconds: float, text: str) -> None:
    assert format_span(seconds) == text
