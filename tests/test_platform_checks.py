"""The platform checks (``platforms.<p>.connectivity|api|token``) on controlled inputs.

Token judgements run on a clock the test sets and a token file it writes; API judgements run
against the simulator in-process (``httpx.ASGITransport`` as the platform session's transport),
whose clock is the same fixed instant unless a test skews one of the two. The connectivity
check opens real sockets, so it (and the CLI) runs against a ``SimulatorServer`` on loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nfdoctor.checks.base import CheckContext
from nfdoctor.checks.platforms import (
    PlatformApiCheck,
    PlatformConnectivityCheck,
    PlatformTokenCheck,
    platform_checks,
)
from nfdoctor.checks.runner import run_checks
from nfdoctor.hints import platform_hint
from nfdoctor.platforms.registry import select_accounts, spec
from nfdoctor.results import CheckResult, Hint, Status
from nfdoctor.services.checkrun import call_timeout_s
from nfdoctor.session import PlatformSession
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.server import SimulatorServer, write_config
from nfdoctor.simulator.state import SimulatorState
from tests.checking import context_from_file
from tests.conftest import CliResult
from tests.served import serve

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)  # 09:00 in Ho Chi Minh City
BASE = "http://simulator.test"  # never resolved: the ASGI transport answers in-process
PLATFORMS = ("shopee", "lazada", "tiktok", "facebook", "zalo")


# --- helpers --------------------------------------------------------------------------------


@dataclass
class Harness:
    """A config on disk and the clock and HTTP transport its checks run with."""

    tmp: Path
    config: Path
    #: the checks' now; None: the real clock (a loopback server on real time)
    clock: datetime | None
    transport: httpx.AsyncBaseTransport | None
    #: every platform session the runs opened, in order
    sessions: list[PlatformSession] = dataclasses.field(default_factory=list)

    def context(self) -> CheckContext:
        """The run's check context, the config loaded and its secrets resolved for real."""
        fixed = self.clock
        return context_from_file(
            self.config,
            state_dir=self.tmp / "state",
            clock=(lambda: fixed) if fixed is not None else (lambda: datetime.now(timezone.utc)),
        )


def make_context(
    tmp_path: Path,
    config: Path,
    *,
    clock: datetime = NOW,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Harness:
    """The checks' setting on ``config``: its own clock and state dir, the given transport."""
    return Harness(tmp=tmp_path, config=config, clock=clock, transport=transport)


def run_platform_checks(
    harness: Harness,
    *,
    kinds: Sequence[str] = ("api", "token"),
    platforms: Sequence[str] = (),
    shop: str | None = None,
    call_timeout_s: float = 5.0,
) -> list[CheckResult]:
    """Run the ``kinds`` of platform check for the accounts in scope, inside one platform
    session as a service would; every result."""
    ctx = harness.context()
    accounts = select_accounts(ctx.config.platforms, only=list(platforms), account_id=shop)
    checks = [c for c in platform_checks(list(accounts)) if c.id.rsplit(".", 1)[1] in kinds]
    session = PlatformSession(
        config=ctx.config,
        secrets=ctx.secrets,
        token_store=ctx.token_store,
        redactor=ctx.redactor,
        clock=ctx.clock,
        accounts=accounts,
        call_timeout_s=call_timeout_s,
        transport=harness.transport,
    )
    harness.sessions.append(session)

    async def run() -> list[CheckResult]:
        async with session:
            scoped = dataclasses.replace(ctx, platforms=session)
            report = await run_checks(
                scoped,
                checks,
                command="test",
                timeout=timedelta(seconds=15),
                monotonic=time.monotonic,
            )
            return list(report.results)

    return asyncio.run(run())


def only(results: list[CheckResult], check_id: str) -> CheckResult:
    """The one result of ``check_id``."""
    found = [r for r in results if r.id == check_id]
    assert len(found) == 1, [(r.id, r.status, r.summary) for r in results]
    return found[0]


def hint(key: str, platform: str) -> Hint:
    return platform_hint(key, spec(platform).title)


def metric(result: CheckResult, name: str) -> float:
    values = [m.value for m in result.metrics if m.name == name]
    assert len(values) == 1, result.metrics
    return values[0]


@dataclass
class Sim:
    """The simulator, its state, and the config and token file written for it."""

    app: Any
    state: SimulatorState
    config: Path
    tokens: Path

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self.app)

    def account_id(self, platform: str, index: int = 0) -> str:
        return self.state.accounts[platform][index].account_id

    def edit_config(self, edit: Callable[[dict[str, Any]], None]) -> None:
        data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        edit(data)
        self.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def make_sim(
    tmp_path: Path,
    *,
    accounts: int = 1,
    faults: str | None = None,
    clock: datetime = NOW,
    base_url: str = BASE,
) -> Sim:
    """A simulator on ``clock`` and a config (with tokens.json) pointing at ``base_url``."""
    plan = None
    if faults is not None:
        plan = tmp_path / "faults.yaml"
        plan.write_text(faults, encoding="utf-8")
    app, state = build_simulator(
        seed=7, faults=plan, clock=lambda: clock, accounts_per_platform=accounts
    )
    config = tmp_path / "sim.yaml"
    write_config(config, base_url, state)
    return Sim(app, state, config, tmp_path / "sim-secrets" / "tokens.json")


class EditResponses(httpx.AsyncBaseTransport):
    """Passes requests to ``inner`` and lets ``edit`` change each response's headers."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        edit: Callable[[httpx.Request, httpx.Response], None],
    ) -> None:
        self.inner = inner
        self.edit = edit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.edit(request, response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class NoNetwork(httpx.AsyncBaseTransport):
    """Records any request and answers 599: token checks that need no call make none."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(599, text="no network in this test")


