"""``nfdoctor check`` against the simulator on loopback: healthy runs, and each fault of the
fault plan classified into the category, status and exit code an operator acts on.

Every fault is scoped to the platform's ping endpoint, so only the API result may change:
each test also asserts that the connectivity and token results stay OK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from nfdoctor.simulator.state import SimulatorState
from tests.conftest import CliResult
from tests.e2e.conftest import (
    EXIT_FOR,
    PING_ENDPOINT,
    PLATFORMS,
    TITLES,
    CheckRun,
    Simulated,
    account_ids,
    assert_no_secrets,
    details_text,
)

Start = Callable[..., Simulated]
Check = Callable[..., CheckRun]


def ping_fault(platform: str, fault: str, **params: Any) -> dict[str, Any]:
    """A fault-plan rule hitting only ``platform``'s ping call."""
    return {"platform": platform, "endpoint": PING_ENDPOINT[platform], "fault": fault, **params}


def assert_only_api_changed(run: CheckRun, api: dict[str, Any]) -> None:
    """Every result but ``api`` is OK: the fault reached the ping call and nothing else."""
    others = run.report.others(api)
    assert others, "the report should also hold connectivity and token results"
    assert [(r["id"], r["status"]) for r in others if r["status"] != "OK"] == []


# ---- healthy -----------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_healthy_platform_is_all_ok(platform: str, simulator: Start, check: Check) -> None:
    sim = simulator()
    run = check(sim, platform)
    assert run.code == 0, run.result.stderr
    report = run.report
    assert report.status == "OK"
    assert {r["id"] for r in report.results} == {
        f"platforms.{platform}.connectivity",
        f"platforms.{platform}.api",
        f"platforms.{platform}.token",
    }
    assert [r["status"] for r in report.results] == ["OK"] * len(report.results)
    api = report.one(f"platforms.{platform}.api")
    assert api["subject"] == sim.label(platform)
    assert api["summary"].startswith("answered in ") and "(HTTP 200)" in api["summary"]
    latency = next(m for m in api["metrics"] if m["name"] == "latency")
    assert 0 < latency["value"] < 10 and latency["warn"] == 1
    assert report.one(f"platforms.{platform}.token")["subject"] == sim.label(platform)
    connectivity = report.one(f"platforms.{platform}.connectivity")
    assert connectivity["subject"] == sim.url


def test_check_all_with_two_shops_per_platform_as_a_real_process(
    simulator: Start, check: Check
) -> None:
    sim = simulator(accounts=2)
    run = check(sim, "all", process=True)
    assert run.code == 0, run.result.stderr
    report = run.report
    assert report.status == "OK"
    for platform in PLATFORMS:
        labels = {sim.label(platform, 0), sim.label(platform, 1)}
        assert len(labels) == 2
        for kind in ("api", "token"):
            results = report.of(f"platforms.{platform}.{kind}")
            assert len(results) == 2, (platform, kind)
            assert {r["subject"] for r in results} == labels
            assert {r["status"] for r in results} == {"OK"}
        # Base URL and token host are one loopback origin: one probe per platform.
        assert len(report.of(f"platforms.{platform}.connectivity")) == 1
    assert report.data["counts"] == {
        "ok": 25,
        "warning": 0,
        "critical": 0,
        "unknown": 0,
        "skipped": 0,
    }


def test_shop_option_narrows_check_all_to_that_shop(simulator: Start, check: Check) -> None:
    sim = simulator(accounts=2)
    second = sim.account_ids("lazada")[1]
    run = check(sim, "all", "--shop", second)
    assert run.code == 0
    assert {r["id"] for r in run.report.results} == {
        "platforms.lazada.connectivity",
        "platforms.lazada.api",
        "platforms.lazada.token",
    }
    assert run.report.one("platforms.lazada.api")["subject"] == sim.label("lazada", 1)


# ---- faults, classified ------------------------------------------------------------------


@dataclass(frozen=True)
class FaultCase:
    """One fault of the plan and what ``nfdoctor check`` must make of it on each platform."""

    fault: str
    params: dict[str, Any]
    status: str
    #: the category per platform (one value: the same on all five)
    category: dict[str, str] | str
    #: the platform's own error code, where the fault answers with its envelope
    codes: dict[str, str] = field(default_factory=dict)
    #: text the details must hold
    detail: str = ""
    args: tuple[str, ...] = ()

    def category_for(self, platform: str) -> str:
        return self.category if isinstance(self.category, str) else self.category[platform]


