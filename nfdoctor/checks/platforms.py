"""The runbook's platform checks, per platform: connectivity, API, tokens.

- ``platforms.<p>.connectivity`` — "verify internet connectivity": DNS, TCP, TLS and time
  to first byte to each API host, so a dropping connection shows *where* it drops.
- ``platforms.<p>.api`` — "test individual platform APIs": one authenticated call per
  shop/page/OA; latency, clock skew, rate-limit headroom and response shape.
- ``platforms.<p>.token`` — "verify API tokens/credentials": what the token store holds,
  how long it lasts, and (where the platform can say) what the platform thinks of it.

Every shop of a platform is measured concurrently inside its check, and the three checks
of all platforms run concurrently with each other, so a run with twenty shops takes about as
long as its slowest call. They talk to the platforms only through the run's
:class:`~nfdoctor.session.PlatformSession`. None of them changes anything: the API check does
not refresh an expired token, it reports it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from nfdoctor.checks.base import (
    Check,
    CheckContext,
    format_ms,
    higher_is_worse,
    lower_is_worse,
)
from nfdoctor.durations import format_span
from nfdoctor.errors import StateError
from nfdoctor.hints import CATEGORY_HINTS, platform_hint
from nfdoctor.net.probe import ConnectionTiming, probe_many
from nfdoctor.platforms.base import PingResult, TokenInfo
from nfdoctor.platforms.errors import Category, RateLimitedError, TaxonomyError
from nfdoctor.platforms.registry import SPECS
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account, PlatformSpec
from nfdoctor.results import CheckResult, Hint, Metric, Status, worst_of
from nfdoctor.session import PlatformSession
from nfdoctor.threads import in_daemon_thread
from nfdoctor.tokens.journal import RefreshJournal
from nfdoctor.tokens.owners import gone
from nfdoctor.tokens.store import StoredToken, TokenStore, token_format_problem

__all__ = [
    "PlatformApiCheck",
    "PlatformConnectivityCheck",
    "PlatformTokenCheck",
    "platform_checks",
]

_CATEGORY_HINT = CATEGORY_HINTS


#: findings whose remedy is `nfdoctor token refresh`, and `nfdoctor token authorize`
_REFRESH_HINTS = frozenset({"token.refresh_overdue", "token.expiring", "token.interrupted"})
_AUTHORIZE_HINTS = frozenset({"token.reauthorize", "token.missing", "token.page_reauthorize"})


@dataclass(frozen=True)
class Finding:
    """One thing a check found about one account, and the hint that goes with it."""

    status: Status
    text: str
    hint: str | None = None


class _PlatformCheck(Check):
    """A check about one platform."""

    kind = ""
    what = ""

    def __init__(self, platform: PlatformSpec[Any]) -> None:
        self.spec = platform
        self.platform = platform.name
        self.platform_title = platform.title
        self.id = f"platforms.{platform.name}.{self.kind}"
        self.title = f"{self.platform_title}: {self.what}"

    def hint(self, key: str) -> Hint:
        """The catalogue hint ``key`` for this platform."""
        return platform_hint(key, self.platform_title)

    def recheck(self, account: Account | None = None) -> str:
        """The command that measures this again once the operator has acted."""
        shop = f" --shop {account.account_id}" if account is not None else ""
        return f"nfdoctor check {self.platform}{shop}"

    def error_result(self, exc: TaxonomyError, account: Account) -> CheckResult:
        """A classified platform error as this account's result."""
        status = Status.WARNING if exc.category is Category.RATE_LIMITED else Status.CRITICAL
        summary = exc.message
        if isinstance(exc, RateLimitedError) and exc.retry_after_s is not None:
            summary += f"; retry after {format_span(exc.retry_after_s)}"
        details = [f"category: {exc.category.value}"]
        if exc.http_status is not None:
            details.append(f"HTTP status: {exc.http_status}")
        if exc.code is not None:
            details.append(f"platform error code: {exc.code}")
        if exc.request_id:
            details.append(f"request id: {exc.request_id} (quote it to the platform's support)")
        if exc.platform_message:
            details.append(f"platform says: {exc.platform_message}")
        phase = getattr(exc, "phase", None)
        if phase:
            details.append(f"failed at: {phase}")
        hint_key = _CATEGORY_HINT[exc.category.value]
        next_command = self.recheck(account)
        shop = f"{self.platform} --shop {account.account_id}"
        token_trouble = exc.category in (
            Category.TOKEN_EXPIRED,
            Category.TOKEN_INVALID,
            Category.REFRESH_TOKEN_INVALID,
        )
        if token_trouble and not self.spec.capabilities.refresh_tokens:
            # Facebook: no refresh token; 190/460 (password changed), 190/463 (expired) and
            # their kin come back only by authorising the Page again.
            hint_key = "token.page_reauthorize"
            next_command = f"nfdoctor token authorize {shop}"
        elif exc.category is Category.TOKEN_EXPIRED:
            next_command = f"nfdoctor token refresh {shop}"
        elif token_trouble:
            next_command = f"nfdoctor token authorize {shop}"
        return self.result(
            status,
            summary,
            details=details,
            hint=self.hint(hint_key),
            next_command=next_command,
            subject=account.label,
        )

    def combined(
        self,
        account: Account,
        findings: Sequence[Finding],
        *,
        lead: Sequence[str] = (),
        details: Sequence[str] = (),
        metrics: Sequence[Metric] = (),
    ) -> CheckResult:
        """One result from several findings: the worst status; its findings (after ``lead``)
        make the summary, the others go to the details; the worst's hint and a re-check."""
        status = worst_of([Status.OK, *(f.status for f in findings)])
        worst = [f for f in findings if f.status is status]
        hint_key = next((f.hint for f in worst if f.hint), None)
        failing = status is not Status.OK
        next_command = self.recheck(account)
        shop = f"{self.platform} --shop {account.account_id}"
        if hint_key in _REFRESH_HINTS:
            next_command = f"nfdoctor token refresh {shop}"
        elif hint_key in _AUTHORIZE_HINTS:
            next_command = f"nfdoctor token authorize {shop}"
        elif hint_key == "token.outcome_unknown":
            next_command = f"nfdoctor token refresh {shop} --retry-unknown"
        return self.result(
            status,
            "; ".join([*lead, *(f.text for f in worst)]),
            details=[*(f.text for f in findings if f.status is not status), *details],
            hint=self.hint(hint_key) if failing and hint_key else None,
            next_command=next_command if failing else None,
            metrics=metrics,
            subject=account.label,
        )

    async def for_each_account(
        self, ctx: CheckContext, measure: Callable[[Account], Awaitable[CheckResult]]
    ) -> list[CheckResult]:
        """``measure`` every account in scope concurrently; one result each."""
        accounts = ctx.session().accounts_of(self.platform)
        if not accounts:
            return [
                self.result(
                    Status.SKIPPED,
                    f"no {self.spec.account_noun} configured "
                    f"(platforms.{self.platform}.{self.spec.accounts_key})",
                )
            ]

        async def guarded(account: Account) -> CheckResult:
            try:
                return await measure(account)
            except TaxonomyError as exc:
                return self.error_result(exc, account)

        return list(await asyncio.gather(*(guarded(a) for a in accounts)))


