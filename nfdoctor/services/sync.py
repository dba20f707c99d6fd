"""``nfdoctor sync``: re-read a range of orders or messages from the platforms into the CRM.

The runbook's "order sync" (pick the platform and range, run, monitor, validate) as one
command: the request is checked whole before anything is fetched or written (dates, range,
platforms, shops, shard, the CRM schema), then :class:`~nfdoctor.sync.engine.SyncEngine`
runs every (shop, stream) in scope under its lease, paced by each platform's shared rate
limit, and the report has one result per (shop, stream) and one per platform for its
requests (sent, retried, rate-limited, rate against the limit).
"""

from __future__ import annotations

import asyncio
import json
import secrets as _secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from nfdoctor import __version__
from nfdoctor.config.loader import database_url
from nfdoctor.context import Environment
from nfdoctor.durations import format_span, parse_when
from nfdoctor.errors import UsageError
from nfdoctor.hints import CATEGORY_HINTS, platform_hint
from nfdoctor.platforms.base import FetchRetry
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account
from nfdoctor.platforms.sync import StreamName, StreamSpec
from nfdoctor.results import CheckResult, Metric, Report, Status
from nfdoctor.services.checkrun import (
    PreparedConfig,
    Scope,
    call_timeout_s,
    open_tokens,
    prepare,
    scope_accounts,
)
from nfdoctor.services.observer import RunObserver, SilentObserver
from nfdoctor.session import PlatformSession
from nfdoctor.sync.db import SyncDatabase, open_sync_database
from nfdoctor.sync.engine import Job, JobOutcome, SyncEngine, SyncPlan
from nfdoctor.sync.limiter import LocalRateLimit, SharedRateLimit
from nfdoctor.sync.shard import Shard, parse_shard
from nfdoctor.threads import in_daemon_thread
from nfdoctor.tokens.refresh import Refresher, RefreshPolicy, run_owner

__all__ = ["STREAMS", "SyncRequest", "sync"]

STREAMS: tuple[StreamName, ...] = ("orders", "messages", "customers")
#: ids listed in a result's details at most (the JSON output carries them all)
_SHOWN_IDS = 20


@dataclass(frozen=True, kw_only=True)
class SyncRequest:
    """``nfdoctor sync --platform P|all [--shop ID] --since WHEN …``."""

    platform: str = "all"
    shop: str | None = None
    #: None: incremental, from each (shop, stream)'s bookmark
    since: str | None = None
    until: str | None = None
    #: None: each platform's own stream (orders on marketplaces, messages on chat)
    stream: str | None = None
    dry_run: bool = False
    update_state: bool = False
    shard: str | None = None
    config_path: Path | None = None


def sync(
    env: Environment,
    request: SyncRequest,
    *,
    observer: RunObserver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Any = None,
) -> Report:
    """Sync everything the request names; the report (never raises for one shop's failure)."""
    observer = observer or SilentObserver()
    started_at = env.clock()
    began = env.monotonic()
    stream = _stream(request.stream)
    shard = parse_shard(request.shard) if request.shard is not None else None
    prepared = prepare(env, request.config_path, observer)
    config = prepared.loaded.config
    zone = ZoneInfo(config.timezone)
    now = env.clock()
    since, until = _range(request, now, zone)
    url = database_url(prepared.loaded, prepared.secrets)
    if url is None:
        raise UsageError(
            "sync writes into the CRM database: set database.url in the config (sqlite:///… "
            "or postgresql://…)"
        )
    jobs_by_platform = _jobs(prepared, request, stream, shard)
    db = open_sync_database(url, timeout_s=config.database.timeout.total_seconds())  # type: ignore[union-attr]
    try:
        return _run(
            env,
            prepared,
            db,
            jobs_by_platform,
            request=request,
            since=since,
            until=until,
            link_only=request.stream == "customers",
            started_at=started_at,
            began=began,
            transport=transport,
            progress=progress,
        )
    finally:
        db.close()


def _stream(name: str | None) -> StreamName | None:
    if name is None:
        return None
    cleaned = name.strip().lower()
    if cleaned not in STREAMS:
        raise UsageError(f"--stream {name!r}: expected one of {', '.join(STREAMS)}")
    return cleaned


