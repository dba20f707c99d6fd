"""Order sync health: how far the CRM's orders lag behind the platform's, per shop.

The runbook's order-sync page starts from "orders are missing or stale in the CRM". This
check lists the orders the platform updated in the last few hours (the sync stream's own
listing, a few pages at most) and looks each one up in the CRM: the oldest platform update
the CRM does not reflect yet is the lag. It also says how the last ``nfdoctor sync`` of the
shop ended, and names the ``nfdoctor sync`` that catches up.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from nfdoctor.checks.base import CheckContext, higher_is_worse
from nfdoctor.checks.platforms import Finding, _PlatformCheck
from nfdoctor.config.loader import database_url
from nfdoctor.durations import format_span
from nfdoctor.errors import DatabaseError, StateError
from nfdoctor.platforms.errors import TaxonomyError
from nfdoctor.platforms.spec import Account, PlatformSpec
from nfdoctor.platforms.sync import SyncedOrder, Window
from nfdoctor.results import CheckResult, Metric, Status
from nfdoctor.sync.db import SyncDatabase
from nfdoctor.threads import in_daemon_thread

__all__ = ["LOOKBACK", "MAX_PAGES", "OrderSyncHealthCheck", "sync_health_checks"]

#: how far back the check lists the platform's updates
LOOKBACK = timedelta(hours=6)
#: pages listed at most per shop (a busy shop's last hours; the lag is judged on those)
MAX_PAGES = 5


class OrderSyncHealthCheck(_PlatformCheck):
    """The CRM's orders against the platform's recent updates."""

    kind = "order_sync"
    what = "order sync health (CRM lag behind the platform)"
    requires = ("database.connect",)

    async def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Judge every shop of the platform concurrently."""
        url = database_url(ctx.loaded, ctx.secrets)
        if url is None:
            return [self.result(Status.SKIPPED, "no database configured: nothing to compare with")]
        timeout = ctx.config.database.timeout.total_seconds()  # type: ignore[union-attr]
        db = SyncDatabase(url, timeout_s=timeout)
        try:
            return await self.for_each_account(ctx, lambda a: self._judge(ctx, db, a))
        finally:
            db.close()

    async def _judge(self, ctx: CheckContext, db: SyncDatabase, account: Account) -> CheckResult:
        stream = self.spec.sync.orders if self.spec.sync else None
        assert stream is not None  # only platforms with an orders stream get this check
        session = ctx.session()
        now = ctx.clock()
        try:
            shop_id = await in_daemon_thread(lambda: db.shop_id(self.platform, account.account_id))
        except (StateError, DatabaseError) as exc:
            return self.result(Status.UNKNOWN, exc.message, subject=account.label)
        if shop_id is None:
            return self.result(
                Status.WARNING,
                "the CRM has no such shop (shops.channel, external_id): its orders cannot sync",
                subject=account.label,
            )
        token = await session.stored_token(account)
        if token is None:
            return self.result(
                Status.UNKNOWN,
                "no token stored: the platform's orders cannot be listed",
                hint=self.hint("token.missing"),
                subject=account.label,
            )
        client = session.client(account, access_token=token.access_token)
        listed: list[SyncedOrder] = []
        window = Window(now - LOOKBACK, now)
        cursor: str | None = None
        complete = False
        try:
            for _ in range(MAX_PAGES):
                page = await stream.page(client, window, cursor)
                listed += page.records
                cursor = page.next_cursor
                if cursor is None:
                    complete = True
                    break
        except TaxonomyError as exc:
            return self.error_result(exc, account)
        held = await in_daemon_thread(
            lambda: db.crm_orders_updated(shop_id, [o.external_id for o in listed])
        )
        behind = [
            o
            for o in listed
            if held.get(o.external_id) is None or held[o.external_id] < o.updated_at
        ]
        findings: list[Finding] = []
        details = [
            f"{len(listed)} orders updated on the platform in the last "
            f"{format_span(LOOKBACK.total_seconds())}"
            + ("" if complete else f" (first {MAX_PAGES} pages)"),
        ]
        lag = 0.0
        if behind:
            oldest = min(o.updated_at for o in behind)
            lag = (now - oldest).total_seconds()
            thresholds = ctx.config.thresholds
            status = higher_is_worse(
                lag,
                thresholds.order_sync_lag_warning.total_seconds(),
                thresholds.order_sync_lag_critical.total_seconds(),
            )
            missing = sum(1 for o in behind if o.external_id not in held)
            text = (
                f"{len(behind)} of them not in the CRM as updated ({missing} missing); the "
                f"oldest update is {format_span(lag)} old"
            )
            findings.append(Finding(status, text, "sync.lagging"))
            ids = ", ".join(o.external_id for o in behind[:10])
            details.append(f"behind: {ids}{' …' if len(behind) > 10 else ''}")
        else:
            details.append("every one of them is in the CRM as updated")
        last = await in_daemon_thread(lambda: _last_run(db, self.platform, account.account_id))
        if last is not None:
            details.append(last)
        result = self.combined(
            account,
            findings,
            lead=() if findings else ("the CRM has every recent order update",),
            details=details,
            metrics=(
                Metric(name="lag", value=round(lag, 1), unit="s"),
                Metric(name="behind", value=len(behind)),
            ),
        )
        if result.status is not Status.OK:
            since = _span_option(max(lag, 3600) * 1.5)
            result = _with_next(
                result,
                f"nfdoctor sync --platform {self.platform} --shop {account.account_id} "
                f"--since {since}",
            )
        return result


def _behind(held: datetime | None, order: SyncedOrder) -> bool:
    """Whether the CRM lacks the order, or holds an older update of it."""
    return held is None or held < order.updated_at


def _span_option(seconds: float) -> str:
    """A ``--since`` span covering ``seconds``: whole hours, or days past two."""
    hours = math.ceil(seconds / 3600)
    return f"{math.ceil(hours / 24)}d" if hours > 48 else f"{hours}h"


def _with_next(result: CheckResult, command: str) -> CheckResult:
    return dataclasses.replace(result, next_command=command)


def _last_run(db: SyncDatabase, platform: str, shop: str) -> str | None:
    try:
        if not db.has_own_tables():
            return "no nfdoctor sync has run against this CRM yet"
        last = db.last_run(platform, shop, "orders")
    except (StateError, DatabaseError):
        return None
    if last is None:
        return "no nfdoctor sync of this shop has finished yet"
    finished, outcome, until = last
    finished, until = finished[:16].replace("T", " "), until[:16].replace("T", " ")
    return f"last nfdoctor sync: finished {finished} UTC ({outcome}), up to {until} UTC"


def sync_health_checks(specs: Sequence[PlatformSpec[Any]]) -> list[OrderSyncHealthCheck]:
    """One check per platform with an orders stream."""
    return [OrderSyncHealthCheck(s) for s in specs if s.sync is not None and s.sync.orders]