class PlatformConnectivityCheck(_PlatformCheck):
    """DNS, TCP, TLS and first byte to each of the platform's API hosts."""

    kind = "connectivity"
    what = "internet connectivity (DNS, TCP, TLS, first byte)"

    async def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Probe every distinct API origin of the platform concurrently."""
        session = ctx.session()
        urls = session.urls(self.platform)
        timeout = session.call_timeout_s
        # The probe times each phase by the clock around awaits; on the run's busy event loop
        # (twenty shops being signed and parsed) that would add other tasks' CPU time to
        # "TCP connect". A loop of its own, in a daemon thread (never the default executor,
        # which Ctrl-C would wait for), keeps the figures true.
        timings = await in_daemon_thread(
            lambda: asyncio.run(probe_many(urls, timeout_s=timeout)), name="nfdoctor-probe"
        )
        return [self._judge(ctx, timing) for timing in timings]

    def _judge(self, ctx: CheckContext, timing: ConnectionTiming) -> CheckResult:
        thresholds = ctx.config.thresholds
        subject = f"{timing.scheme}://{timing.host}:{timing.port}"
        phases = [
            f"DNS {format_ms(timing.dns_s)}",
            f"TCP {format_ms(timing.tcp_s)}",
            f"TLS {format_ms(timing.tls_s) if timing.scheme == 'https' else 'n/a (http)'}",
            f"first byte {format_ms(timing.ttfb_s)}",
        ]
        metrics = [
            Metric(name=name, value=value, unit="s")
            for name, value in (
                ("dns", timing.dns_s),
                ("tcp_connect", timing.tcp_s),
                ("tls_handshake", timing.tls_s),
            )
            if value is not None
        ]
        api_latency = thresholds.api_latency.total_seconds()
        if timing.ttfb_s is not None:
            metrics.append(
                Metric(name="first_byte", value=timing.ttfb_s, unit="s", warn=api_latency)
            )
        details = [f"addresses: {', '.join(timing.addresses) or '—'}"]
        if timing.tls_version:
            details.append(f"TLS: {timing.tls_version}")
        if not timing.ok:
            return self.result(
                Status.CRITICAL,
                f"{timing.error} (reached: {', '.join(phases)})",
                details=[f"failed at: {timing.failed_phase}", *details],
                hint=self.hint("platform.unreachable"),
                next_command=self.recheck(),
                metrics=metrics,
                subject=subject,
            )
        status = Status.OK
        hint = None
        summary = " · ".join(phases)
        if timing.http_status is not None:
            summary += f" (HTTP {timing.http_status})"
        if timing.ttfb_s is not None and timing.ttfb_s > api_latency:
            status = Status.WARNING
            hint = self.hint("platform.slow")
            summary += f"; slower than the {format_span(api_latency)} API target"
        if timing.peer_cert_not_after is not None:
            left = (timing.peer_cert_not_after - ctx.clock()).total_seconds()
            details.append(f"certificate valid until {timing.peer_cert_not_after:%Y-%m-%d}")
            cert_status = lower_is_worse(
                left,
                thresholds.cert_expiry_warning.total_seconds(),
                thresholds.cert_expiry_critical.total_seconds(),
            )
            if cert_status is not Status.OK:
                status = worst_of([status, cert_status])
                hint = self.hint("platform.cert_expiry")
                summary += f"; certificate expires in {format_span(max(left, 0))}"
        return self.result(
            status,
            summary,
            details=details,
            hint=hint,
            next_command=self.recheck() if status is not Status.OK else None,
            metrics=metrics,
            subject=subject,
        )


def _skew_text(skew_s: float, platform_title: str) -> str:
    direction = "ahead of" if skew_s > 0 else "behind"
    return f"this host's clock is {format_span(abs(skew_s))} {direction} {platform_title}'s"


class PlatformApiCheck(_PlatformCheck):
    """One authenticated call per account: does the API answer, how fast, in what shape."""

    kind = "api"
    what = "API call per shop (latency, clock skew, rate limit, response shape)"

    async def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Ping every account concurrently."""
        return await self.for_each_account(ctx, lambda a: self._ping(ctx, a))

    async def _ping(self, ctx: CheckContext, account: Account) -> CheckResult:
        session = ctx.session()
        token = await session.stored_token(account)
        if token is None:
            return self.result(
                Status.SKIPPED,
                f"no stored token to call with (see platforms.{self.platform}.token)",
                subject=account.label,
            )
        malformed = _malformed_token_result(self, token, account)
        if malformed is not None:
            return malformed
        client = session.client(account, access_token=token.access_token)
        try:
            ping = await client.ping()
        except TaxonomyError as exc:
            return self._explain_by_clock(self.error_result(exc, account), client.last_clock_skew_s)
        return self._judge(ctx, account, ping)

    def _explain_by_clock(self, result: CheckResult, skew_s: float | None) -> CheckResult:
        """A refused call from a host whose clock is outside the platform's tolerance: the
        clock is the likely cause, whatever code the platform chose (Shopee answers
        ``error_param``, TikTok its catch-all 36009004)."""
        if skew_s is None or self.spec.skew_acceptable(skew_s):
            return result
        return dataclasses.replace(
            result,
            summary=f"{result.summary}; {_skew_text(skew_s, self.platform_title)}, outside "
            "its tolerance: the likely cause",
            hint=self.hint("platform.clock_skew"),
        )

    def _judge(self, ctx: CheckContext, account: Account, ping: PingResult) -> CheckResult:
        thresholds = ctx.config.thresholds
        api_latency = thresholds.api_latency.total_seconds()
        findings: list[Finding] = []
        lead = f"answered in {format_ms(ping.latency_s)} (HTTP {ping.http_status})"
        metrics = [Metric(name="latency", value=ping.latency_s, unit="s", warn=api_latency)]
        details: list[str] = []
        if ping.latency_s > api_latency:
            findings.append(
                Finding(
                    Status.WARNING,
                    f"slower than the {format_span(api_latency)} API target",
                    "platform.slow",
                )
            )
        if ping.clock_skew_s is not None:
            skew = ping.clock_skew_s
            metrics.append(Metric(name="clock_skew", value=skew, unit="s"))
            skew_text = _skew_text(skew, self.platform_title)
            if not self.spec.skew_acceptable(skew):
                findings.append(
                    Finding(
                        Status.CRITICAL,
                        f"{skew_text}: outside its tolerance, signed requests will be rejected",
                        "platform.clock_skew",
                    )
                )
            elif abs(skew) > thresholds.clock_skew_warning.total_seconds():
                findings.append(Finding(Status.WARNING, skew_text, "platform.clock_skew"))
            else:
                details.append(f"clock skew: {skew:+.0f} s")
        if ping.rate_limit is not None:
            used = ping.rate_limit.percent_used
            metrics.append(
                Metric(
                    name="rate_limit_used",
                    value=used,
                    unit="%",
                    warn=thresholds.rate_limit_usage_warning,
                    crit=thresholds.rate_limit_usage_critical,
                )
            )
            usage_text = f"{used:.0f}% of the rate limit used ({ping.rate_limit.source})"
            usage = higher_is_worse(
                used, thresholds.rate_limit_usage_warning, thresholds.rate_limit_usage_critical
            )
            if usage is Status.OK:
                details.append(usage_text)
            else:
                findings.append(Finding(usage, usage_text, "platform.rate_usage"))
        for problem in ping.shape_problems:
            findings.append(
                Finding(
                    Status.WARNING, f"response shape changed: {problem}", "platform.schema_drift"
                )
            )
        details += _queueing(ctx.session(), self.platform, ping.queued_s, api_latency)
        return self.combined(account, findings, lead=[lead], details=details, metrics=metrics)