# --- token judgements on a controlled clock and token file ----------------------------------

TOKEN_CONFIG = """\
timezone: Asia/Ho_Chi_Minh
platforms:
  shopee:
    base_url: http://simulator.test/shopee
    partner_id: 2001234
    partner_key: file:keys/shopee.key
    shops:
      - shop_id: 220001
        name: Thời Trang Hà My
  lazada:
    base_url: http://simulator.test/lazada/rest
    app_key: "100001"
    app_secret: file:keys/lazada.key
    shops:
      - seller_id: VN1A2B3C
  zalo:
    base_url: http://simulator.test/zalo
    app_id: "1234567890123456789"
    secret_key: file:keys/zalo.key
    oas:
      - oa_id: "4318000000000000001"
tokens:
  store: file
  path: state-tokens/tokens.json
"""


def _iso(delta: timedelta | None) -> str | None:
    return None if delta is None else (NOW + delta).isoformat()


def write_token_config(tmp_path: Path, extra: str = "") -> Path:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    for name in ("shopee", "lazada", "zalo"):
        (keys / f"{name}.key").write_text(f"{name}-signing-secret-1234\n")
    config = tmp_path / "nfdoctor.yaml"
    config.write_text(TOKEN_CONFIG + extra, encoding="utf-8")
    return config


def write_tokens(
    tmp_path: Path,
    platform: str,
    account_id: str,
    *,
    access_in: timedelta | None,
    refresh_in: timedelta | None,
    refresh: bool = True,
) -> Path:
    """One account's record in a ``nfdoctor.tokens/v1`` file, expiries relative to NOW."""
    path = tmp_path / "state-tokens" / "tokens.json"
    path.parent.mkdir(exist_ok=True)
    record = {
        "access_token": f"access-{platform}-{account_id}-value",
        "access_expires_at": _iso(access_in),
        "refresh_token": f"refresh-{platform}-{account_id}-value" if refresh else None,
        "refresh_expires_at": _iso(refresh_in) if refresh else None,
        "updated_at": _iso(timedelta(hours=-1)),
    }
    document = {"format": "nfdoctor.tokens/v1", "tokens": {platform: {account_id: record}}}
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return path


def token_result(
    tmp_path: Path,
    *,
    access_in: timedelta | None = timedelta(hours=3),
    refresh_in: timedelta | None = timedelta(days=20),
    refresh: bool = True,
    extra: str = "",
) -> CheckResult:
    """The Shopee token check's one result for a token with those expiries."""
    config = write_token_config(tmp_path, extra)
    write_tokens(
        tmp_path, "shopee", "220001", access_in=access_in, refresh_in=refresh_in, refresh=refresh
    )
    network = NoNetwork()
    ctx = make_context(tmp_path, config, transport=network)
    results = run_platform_checks(ctx, kinds=("token",), platforms=["shopee"])
    assert network.requests == []  # only Facebook's token check calls out
    return only(results, "platforms.shopee.token")


@pytest.mark.parametrize(
    ("refresh_in", "status", "summary"),
    [
        (timedelta(days=10), Status.OK, "refresh token expires in 10 d (2026-12-06 09:00 +0700)"),
        (
            timedelta(days=7, seconds=1),
            Status.OK,
            "refresh token expires in 7.0 d (2026-12-03 09:00 +0700)",
        ),
        (
            timedelta(days=7),
            Status.WARNING,
            "refresh token expires in 7 d (2026-12-03 09:00 +0700)",
        ),
        (
            timedelta(days=5),
            Status.WARNING,
            "refresh token expires in 5 d (2026-12-01 09:00 +0700)",
        ),
        (
            timedelta(days=1),
            Status.CRITICAL,
            "refresh token expires in 24 h (2026-11-27 09:00 +0700)",
        ),
        (
            timedelta(hours=12),
            Status.CRITICAL,
            "refresh token expires in 12 h (2026-11-26 21:00 +0700)",
        ),
        (
            timedelta(hours=-2),
            Status.CRITICAL,
            "refresh token expired 2 h ago (2026-11-26 07:00 +0700)",
        ),
    ],
    ids=["10d", "7d+1s", "7d", "5d", "24h", "12h", "expired"],
)
def test_refresh_token_expiry(
    tmp_path: Path, refresh_in: timedelta, status: Status, summary: str
) -> None:
    result = token_result(tmp_path, refresh_in=refresh_in)
    assert (result.status, result.summary) == (status, summary)
    assert result.subject == "shopee 220001 (Thời Trang Hà My)"
    assert metric(result, "refresh_token_expires_in") == refresh_in.total_seconds()
    assert metric(result, "access_token_expires_in") == 3 * 3600
    assert any(d.startswith("access token expires in 3 h") for d in result.details)
    store = tmp_path / "state-tokens" / "tokens.json"
    assert f"store: file store {store}" in result.details
    if status is Status.OK:
        assert result.hint is None and result.next_command is None
    else:
        # Only the seller can renew a refresh token: the hint says re-authorize.
        assert result.hint == hint("token.reauthorize", "shopee")
        assert result.next_command == "nfdoctor token authorize shopee --shop 220001"


