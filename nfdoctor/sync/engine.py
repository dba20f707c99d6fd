"""The sync engine: each (shop, stream) under its lease, windows in parallel, pages in order.

For one (platform, shop, stream):

1. take the lease (``nfdoctor_sync_leases``; renewed while it runs); a held one is "busy";
2. start or resume the run (``nfdoctor_sync_runs``): a killed run of the same shop and stream
   is resumed over both ranges, its finished windows skipped, its others continued from the
   cursor of the page they had not committed;
3. cut the range into windows on a fixed UTC grid (a week from the epoch; never more than
   the platform's limit), so a resumed run finds its windows again under the same keys;
4. for each window not done, concurrently with the other windows and shops: fetch the next
   page from the checkpoint's cursor, write its records and the new cursor in one
   transaction; until the platform says the window is done;
5. validate (orders): what the platform listed against what the CRM now holds;
6. finish the run; move the incremental bookmark (incremental runs, or ``--update-state``).

Requests are paced by the platform's shared rate limit and retried (rate limits, transient
failures) in the client session; an expired access token is refreshed once through the token
refresh protocol; an error that retrying cannot fix (signature, permission, revoked
authorisation) stops that shop with the runbook's hint while the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from nfdoctor.errors import DatabaseError, StateError
from nfdoctor.platforms.base import PlatformClient
from nfdoctor.platforms.errors import Category, RateLimitedError, TaxonomyError
from nfdoctor.platforms.spec import Account
from nfdoctor.platforms.sync import Page, StreamSpec, SyncedOrder, Window, split_windows
from nfdoctor.sync.db import PageCounts, SyncDatabase
from nfdoctor.threads import in_daemon_thread

__all__ = [
    "GRID",
    "Job",
    "JobOutcome",
    "SyncEngine",
    "SyncPlan",
    "Validation",
    "grid_windows",
]

#: the grid windows are cut on: UTC weeks from the epoch (a run resumed later finds the same
#: keys). A window costs at least one request even when empty, so a grid of days would spend
#: 30 requests on a month of a quiet shop; weeks still give a month's backfill of one big
#: shop 5 windows in parallel.
GRID = timedelta(days=7)
#: categories that retrying or refreshing cannot fix: the shop stops, the others go on
_FATAL = frozenset(
    {
        Category.BAD_SIGNATURE,
        Category.BAD_CREDENTIALS,
        Category.PERMISSION_DENIED,
        Category.TOKEN_INVALID,
        Category.REFRESH_TOKEN_INVALID,
        Category.BAD_PARAMETERS,
    }
)

#: what the platform listed of one order: its status, amount and buyer (None: not named)
Listed = tuple[str, Decimal, "str | None"]

JobStatus = Literal["ok", "failed", "busy", "no_bookmark", "no_shop"]


@dataclass(frozen=True, kw_only=True)
class SyncPlan:
    """How the run goes: its range, and what it may write."""

    #: None: incremental, from the bookmark
    since: datetime | None
    until: datetime
    dry_run: bool = False
    update_state: bool = False
    #: only link customers (``--stream customers``)
    link_only: bool = False
    owner: str
    run_id: str
    lease_s: float = 60.0
    #: chat messages newer than this are left to the CRM's webhooks
    message_settle: timedelta = timedelta(minutes=10)
    #: windows (pages) in flight at once in this process
    concurrency: int = 16
    #: an incremental run starts this much before its bookmark (late updates, clock skew)
    overlap: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, kw_only=True)
class Job:
    """One (shop, stream) to sync."""

    account: Account
    stream: StreamSpec[Any]
    #: the CRM's shops.id (None: the CRM does not know the shop)
    shop_id: int | None


@dataclass(frozen=True, kw_only=True)
class Validation:
    """The platform's records for the range against the CRM's (orders)."""

    platform_count: int
    crm_count: int
    #: listed by the platform, absent from the CRM
    missing: tuple[str, ...] = ()
    #: in the CRM for the range, not listed by the platform
    extra: tuple[str, ...] = ()
    #: id -> (what the platform says, what the CRM holds), status or amount
    mismatched: tuple[tuple[str, str, str], ...] = ()
    #: orders with a buyer on the platform and no customer in the CRM
    unlinked: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.missing or self.mismatched or self.unlinked)


@dataclass
class JobOutcome:
    """What happened to one (shop, stream)."""

    account: Account
    stream: str
    status: JobStatus = "ok"
    message: str = ""
    since: datetime | None = None
    until: datetime | None = None
    resumed: bool = False
    windows: int = 0
    windows_done_before: int = 0
    #: windows this run finished (with the ones done before: the progress bar's count)
    windows_finished: int = 0
    pages: int = 0
    fetched: int = 0
    #: records the platform would not let be read (Facebook's older messages)
    skipped: int = 0
    counts: PageCounts = field(default_factory=PageCounts)
    failed_windows: int = 0
    error: TaxonomyError | None = None
    validation: Validation | None = None
    token_refreshed: bool = False
    duration_s: float = 0.0


def grid_windows(since: datetime, until: datetime, max_window: timedelta | None) -> list[Window]:
    """``[since, until)`` cut on the :data:`GRID` (and the platform's limit, if smaller)."""
    if since >= until:
        return []
    windows: list[Window] = []
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    start = since
    while start < until:
        cells = (start - epoch) // GRID
        end = min(epoch + (cells + 1) * GRID, until)
        windows.extend(split_windows(start, end, max_window))
        start = end
    return windows


#: builds a client for an account with an access token
ClientFor = Callable[[Account, str], PlatformClient]
#: refreshes an account's tokens under the refresh protocol; the new access token or None
RefreshToken = Callable[[Account], Awaitable["str | None"]]


class SyncEngine:
    """Runs jobs against one database and one platform session."""

    def __init__(
        self,
        *,
        db: SyncDatabase,
        plan: SyncPlan,
        client_for: ClientFor,
        access_token: Callable[[Account], Awaitable[str | None]],
        refresh_token: RefreshToken,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        progress: Callable[[JobOutcome], None] = lambda _: None,
    ) -> None:
        self.db = db
        self.plan = plan
        self.client_for = client_for
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.clock = clock
        self.monotonic = monotonic
        self.progress = progress
        self._slots = asyncio.Semaphore(plan.concurrency)

    async def run(self, jobs: Sequence[Job]) -> list[JobOutcome]:
        """Every job, concurrently; each one's outcome (one failing never stops another)."""
        return list(await asyncio.gather(*(self._job(job) for job in jobs)))

    # -- one (shop, stream) ------------------------------------------------------------------

    async def _job(self, job: Job) -> JobOutcome:
        outcome = JobOutcome(account=job.account, stream=job.stream.name)
        began = self.monotonic()
        try:
            await self._job_body(job, outcome)
        except (StateError, DatabaseError) as exc:
            outcome.status = "failed"
            outcome.message = exc.message
        finally:
            outcome.duration_s = self.monotonic() - began
        return outcome

    async def _job_body(self, job: Job, outcome: JobOutcome) -> None:
        account, plan = job.account, self.plan
        if job.shop_id is None:
            outcome.status = "no_shop"
            outcome.message = (
                f"the CRM has no shop {account.platform} {account.account_id} (shops.channel, "
                "external_id): nothing to sync it into"
            )
            return
        key = (account.platform, account.account_id, job.stream.name)
        since = plan.since
        if since is None:
            bookmark = await _thread(lambda: self.db.bookmark(key))
            if bookmark is None:
                outcome.status = "no_bookmark"
                outcome.message = (
                    "no incremental bookmark yet: run once with --since (e.g. --since 3d "
                    "--update-state) to set where incremental sync starts"
                )
                return
            since = bookmark - plan.overlap
        until = plan.until
        if job.stream.name == "messages":
            until = min(until, self.clock() - plan.message_settle)
        if plan.dry_run:
            await self._sync_range(job, outcome, since, until, run_id=None, done=set())
            return
        holder = await _thread(lambda: self.db.take_lease(key, plan.owner, plan.lease_s))
        if holder is not None:
            outcome.status = "busy"
            outcome.message = (
                f"another sync of this shop's {job.stream.name} is running ({holder}); it "
                "finishes the work (its lease is renewed while it runs)"
            )
            return
        heartbeat = asyncio.create_task(self._renew(key))
        try:
            run = await _thread(
                lambda: self.db.start_run(
                    key,
                    run_id=f"{plan.run_id}/{'/'.join(key)}",
                    owner=plan.owner,
                    since=since,
                    until=until,
                    now=self.clock(),
                )
            )
            outcome.resumed = run.resumed
            checkpoints = await _thread(lambda: self.db.checkpoints(run.id))
            done = {k for k, c in checkpoints.items() if c.done}
            cursors = {k: c.next_cursor for k, c in checkpoints.items() if not c.done}
            await self._sync_range(
                job, outcome, run.since, run.until, run_id=run.id, done=done, cursors=cursors
            )
            if outcome.status == "ok":
                if job.stream.name == "orders" and not plan.link_only:
                    outcome.validation = await _thread(
                        lambda: self._validate(job, run.id, run.since, run.until)
                    )
                await _thread(lambda: self.db.finish_run(run.id, outcome="ok", now=self.clock()))
                if plan.since is None or plan.update_state:
                    await _thread(lambda: self.db.set_bookmark(key, run.until, self.clock()))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            with contextlib.suppress(StateError, DatabaseError):
                await _thread(lambda: self.db.release_lease(key, plan.owner))

    async def _renew(self, key: tuple[str, str, str]) -> None:
        while True:
            await asyncio.sleep(self.plan.lease_s / 3)
            with contextlib.suppress(StateError, DatabaseError):
                await _thread(lambda: self.db.renew_lease(key, self.plan.owner, self.plan.lease_s))

    async def _sync_range(
        self,
        job: Job,
        outcome: JobOutcome,
        since: datetime,
        until: datetime,
        *,
        run_id: str | None,
        done: set[str],
        cursors: dict[str, str | None] | None = None,
    ) -> None:
        outcome.since, outcome.until = since, until
        if job.stream.grid:
            windows = grid_windows(since, until, job.stream.max_window)
        else:
            windows = split_windows(since, until, job.stream.max_window)
        outcome.windows = len(windows)
        outcome.windows_done_before = sum(1 for w in windows if w.key() in done)
        seen: dict[str, Listed] = {}
        token = await self.access_token(job.account)
        if token is None:
            outcome.status = "failed"
            outcome.message = "no token stored for this account: nfdoctor token authorize"
            return
        state = _ShopState(client=self.client_for(job.account, token))
        todo = [w for w in windows if w.key() not in done]
        results = await asyncio.gather(
            *(
                self._window(job, outcome, state, w, run_id, (cursors or {}).get(w.key()), seen)
                for w in todo
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                if isinstance(result, (StateError, DatabaseError)):
                    raise result
                if not isinstance(result, TaxonomyError):
                    raise result
                outcome.failed_windows += 1
                if outcome.error is None or result.category in _FATAL:
                    outcome.error = result
        if outcome.error is not None:
            outcome.status = "failed"
            outcome.message = _failure_text(outcome.error, outcome.failed_windows, len(todo))
        if run_id is None and job.stream.name == "orders" and outcome.status == "ok":
            outcome.validation = await _thread(lambda: self._compare(job, since, until, seen))

    async def _window(
        self,
        job: Job,
        outcome: JobOutcome,
        state: _ShopState,
        window: Window,
        run_id: str | None,
        cursor: str | None,
        seen: dict[str, Listed],
    ) -> None:
        while True:
            if state.stopped is not None:
                raise state.stopped
            async with self._slots:
                page = await self._page(job, outcome, state, window, cursor)
            now = self.clock()
            write = functools.partial(self._write, job, page, window, run_id, now)
            counts = await _thread(write)
            outcome.pages += 1
            outcome.fetched += len(page.records)
            outcome.skipped += page.skipped
            outcome.counts.add(counts)
            if run_id is None and job.stream.name == "orders":
                for record in page.records:
                    assert isinstance(record, SyncedOrder)
                    buyer = record.buyer.external_user_id if record.buyer else None
                    seen[record.external_id] = (record.platform_status, record.total_amount, buyer)
            if page.next_cursor is None:
                outcome.windows_finished += 1
                self.progress(outcome)
                return
            self.progress(outcome)
            cursor = page.next_cursor

    async def _page(
        self,
        job: Job,
        outcome: JobOutcome,
        state: _ShopState,
        window: Window,
        cursor: str | None,
    ) -> Page[Any]:
        try:
            return await job.stream.page(state.client, window, cursor)
        except TaxonomyError as exc:
            if exc.category is Category.TOKEN_EXPIRED:
                client = await self._refreshed(job, outcome, state)
                if client is not None:
                    return await job.stream.page(client, window, cursor)
            if exc.category in _FATAL:
                state.stopped = exc
            raise

    async def _refreshed(
        self, job: Job, outcome: JobOutcome, state: _ShopState
    ) -> PlatformClient | None:
        """A client with a refreshed access token (once per shop and run), or None."""
        async with state.refresh_lock:
            if not state.refresh_tried:
                state.refresh_tried = True
                token = await self.refresh_token(job.account)
                if token is not None:
                    state.client = self.client_for(job.account, token)
                    outcome.token_refreshed = True
            return state.client if outcome.token_refreshed else None

    def _write(
        self, job: Job, page: Page[Any], window: Window, run_id: str | None, now: datetime
    ) -> PageCounts:
        assert job.shop_id is not None
        writer = self.db.write_orders if job.stream.name == "orders" else self.db.write_messages
        return writer(
            run_id=run_id,
            shop_id=job.shop_id,
            channel=job.account.platform,
            window=window,
            records=page.records,
            next_cursor=page.next_cursor,
            total=page.total,
            now=now,
            dry_run=self.plan.dry_run,
            link_only=self.plan.link_only,
        )

    # -- validation ------------------------------------------------------------------------------

    def _validate(self, job: Job, run_id: str, since: datetime, until: datetime) -> Validation:
        seen = self.db.seen(run_id)
        listed = {k: (v[0] or "", _decimal(v[1]), v[2]) for k, v in seen.items()}
        return self._compare(job, since, until, listed)

    def _compare(
        self, job: Job, since: datetime, until: datetime, listed: dict[str, Listed]
    ) -> Validation:
        assert job.shop_id is not None
        held = self.db.crm_orders(job.shop_id, listed)
        in_range = self.db.crm_orders_between(job.shop_id, since, until)
        missing = sorted(i for i in listed if i not in held)
        mismatched = []
        for external_id, (status, amount, _) in sorted(listed.items()):
            crm = held.get(external_id)
            if crm is None:
                continue
            if crm.platform_status != status:
                mismatched.append((external_id, f"status {status}", f"{crm.platform_status}"))
            elif crm.total_amount != amount:
                mismatched.append((external_id, f"amount {amount}", f"{crm.total_amount}"))
        # Only where the platform names the buyer: Lazada's orders name none (platforms.md §3.5)
        unlinked = sorted(
            i for i, o in held.items() if o.customer_id is None and listed[i][2] is not None
        )
        extra = sorted(i for i in in_range if i not in listed)
        return Validation(
            platform_count=len(listed),
            crm_count=len(in_range),
            missing=tuple(missing),
            extra=tuple(extra),
            mismatched=tuple(mismatched),
            unlinked=tuple(unlinked),
        )


@dataclass
class _ShopState:
    """What the windows of one shop share: the client, one refresh, a fatal stop."""

    client: PlatformClient
    refresh_tried: bool = False
    stopped: TaxonomyError | None = None
    refresh_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _decimal(value: str | None) -> Decimal:
    try:
        return Decimal(value) if value is not None else Decimal("NaN")
    except InvalidOperation:
        return Decimal("NaN")


def _failure_text(error: TaxonomyError, failed: int, windows: int) -> str:
    if isinstance(error, RateLimitedError) and error.retry_after_s is not None:
        until = datetime.now(timezone.utc) + timedelta(seconds=error.retry_after_s)
        return (
            f"rate-limited until {until:%H:%M} UTC (the platform asked for "
            f"{error.retry_after_s:.0f} s, longer than this run waits); {failed} of {windows} "
            "windows left for the next run, which resumes them"
        )
    return f"{error.message}; {failed} of {windows} windows unfinished (the next run resumes them)"


async def _thread(fn: Callable[[], Any]) -> Any:
    return await in_daemon_thread(fn, name="nfdoctor-sync-db")