FAULT_CASES = [
    FaultCase(
        "http_429",
        {"retry_after": 2},
        "WARNING",
        "rate_limited",
        codes={
            "shopee": "error_rate_limit",
            "lazada": "ApiCallLimit",
            "tiktok": "36009002",
            "facebook": "80006",
            "zalo": "-32",
        },
        detail="HTTP status: 429",
    ),
    FaultCase(
        "http_5xx",
        {"status": 503},
        "CRITICAL",
        "transient",
        codes={
            "shopee": "error_server",
            "lazada": "ServiceTimeout",
            "tiktok": "36009003",
            "facebook": "2",
            "zalo": "-1",
        },
        detail="HTTP status: 503",
    ),
    FaultCase("connection_reset", {}, "CRITICAL", "transient", detail="failed at: read"),
    # --timeout 2s gives each HTTP call 0.8 × 2 s = 1.6 s: the 5 s hang trips the call's
    # read timeout, not the whole check's.
    FaultCase(
        "timeout",
        {"seconds": 5},
        "CRITICAL",
        "unreachable",
        detail="failed at: read",
        args=("--timeout", "2s"),
    ),
    # A 200 whose JSON is cut in half.
    FaultCase("malformed_body", {}, "CRITICAL", "unexpected_response", detail="HTTP status: 200"),
    FaultCase("html_error_page", {}, "CRITICAL", "unexpected_response", detail="HTTP status: 502"),
    FaultCase(
        "expired_token",
        {},
        "CRITICAL",
        "token_expired",
        codes={
            "shopee": "invalid_acceess_token",  # sic: production's spelling
            "lazada": "IllegalAccessToken",
            "tiktok": "105002",
            "facebook": "190/463",
            "zalo": "-220",
        },
    ),
    # A revoked token is token_invalid where the platform has a code of its own for it
    # (Shopee error_auth, Graph 190/460). Lazada (IllegalAccessToken "invalid or expired"),
    # Zalo (-220 "expired or removed") and the simulated TikTok (105002) answer revoked and
    # expired alike, and nfdoctor classifies by code only: there it is token_expired.
    FaultCase(
        "revoked_token",
        {},
        "CRITICAL",
        {
            "shopee": "token_invalid",
            "lazada": "token_expired",
            "tiktok": "token_expired",
            "facebook": "token_invalid",
            "zalo": "token_expired",
        },
        codes={
            "shopee": "common.error_auth",
            "lazada": "IllegalAccessToken",
            "tiktok": "105002",
            "facebook": "190/460",
            "zalo": "-220",
        },
    ),
]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("case", FAULT_CASES, ids=lambda c: c.fault)
def test_fault_on_ping_is_classified(
    case: FaultCase, platform: str, simulator: Start, check: Check
) -> None:
    sim = simulator([ping_fault(platform, case.fault, **case.params)])
    run = check(sim, platform, *case.args)
    api = run.report.one(f"platforms.{platform}.api")
    assert api["subject"] == sim.label(platform)
    assert api["status"] == case.status, api
    assert run.report.status == case.status
    assert run.code == EXIT_FOR[case.status]
    details = details_text(api)
    assert f"category: {case.category_for(platform)}" in api["details"], api
    if case.codes:
        assert f"platform error code: {case.codes[platform]}" in api["details"], api
    assert case.detail in details, api
    if case.fault == "http_429":
        assert api["summary"].endswith("retry after 2 s"), api["summary"]
    category = case.category_for(platform)
    assert api["next_command"] == next_for(platform, category, sim.account_ids(platform)[0])
    assert api["hint"] is not None
    assert_only_api_changed(run, api)


