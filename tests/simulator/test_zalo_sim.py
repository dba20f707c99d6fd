"""The Zalo OA simulator (platforms.md §6)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import FakeClock, call


@pytest.fixture
def sim() -> tuple[Any, SimulatorState, FakeClock]:
    clock = FakeClock()
    app, state = build_simulator(seed=13, clock=clock)
    return app, state, clock


def token(state: SimulatorState, kind: str = "access") -> str:
    oa = state.accounts["zalo"][0].account_id
    value = state.current("zalo", oa, kind)  # type: ignore[arg-type]
    assert value is not None
    return value.value


def test_getoa_with_header_token_and_rate_limit_headers(sim: Any) -> None:
    app, state, _ = sim
    r = call(app, "GET", "/zalo/v2.0/oa/getoa", headers={"access_token": token(state)})
    body = r.json()
    assert r.status_code == 200 and body["error"] == 0
    assert body["data"]["oa_id"] == state.accounts["zalo"][0].account_id
    assert r.headers["x-ratelimit-limit"] == "4000"
    assert r.headers["x-ratelimit-remain"] == "3999"


def test_bearer_is_not_accepted_and_expiry(sim: Any) -> None:
    app, state, clock = sim
    bearer = call(
        app, "GET", "/zalo/v2.0/oa/getoa", headers={"Authorization": f"Bearer {token(state)}"}
    )
    assert (bearer.status_code, bearer.json()["error"]) == (200, -216)
    clock.advance(hours=25, seconds=1)
    expired = call(app, "GET", "/zalo/v2.0/oa/getoa", headers={"access_token": token(state)})
    assert expired.json()["error"] == -220


def test_wrong_appsecret_proof(sim: Any) -> None:
    app, state, _ = sim
    headers = {"access_token": token(state), "appsecret_proof": "0" * 64}
    assert call(app, "GET", "/zalo/v2.0/oa/getoa", headers=headers).json()["error"] == -242


def test_count_capped_at_ten(sim: Any) -> None:
    app, state, _ = sim
    headers = {"access_token": token(state)}
    eleven = call(
        app,
        "GET",
        "/zalo/v2.0/oa/listrecentchat",
        headers=headers,
        params={"data": json.dumps({"offset": 0, "count": 11})},
    ).json()
    assert eleven["error"] == -201
    seen: list[str] = []
    offset = 0
    while True:
        page = call(
            app,
            "GET",
            "/zalo/v2.0/oa/listrecentchat",
            headers=headers,
            params={"data": json.dumps({"offset": offset, "count": 10})},
        ).json()["data"]
        assert isinstance(page, list)
        seen += [m["message_id"] for m in page]
        if len(page) < 10:
            break
        offset += 10
    assert len(seen) == 40
    conv = state.accounts["zalo"][0].conversations[0]
    msgs = call(
        app,
        "GET",
        "/zalo/v2.0/oa/conversation",
        headers=headers,
        params={"data": json.dumps({"user_id": conv.user_id, "offset": 0, "count": 10})},
    ).json()["data"]
    assert msgs[0]["message_id"] == conv.messages[-1].message_id
    assert isinstance(msgs[0]["time"], int) and msgs[0]["time"] > 10**12  # ms


def refresh(app: Any, state: SimulatorState, refresh_token: str, secret: str | None = None) -> Any:
    return call(
        app,
        "POST",
        "/zalo-oauth/v4/oa/access_token",
        headers={"secret_key": secret or state.zalo_secret_key},
        data={
            "refresh_token": refresh_token,
            "app_id": state.zalo_app_id,
            "grant_type": "refresh_token",
        },
    ).json()


def test_refresh_single_use_with_string_expires_in(sim: Any) -> None:
    app, state, _ = sim
    old = token(state, "refresh")
    assert "error" in refresh(app, state, old, secret="wrong")
    body = refresh(app, state, old)
    assert body["expires_in"] == "90000"
    assert body["refresh_token"] != old
    reused = refresh(app, state, old)
    assert "access_token" not in reused and reused["error"] < 0
    r = call(app, "GET", "/zalo/v2.0/oa/getoa", headers={"access_token": body["access_token"]})
    assert r.json()["error"] == 0


def test_a_skewed_server_clock_does_not_shorten_the_lifetime_it_reports() -> None:
    """A server whose clock is an hour off stamps issue and expiry on that clock alike."""
    from nfdoctor.simulator.faults import FaultPlan

    plan = FaultPlan.from_mapping(
        {"rules": [{"platform": "zalo", "fault": "clock_skew", "seconds": 3600}]}, source="t"
    )
    app, state = build_simulator(seed=13, faults=plan, clock=FakeClock())
    body = refresh(app, state, token(state, "refresh"))
    assert body["expires_in"] == "90000"