def test_access_token_expired_with_a_valid_refresh_token_is_a_warning(tmp_path: Path) -> None:
    result = token_result(tmp_path, access_in=timedelta(hours=-1), refresh_in=timedelta(days=20))
    assert result.status is Status.WARNING
    assert result.summary == (
        "access token expired 60 min ago; the refresh token can renew it — is the scheduled "
        "refresh running?"
    )
    # The hint is about the stalled refresh job, not about re-authorizing.
    assert result.hint == hint("token.refresh_overdue", "shopee")
    # The refresh token's OK finding is kept as a detail.
    assert result.details[0] == "refresh token expires in 20 d (2026-12-16 09:00 +0700)"
    assert metric(result, "access_token_expires_in") == -3600


def test_expired_access_and_refresh_about_to_lapse_reports_the_refresh_token(
    tmp_path: Path,
) -> None:
    result = token_result(tmp_path, access_in=timedelta(hours=-1), refresh_in=timedelta(hours=5))
    assert result.status is Status.CRITICAL
    assert result.summary == "refresh token expires in 5 h (2026-11-26 14:00 +0700)"
    assert result.hint == hint("token.reauthorize", "shopee")
    assert result.details[0].startswith("access token expired 60 min ago")


def test_no_refresh_token_on_a_refresh_platform_is_a_warning(tmp_path: Path) -> None:
    result = token_result(tmp_path, access_in=timedelta(days=10), refresh=False)
    assert result.status is Status.WARNING
    assert result.summary == "no refresh token stored: it cannot be renewed"
    assert result.hint == hint("token.reauthorize", "shopee")
    assert result.details[0] == "access token expires in 10 d (2026-12-06 09:00 +0700)"
    assert [m.name for m in result.metrics] == ["access_token_expires_in"]


def test_no_refresh_token_and_access_expired_is_critical(tmp_path: Path) -> None:
    result = token_result(tmp_path, access_in=timedelta(minutes=-30), refresh=False)
    assert result.status is Status.CRITICAL
    assert result.summary == "access token expired 30 min ago (2026-11-26 08:30 +0700)"
    assert result.hint == hint("token.expiring", "shopee")
    assert "no refresh token stored: it cannot be renewed" in result.details


def test_token_thresholds_come_from_the_config(tmp_path: Path) -> None:
    default = token_result(tmp_path, refresh_in=timedelta(days=10))
    assert default.status is Status.OK
    stricter = token_result(
        tmp_path,
        refresh_in=timedelta(days=10),
        extra="thresholds:\n  token_expiry_warning: 14d\n  token_expiry_critical: 12d\n",
    )
    assert stricter.status is Status.CRITICAL


def test_expiry_is_shown_in_the_configured_time_zone(tmp_path: Path) -> None:
    config = write_token_config(tmp_path)
    config.write_text(config.read_text().replace("Asia/Ho_Chi_Minh", "UTC"))
    write_tokens(
        tmp_path,
        "shopee",
        "220001",
        access_in=timedelta(hours=3),
        refresh_in=timedelta(days=5),
    )
    ctx = make_context(tmp_path, config, transport=NoNetwork())
    (result,) = run_platform_checks(ctx, kinds=("token",), platforms=["shopee"])
    assert result.summary == "refresh token expires in 5 d (2026-12-01 02:00 +0000)"


@pytest.mark.parametrize(
    ("platform", "account_id", "noun"),
    [
        ("shopee", "220001", "shop"),
        ("lazada", "VN1A2B3C", "seller"),
        ("zalo", "4318000000000000001", "OA"),
    ],
)
def test_missing_token_is_critical_and_names_the_store(
    tmp_path: Path, platform: str, account_id: str, noun: str
) -> None:
    config = write_token_config(tmp_path)
    # The file holds another platform's token only.
    other = "lazada" if platform != "lazada" else "shopee"
    write_tokens(tmp_path, other, "x1", access_in=timedelta(days=1), refresh_in=None)
    ctx = make_context(tmp_path, config, transport=NoNetwork())
    results = run_platform_checks(ctx, platforms=[platform])
    token = only(results, f"platforms.{platform}.token")
    store = tmp_path / "state-tokens" / "tokens.json"
    assert token.status is Status.CRITICAL
    assert token.summary == f"no token stored for this {noun} (file store {store})"
    assert token.hint == hint("token.missing", platform)
    # The API check has nothing to call with: it says so and leaves the verdict to the token.
    api = only(results, f"platforms.{platform}.api")
    assert api.status is Status.SKIPPED
    assert api.summary == f"no stored token to call with (see platforms.{platform}.token)"


def test_no_token_file_at_all_is_a_missing_token(tmp_path: Path) -> None:
    config = write_token_config(tmp_path)
    ctx = make_context(tmp_path, config, transport=NoNetwork())
    (result,) = run_platform_checks(ctx, kinds=("token",), platforms=["zalo"])
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("no token stored for this OA (file store ")
    assert not (tmp_path / "state-tokens" / "tokens.json").exists()


def test_a_platform_without_accounts_is_skipped(tmp_path: Path) -> None:
    config = write_token_config(tmp_path)
    text = config.read_text().replace('    oas:\n      - oa_id: "4318000000000000001"\n', "")
    config.write_text(text)
    ctx = make_context(tmp_path, config, transport=NoNetwork())
    results = run_platform_checks(ctx, platforms=["zalo"])
    assert [(r.id, r.status, r.summary) for r in results] == [
        ("platforms.zalo.api", Status.SKIPPED, "no OA configured (platforms.zalo.oas)"),
        ("platforms.zalo.token", Status.SKIPPED, "no OA configured (platforms.zalo.oas)"),
    ]


# --- Facebook: stored token plus debug_token, through the simulator ----------------------------