#: a field each client's ping reads, and how nfdoctor names it once it is gone
DRIFTED_FIELD = {
    "shopee": ("shop_name", "missing shop_name"),
    "lazada": ("seller_id", "missing data.seller_id"),
    "tiktok": ("cipher", "missing shops[].cipher"),
    "facebook": ("name", "missing name"),
    "zalo": ("name", "missing data.name"),
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_schema_drift_is_a_warning_naming_the_field(
    platform: str, simulator: Start, check: Check
) -> None:
    name, problem = DRIFTED_FIELD[platform]
    sim = simulator([ping_fault(platform, "schema_drift", field=name, rename_to=name + "_v2")])
    run = check(sim, platform)
    api = run.report.one(f"platforms.{platform}.api", sim.label(platform))
    assert api["status"] == "WARNING"
    assert f"response shape changed: {problem}" in api["summary"], api["summary"]
    assert run.code == 1
    assert_only_api_changed(run, api)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_latency_above_the_api_target_is_a_warning(
    platform: str, simulator: Start, check: Check
) -> None:
    sim = simulator([ping_fault(platform, "latency", ms=1500)])
    run = check(sim, platform)
    api = run.report.one(f"platforms.{platform}.api", sim.label(platform))
    assert api["status"] == "WARNING"
    assert "slower than the 1 s API target" in api["summary"]
    latency = next(m for m in api["metrics"] if m["name"] == "latency")
    assert latency["value"] >= 1.5
    assert run.code == 1
    assert_only_api_changed(run, api)


# ---- clock skew --------------------------------------------------------------------------
# The `clock_skew` fault moves the simulated platform's clock (its Date header and the
# window it checks request timestamps against) 600 s ahead: this host then looks 10 min
# behind. Lazada accepts timestamps within 7200 s, and Facebook and Zalo sign no timestamp,
# so their calls succeed and the skew, read off the Date header, is a WARNING. Shopee (±300 s)
# and TikTok (−300 s / +30 s) reject the request itself: Shopee with `error_param`
# "Timestamp is expired.", TikTok with 36009004 "Invalid timestamp…" — a CRITICAL.


@pytest.mark.parametrize("platform", ["lazada", "facebook", "zalo"])
def test_clock_skew_within_the_platforms_tolerance_is_a_warning(
    platform: str, simulator: Start, check: Check
) -> None:
    sim = simulator([ping_fault(platform, "clock_skew", seconds=600)])
    run = check(sim, platform)
    api = run.report.one(f"platforms.{platform}.api", sim.label(platform))
    assert api["status"] == "WARNING"
    assert f"this host's clock is 10.0 min behind {TITLES[platform]}'s" in api["summary"]
    skew = next(m for m in api["metrics"] if m["name"] == "clock_skew")
    assert -602 <= skew["value"] <= -598
    assert run.code == 1
    assert_only_api_changed(run, api)


REJECTED_TIMESTAMP = {
    "shopee": ("error_param", "Timestamp is expired."),
    "tiktok": ("36009004", "Invalid timestamp."),
}


@pytest.mark.parametrize("platform", sorted(REJECTED_TIMESTAMP))
def test_clock_skew_beyond_tolerance_is_critical(
    platform: str, simulator: Start, check: Check
) -> None:
    sim = simulator([ping_fault(platform, "clock_skew", seconds=600)])
    run = check(sim, platform)
    api = run.report.one(f"platforms.{platform}.api", sim.label(platform))
    code, message = REJECTED_TIMESTAMP[platform]
    assert api["status"] == "CRITICAL"
    assert f"platform error code: {code}" in api["details"]
    assert message in details_text(api)
    assert run.code == 2
    assert_only_api_changed(run, api)


@pytest.mark.parametrize("platform", sorted(REJECTED_TIMESTAMP))
def test_clock_skew_beyond_tolerance_points_the_operator_at_the_clock(
    platform: str, simulator: Start, check: Check
) -> None:
    sim = simulator([ping_fault(platform, "clock_skew", seconds=600)])
    run = check(sim, platform)
    api = run.report.one(f"platforms.{platform}.api", sim.label(platform))
    assert api["status"] == "CRITICAL"
    advice = api["summary"] + " " + (api["hint"] or {}).get("en", "")
    assert "clock" in advice.lower(), advice


# ---- one shop of two ---------------------------------------------------------------------


def next_for(platform: str, category: str, shop: str) -> str:
    """The command a finding of ``category`` points at: a token the platform refuses is
    renewed by ``token refresh`` (expired, where there is a refresh token) or by authorising
    the shop again; anything else is checked again."""
    tokens = ("token_expired", "token_invalid", "refresh_token_invalid")
    if category in tokens and platform == "facebook":
        return f"nfdoctor token authorize facebook --shop {shop}"
    if category == "token_expired":
        return f"nfdoctor token refresh {platform} --shop {shop}"
    if category in tokens:
        return f"nfdoctor token authorize {platform} --shop {shop}"
    return f"nfdoctor check {platform} --shop {shop}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_fault_scoped_to_one_account_hits_only_that_account(
    platform: str, simulator: Start, check: Check
) -> None:
    second = account_ids(platform, accounts=2)[1]
    sim = simulator([{**ping_fault(platform, "expired_token"), "account": second}], accounts=2)
    assert sim.account_ids(platform)[1] == second
    run = check(sim, platform)
    hit = run.report.one(f"platforms.{platform}.api", sim.label(platform, 1))
    spared = run.report.one(f"platforms.{platform}.api", sim.label(platform, 0))
    assert hit["status"] == "CRITICAL"
    assert "category: token_expired" in hit["details"]
    assert hit["next_command"] == next_for(platform, "token_expired", second)
    assert spared["status"] == "OK"
    assert run.code == 2
    assert [r["status"] for r in run.report.others(hit)] == ["OK"] * 4