def _range(request: SyncRequest, now: datetime, zone: ZoneInfo) -> tuple[datetime | None, datetime]:
    """The range, checked: real dates, in order, not in the future."""
    until = now
    if request.until is not None:
        try:
            until = parse_when(request.until, now=now, default_tz=zone)  # type: ignore[arg-type]
        except ValueError as exc:
            raise UsageError(f"--until: {exc}") from None
    since = None
    if request.since is not None:
        try:
            since = parse_when(request.since, now=now, default_tz=zone)  # type: ignore[arg-type]
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
        if since >= until:
            raise UsageError(
                f"--since {request.since} is not before --until {request.until or 'now'}: the "
                "range is empty"
            )
    elif request.until is not None:
        raise UsageError("--until needs --since (an incremental run always goes up to now)")
    # Whole seconds: the platforms filter on seconds, and a bound cut inside a second would
    # drop what happened in its first part.
    until = until.replace(microsecond=0) + (
        timedelta(seconds=1) if until.microsecond else timedelta()
    )
    if since is not None:
        since = since.replace(microsecond=0)
    return since, until


def _jobs(
    prepared: PreparedConfig, request: SyncRequest, stream: StreamName | None, shard: Shard | None
) -> dict[str, list[tuple[Account, StreamSpec[Any]]]]:
    """(account, stream) per platform in scope, after the stream and shard filters."""
    name = request.platform.strip().lower()
    if not name:
        raise UsageError("--platform: empty; expected a platform name or all")
    platforms = () if name == "all" else tuple(p.strip() for p in name.split(","))
    accounts = scope_accounts(prepared, Scope(platforms=platforms, shop=request.shop))
    jobs: dict[str, list[tuple[Account, StreamSpec[Any]]]] = {}
    for platform, listed in accounts.items():
        spec = platform_spec(platform).sync
        chosen = _platform_stream(spec, stream)
        if chosen is None:
            if name != "all":
                has = "no sync" if spec is None else f"no {stream} stream"
                title = platform_spec(platform).title
                raise UsageError(f"--platform {platform}: {title} has {has}")
            continue
        kept = [a for a in listed if shard is None or shard.holds(platform, a.account_id)]
        if kept:
            jobs[platform] = [(a, chosen) for a in kept]
    if not jobs and shard is None:
        raise UsageError("nothing to sync: no configured platform has that stream")
    return jobs


def _platform_stream(spec: Any, stream: StreamName | None) -> StreamSpec[Any] | None:
    if spec is None:
        return None
    if stream is None or stream == "customers":
        result: StreamSpec[Any] | None = spec.orders or spec.messages
        return result
    return spec.stream(stream)  # type: ignore[no-any-return]