def test_facebook_never_expiring_token_is_ok(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("token",), platforms=["facebook"])
    assert result.status is Status.OK
    assert result.summary == "access token never expires"
    assert "debug_token: valid" in result.details
    assert "scopes: pages_messaging, pages_manage_metadata, pages_read_engagement" in (
        result.details
    )
    assert "data access expires in 90 d (2027-02-24 09:00 +0700)" in result.details
    # Facebook has no refresh token, and that is no finding.
    assert not any("refresh" in d for d in result.details)


def test_facebook_debug_token_not_valid_is_critical(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    sim.state.revoke_all("facebook")
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("token",), platforms=["facebook"])
    assert result.status is Status.CRITICAL
    assert result.summary == "debug_token says the token is not valid"
    assert result.hint == hint("platform.token_invalid", "facebook")
    page = sim.account_id("facebook")
    assert result.next_command == f"nfdoctor check facebook --shop {page}"
    # The store's view (never expires) is kept as a detail under the worse finding.
    assert "access token never expires" in result.details


def test_facebook_debug_token_expiry_is_judged_even_if_the_store_says_never(
    tmp_path: Path,
) -> None:
    sim = make_sim(tmp_path)  # tokens.json: no expiry
    sim.state.age_token("facebook", sim.account_id("facebook"), expires_in=timedelta(days=3))
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("token",), platforms=["facebook"])
    assert result.status is Status.WARNING
    assert result.summary == "token (debug_token) expires in 3 d (2026-11-29 09:00 +0700)"
    assert result.hint == hint("token.expiring", "facebook")


def test_facebook_zero_expiry_knob(tmp_path: Path) -> None:
    """``zero_expiry_means_never: false`` reads debug_token's ``expires_at: 0`` as 1970."""
    sim = make_sim(tmp_path)

    def knob(data: dict[str, Any]) -> None:
        data["platforms"]["facebook"]["zero_expiry_means_never"] = False

    sim.edit_config(knob)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("token",), platforms=["facebook"])
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("token (debug_token) expired ")
    assert "(1970-01-01 0" in result.summary  # Saigon was UTC+8 in 1970


# --- the API check against the simulator -----------------------------------------------------


def test_api_check_healthy_on_every_platform(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    results = run_platform_checks(ctx, kinds=("api",))
    assert [r.id for r in results] == [f"platforms.{p}.api" for p in PLATFORMS]
    for result, platform in zip(results, PLATFORMS, strict=True):
        assert result.status is Status.OK, result
        assert result.summary.startswith("answered in ") and result.summary.endswith(
            " ms (HTTP 200)"
        )
        latency = [m for m in result.metrics if m.name == "latency"]
        assert len(latency) == 1 and latency[0].unit == "s"
        assert 0 < latency[0].value < 10 and latency[0].warn == 1.0
        assert metric(result, "clock_skew") == 0
        assert "clock skew: +0 s" in result.details
        assert result.hint is None and result.next_command is None
        account = sim.state.accounts[platform][0]
        assert result.subject == f"{platform} {account.account_id} ({account.name})"


@pytest.mark.parametrize(
    ("earlier_calls", "status", "percent"),
    [
        (14, Status.OK, 75),
        (15, Status.WARNING, 80),
        (17, Status.WARNING, 90),
        (18, Status.CRITICAL, 95),
    ],
)
def test_zalo_rate_limit_headers(
    tmp_path: Path, earlier_calls: int, status: Status, percent: int
) -> None:
    sim = make_sim(tmp_path)
    sim.state.zalo_limit_per_minute = 20
    bucket = f"zalo:{sim.account_id('zalo')}"
    for _ in range(earlier_calls):
        sim.state.record_call(bucket, NOW, timedelta(minutes=1))
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["zalo"])
    text = f"{percent}% of the rate limit used (X-RateLimit-Remain)"
    assert result.status is status
    assert metric(result, "rate_limit_used") == percent
    used = next(m for m in result.metrics if m.name == "rate_limit_used")
    assert (used.warn, used.crit, used.unit) == (80.0, 95.0, "%")
    if status is Status.OK:
        assert text in result.details
    else:
        assert result.summary.endswith("; " + text)
        assert result.hint == hint("platform.rate_usage", "zalo")


@pytest.mark.parametrize(
    ("earlier_calls", "status"), [(78, Status.OK), (79, Status.WARNING), (94, Status.CRITICAL)]
)
def test_facebook_business_use_case_usage(
    tmp_path: Path, earlier_calls: int, status: Status
) -> None:
    """The Page-token ping (/me) carries X-Business-Use-Case-Usage, once usage is visible."""
    sim = make_sim(tmp_path)
    sim.state.facebook_hourly_allowance = 100
    for _ in range(earlier_calls):
        sim.state.record_call("facebook", NOW, timedelta(hours=1))
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["facebook"])
    percent = earlier_calls + 1
    page = sim.account_id("facebook")
    text = f"{percent}% of the rate limit used (X-Business-Use-Case-Usage[{page}/pages])"
    assert result.status is status
    assert metric(result, "rate_limit_used") == percent
    assert text in (result.summary if status is not Status.OK else " ".join(result.details))


