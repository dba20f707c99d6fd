"""Rate-limit headers, ``Retry-After`` and clock skew, as the platforms report them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = [
    "RateLimitUsage",
    "clock_skew_s",
    "parse_business_use_case_usage",
    "parse_date_header",
    "parse_retry_after",
    "parse_usage_headers",
    "parse_x_app_usage",
    "parse_zalo_rate_limit",
]


@dataclass(frozen=True, kw_only=True)
class RateLimitUsage:
    """How much of a rate-limit allowance is used, from the platform's headers."""

    percent_used: float
    reset_after_s: float | None
    source: str


def _loads_object(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _max_percent(entry: Mapping[str, object]) -> float | None:
    values = [_number(entry.get(k)) for k in ("call_count", "total_cputime", "total_time")]
    present = [v for v in values if v is not None]
    return max(present) if present else None


def parse_x_app_usage(raw: str, source: str = "X-App-Usage") -> RateLimitUsage | None:
    """Facebook ``X-App-Usage`` (or ``X-Page-Usage``): the highest of the three percentages."""
    data = _loads_object(raw)
    if not isinstance(data, dict):
        return None
    percent = _max_percent(data)
    if percent is None:
        return None
    return RateLimitUsage(percent_used=percent, reset_after_s=None, source=source)


def parse_business_use_case_usage(raw: str) -> RateLimitUsage | None:
    """Facebook ``X-Business-Use-Case-Usage``: the busiest entry; regain time is in minutes."""
    data = _loads_object(raw)
    if not isinstance(data, dict):
        return None
    best: RateLimitUsage | None = None
    for business_id, entries in data.items():
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            percent = _max_percent(entry)
            if percent is None:
                continue
            minutes = _number(entry.get("estimated_time_to_regain_access"))
            reset = minutes * 60.0 if minutes else None
            kind = entry.get("type", "?")
            usage = RateLimitUsage(
                percent_used=percent,
                reset_after_s=reset,
                source=f"X-Business-Use-Case-Usage[{business_id}/{kind}]",
            )
            if best is None or usage.percent_used > best.percent_used:
                best = usage
    return best


def parse_zalo_rate_limit(limit: str | None, remain: str | None) -> RateLimitUsage | None:
    """Zalo ``X-RateLimit-Limit`` / ``X-RateLimit-Remain`` (per minute) as percent used."""
    total = _number(limit) if limit is not None else None
    left = _number(remain) if remain is not None else None
    if total is None or left is None or total <= 0:
        return None
    used = max(0.0, min(100.0, (total - left) / total * 100.0))
    return RateLimitUsage(percent_used=used, reset_after_s=None, source="X-RateLimit-Remain")


def parse_usage_headers(headers: Mapping[str, str]) -> RateLimitUsage | None:
    """The most-used allowance among every rate-limit header present, or None."""
    found: list[RateLimitUsage] = []
    for name in ("x-app-usage", "x-page-usage"):
        raw = headers.get(name)
        if raw:
            usage = parse_x_app_usage(raw, source=name.title())
            if usage:
                found.append(usage)
    raw_buc = headers.get("x-business-use-case-usage")
    if raw_buc:
        buc = parse_business_use_case_usage(raw_buc)
        if buc:
            found.append(buc)
    zalo = parse_zalo_rate_limit(
        headers.get("x-ratelimit-limit"), headers.get("x-ratelimit-remain")
    )
    if zalo:
        found.append(zalo)
    return max(found, key=lambda u: u.percent_used) if found else None


def parse_date_header(value: str | None) -> datetime | None:
    """An HTTP-date header as an aware UTC datetime, or None when absent or unparsable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds, from delta-seconds or an HTTP-date (never negative)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    seconds = _number(text)
    if seconds is not None:
        return max(0.0, seconds)
    when = parse_date_header(text)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


def clock_skew_s(date_header: str | None, local_now: datetime) -> float | None:
    """Local clock minus server clock (positive = we are ahead), from the ``Date`` header."""
    server = parse_date_header(date_header)
    if server is None:
        return None
    return (local_now - server).total_seconds()
