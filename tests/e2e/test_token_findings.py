"""Token findings of ``nfdoctor check``, with tokens aged in the simulator's state before its
config (and tokens.json) is written, or removed from tokens.json.

What PlatformTokenCheck judges: with a refresh token stored (Shopee, Lazada, TikTok, Zalo)
the refresh token's deadline against thresholds.token_expiry_warning (7 d) / _critical
(1 d), and an access token already expired as a WARNING (a refresh renews it); without one
(Facebook's Page token) the access token's expiry against the same thresholds, and, on
Facebook, what debug_token says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from nfdoctor.simulator.state import SimulatorState
from tests.e2e.conftest import PLATFORMS, CheckRun, Simulated, details_text

Start = Callable[..., Simulated]
Check = Callable[..., CheckRun]
REFRESHING = ("shopee", "lazada", "tiktok", "zalo")


def first(state: SimulatorState, platform: str) -> str:
    return state.accounts[platform][0].account_id


def metric(result: dict[str, Any], name: str) -> float:
    return float(next(m["value"] for m in result["metrics"] if m["name"] == name))


@pytest.mark.parametrize("platform", REFRESHING)
def test_expired_access_token_with_a_live_refresh_token_is_a_warning(
    platform: str, simulator: Start, check: Check
) -> None:
    sim = simulator(
        prepare=lambda s: s.age_token(platform, first(s, platform), expires_in=timedelta(hours=-1))
    )
    run = check(sim, platform)
    token = run.report.one(f"platforms.{platform}.token", sim.label(platform))
    assert token["status"] == "WARNING"
    assert token["summary"].startswith("access token expired 60 min ago"), token["summary"]
    assert "the refresh token can renew it" in token["summary"]
    assert -3700 < metric(token, "access_token_expires_in") < -3500
    # The platform agrees: the API call with that token is refused as expired.
    api = run.report.one(f"platforms.{platform}.api", sim.label(platform))
    assert api["status"] == "CRITICAL"
    assert "category: token_expired" in api["details"]
    assert run.code == 2


@pytest.mark.parametrize(
    ("left", "status", "shown"),
    [(timedelta(days=3), "WARNING", "3.0 d"), (timedelta(hours=12), "CRITICAL", "12 h")],
    ids=["3d-warning", "12h-critical"],
)
@pytest.mark.parametrize("platform", REFRESHING)
def test_refresh_token_deadline_against_the_thresholds(
    platform: str, left: timedelta, status: str, shown: str, simulator: Start, check: Check
) -> None:
    sim = simulator(
        prepare=lambda s: s.expire_refresh(platform, first(s, platform), expires_in=left)
    )
    run = check(sim, platform)
    token = run.report.one(f"platforms.{platform}.token", sim.label(platform))
    assert token["status"] == status
    assert token["summary"].startswith(f"refresh token expires in {shown} ("), token["summary"]
    assert abs(metric(token, "refresh_token_expires_in") - left.total_seconds()) < 120
    # Only the seller can renew a refresh token: authorise the shop again.
    shop = first(sim.state, platform)
    assert token["next_command"] == f"nfdoctor token authorize {platform} --shop {shop}"
    assert run.report.one(f"platforms.{platform}.api")["status"] == "OK"
    assert run.report.status == status
    assert run.code == {"WARNING": 1, "CRITICAL": 2}[status]


@pytest.mark.parametrize(
    ("left", "status", "shown"),
    [(timedelta(days=2), "WARNING", "48 h"), (timedelta(hours=12), "CRITICAL", "12 h")],
    ids=["2d-warning", "12h-critical"],
)
def test_facebook_page_token_expiry_from_store_and_debug_token(
    left: timedelta, status: str, shown: str, simulator: Start, check: Check
) -> None:
    sim = simulator(
        prepare=lambda s: s.age_token("facebook", first(s, "facebook"), expires_in=left)
    )
    run = check(sim, "facebook")
    token = run.report.one("platforms.facebook.token", sim.label("facebook"))
    assert token["status"] == status
    # The stored expiry and the one debug_token reports agree, and both are findings.
    assert f"access token expires in {shown} (" in token["summary"], token["summary"]
    assert f"token (debug_token) expires in {shown} (" in token["summary"], token["summary"]
    assert "debug_token: valid" in token["details"]
    assert run.report.one("platforms.facebook.api")["status"] == "OK"
    assert run.code == {"WARNING": 1, "CRITICAL": 2}[status]


def test_facebook_page_token_that_never_expires_is_ok(simulator: Start, check: Check) -> None:
    sim = simulator()
    run = check(sim, "facebook")
    token = run.report.one("platforms.facebook.token", sim.label("facebook"))
    assert token["status"] == "OK"
    assert token["summary"] == "access token never expires"
    assert run.code == 0


def test_facebook_expired_page_token_is_critical_in_store_and_debug_token(
    simulator: Start, check: Check
) -> None:
    sim = simulator(
        prepare=lambda s: s.age_token(
            "facebook", first(s, "facebook"), expires_in=timedelta(hours=-1)
        )
    )
    run = check(sim, "facebook")
    token = run.report.one("platforms.facebook.token", sim.label("facebook"))
    assert token["status"] == "CRITICAL"
    assert "access token expired 60 min ago" in token["summary"]
    assert "debug_token says the token is not valid" in token["summary"]
    assert run.code == 2


@pytest.mark.parametrize("platform", PLATFORMS)
def test_missing_stored_token_is_critical_and_skips_the_api_call(
    platform: str, simulator: Start, check: Check
) -> None:
    sim = simulator(accounts=2)
    gone = sim.account_ids(platform)[1]
    sim.edit_tokens(lambda tokens: tokens[platform].pop(gone))
    run = check(sim, platform)
    token = run.report.one(f"platforms.{platform}.token", sim.label(platform, 1))
    api = run.report.one(f"platforms.{platform}.api", sim.label(platform, 1))
    assert token["status"] == "CRITICAL"
    assert token["summary"].startswith("no token stored for this ")
    assert str(sim.tokens_path) in token["summary"]
    assert api["status"] == "SKIPPED"
    assert api["summary"] == f"no stored token to call with (see platforms.{platform}.token)"
    # The other account still has its token and works.
    assert run.report.one(f"platforms.{platform}.token", sim.label(platform, 0))["status"] == "OK"
    assert run.report.one(f"platforms.{platform}.api", sim.label(platform, 0))["status"] == "OK"
    assert run.code == 2


# ---- Facebook debug_token, the token check's one API call ---------------------------------

DEBUG_TOKEN = "/v21.0/debug_token"


def debug_token_fault(fault: str, **params: Any) -> dict[str, Any]:
    return {"platform": "facebook", "endpoint": DEBUG_TOKEN, "fault": fault, **params}


@pytest.mark.parametrize(
    ("fault", "params", "status", "shown"),
    [
        ("http_429", {"retry_after": 3}, "WARNING", "category: rate_limited"),
        ("http_5xx", {"status": 503}, "CRITICAL", "category: transient"),
        ("malformed_body", {}, "CRITICAL", "category: unexpected_response"),
    ],
    ids=["http_429", "http_5xx", "malformed_body"],
)
def test_debug_token_failure_is_the_token_results_finding(
    fault: str, params: dict[str, Any], status: str, shown: str, simulator: Start, check: Check
) -> None:
    sim = simulator([debug_token_fault(fault, **params)])
    run = check(sim, "facebook")
    token = run.report.one("platforms.facebook.token", sim.label("facebook"))
    assert token["status"] == status
    assert shown in token["details"], token
    assert run.report.one("platforms.facebook.api")["status"] == "OK"
    assert run.code == {"WARNING": 1, "CRITICAL": 2}[status]


def test_debug_token_saying_revoked_is_critical(simulator: Start, check: Check) -> None:
    sim = simulator([debug_token_fault("revoked_token")])
    run = check(sim, "facebook")
    token = run.report.one("platforms.facebook.token", sim.label("facebook"))
    assert token["status"] == "CRITICAL"
    assert token["summary"] == "debug_token says the token is not valid"
    assert run.code == 2


def test_debug_token_schema_drift_of_is_valid_is_not_reported_as_an_invalid_token(
    simulator: Start, check: Check
) -> None:
    sim = simulator([debug_token_fault("schema_drift", field="is_valid", rename_to="valid")])
    run = check(sim, "facebook")
    token = run.report.one("platforms.facebook.token", sim.label("facebook"))
    assert token["status"] == "WARNING", token
    assert token["summary"] == "debug_token response shape changed: missing data.is_valid"


def _only_debug_token_knows_the_expiry(sim: Simulated) -> None:
    """tokens.json says the Page token never expires; the platform knows it does."""
    page = sim.account_ids("facebook")[0]

    def forget_expiry(tokens: dict[str, Any]) -> None:
        tokens["facebook"][page]["access_expires_at"] = None

    sim.edit_tokens(forget_expiry)


def _twelve_hours_left(state: SimulatorState) -> None:
    state.age_token("facebook", first(state, "facebook"), expires_in=timedelta(hours=12))


def test_expiry_known_only_to_debug_token_is_reported(simulator: Start, check: Check) -> None:
    sim = simulator(prepare=_twelve_hours_left)
    _only_debug_token_knows_the_expiry(sim)
    run = check(sim, "facebook")
    token = run.report.one("platforms.facebook.token", sim.label("facebook"))
    assert token["status"] == "CRITICAL"
    assert token["summary"].startswith("token (debug_token) expires in 12 h ("), token["summary"]
    assert "access token never expires" in token["details"]


def test_debug_token_schema_drift_of_expires_at_is_not_read_as_never_expiring(
    simulator: Start, check: Check
) -> None:
    sim = simulator(
        [debug_token_fault("schema_drift", field="expires_at", rename_to="expiry")],
        prepare=_twelve_hours_left,
    )
    _only_debug_token_knows_the_expiry(sim)
    run = check(sim, "facebook")
    token = run.report.one("platforms.facebook.token", sim.label("facebook"))
    assert token["status"] != "OK"
    assert "expires_at" in token["summary"] + details_text(token)