@pytest.mark.parametrize(
    ("call_count", "status"), [(79, Status.OK), (80, Status.WARNING), (96, Status.CRITICAL)]
)
def test_facebook_x_app_usage(tmp_path: Path, call_count: int, status: Status) -> None:
    """X-App-Usage, as Graph sends it with app-level usage, judged on its highest figure."""
    sim = make_sim(tmp_path)
    usage = json.dumps({"call_count": call_count, "total_time": 10, "total_cputime": 5})

    def add_usage(request: httpx.Request, response: httpx.Response) -> None:
        response.headers["X-App-Usage"] = usage

    transport = EditResponses(sim.transport(), add_usage)
    ctx = make_context(tmp_path, sim.config, transport=transport)
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["facebook"])
    assert result.status is status
    assert metric(result, "rate_limit_used") == call_count
    text = f"{call_count}% of the rate limit used (X-App-Usage)"
    assert text in (result.summary if status is not Status.OK else " ".join(result.details))


def test_rate_limit_thresholds_come_from_the_config(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    sim.state.zalo_limit_per_minute = 20
    for _ in range(9):  # the ping is call 10 of 20: 50 % used
        sim.state.record_call(f"zalo:{sim.account_id('zalo')}", NOW, timedelta(minutes=1))

    def thresholds(data: dict[str, Any]) -> None:
        data["thresholds"] = {"rate_limit_usage_warning": 40, "rate_limit_usage_critical": 60}

    sim.edit_config(thresholds)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["zalo"])
    assert result.status is Status.WARNING
    assert result.summary.endswith("; 50% of the rate limit used (X-RateLimit-Remain)")


def test_latency_threshold_comes_from_the_config(tmp_path: Path) -> None:
    faults = "rules:\n  - platform: shopee\n    fault: latency\n    ms: 30\n"
    sim = make_sim(tmp_path, faults=faults)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (default,) = run_platform_checks(ctx, kinds=("api",), platforms=["shopee"])
    assert default.status is Status.OK  # 30 ms against the 1 s default
    assert metric(default, "latency") >= 0.03

    def thresholds(data: dict[str, Any]) -> None:
        data["thresholds"] = {"api_latency": "10ms"}

    sim.edit_config(thresholds)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (slow,) = run_platform_checks(ctx, kinds=("api",), platforms=["shopee"])
    assert slow.status is Status.WARNING
    assert slow.summary.endswith("; slower than the 10 ms API target")
    assert slow.hint == hint("platform.slow", "shopee")
    assert next(m for m in slow.metrics if m.name == "latency").warn == 0.01


def test_waiting_for_a_connection_is_queueing_not_the_platforms_latency(tmp_path: Path) -> None:
    """Six shops, two connections, every call 300 ms: three waves. The last shops wait
    600 ms for a connection; the platform still answered each in 300 ms, so the 500 ms
    target holds, and the wait is reported as nfdoctor's own."""
    faults = "rules:\n  - platform: shopee\n    fault: latency\n    ms: 300\n"
    sim = make_sim(tmp_path, faults=faults, accounts=6)

    def cap_and_target(data: dict[str, Any]) -> None:
        data["platforms"]["shopee"]["max_connections"] = 2
        data["thresholds"] = {"api_latency": "500ms"}

    sim.edit_config(cap_and_target)
    harness = make_context(tmp_path, sim.config, transport=sim.transport())
    results = run_platform_checks(harness, kinds=("api",), platforms=["shopee"])
    assert [r.status for r in results] == [Status.OK] * 6, [r.summary for r in results]
    assert all(0.3 <= metric(r, "latency") < 0.5 for r in results)
    queued = [d for r in results for d in r.details if d.startswith("queued ")]
    # Two shops went first; the four others waited one or two waves for a connection.
    assert len(queued) == 4, queued
    assert all(
        "of nfdoctor's 2 connections to this platform (not the platform's time)" in d
        for d in queued
    )
    # Two waves of waiting (600 ms) is past the target: the remedy is named.
    assert any("raise platforms.shopee.max_connections" in d for d in queued)


def test_response_shape_drift_is_a_warning(tmp_path: Path) -> None:
    faults = (
        "rules:\n  - platform: shopee\n    fault: schema_drift\n"
        "    field: shop_name\n    rename_to: shopName\n"
    )
    sim = make_sim(tmp_path, faults=faults)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["shopee"])
    assert result.status is Status.WARNING
    assert result.summary.endswith("; response shape changed: missing shop_name")
    assert result.hint == hint("platform.schema_drift", "shopee")


def test_throttled_call_is_a_warning_with_retry_after(tmp_path: Path) -> None:
    faults = "rules:\n  - platform: tiktok\n    fault: http_429\n    retry_after: 2\n"
    sim = make_sim(tmp_path, faults=faults)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["tiktok"])
    assert result.status is Status.WARNING
    assert result.summary.endswith("; retry after 2 s")
    assert "category: rate_limited" in result.details
    assert "HTTP status: 429" in result.details
    assert result.hint == hint("platform.rate_limited", "tiktok")


def test_expired_access_token_is_reported_not_refreshed(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    shop = sim.account_id("shopee")
    sim.state.age_token("shopee", shop, expires_in=timedelta(hours=-1))
    refresh_before = sim.state.current("shopee", shop, "refresh")
    issued_before = len(sim.state.tokens)
    stored_before = sim.tokens.read_bytes()
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["shopee"])
    assert result.status is Status.CRITICAL
    assert result.summary == (
        "shopee error invalid_acceess_token: access token expired (or invalid) (HTTP 403)"
    )
    assert "category: token_expired" in result.details
    assert "platform says: Invalid access_token, please have a check." in result.details
    assert result.hint == hint("platform.token_expired", "shopee")
    assert result.next_command == f"nfdoctor token refresh shopee --shop {shop}"
    # Nothing was changed: no refresh, no new token, the store as it was.
    assert refresh_before is not None and not refresh_before.used
    assert len(sim.state.tokens) == issued_before
    assert sim.tokens.read_bytes() == stored_before