class PlatformTokenCheck(_PlatformCheck):
    """Stored tokens: present, how long they last; Facebook's introspection."""

    kind = "token"
    what = "API tokens and credentials (stored, expiry)"

    async def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Judge every account's stored token concurrently."""
        return await self.for_each_account(ctx, lambda a: self._judge(ctx, a))

    def _expiry(
        self, ctx: CheckContext, when: datetime | None, what: str
    ) -> tuple[Status, str, float | None]:
        """How an expiry compares with the thresholds: status, text, seconds left."""
        if when is None:
            return Status.OK, f"{what} never expires", None
        thresholds = ctx.config.thresholds
        left = (when - ctx.clock()).total_seconds()
        local = _local(ctx, when)
        if left <= 0:
            return Status.CRITICAL, f"{what} expired {format_span(-left)} ago ({local})", left
        status = lower_is_worse(
            left,
            thresholds.token_expiry_warning.total_seconds(),
            thresholds.token_expiry_critical.total_seconds(),
        )
        return status, f"{what} expires in {format_span(left)} ({local})", left

    async def _judge(self, ctx: CheckContext, account: Account) -> CheckResult:
        session = ctx.session()
        store = session.token_store
        token = await session.stored_token(account)
        if token is None:
            return self.result(
                Status.CRITICAL,
                f"no token stored for this {self.spec.account_noun} ({store.describe()})",
                hint=self.hint("token.missing"),
                subject=account.label,
            )
        malformed = _malformed_token_result(self, token, account)
        if malformed is not None:
            return malformed
        metrics: list[Metric] = []
        findings: list[Finding] = []
        details = [f"store: {store.describe()}"]
        if token.updated_at is not None:
            ago = format_span(max((ctx.clock() - token.updated_at).total_seconds(), 0))
            by = f" by {token.updated_by}" if token.updated_by else ""
            version = f", version {token.version}" if token.version else ""
            details.append(f"last written {ago} ago{by}{version}")
        findings += _interrupted_refresh(ctx, account)
        exposed = _store_permissions_problem(store)
        if exposed is not None:
            findings.append(Finding(Status.WARNING, exposed, "token.file_permissions"))
        if token.refresh_token:
            # Access tokens here last hours to days and are refreshed on schedule; what an
            # operator must act on ahead of time is the refresh token (re-authorization).
            status, text, left = self._expiry(ctx, token.refresh_expires_at, "refresh token")
            findings.append(Finding(status, text, "token.reauthorize"))
            if left is not None:
                metrics.append(Metric(name="refresh_token_expires_in", value=left, unit="s"))
            access_left = _seconds_left(ctx, token.access_expires_at)
            if access_left is not None:
                metrics.append(Metric(name="access_token_expires_in", value=access_left, unit="s"))
                if access_left <= 0:
                    findings.append(
                        Finding(
                            Status.WARNING,
                            f"access token expired {format_span(-access_left)} ago; the refresh "
                            "token can renew it — is the scheduled refresh running?",
                            "token.refresh_overdue",
                        )
                    )
                else:
                    findings += self._access_margin(ctx, token, access_left, details)
        else:
            status, text, left = self._expiry(ctx, token.access_expires_at, "access token")
            if left is not None:
                metrics.append(Metric(name="access_token_expires_in", value=left, unit="s"))
            findings.append(Finding(status, text, "token.expiring"))
            if self.spec.capabilities.refresh_tokens:
                findings.append(
                    Finding(
                        Status.WARNING,
                        "no refresh token stored: it cannot be renewed",
                        "token.reauthorize",
                    )
                )
        if self.spec.capabilities.introspection:
            client = session.client(account, access_token=token.access_token)
            info = await client.introspect()
            if info is not None:
                findings += self._introspection(ctx, info, details)
        return self.combined(account, findings, details=details, metrics=metrics)

    def _access_margin(
        self, ctx: CheckContext, token: StoredToken, left: float, details: list[str]
    ) -> list[Finding]:
        """The access token against its own lifetime: inside the refresh margin is normal
        (``token refresh --due`` renews it); past half of it, the scheduled refresh has not
        run when it should have."""
        thresholds = ctx.config.thresholds
        lifetime = None
        if token.updated_at is not None and token.access_expires_at is not None:
            lifetime = (token.access_expires_at - token.updated_at).total_seconds()
        text = f"access token expires in {format_span(left)}"
        if lifetime is not None and lifetime > 0:
            text += f" (of its {format_span(lifetime)} lifetime)"
        margin = thresholds.token_refresh_due_at_least.total_seconds()
        if lifetime is not None and lifetime > 0:
            margin = max(margin, lifetime * thresholds.token_refresh_due_percent / 100)
        if left <= margin / 2:
            return [
                Finding(
                    Status.WARNING,
                    f"{text}: due for refresh since it had {format_span(margin)} left; is the "
                    "scheduled `nfdoctor token refresh all --due` running?",
                    "token.refresh_overdue",
                )
            ]
        if left <= margin:
            text += f"; due for refresh (less than {format_span(margin)} left)"
        details.append(text)
        return []

    def _introspection(
        self, ctx: CheckContext, info: TokenInfo, details: list[str]
    ) -> list[Finding]:
        findings = [
            Finding(
                Status.WARNING, f"debug_token response shape changed: {p}", "platform.schema_drift"
            )
            for p in info.shape_problems
        ]
        if info.is_valid is False:
            findings.append(
                Finding(
                    Status.CRITICAL,
                    "debug_token says the token is not valid",
                    "platform.token_invalid",
                )
            )
        elif info.is_valid:
            details.append("debug_token: valid")
        if info.scopes:
            details.append(f"scopes: {', '.join(info.scopes)}")
        for when, what in (
            (info.expires_at, "token (debug_token)"),
            (info.data_access_expires_at, "data access"),
        ):
            if when is None:
                continue
            status, text, _ = self._expiry(ctx, when, what)
            if status is Status.OK:
                details.append(text)
            else:
                findings.append(Finding(status, text, "token.expiring"))
        return findings


