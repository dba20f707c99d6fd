"""One request rate per platform, shared by every shop and every process on one CRM database.

A platform's limit is per app, and every nfdoctor that syncs against one CRM uses that CRM's
app: cron on one host and an operator on another must share the limit, not each take all of
it. The state is one row per platform in ``nfdoctor_rate_limits`` (GCRA: the *theoretical
arrival time* of the next request), moved by one atomic UPDATE per request, so each request
gets its own slot, slots never come closer than ``1 / rate``, and no process polls.

Why not pyrate-limiter's SQL buckets: they store a row per request and count them over a
window (a cleanup job, a COUNT per request, and a bucket per dialect with a connection pool
for PostgreSQL); one row and one UPDATE does the same for a fixed rate. On PostgreSQL the
database server's clock is the clock, so hosts with drifting clocks still interleave.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

from nfdoctor.sync.db import SyncDatabase
from nfdoctor.threads import in_daemon_thread

__all__ = ["HEADROOM", "LocalRateLimit", "SharedRateLimit"]

#: nfdoctor sends at this share of the configured limit: slots are exactly spaced, but a
#: request that reaches the platform late (timers, the scheduler, the network) lands in the
#: same second as the ones a full second after its slot; at 93 % a second still holds no
#: more than the limit with up to 75 ms of lateness. (95 % let one 429 through in a
#: benchmark of five busy processes on two cores; 93 % none in repeated runs.)
HEADROOM = 0.93
#: a request that wakes this much after its slot gives the slot up and takes the next one,
#: keeping the rest of the 75 ms for the way from here to the platform
MAX_LATE_S = 0.015
#: slots given up in a row before a request goes anyway (a machine too loaded to be on time)
MAX_RETAKES = 3


class SharedRateLimit:
    """The pacer of one platform: awaits this request's slot in the shared line.

    Slots are reserved :data:`BATCH` at a time (one UPDATE for several requests: on SQLite
    every write queues for the file's one write lock) and handed out in order; a slot this
    process wakes too late for is dropped, never used late.
    """

    def __init__(
        self,
        db: SyncDatabase,
        platform: str,
        rate_per_s: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        batch: int | None = None,
    ) -> None:
        self.db = db
        self.platform = platform
        self.interval_s = 1.0 / (rate_per_s * HEADROOM)
        self.sleep = sleep
        #: slots per reservation: about a tenth of a second's worth, at least one
        self.batch = batch or max(1, min(8, int(rate_per_s * HEADROOM / 10)))
        #: reserved slots not used yet, as this process's monotonic times
        self._slots: list[float] = []
        self._lock = asyncio.Lock()
        #: seconds this process waited for its slots (the summary's "paced" time)
        self.waited_s = 0.0
        #: slots given up because this process woke too late for them
        self.retaken = 0

    async def _next_slot(self) -> float:
        async with self._lock:
            while self._slots and self._slots[0] < time.monotonic() - MAX_LATE_S:
                self._slots.pop(0)  # passed while nobody needed it
                self.retaken += 1
            if not self._slots:
                waits = await in_daemon_thread(
                    lambda: self.db.reserve_slots(self.platform, self.interval_s, self.batch),
                    name="nfdoctor-pace",
                )
                now = time.monotonic()
                self._slots = [now + wait for wait in waits]
            return self._slots.pop(0)

    async def __call__(self) -> None:
        for _ in range(MAX_RETAKES + 1):
            due = await self._next_slot()
            wait = due - time.monotonic()
            if wait <= 0:
                return
            self.waited_s += wait
            await self.sleep(wait)
            if time.monotonic() - due <= MAX_LATE_S:
                return
            self.retaken += 1


class LocalRateLimit:
    """The same line in this process only (a dry run against a database nfdoctor has never
    written to: it creates no tables)."""

    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval_s = 1.0 / (rate_per_s * HEADROOM)
        self.clock = clock
        self.sleep = sleep
        self._tat = 0.0
        self._lock = threading.Lock()
        self.waited_s = 0.0

    async def __call__(self) -> None:
        with self._lock:
            now = self.clock()
            self._tat = max(self._tat, now) + self.interval_s
            wait = self._tat - self.interval_s - now
        if wait > 0:
            self.waited_s += wait
            await self.sleep(wait)
