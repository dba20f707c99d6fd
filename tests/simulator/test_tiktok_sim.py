"""The TikTok Shop simulator, driven with requests signed by hand from platforms.md §4.2."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import FakeClock, call


def sign(secret: str, path: str, params: dict[str, str], body: bytes = b"") -> str:
    inner = path + "".join(f"{k}{params[k]}" for k in sorted(params))
    msg = secret.encode() + inner.encode() + body + secret.encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


@pytest.fixture
def sim() -> tuple[Any, SimulatorState, FakeClock]:
    clock = FakeClock()
    app, state = build_simulator(seed=5, clock=clock)
    return app, state, clock


def request(
    app: Any,
    state: SimulatorState,
    clock: FakeClock,
    method: str,
    path: str,
    *,
    extra: dict[str, str] | None = None,
    body: bytes = b"",
    ts: int | None = None,
    token: str | None = None,
    mutate_sign: Any = None,
) -> Any:
    shop = state.accounts["tiktok"][0]
    access = token or state.current("tiktok", shop.account_id, "access").value  # type: ignore[union-attr]
    params = {"app_key": state.tiktok_app_key, "timestamp": str(ts or int(clock.now.timestamp()))}
    params.update(extra or {})
    signature = sign(state.tiktok_app_secret, path, params, body)
    params["sign"] = mutate_sign(signature) if mutate_sign else signature
    headers = {"x-tts-access-token": access, "content-type": "application/json"}
    return call(app, method, "/tiktok" + path, params=params, content=body, headers=headers)


def test_healthy_ping_yields_cipher(sim: Any) -> None:
    app, state, clock = sim
    r = request(app, state, clock, "GET", "/authorization/202309/shops")
    assert r.status_code == 200 and r.json()["code"] == 0
    shop = r.json()["data"]["shops"][0]
    assert shop["cipher"] == state.accounts["tiktok"][0].extra["cipher"]


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"mutate_sign": str.upper}, 106001, 401),
        ({"mutate_sign": lambda s: "0" * 64}, 106001, 401),
        ({"ts_offset": -301}, 36009004, 401),
        ({"ts_offset": 31}, 36009004, 401),
        ({"ms": True}, 36009004, 401),
    ],
    ids=["upper-hex", "wrong-sign", "too-old", "too-new", "milliseconds"],
)
def test_bad_requests_rejected(sim: Any, kwargs: dict[str, Any], code: int, status: int) -> None:
    app, state, clock = sim
    now = int(clock.now.timestamp())
    ts = now + kwargs.pop("ts_offset", 0)
    if kwargs.pop("ms", False):
        ts = now * 1000
    r = request(app, state, clock, "GET", "/authorization/202309/shops", ts=ts, **kwargs)
    assert (r.status_code, r.json()["code"]) == (status, code)


def test_timestamp_window_is_asymmetric(sim: Any) -> None:
    app, state, clock = sim
    now = int(clock.now.timestamp())
    for ts in (now - 299, now + 29):
        r = request(app, state, clock, "GET", "/authorization/202309/shops", ts=ts)
        assert r.json()["code"] == 0
    old = request(app, state, clock, "GET", "/authorization/202309/shops", ts=now - 301)
    new = request(app, state, clock, "GET", "/authorization/202309/shops", ts=now + 31)
    assert "earlier than 5 minutes" in old.json()["message"]
    assert "more than 30 seconds" in new.json()["message"]


def test_shop_cipher_rules(sim: Any) -> None:
    app, state, clock = sim
    cipher = state.accounts["tiktok"][0].extra["cipher"]
    r = request(
        app, state, clock, "GET", "/authorization/202309/shops", extra={"shop_cipher": cipher}
    )
    assert r.json()["code"] == 36009004 and "Unexpected identifier" in r.json()["message"]
    r = request(app, state, clock, "POST", "/order/202309/orders/search", extra={"page_size": "10"})
    assert r.json()["code"] == 106013


def test_expired_and_unknown_tokens(sim: Any) -> None:
    app, state, clock = sim
    r = request(app, state, clock, "GET", "/authorization/202309/shops", token="TTP_nope")
    assert r.json()["code"] == 36009004
    clock.advance(days=7, seconds=1)
    r = request(app, state, clock, "GET", "/authorization/202309/shops")
    assert r.json()["code"] == 105002


def test_refresh_returns_absolute_expiries_and_rejects_reuse(sim: Any) -> None:
    app, state, clock = sim
    shop = state.accounts["tiktok"][0].account_id
    old = state.current("tiktok", shop, "refresh")
    assert old is not None
    q = {
        "app_key": state.tiktok_app_key,
        "app_secret": state.tiktok_app_secret,
        "refresh_token": old.value,
        "grant_type": "refresh_token",
    }
    body = call(app, "GET", "/tiktok-auth/api/v2/token/refresh", params=q).json()
    assert body["code"] == 0
    now = int(clock.now.timestamp())
    assert body["data"]["access_token_expire_in"] == now + 7 * 86400  # ABS, not REL
    assert body["data"]["refresh_token_expire_in"] == int(old.expires_at.timestamp())  # type: ignore[union-attr]
    again = call(app, "GET", "/tiktok-auth/api/v2/token/refresh", params=q).json()
    assert again["code"] != 0


def test_orders_search_pages_and_signs_the_body(sim: Any) -> None:
    app, state, clock = sim
    cipher = state.accounts["tiktok"][0].extra["cipher"]
    now = int(clock.now.timestamp())
    body = json.dumps({"create_time_ge": now - 30 * 86400 - 10}).encode()
    too_big = request(
        app,
        state,
        clock,
        "POST",
        "/order/202309/orders/search",
        extra={"shop_cipher": cipher, "page_size": "101"},
        body=body,
    )
    assert too_big.status_code == 400
    seen: list[str] = []
    token = ""
    while True:
        extra = {"shop_cipher": cipher, "page_size": "100"}
        if token:
            extra["page_token"] = token
        r = request(
            app, state, clock, "POST", "/order/202309/orders/search", extra=extra, body=body
        )
        data = r.json()["data"]
        seen += [o["id"] for o in data["orders"]]
        token = data["next_page_token"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == data["total_count"] == 250
    # A body that was not signed (sign computed without it) is rejected.
    params = {"app_key": state.tiktok_app_key, "timestamp": str(now), "shop_cipher": cipher}
    params["page_size"] = "10"
    params["sign"] = sign(state.tiktok_app_secret, "/order/202309/orders/search", params)
    access = state.current("tiktok", state.accounts["tiktok"][0].account_id, "access")
    assert access is not None
    r = call(
        app,
        "POST",
        "/tiktok/order/202309/orders/search",
        params=params,
        content=body,
        headers={"x-tts-access-token": access.value, "content-type": "application/json"},
    )
    assert r.json()["code"] == 106001