def _run(
    env: Environment,
    prepared: PreparedConfig,
    db: SyncDatabase,
    jobs_by_platform: dict[str, list[tuple[Account, StreamSpec[Any]]]],
    *,
    request: SyncRequest,
    since: datetime | None,
    until: datetime,
    link_only: bool,
    started_at: datetime,
    began: float,
    transport: httpx.AsyncBaseTransport | None,
    progress: Any,
) -> Report:
    config = prepared.loaded.config
    db.check_crm_schema()
    shared = not request.dry_run or db.has_own_tables()
    if not request.dry_run:
        db.ensure_own_tables()
    rates = {
        p: float(config.sync.rate_limits.get(p) or platform_spec(p).sync.default_rate_per_s)  # type: ignore[union-attr]
        for p in jobs_by_platform
    }
    pacers: dict[str, Any] = {
        p: SharedRateLimit(db, p, rate) if shared else LocalRateLimit(rate)
        for p, rate in rates.items()
    }
    store = open_tokens(env, prepared)
    accounts = {p: [a for a, _ in jobs] for p, jobs in jobs_by_platform.items()}
    session = PlatformSession(
        config=config,
        secrets=prepared.secrets,
        token_store=store,
        redactor=env.redactor,
        clock=env.clock,
        accounts=accounts,
        call_timeout_s=call_timeout_s(config.thresholds.check_timeout),
        transport=transport,
        pacers=pacers,
        retry=FetchRetry(),
    )
    owner = run_owner("sync")
    plan = SyncPlan(
        since=since,
        until=until,
        dry_run=request.dry_run,
        update_state=request.update_state,
        link_only=link_only,
        owner=owner,
        run_id=f"{env.clock():%Y%m%dT%H%M%S}-{_secrets.token_hex(4)}",
        lease_s=config.sync.lease.total_seconds(),
        message_settle=config.sync.message_settle,
        concurrency=config.sync.concurrency,
    )
    refresher = Refresher(
        store=store,
        state_dir=env.state_dir,
        owner=run_owner(),
        clock=env.clock,
        policy=RefreshPolicy(),
    )

    async def access_token(account: Account) -> str | None:
        token = await in_daemon_thread(lambda: store.get(account.platform, account.account_id))
        return None if token is None else token.access_token

    async def refresh_token(account: Account) -> str | None:
        result = await refresher.refresh(
            account, lambda token: session.client(account, access_token=token)
        )
        if result.outcome in ("refreshed", "fresh", "recovered", "adopted") and result.token:
            env.redactor.add(result.token.access_token)
            return result.token.access_token
        return None

    async def run() -> tuple[list[JobOutcome], dict[str, tuple[int, int, int]]]:
        async with session:
            shop_ids = await in_daemon_thread(
                lambda: {
                    (p, a.account_id): db.shop_id(p, a.account_id)
                    for p, jobs in jobs_by_platform.items()
                    for a, _ in jobs
                }
            )
            jobs = [
                Job(account=a, stream=s, shop_id=shop_ids[(p, a.account_id)])
                for p, listed in jobs_by_platform.items()
                for a, s in listed
            ]
            engine = SyncEngine(
                db=db,
                plan=plan,
                client_for=lambda account, token: session.client(account, access_token=token),
                access_token=access_token,
                refresh_token=refresh_token,
                clock=env.clock,
                monotonic=env.monotonic,
                progress=progress or (lambda _: None),
            )
            outcomes = await engine.run(jobs)
            stats = {
                p: (
                    session.stats(p).requests,
                    session.stats(p).retries,
                    session.stats(p).rate_limited,
                )
                for p in jobs_by_platform
            }
            return outcomes, stats

    outcomes, stats = asyncio.run(run())
    wall = env.monotonic() - began
    results = [_job_result(o, request, env) for o in outcomes]
    for platform, (sent, retried, limited) in stats.items():
        results.append(_rate_result(platform, sent, retried, limited, rates[platform], wall))
    return Report(
        command="sync",
        results=tuple(results),
        started_at=started_at,
        duration_s=wall,
        version=__version__,
        extras=_validation_ids(outcomes),
    )


