"""The Shopee simulator, driven with requests signed by hand from platforms.md §2.2."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import NOW, FakeClock, call


def sign(key: str, base: str) -> str:
    return hmac.new(key.encode(), base.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def sim() -> tuple[Any, SimulatorState, FakeClock]:
    clock = FakeClock()
    app, state = build_simulator(seed=11, clock=clock)
    return app, state, clock


def shop_query(state: SimulatorState, path: str, *, ts: int, token: str | None = None) -> dict:
    shop = state.accounts["shopee"][0].account_id
    access = token or state.current("shopee", shop, "access").value  # type: ignore[union-attr]
    base = f"{state.shopee_partner_id}{path}{ts}{access}{shop}"
    return {
        "partner_id": state.shopee_partner_id,
        "timestamp": ts,
        "access_token": access,
        "shop_id": shop,
        "sign": sign(state.shopee_partner_key, base),
    }


def test_healthy_ping_has_top_level_fields_and_date(sim: Any) -> None:
    app, state, _ = sim
    path = "/api/v2/shop/get_shop_info"
    r = call(app, "GET", "/shopee" + path, params=shop_query(state, path, ts=int(NOW.timestamp())))
    body = r.json()
    assert r.status_code == 200
    assert body["error"] == "" and body["shop_name"] == "Thời Trang Hà My"
    assert "response" not in body
    assert r.headers["date"] == "Thu, 26 Nov 2026 03:00:00 GMT"


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda q: {**q, "sign": q["sign"].upper()}, "error_sign", "Wrong sign."),
        (lambda q: {**q, "sign": "0" * 64}, "error_sign", "Wrong sign."),
        (lambda q: {k: v for k, v in q.items() if k != "sign"}, "error_param", None),
        (lambda q: {**q, "partner_id": 1}, "invalid_partner_id", None),
    ],
    ids=["upper-hex", "wrong-sign", "no-sign", "wrong-partner"],
)
def test_bad_signatures_rejected(sim: Any, mutate: Any, error: str, message: str | None) -> None:
    app, state, _ = sim
    path = "/api/v2/shop/get_shop_info"
    q = mutate(shop_query(state, path, ts=int(NOW.timestamp())))
    body = call(app, "GET", "/shopee" + path, params=q).json()
    assert body["error"] == error
    if message:
        assert body["message"] == message


def test_wrong_key_and_milliseconds_rejected(sim: Any) -> None:
    app, state, _ = sim
    path = "/api/v2/shop/get_shop_info"
    q = shop_query(state, path, ts=int(NOW.timestamp()))
    shop = q["shop_id"]
    q["sign"] = sign(
        "wrong", f"{state.shopee_partner_id}{path}{q['timestamp']}{q['access_token']}{shop}"
    )
    assert call(app, "GET", "/shopee" + path, params=q).json()["error"] == "error_sign"
    ms = shop_query(state, path, ts=int(NOW.timestamp()) * 1000)
    body = call(app, "GET", "/shopee" + path, params=ms).json()
    assert (body["error"], body["message"]) == ("error_param", "Timestamp is expired.")
    late = shop_query(state, path, ts=int(NOW.timestamp()) - 301)
    assert call(app, "GET", "/shopee" + path, params=late).json()["error"] == "error_param"


def test_expired_access_token_uses_the_misspelled_code(sim: Any) -> None:
    app, state, clock = sim
    path = "/api/v2/shop/get_shop_info"
    clock.advance(hours=4, seconds=1)
    r = call(
        app, "GET", "/shopee" + path, params=shop_query(state, path, ts=int(clock.now.timestamp()))
    )
    assert r.json()["error"] == "invalid_acceess_token"
    assert r.status_code == 403


def refresh(app: Any, state: SimulatorState, refresh_token: str, ts: int) -> dict:
    path = "/api/v2/auth/access_token/get"
    q = {
        "partner_id": state.shopee_partner_id,
        "timestamp": ts,
        "sign": sign(state.shopee_partner_key, f"{state.shopee_partner_id}{path}{ts}"),
    }
    shop = int(state.accounts["shopee"][0].account_id)
    body = {"refresh_token": refresh_token, "partner_id": state.shopee_partner_id, "shop_id": shop}
    return call(app, "POST", "/shopee" + path, params=q, json=body).json()  # type: ignore[no-any-return]


def test_refresh_rotates_and_old_refresh_token_is_rejected(sim: Any) -> None:
    app, state, clock = sim
    shop = state.accounts["shopee"][0].account_id
    old = state.current("shopee", shop, "refresh").value
    clock.advance(hours=5)  # access token expired; refresh still fine
    ts = int(clock.now.timestamp())
    first = refresh(app, state, old, ts)
    assert first["error"] == "" and first["expire_in"] == 14400
    assert first["refresh_token"] != old
    again = refresh(app, state, old, ts)
    assert (again["error"], again["message"]) == ("error_auth", "Invalid refresh_token.")
    path = "/api/v2/shop/get_shop_info"
    q = shop_query(state, path, ts=ts, token=first["access_token"])
    assert call(app, "GET", "/shopee" + path, params=q).json()["error"] == ""
    assert refresh(app, state, first["refresh_token"], ts)["error"] == ""


def order_list(app: Any, state: SimulatorState, **params: Any) -> dict:
    path = "/api/v2/order/get_order_list"
    q = {**shop_query(state, path, ts=int(NOW.timestamp())), **params}
    return call(app, "GET", "/shopee" + path, params=q).json()  # type: ignore[no-any-return]


def test_order_list_window_and_page_size_limits(sim: Any) -> None:
    app, state, _ = sim
    now = int(NOW.timestamp())
    common = {"time_range_field": "create_time", "page_size": 50, "cursor": ""}
    body = order_list(app, state, time_from=now - 16 * 86400, time_to=now, **common)
    assert body["error"] == "order.order_list_invalid_time"
    assert body["message"] == "Start time must be earlier than end time and diff in 15days."
    assert order_list(app, state, time_from=now, time_to=now - 1, **common)["error"] == (
        "order.order_list_invalid_time"
    )
    too_big = {**common, "page_size": 101}
    assert order_list(app, state, time_from=now - 86400, time_to=now, **too_big)["error"] == (
        "error_param"
    )


def test_order_list_cursor_paging_returns_ids_only(sim: Any) -> None:
    app, state, _ = sim
    now = int(NOW.timestamp())
    seen: list[str] = []
    cursor = ""
    while True:
        body = order_list(
            app,
            state,
            time_range_field="create_time",
            time_from=now - 15 * 86400,
            time_to=now,
            page_size=40,
            cursor=cursor,
        )
        resp = body["response"]
        seen += [o["order_sn"] for o in resp["order_list"]]
        assert all(set(o) == {"order_sn"} for o in resp["order_list"])
        if not resp["more"]:
            assert resp["next_cursor"] == ""
            break
        cursor = resp["next_cursor"]
    expected = [
        o
        for o in state.accounts["shopee"][0].orders
        if o.create_time.timestamp() >= now - 15 * 86400
    ]
    assert len(seen) == len(set(seen)) == len(expected) > 40


def test_shops_by_partner_with_public_sign(sim: Any) -> None:
    app, state, _ = sim
    path = "/api/v2/public/get_shops_by_partner"
    ts = int(NOW.timestamp())
    q = {
        "partner_id": state.shopee_partner_id,
        "timestamp": ts,
        "sign": sign(state.shopee_partner_key, f"{state.shopee_partner_id}{path}{ts}"),
        "page_size": 10,
        "page_no": 1,
    }
    body = call(app, "GET", "/shopee" + path, params=q).json()
    assert body["authed_shop_list"][0]["shop_id"] == int(state.accounts["shopee"][0].account_id)


def test_state_is_deterministic_per_seed() -> None:
    a, b = SimulatorState(5, FakeClock()), SimulatorState(5, FakeClock())
    assert a.shopee_partner_key == b.shopee_partner_key
    assert [o.order_id for o in a.accounts["shopee"][0].orders] == [
        o.order_id for o in b.accounts["shopee"][0].orders
    ]
    assert len(a.accounts["lazada"][0].orders) == 250
    assert len(a.accounts["zalo"][0].conversations) == 40
    assert SimulatorState(6, FakeClock()).shopee_partner_key != a.shopee_partner_key
