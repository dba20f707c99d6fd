"""Parsing of spans (``90s``, ``2h``, ``7d``) and of ``WHEN`` values (ISO date/time or span)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

# Far beyond any timeout or expiry nfdoctor deals with, and well inside timedelta's range.
MAX_SPAN = timedelta(days=3650)
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SPAN_FORMS = "a number with a unit: 500ms, 30s, 15m, 2h, 3d, 1w"


def parse_span(text: str) -> timedelta:
    """``'2h'`` → ``timedelta(hours=2)``; raises ValueError with the accepted forms."""
    match = _SPAN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a time span; use {SPAN_FORMS}")
    number, unit = match.groups()
    return bounded_span(float(number) * _UNIT_SECONDS[unit], text)


def bounded_span(seconds: float, text: object) -> timedelta:
    """``seconds`` as a timedelta, refusing negatives, infinities and absurd sizes."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"{text!r} is not a finite time span")
    if seconds < 0:
        raise ValueError(f"{text!r} is negative; a time span must be zero or more")
    if seconds > MAX_SPAN.total_seconds():
        raise ValueError(f"{text!r} is longer than the 10 years nfdoctor accepts")
    return timedelta(seconds=seconds)


def parse_when(text: str, *, now: datetime, default_tz: timezone | None = None) -> datetime:
    """A ``WHEN`` value as an aware UTC datetime: a span counts back from ``now``.

    ISO dates and times without an offset are taken in ``default_tz`` (the operator's zone).
    """
    try:
        return now - parse_span(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a date/time (2026-11-01, 2026-11-01T08:00+07:00) "
            f"nor a span ({SPAN_FORMS})"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz or timezone.utc)
    if moment > now:
        raise ValueError(f"{text!r} is in the future")
    return moment.astimezone(timezone.utc)


def format_span(seconds: float) -> str:
    """A short human span: ``3 d``, ``24 h``, ``5.5 h``, ``42 s``, ``120 ms``.

    A unit is used from twice its size (``36 h``, not ``1.5 d``), which reads better.
    """
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= 2 * size or unit == "s":
            value = seconds / size
            text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
            return f"{text} {unit}"
    raise AssertionError("unreachable")
