"""Per-platform request-rate ceilings: a sliding one-second window over every API request.

``rate_limits: {lazada: 40}`` in the fault plan, or ``nfdoctor simulator --rate-limit
lazada=40``, caps a platform at 40 API requests in any one second, all its accounts
together. The :class:`~nfdoctor.simulator.faults.FaultInjector` asks
:meth:`RequestRate.admit` before anything else; a refused request gets the platform's own
rate-limit answer (``SimPlatform.rate_limited``) with ``Retry-After: 1`` and is not counted
as accepted. Every platform keeps its record whether or not it has a ceiling, so a test or
a benchmark can prove how fast a client really went (``state.max_requests_in_window``).

Times are whole microseconds since the Unix epoch, from the state's clock (a test's fake
clock makes the window exact); the window at ``t`` is ``(t - 1 s, t]``.
"""

from __future__ import annotations

import threading
from array import array
from collections import deque
from datetime import datetime, timedelta, timezone

__all__ = [
    "MAX_RATE_LIMIT",
    "MAX_RATE_RECORDS",
    "RequestRate",
    "microseconds",
    "parse_rate_limit",
]

#: the highest ceiling a plan or ``--rate-limit`` may set (requests per second)
MAX_RATE_LIMIT = 100_000
#: accepted request times kept per platform (the oldest are forgotten past this)
MAX_RATE_RECORDS = 1_000_000

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_SECOND_US = 1_000_000


def microseconds(moment: datetime) -> int:
    """``moment`` as whole microseconds since the epoch (exact, unlike ``timestamp()``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // _MICROSECOND


class RequestRate:
    """One platform's requests: its ceiling, the accepted and refused counts, and the
    accepted requests' times. Thread-safe (the server's loop admits, tests read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: requests per second allowed; None: no ceiling (every request is accepted)
        self.limit: int | None = None
        self.accepted = 0
        self.refused = 0
        # The accepted times of the last second (the window), and all of them (the record).
        self._window: deque[int] = deque()
        self._times = array("q")

    def set_limit(self, limit: int | None) -> None:
        """Set (or, with None, lift) the ceiling."""
        if limit is not None and not 1 <= limit <= MAX_RATE_LIMIT:
            raise ValueError(f"a rate limit is 1-{MAX_RATE_LIMIT} requests per second")
        with self._lock:
            self.limit = limit

    def admit(self, now: datetime) -> bool:
        """Count one request at ``now``: True if accepted, False if it would make more than
        ``limit`` accepted requests in the second ending at ``now``."""
        at = microseconds(now)
        with self._lock:
            window = self._window
            while window and window[0] <= at - _SECOND_US:
                window.popleft()
            if self.limit is not None and len(window) >= self.limit:
                self.refused += 1
                return False
            window.append(at)
            self.accepted += 1
            self._times.append(at)
            if len(self._times) > MAX_RATE_RECORDS:
                del self._times[: len(self._times) - MAX_RATE_RECORDS]
            return True

    def counts(self) -> tuple[int, int]:
        """``(accepted, refused)`` since the start."""
        with self._lock:
            return self.accepted, self.refused

    def times(self) -> list[datetime]:
        """The accepted requests' times, oldest first (at most MAX_RATE_RECORDS)."""
        with self._lock:
            values = sorted(self._times)
        return [_EPOCH + v * _MICROSECOND for v in values]

    def max_in_window(self, seconds: float = 1.0) -> int:
        """The most accepted requests in any window ``(t - seconds, t]``."""
        if not seconds > 0:
            raise ValueError("seconds must be more than 0")
        width = round(seconds * _SECOND_US)
        with self._lock:
            values = sorted(self._times)
        best = start = 0
        for end, at in enumerate(values):
            while values[start] <= at - width:
                start += 1
            best = max(best, end - start + 1)
        return best


def parse_rate_limit(text: str, platforms: tuple[str, ...]) -> tuple[str, int]:
    """``PLATFORM=RPS`` (``lazada=40``) -> ``(platform, 40)``; ValueError saying what is wrong."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise ValueError("expected PLATFORM=RPS, e.g. lazada=40")
    if name not in platforms:
        raise ValueError(f"no platform {name!r} (expected one of {', '.join(platforms)})")
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_RATE_LIMIT:
        raise ValueError(
            f"{value!r} is not a number of requests per second from 1 to {MAX_RATE_LIMIT}"
        )
    return name, int(value)
