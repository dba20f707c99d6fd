"""The platforms' own webhook APIs, signed by hand from platforms.md: Shopee's push config and
lost pushes, Facebook's subscribed_apps, TikTok's webhooks; and ``registrations:``."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.faults import FaultPlan
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import NOW, FakeClock, call

CONFIG = "/api/v2/push/get_app_push_config"
LOST = "/api/v2/push/get_lost_push_message"
CONFIRM = "/api/v2/push/confirm_consumed_lost_push_message"


def build(
    plan: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[Any, SimulatorState, FakeClock]:
    clock = FakeClock()
    faults = FaultPlan.from_mapping(plan or {}, source="test.yaml")
    app, state = build_simulator(seed=11, faults=faults, clock=clock, **kwargs)
    for name in state.accounts:
        state.webhook_urls[name] = f"https://{name}.crm.nfdoctor.test/crm/webhooks/{name}"
    return app, state, clock


def hexmac(key: str, msg: str) -> str:
    return hmac.new(key.encode(), msg.encode(), hashlib.sha256).hexdigest()


# --- Shopee (public sign, §2.2 / §2.8) -----------------------------------------------------


def shopee(
    app: Any,
    state: SimulatorState,
    clock: FakeClock,
    method: str,
    path: str,
    *,
    body: Any = None,
    key: str | None = None,
) -> Any:
    ts = int(clock.now.timestamp())
    partner = state.shopee_partner_id
    query = {
        "partner_id": partner,
        "timestamp": ts,
        "sign": hexmac(key or state.shopee_partner_key, f"{partner}{path}{ts}"),
    }
    return call(app, method, "/shopee" + path, params=query, json=body)


def test_push_config_reports_the_configured_url_and_subscriptions() -> None:
    app, state, clock = build()
    r = shopee(app, state, clock, "GET", CONFIG)
    assert r.status_code == 200
    body = r.json()
    assert body["error"] == "" and body["request_id"]
    config = body["response"]
    assert config["callback_url"] == "https://shopee.crm.nfdoctor.test/crm/webhooks/shopee"
    assert config["live_push_status"] == "Normal"
    assert 10 in config["push_config_on_list"] and 10 not in config["push_config_off_list"]
    assert config["blocked_shop_id_list"] == []
    assert "suspended_time" not in config


def test_without_configured_urls_the_apis_report_the_simulators_own_receivers() -> None:
    # A server started without filling state.webhook_urls: the config the simulator writes
    # (without --tls) points at its own receivers, so that is what the platforms report.
    app, state = build_simulator(seed=11, clock=FakeClock(), orders_per_shop=0)
    clock = FakeClock()
    assert state.webhook_urls == {}
    config = shopee(app, state, clock, "GET", CONFIG).json()["response"]
    assert config["callback_url"] == "http://sim.test/crm/webhooks/shopee"
    webhooks = tiktok_webhooks(app, state, clock).json()["data"]["webhooks"]
    assert {w["address"] for w in webhooks} == {"http://sim.test/crm/webhooks/tiktok"}


def test_push_config_takes_the_plans_registration() -> None:
    shop = int(build()[1].accounts["shopee"][0].account_id)
    registration = {
        "callback_url": "https://old-crm.example.vn/webhooks/shopee",
        "live_push_status": "Suspended",
        "push_config_off_list": [10],
        "blocked_shop_id_list": [shop],
    }
    app, state, clock = build({"registrations": {"shopee": registration}})
    config = shopee(app, state, clock, "GET", CONFIG).json()["response"]
    assert {k: config[k] for k in registration} == registration
    assert config["suspended_time"] < int(NOW.timestamp())


def test_push_apis_refuse_a_wrong_sign() -> None:
    app, state, clock = build()
    for method, path in (("GET", CONFIG), ("GET", LOST), ("POST", CONFIRM)):
        r = shopee(
            app, state, clock, method, path, key="shpk" + "0" * 60, body={"last_message_id": 1}
        )
        assert r.status_code == 403
        assert (r.json()["error"], r.json()["message"]) == ("error_sign", "Wrong sign.")
        assert "response" not in r.json()


def lost(app: Any, state: SimulatorState, clock: FakeClock) -> dict[str, Any]:
    r = shopee(app, state, clock, "GET", LOST)
    assert r.status_code == 200 and r.json()["error"] == ""
    return r.json()["response"]


def confirm(app: Any, state: SimulatorState, clock: FakeClock, last: Any) -> Any:
    return shopee(app, state, clock, "POST", CONFIRM, body={"last_message_id": last})


def test_seeded_lost_pushes_are_messages_the_crm_lacks_and_order_statuses() -> None:
    app, state, clock = build(
        {"lost_pushes": {"shopee": 7}}, accounts_per_platform=2, orders_per_shop=30
    )
    page = lost(app, state, clock)
    items = page["push_message_list"]
    assert len(items) == 7 and page["has_next_page"] is False
    shops = {int(a.account_id) for a in state.accounts["shopee"]}
    assert {item["shop_id"] for item in items} == shops  # the real shops, in turn
    codes = [item["code"] for item in items]
    assert codes.count(3) == 2 and codes.count(10) == 5
    window = (int((NOW - timedelta(days=3)).timestamp()), int(NOW.timestamp()))
    assert all(window[0] <= item["timestamp"] <= window[1] for item in items)
    orders = {o.order_id: o.status for a in state.accounts["shopee"] for o in a.orders}
    for item in items:
        data = json.loads(item["data"])  # the push's data, as a JSON string
        if item["code"] == 3:
            assert orders[data["ordersn"]] == data["status"]
        else:
            content = data["content"]
            assert data["type"] == "message" and len(content["message_id"]) == 19
            assert content["to_id"] == item["shop_id"] and content["content"]["text"]
    ids = [json.loads(i["data"])["content"]["message_id"] for i in items if i["code"] == 10]
    assert len(set(ids)) == len(ids)


def test_lost_pushes_page_by_100_and_confirm_consumes_up_to_the_id() -> None:
    app, state, clock = build({"lost_pushes": {"shopee": 250}}, orders_per_shop=5)
    seen: list[str] = []
    pages = []
    while True:
        page = lost(app, state, clock)
        pages.append((len(page["push_message_list"]), page["has_next_page"]))
        if not page["push_message_list"]:
            assert page["last_message_id"] == 0
            break
        seen += [item["data"] for item in page["push_message_list"]]
        # Not confirmed yet: the same page again.
        assert lost(app, state, clock)["last_message_id"] == page["last_message_id"]
        assert confirm(app, state, clock, page["last_message_id"]).json()["error"] == ""
    assert pages == [(100, True), (100, True), (50, False), (0, False)]
    assert len(seen) == len(set(seen)) == 250


def test_confirm_consumes_everything_up_to_n_and_only_that() -> None:
    app, state, clock = build({"lost_pushes": {"shopee": 10}}, orders_per_shop=5)
    first = lost(app, state, clock)
    ids = [p.push_id for p in state.lost_pushes("shopee")]
    assert first["last_message_id"] == ids[-1]
    assert confirm(app, state, clock, ids[3]).status_code == 200
    after = lost(app, state, clock)
    assert len(after["push_message_list"]) == 6
    assert after["push_message_list"] == first["push_message_list"][4:]
    assert [p.push_id for p in state.lost_pushes("shopee")] == ids[4:]


@pytest.mark.parametrize("value", ["12", -1, None, True, 1.5])
def test_confirm_needs_a_whole_last_message_id(value: Any) -> None:
    app, state, clock = build({"lost_pushes": {"shopee": 3}}, orders_per_shop=5)
    r = confirm(app, state, clock, value)
    assert r.json()["error"] == "error_param" and "last_message_id" in r.json()["message"]
    assert len(state.lost_pushes("shopee")) == 3


def test_only_the_last_3_days_are_listed() -> None:
    app, state, clock = build({"lost_pushes": {"shopee": 40}}, orders_per_shop=5)
    oldest = min(p.at for p in state.lost_pushes("shopee"))
    clock.now = oldest + timedelta(days=3, seconds=1)
    items = lost(app, state, clock)["push_message_list"]
    assert 0 < len(items) < 40
    assert min(i["timestamp"] for i in items) >= int((clock.now - timedelta(days=3)).timestamp())


# --- Facebook (page token, appsecret_proof, §5.8) -------------------------------------------


def subscribed_apps(
    app: Any, state: SimulatorState, page: str | None = None, proof: str | None = None
) -> Any:
    own = state.accounts["facebook"][0].account_id
    token = state.current("facebook", own, "access")
    assert token is not None
    params = {
        "access_token": token.value,
        "appsecret_proof": proof or hexmac(state.facebook_app_secret, token.value),
    }
    return call(app, "GET", f"/facebook/v21.0/{page or own}/subscribed_apps", params=params)


def test_subscribed_apps_lists_the_crms_app_with_its_fields() -> None:
    app, state, _ = build()
    r = subscribed_apps(app, state)
    assert r.status_code == 200
    [entry] = r.json()["data"]
    assert entry["id"] == state.facebook_app_id and entry["name"] == "NextFlow CRM"
    assert "messages" in entry["subscribed_fields"]


def test_subscribed_apps_is_authenticated_like_the_other_graph_calls() -> None:
    app, state, _ = build(accounts_per_platform=2)
    bad = subscribed_apps(app, state, proof="0" * 64)
    assert bad.status_code == 400
    assert (bad.json()["error"]["code"], bad.json()["error"]["type"]) == (
        100,
        "GraphMethodException",
    )
    other = subscribed_apps(app, state, page=state.accounts["facebook"][1].account_id)
    assert other.status_code == 400 and other.json()["error"]["code"] == 100
    anonymous = call(
        app, "GET", f"/facebook/v21.0/{state.accounts['facebook'][0].account_id}/subscribed_apps"
    )
    assert anonymous.status_code == 400 and "fbtrace_id" in anonymous.json()["error"]


def test_subscribed_apps_follows_the_registrations() -> None:
    app, state, _ = build(
        {"registrations": {"facebook": {"subscribed_fields": ["feed"], "name": "Old CRM"}}}
    )
    [entry] = subscribed_apps(app, state).json()["data"]
    assert (entry["subscribed_fields"], entry["name"]) == (["feed"], "Old CRM")
    app, state, _ = build({"registrations": {"facebook": {"subscribed_fields": None}}})
    assert subscribed_apps(app, state).json() == {"data": []}


# --- TikTok (signed, shop_cipher, §4.8) ------------------------------------------------------


def tiktok_webhooks(
    app: Any,
    state: SimulatorState,
    clock: FakeClock,
    *,
    cipher: str | None = "own",
    secret: str | None = None,
) -> Any:
    path = "/event/202309/webhooks"
    shop = state.accounts["tiktok"][0]
    params = {"app_key": state.tiktok_app_key, "timestamp": str(int(clock.now.timestamp()))}
    if cipher is not None:
        params["shop_cipher"] = shop.extra["cipher"] if cipher == "own" else cipher
    key = secret or state.tiktok_app_secret
    inner = path + "".join(f"{k}{params[k]}" for k in sorted(params))
    params["sign"] = hexmac(key, key + inner + key)
    token = state.current("tiktok", shop.account_id, "access")
    assert token is not None
    return call(
        app, "GET", "/tiktok" + path, params=params, headers={"x-tts-access-token": token.value}
    )


def test_tiktok_lists_the_shops_webhooks() -> None:
    app, state, clock = build()
    r = tiktok_webhooks(app, state, clock)
    assert r.status_code == 200
    body = r.json()
    assert (body["code"], body["message"]) == (0, "Success") and body["request_id"]
    webhooks = body["data"]["webhooks"]
    assert body["data"]["total_count"] == len(webhooks) == 3
    assert {w["event_type"] for w in webhooks} >= {"NEW_MESSAGE", "ORDER_STATUS_CHANGE"}
    assert {w["address"] for w in webhooks} == {
        "https://tiktok.crm.nfdoctor.test/crm/webhooks/tiktok"
    }
    assert all(
        isinstance(w["create_time"], int) and w["update_time"] >= w["create_time"] for w in webhooks
    )


def test_tiktok_webhooks_are_signed_like_its_other_endpoints() -> None:
    app, state, clock = build(accounts_per_platform=2)
    bad = tiktok_webhooks(app, state, clock, secret="f" * 40)
    assert (bad.status_code, bad.json()["code"]) == (401, 106001)
    missing = tiktok_webhooks(app, state, clock, cipher=None)
    assert missing.json()["code"] == 106013
    other = tiktok_webhooks(app, state, clock, cipher=state.accounts["tiktok"][1].extra["cipher"])
    assert other.json()["code"] == 101000


def test_tiktok_webhooks_follow_the_registrations() -> None:
    app, state, clock = build({"registrations": {"tiktok": {"address": None}}})
    assert tiktok_webhooks(app, state, clock).json()["data"] == {"webhooks": [], "total_count": 0}
    moved = {"address": "https://old.example.vn/tt", "event_types": ["ORDER_STATUS_CHANGE"]}
    app, state, clock = build({"registrations": {"tiktok": moved}})
    [webhook] = tiktok_webhooks(app, state, clock).json()["data"]["webhooks"]
    assert (webhook["event_type"], webhook["address"]) == ("ORDER_STATUS_CHANGE", moved["address"])