def _validation_ids(outcomes: list[JobOutcome]) -> dict[str, str]:
    """Every id the validation found, per shop (``--output json`` carries them; the
    details show the first few): ``sync.validation.<platform>.<shop>`` -> a JSON object."""
    found: dict[str, str] = {}
    for outcome in outcomes:
        check = outcome.validation
        if check is None or not (
            check.missing or check.mismatched or check.unlinked or check.extra
        ):
            continue
        key = f"sync.validation.{outcome.account.platform}.{outcome.account.account_id}"
        found[key] = json.dumps(
            {
                "missing": list(check.missing),
                "mismatched": [{"id": i, "platform": p, "crm": c} for i, p, c in check.mismatched],
                "unlinked": list(check.unlinked),
                "extra": list(check.extra),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
    return found


def _job_result(outcome: JobOutcome, request: SyncRequest, env: Environment) -> CheckResult:
    account = outcome.account
    title = platform_spec(account.platform).title
    counts = outcome.counts
    metrics = (
        Metric(name="fetched", value=outcome.fetched),
        Metric(name="inserted", value=counts.inserted),
        Metric(name="updated", value=counts.updated),
        Metric(name="unchanged", value=counts.unchanged),
        Metric(name="failed_windows", value=outcome.failed_windows),
        Metric(name="customers_created", value=counts.customers_created),
        Metric(name="pages", value=outcome.pages),
        Metric(name="seconds", value=round(outcome.duration_s, 3), unit="s"),
    )
    details: list[str] = []
    if outcome.since is not None and outcome.until is not None:
        details.append(
            f"range {outcome.since:%Y-%m-%d %H:%M} – {outcome.until:%Y-%m-%d %H:%M} UTC, "
            f"{outcome.windows} windows"
            + (f" ({outcome.windows_done_before} done before)" if outcome.resumed else "")
        )
    if outcome.skipped:
        details.append(
            f"{outcome.skipped} records in the range the platform would not let be read "
            "(Facebook reads only a conversation's 20 most recent messages in detail)"
        )
    if outcome.token_refreshed:
        details.append("the access token had expired: refreshed once, then continued")
    shop = f"--platform {account.platform} --shop {account.account_id}"
    verb = "would be " if request.dry_run else ""
    summary = (
        f"{outcome.fetched} fetched: {counts.inserted} {verb}inserted, {counts.updated} "
        f"{verb}updated, {counts.unchanged} unchanged"
    )
    status = Status.OK
    hint = None
    next_command = None
    if outcome.status == "busy":
        status, summary = Status.WARNING, outcome.message
    elif outcome.status == "no_bookmark":
        status, summary = Status.WARNING, outcome.message
        next_command = f"nfdoctor sync {shop} --since 3d --update-state"
    elif outcome.status == "no_shop":
        status, summary = Status.CRITICAL, outcome.message
    elif outcome.status == "failed":
        status = Status.CRITICAL
        summary = f"{summary}; stopped: {outcome.message}"
        if outcome.error is not None:
            key = CATEGORY_HINTS.get(outcome.error.category.value)
            hint = platform_hint(key, title) if key else None
        next_command = f"nfdoctor sync {shop}" + (
            f" --since {request.since}" if request.since else ""
        )
    if outcome.validation is not None:
        check = outcome.validation
        details.append(
            f"validation: the platform lists {check.platform_count}, the CRM holds "
            f"{check.crm_count} updated in the range"
        )
        for label, ids in (
            ("missing from the CRM", check.missing),
            ("not linked to a customer", check.unlinked),
            ("in the CRM, not listed by the platform for the range", check.extra),
        ):
            if ids:
                shown = ", ".join(ids[:_SHOWN_IDS]) + (" …" if len(ids) > _SHOWN_IDS else "")
                details.append(f"{len(ids)} {label}: {shown}")
        for external_id, platform_says, crm_has in check.mismatched[:_SHOWN_IDS]:
            details.append(f"mismatch {external_id}: platform {platform_says}, CRM {crm_has}")
        if status is Status.OK and not check.clean and not request.dry_run:
            status = Status.WARNING
            summary += "; the CRM still differs from the platform"
            next_command = f"nfdoctor sync {shop} --since {request.since or '1d'}"
    return CheckResult(
        id=f"sync.{account.platform}.{outcome.stream}",
        title=f"{title}: sync {outcome.stream}",
        status=status,
        summary=summary,
        details=tuple(details),
        hint=hint,
        next_command=next_command,
        metrics=metrics,
        subject=account.label,
        duration_s=outcome.duration_s,
    )


def _rate_result(
    platform: str, sent: int, retried: int, limited: int, rate: float, wall: float
) -> CheckResult:
    spec = platform_spec(platform)
    per_s = sent / wall if wall > 0 else 0.0
    return CheckResult(
        id=f"sync.{platform}.requests",
        title=f"{spec.title}: requests",
        status=Status.WARNING if limited else Status.OK,
        summary=(
            f"{sent} requests in {format_span(wall)}: {per_s:.1f}/s against a limit of "
            f"{rate:g}/s; {retried} retried, {limited} rate-limited"
        ),
        details=(f"limit: {spec.sync.rate_source}" if spec.sync else "",),
        metrics=(
            Metric(name="requests", value=sent),
            Metric(name="retries", value=retried),
            Metric(name="rate_limited", value=limited),
            Metric(name="requests_per_second", value=round(per_s, 2)),
            Metric(name="rate_limit", value=rate),
        ),
        subject=platform,
    )