def test_every_shop_is_measured_and_one_failing_shop_is_that_shops_result(
    tmp_path: Path,
) -> None:
    sim = make_sim(tmp_path, accounts=3)
    second = sim.account_id("shopee", 1)
    sim.state.revoke_all("shopee", owner=second)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    results = run_platform_checks(ctx, kinds=("api",), platforms=["shopee"])
    assert [r.subject for r in results] == [
        f"shopee {a.account_id} ({a.name})" for a in sim.state.accounts["shopee"]
    ]
    assert [r.status for r in results] == [Status.OK, Status.CRITICAL, Status.OK]
    assert results[1].summary.startswith("shopee error common.error_auth: ")
    assert results[1].hint == hint("platform.token_invalid", "shopee")


def test_shop_narrows_the_run(tmp_path: Path) -> None:
    sim = make_sim(tmp_path, accounts=3)
    third = sim.account_id("lazada", 2)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport())
    results = run_platform_checks(ctx, shop=third)
    assert [(r.id, r.status) for r in results] == [
        ("platforms.lazada.api", Status.OK),
        ("platforms.lazada.token", Status.OK),
    ]
    assert all(r.subject is not None and third in r.subject for r in results)


# --- clock skew ---------------------------------------------------------------------------

SKEWED = NOW + timedelta(seconds=600)  # this host's clock, ten minutes ahead


def skewed_api_results(tmp_path: Path, clock: datetime = SKEWED) -> dict[str, CheckResult]:
    tmp_path.mkdir(exist_ok=True)
    sim = make_sim(tmp_path)  # the simulator keeps NOW
    ctx = make_context(tmp_path, sim.config, clock=clock, transport=sim.transport())
    results = run_platform_checks(ctx, kinds=("api",))
    return {r.id.split(".")[1]: r for r in results}


def test_clock_ahead_within_tolerance_is_a_warning(tmp_path: Path) -> None:
    """Lazada accepts ±2 h, Facebook and Zalo sign no time: the call succeeds and the Date
    header shows the skew, beyond the 30 s warning threshold."""
    results = skewed_api_results(tmp_path)
    for platform in ("lazada", "facebook", "zalo"):
        result = results[platform]
        title = spec(platform).title
        assert result.status is Status.WARNING, result
        assert result.summary.endswith(f"; this host's clock is 10 min ahead of {title}'s")
        assert metric(result, "clock_skew") == 600
        assert result.hint == hint("platform.clock_skew", platform)


def test_clock_ahead_beyond_tolerance_is_rejected_by_the_platform(tmp_path: Path) -> None:
    """Shopee (±300 s) and TikTok (+30 s) refuse the signed timestamp itself, so there is no
    successful answer to read the skew from: the result is the platform's error."""
    results = skewed_api_results(tmp_path)
    shopee = results["shopee"]
    assert shopee.status is Status.CRITICAL
    assert shopee.summary == (
        "shopee error error_param: request parameters rejected (HTTP 403); this host's clock "
        "is 10 min ahead of Shopee's, outside its tolerance: the likely cause"
    )
    assert "platform says: Timestamp is expired." in shopee.details
    tiktok = results["tiktok"]
    assert tiktok.status is Status.CRITICAL
    assert tiktok.summary.startswith("tiktok error 36009004: ")
    assert any(
        d.startswith("platform says: Invalid timestamp.") and "30 seconds" in d
        for d in tiktok.details
    )


@pytest.mark.parametrize("platform", ["shopee", "tiktok"])
def test_clock_ahead_beyond_tolerance_points_at_the_clock(tmp_path: Path, platform: str) -> None:
    result = skewed_api_results(tmp_path)[platform]
    assert result.status is Status.CRITICAL
    assert result.hint == hint("platform.clock_skew", platform)


def test_tiktok_small_skews(tmp_path: Path) -> None:
    """TikTok's window is [-300 s, +30 s]: 20 s ahead is fine, 200 s behind is a warning."""
    ahead = skewed_api_results(tmp_path / "ahead", NOW + timedelta(seconds=20))["tiktok"]
    assert ahead.status is Status.OK
    assert "clock skew: +20 s" in ahead.details
    behind = skewed_api_results(tmp_path / "behind", NOW - timedelta(seconds=200))["tiktok"]
    assert behind.status is Status.WARNING
    assert behind.summary.endswith("; this host's clock is 3.3 min behind TikTok Shop's")
    assert metric(behind, "clock_skew") == -200


def test_skew_outside_tolerance_on_an_accepted_call_is_critical(tmp_path: Path) -> None:
    """The judgement alone: Shopee answers, but its Date says our clock is 400 s ahead."""
    sim = make_sim(tmp_path)

    def date_400s_behind(request: httpx.Request, response: httpx.Response) -> None:
        response.headers["date"] = format_datetime(NOW - timedelta(seconds=400), usegmt=True)

    transport = EditResponses(sim.transport(), date_400s_behind)
    ctx = make_context(tmp_path, sim.config, transport=transport)
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["shopee"])
    assert result.status is Status.CRITICAL
    assert result.summary.endswith(
        "; this host's clock is 6.7 min ahead of Shopee's: outside its tolerance, signed "
        "requests will be rejected"
    )
    assert result.hint == hint("platform.clock_skew", "shopee")


