"""The Lazada simulator, driven with requests signed by hand from platforms.md §3.2."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import NOW, FakeClock, call


def signed(secret: str, api_path: str, params: dict[str, str]) -> dict[str, str]:
    base = api_path + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(secret.encode(), base.encode(), hashlib.sha256).hexdigest().upper()
    return {**params, "sign": digest}


@pytest.fixture
def sim() -> tuple[Any, SimulatorState, FakeClock]:
    clock = FakeClock()
    app, state = build_simulator(seed=3, clock=clock)
    return app, state, clock


def system(state: SimulatorState, clock: FakeClock, **extra: str) -> dict[str, str]:
    seller = state.accounts["lazada"][0].account_id
    token = state.current("lazada", seller, "access")
    assert token is not None
    return {
        "app_key": state.lazada_app_key,
        "sign_method": "sha256",
        "timestamp": str(int(clock.now.timestamp() * 1000)),
        "access_token": token.value,
        **extra,
    }


def test_healthy_ping(sim: Any) -> None:
    app, state, clock = sim
    q = signed(state.lazada_app_secret, "/seller/get", system(state, clock))
    r = call(app, "GET", "/lazada/rest/seller/get", params=q)
    body = r.json()
    assert (r.status_code, body["code"]) == (200, "0")
    assert body["data"]["name"] == "Mỹ Phẩm Thảo Nguyên"


def test_unknown_parameters_are_signed_too(sim: Any) -> None:
    app, state, clock = sim
    params = system(state, clock, partner_id="lazop-sdk-python-20181207")
    q = signed(state.lazada_app_secret, "/seller/get", params)
    assert call(app, "GET", "/lazada/rest/seller/get", params=q).json()["code"] == "0"
    q.pop("partner_id")  # the sign now covers a parameter that is not sent
    assert call(app, "GET", "/lazada/rest/seller/get", params=q).json()["code"] == (
        "IncompleteSignature"
    )


@pytest.mark.parametrize("variant", ["lower-hex", "wrong-secret", "seconds"])
def test_bad_signatures_rejected_with_http_200(sim: Any, variant: str) -> None:
    app, state, clock = sim
    params = system(state, clock)
    secret = state.lazada_app_secret
    if variant == "seconds":
        params["timestamp"] = str(int(clock.now.timestamp()))
    if variant == "wrong-secret":
        secret = "not-the-secret"
    q = signed(secret, "/seller/get", params)
    if variant == "lower-hex":
        q["sign"] = q["sign"].lower()
    r = call(app, "GET", "/lazada/rest/seller/get", params=q)
    assert r.status_code == 200
    expected = "InvalidParameter" if variant == "seconds" else "IncompleteSignature"
    assert r.json()["code"] == expected


def test_iso_timestamp_accepted(sim: Any) -> None:
    app, state, clock = sim
    params = system(state, clock, timestamp=clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    q = signed(state.lazada_app_secret, "/seller/get", params)
    assert call(app, "GET", "/lazada/rest/seller/get", params=q).json()["code"] == "0"


def test_expired_access_token(sim: Any) -> None:
    app, state, clock = sim
    clock.advance(days=7, seconds=1)
    q = signed(state.lazada_app_secret, "/seller/get", system(state, clock))
    body = call(app, "GET", "/lazada/rest/seller/get", params=q).json()
    assert body["code"] == "IllegalAccessToken"


def refresh(app: Any, state: SimulatorState, clock: FakeClock, token: str) -> dict[str, Any]:
    params = {
        "app_key": state.lazada_app_key,
        "sign_method": "sha256",
        "timestamp": str(int(clock.now.timestamp() * 1000)),
        "refresh_token": token,
    }
    data = signed(state.lazada_app_secret, "/auth/token/refresh", params)
    r = call(app, "POST", "/lazada-auth/rest/auth/token/refresh", data=data)
    return r.json()  # type: ignore[no-any-return]


def test_refresh_rotates_keeps_deadline_and_rejects_old(sim: Any) -> None:
    app, state, clock = sim
    seller = state.accounts["lazada"][0].account_id
    old = state.current("lazada", seller, "refresh")
    assert old is not None
    clock.advance(days=10)
    body = refresh(app, state, clock, old.value)
    assert body["code"] == "0"
    assert body["expires_in"] == 7 * 86400
    assert body["refresh_expires_in"] == 20 * 86400  # the deadline did not move
    assert refresh(app, state, clock, old.value)["code"] == "IllegalRefreshToken"
    assert refresh(app, state, clock, body["refresh_token"])["code"] == "0"


def orders(app: Any, state: SimulatorState, clock: FakeClock, **extra: str) -> dict[str, Any]:
    q = signed(state.lazada_app_secret, "/orders/get", system(state, clock, **extra))
    return call(app, "GET", "/lazada/rest/orders/get", params=q).json()  # type: ignore[no-any-return]


def test_orders_offset_and_limit_enforced(sim: Any) -> None:
    app, state, clock = sim
    after = "2026-10-01T00:00:00+07:00"
    assert orders(app, state, clock, created_after=after, offset="5001", limit="10")["code"] == "14"
    assert orders(app, state, clock, created_after=after, offset="0", limit="101")["code"] == "19"
    assert orders(app, state, clock, offset="0", limit="10")["code"] == "MissingParameter"
    ok = orders(app, state, clock, created_after=after, offset="5000", limit="100")
    assert ok["code"] == "0" and ok["data"]["orders"] == []


def test_orders_pages_cover_all_with_string_counts(sim: Any) -> None:
    app, state, clock = sim
    after = "2026-10-01T00:00:00+07:00"
    seen: list[str] = []
    offset = 0
    while True:
        body = orders(app, state, clock, created_after=after, offset=str(offset), limit="100")
        data = body["data"]
        assert isinstance(data["count"], str) and isinstance(data["countTotal"], str)
        seen += [o["order_id"] for o in data["orders"]]
        if len(data["orders"]) < 100:
            break
        offset += 100
    assert len(seen) == len(set(seen)) == int(data["countTotal"]) == 250
    assert NOW  # the fake clock's start is inside the seeded 30 days