def test_fail_on_critical_ignores_a_warning(simulator: Start, check: Check) -> None:
    sim = simulator([ping_fault("zalo", "http_429", retry_after=5)])
    run = check(sim, "zalo", "--fail-on", "critical")
    assert run.report.status == "WARNING"
    assert run.code == 0


# ---- rate-limit headroom from the platforms' usage headers ---------------------------------


def _zalo_calls(sim: Simulated, count: int) -> None:
    """Spend ``count`` of the OA's per-minute calls before nfdoctor's ping."""
    oa = sim.account_ids("zalo")[0]
    token = sim.state.current("zalo", oa, "access")
    assert token is not None
    with httpx.Client(trust_env=False) as http:
        for _ in range(count):
            answer = http.get(
                f"{sim.url}/zalo/v2.0/oa/getoa", headers={"access_token": token.value}
            )
            assert answer.json()["error"] == 0


@pytest.mark.parametrize(
    ("limit", "spent", "status", "usage"),
    [(5, 0, "OK", 20), (5, 3, "WARNING", 80), (5, 4, "CRITICAL", 100)],
    ids=["20pct-ok", "80pct-warning", "100pct-critical"],
)
def test_zalo_rate_limit_headroom(
    limit: int, spent: int, status: str, usage: int, simulator: Start, check: Check
) -> None:
    def per_minute(state: SimulatorState) -> None:
        state.zalo_limit_per_minute = limit

    sim = simulator(prepare=per_minute)
    _zalo_calls(sim, spent)
    run = check(sim, "zalo")
    api = run.report.one("platforms.zalo.api", sim.label("zalo"))
    assert api["status"] == status
    text = f"{usage}% of the rate limit used (X-RateLimit-Remain)"
    assert text in (api["summary"] if status != "OK" else details_text(api)), api
    used = next(m for m in api["metrics"] if m["name"] == "rate_limit_used")
    assert (used["value"], used["warn"], used["crit"]) == (usage, 80, 95)
    assert run.code == EXIT_FOR[status]


def test_facebook_business_use_case_usage_at_the_limit_is_critical(
    simulator: Start, check: Check
) -> None:
    def tiny_allowance(state: SimulatorState) -> None:
        state.facebook_hourly_allowance = 1  # the first call uses it all: 100 %

    sim = simulator(prepare=tiny_allowance)
    run = check(sim, "facebook")
    api = run.report.one("platforms.facebook.api", sim.label("facebook"))
    assert api["status"] == "CRITICAL"
    page = sim.account_ids("facebook")[0]
    assert (
        f"100% of the rate limit used (X-Business-Use-Case-Usage[{page}/pages])" in (api["summary"])
    )
    assert run.code == 2


# ---- the leak check itself ---------------------------------------------------------------


def test_leak_check_catches_a_token_in_output(simulator: Start) -> None:
    sim = simulator()
    secrets = sim.secret_values()
    # Partner key and app secrets, the two tokens of each of four platforms, Facebook's one.
    assert len(secrets) >= 7 + 2 * 4 + 1
    token = sim.state.current("tiktok", sim.account_ids("tiktok")[0], "access")
    assert token is not None
    leaky = CliResult(0, f"debug: x-tts-access-token={token.value}\n", "")
    with pytest.raises(AssertionError, match="tiktok access token"):
        assert_no_secrets({"stdout": leaky.stdout, "stderr": leaky.stderr}, secrets)