def _interrupted_refresh(ctx: CheckContext, account: Account) -> list[Finding]:
    """What a refresh that stopped half-way left in the journal (nfdoctor.tokens.journal)."""
    journal = RefreshJournal(ctx.state_dir / "token-journal", account.platform, account.account_id)
    try:
        entry = journal.read()
    except StateError as exc:
        return [Finding(Status.CRITICAL, f"refresh journal unreadable: {exc.message}")]
    if entry is None:
        return []
    if not gone(entry.owner):
        return [
            Finding(Status.OK, f"a refresh by {entry.owner} is running (since {entry.started_at})")
        ]
    if entry.state == "answered":
        return [
            Finding(
                Status.WARNING,
                f"a refresh by {entry.owner} at {entry.started_at} received a new pair and "
                "stopped before saving it: the next `nfdoctor token refresh` saves it",
                "token.interrupted",
            )
        ]
    return [
        Finding(
            Status.CRITICAL,
            f"refresh outcome unknown: a refresh by {entry.owner} at {entry.started_at} got no "
            "answer; the platform may have spent the stored refresh token",
            "token.outcome_unknown",
        )
    ]


def _malformed_token_result(
    check: _PlatformCheck, token: StoredToken, account: Account
) -> CheckResult | None:
    """CRITICAL when a stored token cannot be a token at all; None when it looks like one."""

    for what, value in (
        ("access token", token.access_token),
        ("refresh token", token.refresh_token),
    ):
        problem = token_format_problem(value) if value else None
        if problem is not None:
            return check.result(
                Status.CRITICAL,
                f"the stored {what} is malformed: {problem}; not sent to {check.platform_title}",
                hint=check.hint("token.malformed"),
                subject=account.label,
            )
    return None