def test_clock_skew_warning_threshold_comes_from_the_config(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)

    def thresholds(data: dict[str, Any]) -> None:
        data["thresholds"] = {"clock_skew_warning": "15m"}

    sim.edit_config(thresholds)
    ctx = make_context(tmp_path, sim.config, clock=SKEWED, transport=sim.transport())
    (result,) = run_platform_checks(ctx, kinds=("api",), platforms=["lazada"])
    assert result.status is Status.OK
    assert "clock skew: +600 s" in result.details


# --- the run: the platform session owns and closes its HTTP clients ---------------------------


def _http_clients(session: PlatformSession) -> list[httpx.AsyncClient]:
    """The AsyncClient of each platform in the session (while it is open)."""
    return [
        session.client(accounts[0], access_token="t").session.http
        for accounts in session.accounts.values()
    ]


def test_the_session_closes_its_http_clients(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    harness = make_context(tmp_path, sim.config, transport=sim.transport())
    seen: list[httpx.AsyncClient] = []
    original = PlatformSession.__aexit__

    async def record_then_close(self: PlatformSession, *exc: Any) -> None:
        seen.extend(_http_clients(self))
        await original(self, *exc)

    PlatformSession.__aexit__ = record_then_close  # type: ignore[method-assign]
    try:
        results = run_platform_checks(harness, platforms=["shopee", "facebook"])
        assert [r.status for r in results] == [Status.OK] * 4
        assert len(seen) == 2, "one HTTP client per platform"
        assert all(client.is_closed for client in seen)
        # A second run opens a session of its own: fresh clients, not the closed ones.
        first = list(seen)
        again = run_platform_checks(harness, platforms=["shopee", "facebook"])
    finally:
        PlatformSession.__aexit__ = original  # type: ignore[method-assign]
    assert [r.status for r in again] == [Status.OK] * 4
    fresh = seen[len(first) :]
    assert fresh and not any(c is old for c in fresh for old in first)
    assert all(client.is_closed for client in fresh)


def test_clients_are_closed_when_a_check_fails(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    sim.tokens.write_text("{broken", encoding="utf-8")
    harness = make_context(tmp_path, sim.config, transport=sim.transport())
    results = run_platform_checks(harness, platforms=["zalo"])
    assert [r.status for r in results] == [Status.UNKNOWN, Status.UNKNOWN]
    (session,) = harness.sessions
    with pytest.raises(RuntimeError, match="outside `async with`"):
        session.client(session.accounts["zalo"][0], access_token="t")  # closed: no client


def test_a_check_without_a_session_refuses_to_run(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    ctx = make_context(tmp_path, sim.config, transport=sim.transport()).context()
    report = asyncio.run(
        run_checks(
            ctx,
            [PlatformApiCheck(spec("shopee"))],
            command="t",
            timeout=timedelta(1),
            monotonic=time.monotonic,
        )
    )
    (result,) = report.results
    assert result.status is Status.UNKNOWN
    assert "platform checks need a PlatformSession" in result.summary


def test_platform_checks_ids_titles_and_scope() -> None:
    every = platform_checks(None)
    assert [c.id for c in every] == [
        f"platforms.{p}.{k}" for p in PLATFORMS for k in ("connectivity", "api", "token")
    ]
    kinds = [type(c) for c in every[:3]]
    assert kinds == [PlatformConnectivityCheck, PlatformApiCheck, PlatformTokenCheck]
    assert every[1].title == (
        "Shopee: API call per shop (latency, clock skew, rate limit, response shape)"
    )
    assert every[11].title == "Facebook: API tokens and credentials (stored, expiry)"
    scoped = platform_checks(["zalo", "lazada"])
    assert [c.id for c in scoped] == [
        "platforms.lazada.connectivity",
        "platforms.lazada.api",
        "platforms.lazada.token",
        "platforms.zalo.connectivity",
        "platforms.zalo.api",
        "platforms.zalo.token",
    ]


def test_call_timeout_stays_below_the_check_timeout(tmp_path: Path) -> None:
    assert call_timeout_s(timedelta(seconds=5)) == 4.0
    assert call_timeout_s(timedelta(minutes=1)) == 10.0
    sim = make_sim(tmp_path)
    ctx = make_context(tmp_path, sim.config).context()
    assert list(select_accounts(ctx.config.platforms)) == list(PLATFORMS)


# --- on a real loopback server: connectivity, a hung shop, the CLI ---------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimulatorServer, Sim]]:
    """The simulator on 127.0.0.1 (real clock), with two accounts per platform, and its
    config; the server is stopped after the test."""
    app, state = build_simulator(seed=7, accounts_per_platform=2)
    config = tmp_path / "sim.yaml"
    with serve(app, state, config) as server:
        yield server, Sim(app, state, config, tmp_path / "sim-secrets" / "tokens.json")


def _real_context(tmp_path: Path, config: Path) -> Harness:
    """The real clock and the network (a loopback server): no transport swapped in."""
    return Harness(tmp=tmp_path, config=config, clock=None, transport=None)


def test_connectivity_to_a_live_host(tmp_path: Path, served: tuple[SimulatorServer, Sim]) -> None:
    server, sim = served
    ctx = _real_context(tmp_path, sim.config)
    results = run_platform_checks(ctx, kinds=("connectivity",), platforms=["lazada"])
    # Lazada's API and token hosts share one origin here: probed once.
    (result,) = results
    assert result.status is Status.OK, result
    assert result.subject == f"http://127.0.0.1:{server.port}"
    assert "TLS n/a (http)" in result.summary
    assert {m.name for m in result.metrics} >= {"dns", "tcp_connect", "first_byte"}
    assert "tls_handshake" not in {m.name for m in result.metrics}


def test_connectivity_to_a_closed_port_is_critical(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sim = make_sim(tmp_path, base_url=f"http://127.0.0.1:{port}")
    ctx = _real_context(tmp_path, sim.config)
    (result,) = run_platform_checks(ctx, kinds=("connectivity",), platforms=["shopee"])
    assert result.status is Status.CRITICAL
    assert result.subject == f"http://127.0.0.1:{port}"
    assert result.details[0] == "failed at: connect"
    assert result.summary.startswith(f"TCP connect to 127.0.0.1:{port} failed: connection refused")
    assert result.hint == hint("platform.unreachable", "shopee")
    assert result.next_command == "nfdoctor check shopee"


def test_a_hung_shop_is_that_shops_failure(tmp_path: Path) -> None:
    """One OA's calls hang; with a short call timeout the other OA is still measured."""
    _, probe = build_simulator(seed=7, accounts_per_platform=2)  # same seed: same ids
    slow = probe.accounts["zalo"][1].account_id
    faults = tmp_path / "hang.yaml"
    faults.write_text(
        f"rules:\n  - platform: zalo\n    account: '{slow}'\n    fault: timeout\n    seconds: 1\n"
    )
    app, state = build_simulator(seed=7, accounts_per_platform=2, faults=faults)
    server = SimulatorServer(app, port=0)
    server.start_in_thread()
    try:
        config = tmp_path / "hung.yaml"
        write_config(config, server.url, state)
        ctx = _real_context(tmp_path, config)
        results = run_platform_checks(ctx, kinds=("api",), platforms=["zalo"], call_timeout_s=0.3)
    finally:
        server.stop()
    assert [r.status for r in results] == [Status.OK, Status.CRITICAL]
    assert results[1].subject is not None and slow in results[1].subject
    assert "read timeout" in results[1].summary
    assert results[1].hint == hint("platform.unreachable", "zalo")


def test_cli_check_all_against_the_simulator(
    served: tuple[SimulatorServer, Sim], cli: Callable[..., CliResult]
) -> None:
    _, sim = served
    result = cli("check", "all", "--config", str(sim.config), "-o", "json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert document["command"] == "check all"
    ids = [r["id"] for r in document["results"]]
    # connectivity once per origin; api and token once per account (two each)
    expected = []
    for platform in PLATFORMS:
        expected += [f"platforms.{platform}.connectivity"]
        expected += [f"platforms.{platform}.api"] * 2 + [f"platforms.{platform}.token"] * 2
    assert ids == expected
    assert {r["status"] for r in document["results"]} == {"OK"}


def test_cli_check_one_shop(
    served: tuple[SimulatorServer, Sim], cli: Callable[..., CliResult]
) -> None:
    _, sim = served
    shop = sim.account_id("tiktok", 1)
    result = cli("check", "TikTok", "--shop", shop, "--config", str(sim.config), "-o", "json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert document["command"] == "check tiktok"
    rows = [(r["id"], r.get("subject")) for r in document["results"]]
    assert [row[0] for row in rows] == [
        "platforms.tiktok.connectivity",
        "platforms.tiktok.api",
        "platforms.tiktok.token",
    ]
    assert all(shop in str(subject) for _, subject in rows[1:])


def test_cli_check_reports_a_revoked_page_as_critical(
    served: tuple[SimulatorServer, Sim], cli: Callable[..., CliResult]
) -> None:
    _, sim = served
    sim.state.revoke_all("facebook")
    result = cli("check", "facebook", "--config", str(sim.config), "-o", "plain")
    assert result.code == 2, result
    assert "debug_token says the token is not valid" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_diagnose_platform_scopes_only_the_platform_checks(
    served: tuple[SimulatorServer, Sim], cli: Callable[..., CliResult]
) -> None:
    _, sim = served
    result = cli(
        "diagnose",
        "--platform",
        "zalo",
        "--skip",
        "system,config",
        "--config",
        str(sim.config),
        "-o",
        "json",
    )
    document = json.loads(result.stdout)
    ids = [r["id"] for r in document["results"]]
    platform_ids = [i for i in ids if i.startswith("platforms.")]
    assert set(platform_ids) == {
        "platforms.zalo.connectivity",
        "platforms.zalo.api",
        "platforms.zalo.token",
    }
    assert "database.connect" in ids  # the other checks still run
    assert result.code == 0, result


def test_cli_diagnose_list_shows_platform_checks_without_config(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    assert not any(tmp_path.rglob("*.yaml"))
    result = cli("diagnose", "--list")
    assert result.code == 0 and result.stderr == ""
    listed = {line.split()[0]: line for line in result.stdout.splitlines()}
    for platform in PLATFORMS:
        for kind in ("connectivity", "api", "token"):
            assert f"platforms.{platform}.{kind}" in listed
    assert "Zalo OA: API tokens and credentials" in listed["platforms.zalo.token"]


def test_cli_diagnose_platform_name_is_case_insensitive_like_check(
    served: tuple[SimulatorServer, Sim], cli: Callable[..., CliResult]
) -> None:
    _, sim = served
    checked = cli("check", "TikTok", "--config", str(sim.config), "-o", "json")
    assert checked.code == 0, checked
    result = cli(
        "diagnose",
        "--platform",
        "TikTok",
        "--only",
        "platforms",
        "--config",
        str(sim.config),
        "-o",
        "json",
    )
    assert result.code == 0, result
    ids = {r["id"] for r in json.loads(result.stdout)["results"]}
    assert ids == {
        "platforms.tiktok.connectivity",
        "platforms.tiktok.api",
        "platforms.tiktok.token",
        "platforms.tiktok.order_sync",
    }