def _store_permissions_problem(store: TokenStore) -> str | None:
    """What makes a token file readable or writable by others (the file store only)."""
    problem = getattr(store, "permissions_problem", None)
    return problem() if callable(problem) else None


def _queueing(
    session: PlatformSession, platform: str, queued_s: float, target_s: float
) -> list[str]:
    """What waiting for nfdoctor's own connection slots cost this call, when it mattered.

    Never a finding against the platform: the time is nfdoctor's, and the remedy is ours.
    """
    if queued_s < 0.05:
        return []
    cap = session.max_connections(platform)
    text = (
        f"queued {format_ms(queued_s)} for one of nfdoctor's {cap} connections to this platform "
        "(not the platform's time)"
    )
    if queued_s > target_s:
        text += f"; raise platforms.{platform}.max_connections (at most 50) or shard the shops"
    return [text]


def _seconds_left(ctx: CheckContext, when: datetime | None) -> float | None:
    return None if when is None else (when - ctx.clock()).total_seconds()


def _local(ctx: CheckContext, when: datetime) -> str:
    """``2026-11-26 16:00 +07``: the configured zone, as operators read times."""
    zone = ZoneInfo(ctx.config.timezone)
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M %z")


def platform_checks(platforms: Sequence[str] | None = None) -> list[Check]:
    """Connectivity, API and token checks for each of ``platforms`` (all of them to list), in
    report order."""
    if platforms is not None:
        for name in platforms:
            platform_spec(name)  # an unknown name is a UsageError, not silently nothing
    specs = [s for s in SPECS if platforms is None or s.name in platforms]
    checks: list[Check] = []
    for platform in specs:
        checks += [
            PlatformConnectivityCheck(platform),
            PlatformApiCheck(platform),
            PlatformTokenCheck(platform),
        ]
    return checks
