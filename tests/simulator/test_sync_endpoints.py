"""What ``nfdoctor sync`` reads from the simulator: the order list and detail endpoints with
their documented shapes and limits, the chat listings, the ground truth, and the data
changing while the server runs.

Requests are signed by hand from platforms.md (§2.2, §3.2, §4.2, §5.2, §6.2), never with
``nfdoctor.platforms``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from nfdoctor.cli.simulator_cmd import simulator
from nfdoctor.context import Environment
from nfdoctor.services.simulator import SimulatorRequest, start_simulator
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.registry import sim_platform
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import NOW, FakeClock, call

SHOPEE_LIST = "/api/v2/order/get_order_list"
SHOPEE_DETAIL = "/api/v2/order/get_order_detail"
OPTIONAL = "buyer_user_id,buyer_username,total_amount"
VN = timezone(timedelta(hours=7))


def _hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


class Sim:
    """The in-process simulator and hand-signed calls to it, one method per platform."""

    def __init__(self, app: Any, state: SimulatorState, clock: FakeClock) -> None:
        self.app, self.state, self.clock = app, state, clock

    def account(self, platform: str, index: int = 0) -> str:
        return self.state.accounts[platform][index].account_id

    def token(self, platform: str, index: int = 0) -> str:
        token = self.state.current(platform, self.account(platform, index), "access")
        assert token is not None
        return token.value

    def shopee(self, path: str, index: int = 0, **extra: Any) -> httpx.Response:
        """A shop call (§2.2: partner_id ‖ path ‖ ts ‖ access_token ‖ shop_id)."""
        state, shop, token = self.state, self.account("shopee", index), self.token("shopee", index)
        ts = int(self.clock().timestamp())
        base = f"{state.shopee_partner_id}{path}{ts}{token}{shop}"  # type: ignore[attr-defined]
        params = {
            "partner_id": state.shopee_partner_id,  # type: ignore[attr-defined]
            "timestamp": ts,
            "access_token": token,
            "shop_id": shop,
            "sign": _hmac(state.shopee_partner_key, base.encode()),  # type: ignore[attr-defined]
            **extra,
        }
        return call(self.app, "GET", "/shopee" + path, params=params)

    def lazada(self, api_path: str, index: int = 0, **extra: str) -> httpx.Response:
        """A seller call (§3.2: every parameter signed, uppercase hex)."""
        params = {
            "app_key": self.state.lazada_app_key,  # type: ignore[attr-defined]
            "sign_method": "sha256",
            "timestamp": str(int(self.clock().timestamp() * 1000)),
            "access_token": self.token("lazada", index),
            **extra,
        }
        base = api_path + "".join(f"{k}{params[k]}" for k in sorted(params))
        secret = self.state.lazada_app_secret  # type: ignore[attr-defined]
        params["sign"] = _hmac(secret, base.encode()).upper()
        return call(self.app, "GET", "/lazada/rest" + api_path, params=params)

    def tiktok(
        self,
        method: str,
        path: str,
        index: int = 0,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        shop_scoped: bool = True,
    ) -> httpx.Response:
        """A signed call (§4.2: secret-wrapped, the raw body appended)."""
        raw = json.dumps(body).encode() if body is not None else b""
        params = {
            "app_key": self.state.tiktok_app_key,  # type: ignore[attr-defined]
            "timestamp": str(int(self.clock().timestamp())),
            **(query or {}),
        }
        if shop_scoped:
            params["shop_cipher"] = self.state.accounts["tiktok"][index].extra["cipher"]
        inner = path + "".join(f"{k}{params[k]}" for k in sorted(params))
        secret = self.state.tiktok_app_secret  # type: ignore[attr-defined]
        params["sign"] = _hmac(secret, secret.encode() + inner.encode() + raw + secret.encode())
        headers = {"x-tts-access-token": self.token("tiktok", index)}
        if raw:
            headers["content-type"] = "application/json"
        return call(self.app, method, "/tiktok" + path, params=params, content=raw, headers=headers)

    def graph(self, path: str, token: str | None = None, **extra: str) -> httpx.Response:
        """A Graph call with a Page token (or ``token``) and its appsecret_proof (§5.2)."""
        value = token or self.token("facebook")
        secret = self.state.facebook_app_secret  # type: ignore[attr-defined]
        params = {"access_token": value, "appsecret_proof": _hmac(secret, value.encode())}
        version = self.state.facebook_version  # type: ignore[attr-defined]
        return call(self.app, "GET", f"/facebook/{version}{path}", params={**params, **extra})

    def zalo(self, path: str, data: dict[str, Any] | None = None, index: int = 0) -> httpx.Response:
        """An OA call, the token in the ``access_token`` header (§6.2)."""
        params = {"data": json.dumps(data)} if data is not None else None
        headers = {"access_token": self.token("zalo", index)}
        return call(self.app, "GET", "/zalo" + path, params=params, headers=headers)


def make_sim(**kwargs: Any) -> Sim:
    clock = FakeClock()
    options = {"accounts_per_platform": 2, "orders_per_shop": 120, "conversations_per_account": 6}
    app, state = build_simulator(seed=5, clock=clock, **{**options, **kwargs})
    return Sim(app, state, clock)


@pytest.fixture
def sim() -> Sim:
    return make_sim()


def truth_orders(sim: Sim, platform: str, index: int = 0) -> dict[str, dict[str, Any]]:
    account = sim.account(platform, index)
    truth = sim.state.ground_truth(platform, account)
    return {o["order_id"]: o for o in truth["accounts"][0]["orders"]}


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


# ---- Shopee (§2.5) ---------------------------------------------------------------------------


def shopee_list_all(sim: Sim, field: str, since: datetime, until: datetime) -> list[str]:
    """Every order number of [since, until] by ``field``, in windows of at most 15 days."""
    found: list[str] = []
    start = since
    while start < until:
        end = min(start + timedelta(days=15), until)
        cursor = ""
        while True:
            body = sim.shopee(
                SHOPEE_LIST,
                time_range_field=field,
                time_from=int(start.timestamp()),
                time_to=int(end.timestamp()),
                page_size=37,
                cursor=cursor,
            ).json()
            assert body["error"] == "", body
            response = body["response"]
            found += [o["order_sn"] for o in response["order_list"]]
            assert all(set(o) == {"order_sn"} for o in response["order_list"])  # ids only
            if not response["more"]:
                assert response["next_cursor"] == ""
                break
            cursor = response["next_cursor"]
            assert isinstance(cursor, str) and cursor
        start = end
    return list(dict.fromkeys(found))


def test_shopee_detail_returns_defaults_and_only_the_optional_fields_asked(sim: Sim) -> None:
    truth = truth_orders(sim, "shopee")
    sns = list(truth)[:3]
    plain = sim.shopee(SHOPEE_DETAIL, order_sn_list=",".join(sns)).json()
    assert plain["error"] == "" and plain["message"] == "" and "warning" not in plain
    orders = plain["response"]["order_list"]
    assert [o["order_sn"] for o in orders] == sns  # in the order asked
    default = {
        "order_sn",
        "region",
        "currency",
        "cod",
        "order_status",
        "message_to_seller",
        "create_time",
        "update_time",
        "days_to_ship",
        "ship_by_date",
    }
    assert all(set(o) == default for o in orders)
    rich = sim.shopee(
        SHOPEE_DETAIL, order_sn_list=",".join(sns), response_optional_fields=OPTIONAL
    ).json()
    for order in rich["response"]["order_list"]:
        expected = truth[order["order_sn"]]
        assert set(order) == default | {"buyer_user_id", "buyer_username", "total_amount"}
        assert isinstance(order["buyer_user_id"], int)
        assert str(order["buyer_user_id"]) == expected["buyer_user_id"]
        assert order["buyer_username"] == expected["buyer_name"]
        assert order["total_amount"] == expected["amount"]
        assert order["currency"] == expected["currency"] == "VND"
        assert order["order_status"] == expected["platform_status"]
        assert order["create_time"] == ts(expected["create_time"])
        assert order["update_time"] == ts(expected["update_time"])


def test_shopee_detail_limits_and_unknown_order_numbers(sim: Sim) -> None:
    truth = list(truth_orders(sim, "shopee"))
    empty = sim.shopee(SHOPEE_DETAIL, order_sn_list="").json()
    assert empty["error"] == "error_param"
    too_many = sim.shopee(SHOPEE_DETAIL, order_sn_list=",".join(truth[:51])).json()
    assert too_many["error"] == "error_param" and "[1, 50]" in too_many["message"]
    fifty = sim.shopee(SHOPEE_DETAIL, order_sn_list=",".join(truth[:50])).json()
    assert len(fifty["response"]["order_list"]) == 50
    unknown = sim.shopee(SHOPEE_DETAIL, order_sn_list="991231NOSUCH01").json()
    assert unknown["error"] == "error_not_found"
    assert unknown["message"] == "Wrong parameters, detail: the order is not found."
    # Another shop's order is not this shop's: left out and named in the warning.
    other = next(iter(truth_orders(sim, "shopee", 1)))
    mixed = sim.shopee(SHOPEE_DETAIL, order_sn_list=f"{truth[0]},{other}").json()
    assert mixed["error"] == ""
    assert [o["order_sn"] for o in mixed["response"]["order_list"]] == [truth[0]]
    assert mixed["warning"] == [f"order_sn {other} is not found."]


def test_shopee_list_limits(sim: Sim) -> None:
    now = int(NOW.timestamp())

    def listing(**params: Any) -> dict[str, Any]:
        base = {
            "time_range_field": "create_time",
            "time_from": now - 86400,
            "time_to": now,
            "page_size": 10,
        }
        body: dict[str, Any] = sim.shopee(SHOPEE_LIST, **{**base, **params}).json()
        return body

    assert listing(time_from=now - 15 * 86400)["error"] == ""
    for bad in ({"time_from": now - 15 * 86400 - 1}, {"time_from": now}, {"time_from": now + 5}):
        body = listing(**bad)
        assert body["error"] == "order.order_list_invalid_time"
        assert body["message"] == "Start time must be earlier than end time and diff in 15days."
    for size in (0, 101, "x"):
        assert listing(page_size=size)["error"] == "error_param"
    assert listing(page_size=100)["error"] == ""
    assert listing(time_range_field="pay_time")["error"] == "error_param"
    assert listing(order_status="PAID")["error"] == "error_param"
    assert listing(cursor="nope")["error"] == "error_param"


def test_shopee_pages_follow_the_time_range_field(sim: Sim) -> None:
    truth = truth_orders(sim, "shopee")
    since = NOW - timedelta(days=3)
    by_update = shopee_list_all(sim, "update_time", since, NOW)
    expected = [sn for sn, o in truth.items() if ts(o["update_time"]) >= since.timestamp()]
    assert sorted(by_update) == sorted(expected) and expected
    by_create = shopee_list_all(sim, "create_time", since, NOW)
    assert sorted(by_create) == sorted(
        sn for sn, o in truth.items() if ts(o["create_time"]) >= since.timestamp()
    )
    assert set(by_create) < set(by_update)  # updated later than created, for some
    status = next(iter(truth.values()))["platform_status"]
    listed = sim.shopee(
        SHOPEE_LIST,
        time_range_field="create_time",
        time_from=int((NOW - timedelta(days=15)).timestamp()),
        time_to=int(NOW.timestamp()),
        page_size=100,
        order_status=status,
        response_optional_fields="order_status",
    ).json()["response"]["order_list"]
    assert listed and {o["order_status"] for o in listed} == {status}


# ---- Lazada (§3.5) ---------------------------------------------------------------------------


def test_lazada_list_item_carries_the_buyers_name_but_no_buyer_id(sim: Sim) -> None:
    truth = truth_orders(sim, "lazada")
    body = sim.lazada(
        "/orders/get", created_after="2026-10-01T00:00:00+07:00", limit="5", offset="0"
    ).json()
    assert body["code"] == "0"
    data = body["data"]
    assert data["count"] == "5" and data["countTotal"] == str(len(truth))
    for item in data["orders"]:
        expected = truth[item["order_id"]]
        assert item["order_number"] == item["order_id"]
        assert item["statuses"] == [expected["platform_status"]]
        assert item["price"] == f"{expected['amount']:.2f}"
        assert item["customer_first_name"] == expected["buyer_name"]
        assert item["customer_last_name"] == ""  # "Empty for now" (LZ-API GetOrders)
        assert "buyer_id" not in item and "currency" not in item
        assert item["created_at"].endswith("+07:00")
        assert ts(item["created_at"]) == ts(expected["create_time"])
        assert ts(item["updated_at"]) == ts(expected["update_time"])


def test_lazada_order_get(sim: Sim) -> None:
    truth = truth_orders(sim, "lazada")
    order_id = next(iter(truth))
    body = sim.lazada("/order/get", order_id=order_id).json()
    assert body["code"] == "0" and body["data"]["order_id"] == order_id
    listed = sim.lazada(
        "/orders/get", created_after="2026-10-01T00:00:00+07:00", sort_direction="ASC", limit="5"
    )
    item = next(o for o in listed.json()["data"]["orders"] if o["order_id"] == order_id)
    assert body["data"] == item  # the same object as the list item
    other = next(iter(truth_orders(sim, "lazada", 1)))
    refused = sim.lazada("/order/get", order_id=other).json()
    assert refused["code"] == "16" and refused["message"] == f'E016: "{other}" Invalid Order ID'
    assert sim.lazada("/order/get").json()["code"] == "MissingParameter"


def test_lazada_order_items_carry_buyer_id_and_currency(sim: Sim) -> None:
    truth = truth_orders(sim, "lazada")
    ids = list(truth)[:3]
    body = sim.lazada("/orders/items/get", order_ids="[" + ", ".join(ids) + "]").json()
    assert body["code"] == "0"
    assert [entry["order_id"] for entry in body["data"]] == ids
    for entry in body["data"]:
        expected = truth[entry["order_id"]]
        assert entry["order_number"] == entry["order_id"]
        (item,) = entry["order_items"]
        assert item["buyer_id"] == expected["buyer_user_id"]
        assert item["currency"] == "VND"
        assert item["status"] == expected["platform_status"]
        assert item["paid_price"] == f"{expected['amount']:.2f}"
        assert item["order_id"] == entry["order_id"]
    all_ids = list(truth)
    codes = {
        "1,2": "56",
        "[a,b]": "56",
        "[]": "56",
        "[" + ",".join(all_ids[:51]) + "]": "38",
        f"[{ids[0]},999999999999999]": "37",
        "[999999999999999]": "39",
    }
    for value, code in codes.items():
        assert sim.lazada("/orders/items/get", order_ids=value).json()["code"] == code, value
    fifty = sim.lazada("/orders/items/get", order_ids="[" + ",".join(all_ids[:50]) + "]")
    assert len(fifty.json()["data"]) == 50


def test_lazada_list_limits(sim: Sim) -> None:
    after = "2026-10-01T00:00:00+07:00"
    cases = [
        ({"created_after": after, "limit": "101"}, "19"),
        ({"created_after": after, "limit": "0"}, "19"),
        ({"created_after": after, "offset": "5001"}, "14"),
        ({"created_after": after, "offset": "-1"}, "14"),
        ({"created_after": "2026-10-01"}, "17"),
        ({"created_after": "2026-10-01T00:00:00"}, "17"),
        ({"created_after": after, "sort_by": "price"}, "75"),
        ({"created_after": after, "sort_direction": "UP"}, "74"),
        ({"created_after": after, "status": "paid"}, "36"),
        ({"created_before": after}, "MissingParameter"),
    ]
    for params, code in cases:
        assert sim.lazada("/orders/get", **params).json()["code"] == code, params
    at_the_edge = sim.lazada("/orders/get", created_after=after, offset="5000").json()
    assert at_the_edge["code"] == "0" and at_the_edge["data"]["orders"] == []


def test_lazada_update_window_and_sort(sim: Sim) -> None:
    truth = truth_orders(sim, "lazada")
    since = NOW - timedelta(days=4)
    body = sim.lazada(
        "/orders/get",
        update_after=since.astimezone(VN).isoformat(),
        sort_by="updated_at",
        sort_direction="ASC",
        limit="100",
    ).json()["data"]
    listed = body["orders"]
    expected = [i for i, o in truth.items() if ts(o["update_time"]) >= since.timestamp()]
    assert sorted(o["order_id"] for o in listed) == sorted(expected)
    assert body["countTotal"] == str(len(expected))
    times = [ts(o["updated_at"]) for o in listed]
    assert times == sorted(times)


# ---- TikTok Shop (§4.5) ----------------------------------------------------------------------


def tiktok_search(sim: Sim, body: dict[str, Any] | None = None, **query: str) -> dict[str, Any]:
    response = sim.tiktok(
        "POST", "/order/202309/orders/search", query={"page_size": "50", **query}, body=body
    )
    data: dict[str, Any] = response.json()
    return data


def tiktok_all(sim: Sim) -> dict[str, dict[str, Any]]:
    """Every order of the first shop, page after page (the opaque ``page_token``)."""
    seen: dict[str, dict[str, Any]] = {}
    token = ""
    while True:
        query = {"page_token": token} if token else {}
        body = tiktok_search(sim, **query)
        assert body["code"] == 0, body
        assert body["data"]["total_count"] == len(sim.state.accounts["tiktok"][0].orders)
        seen.update({o["id"]: o for o in body["data"]["orders"]})
        token = body["data"]["next_page_token"]
        if not token:
            return seen


def test_tiktok_search_returns_full_orders_with_the_buyer(sim: Sim) -> None:
    truth = truth_orders(sim, "tiktok")
    seen = tiktok_all(sim)
    assert set(seen) == set(truth)
    for order_id, order in seen.items():
        expected = truth[order_id]
        assert order["user_id"] == expected["buyer_user_id"]
        assert order["status"] == expected["platform_status"]
        assert order["payment"]["currency"] == "VND"
        assert order["payment"]["total_amount"] == str(expected["amount"])
        assert order["create_time"] == ts(expected["create_time"])
        assert order["update_time"] == ts(expected["update_time"])
        if expected["platform_status"] in ("UNPAID", "ON_HOLD"):
            assert "recipient_address" not in order  # TT-API: not under UNPAID, ON_HOLD
        else:
            assert order["recipient_address"]["name"] == expected["buyer_name"]
    assert any("recipient_address" not in o for o in seen.values())


def test_tiktok_search_filters_and_sorts(sim: Sim) -> None:
    truth = truth_orders(sim, "tiktok")
    since = int((NOW - timedelta(days=5)).timestamp())
    until = int((NOW - timedelta(days=1)).timestamp())
    body = tiktok_search(
        sim,
        {"update_time_ge": since, "update_time_lt": until},
        sort_field="update_time",
        sort_order="ASC",
        page_size="100",
    )
    orders = body["data"]["orders"]
    expected = [i for i, o in truth.items() if since <= ts(o["update_time"]) < until]
    assert sorted(o["id"] for o in orders) == sorted(expected) and expected
    assert body["data"]["total_count"] == len(expected)
    times = [o["update_time"] for o in orders]
    assert times == sorted(times)
    created = tiktok_search(sim, {"create_time_ge": since}, page_size="100")["data"]["orders"]
    assert all(o["create_time"] >= since for o in created)
    assert [o["create_time"] for o in created] == sorted(
        (o["create_time"] for o in created), reverse=True
    )  # DESC by default


def test_tiktok_search_limits(sim: Sim) -> None:
    for query in (
        {"page_size": "0"},
        {"page_size": "101"},
        {"page_token": "not-a-token"},
        {"sort_order": "UP"},
        {"sort_field": "price"},
    ):
        response = sim.tiktok(
            "POST", "/order/202309/orders/search", query={"page_size": "20", **query}
        )
        assert response.status_code == 400 and response.json()["code"] == 40006, query
    assert tiktok_search(sim, page_size="100")["code"] == 0


def test_tiktok_order_detail(sim: Sim) -> None:
    truth = truth_orders(sim, "tiktok")
    ids = list(truth)[:4]
    body = sim.tiktok("GET", "/order/202309/orders", query={"ids": ",".join(ids)}).json()
    assert body["code"] == 0
    assert [o["id"] for o in body["data"]["orders"]] == ids
    listed = tiktok_all(sim)
    assert all(o == listed[o["id"]] for o in body["data"]["orders"])  # as the search lists it
    other = next(iter(truth_orders(sim, "tiktok", 1)))
    foreign = sim.tiktok("GET", "/order/202309/orders", query={"ids": f"{ids[0]},{other}"})
    assert foreign.status_code == 200 and foreign.json()["code"] == 21008111
    many = sim.tiktok("GET", "/order/202309/orders", query={"ids": ",".join(list(truth)[:51])})
    assert many.status_code == 400 and many.json()["code"] == 40006
    none = sim.tiktok("GET", "/order/202309/orders", query={"ids": ""})
    assert none.json()["code"] == 40006
    missing_cipher = sim.tiktok(
        "GET", "/order/202309/orders", query={"ids": ids[0]}, shop_scoped=False
    )
    assert missing_cipher.json()["code"] == 106013


# ---- chat listings (§5.5, §6.5) ------------------------------------------------------------


def truth_messages(sim: Sim, platform: str, index: int = 0) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sim.state.ground_truth(platform, sim.account(platform, index))[
        "accounts"
    ][0]["messages"]
    return messages


def test_facebook_conversations_page_with_graph_cursors(sim: Sim) -> None:
    page = sim.account("facebook")
    expected = list(dict.fromkeys(m["conversation_id"] for m in truth_messages(sim, "facebook")))
    seen: list[str] = []
    params: dict[str, str] = {"limit": "4"}
    while True:
        body = sim.graph(f"/{page}/conversations", **params).json()
        seen += [c["id"] for c in body["data"]]
        paging = body["paging"]
        assert set(paging["cursors"]) == {"before", "after"}
        if "next" not in paging:
            break
        params = {"limit": "4", "after": paging["cursors"]["after"]}
    assert seen == expected  # newest first, as the ground truth lists them
    conversation = expected[0]
    messages = sim.graph(f"/{conversation}/messages", fields="id,created_time,message,from").json()
    truth = [m for m in truth_messages(sim, "facebook") if m["conversation_id"] == conversation]
    assert [m["id"] for m in messages["data"]] == [m["message_id"] for m in reversed(truth)]
    assert [m["message"] for m in messages["data"]] == [m["text"] for m in reversed(truth)]


def test_facebook_reads_a_message_in_detail_only_among_the_twenty_most_recent(sim: Sim) -> None:
    page = sim.account("facebook")
    account = sim.state.accounts["facebook"][0]
    conversation = account.conversations[0]
    listed = sim.graph(f"/{page}/conversations", fields="id,updated_time,participants").json()
    first = listed["data"][0]
    assert first["id"] == conversation.conversation_id
    people = first["participants"]["data"]
    assert [p["id"] for p in people] == [conversation.user_id, page]
    assert people[0]["name"] == conversation.user_name and people[1]["name"] == account.name
    assert "participants" not in sim.graph(f"/{page}/conversations").json()["data"][0]
    for _ in range(21):  # push the first message out of the 20 most recent
        sim.clock.advance(seconds=5)
        sim.state.add_message("facebook", page, user_id=conversation.user_id)
    messages = conversation.messages
    newest, oldest_readable, too_old = messages[-1], messages[-20], messages[-21]
    detail = sim.graph(f"/{newest.message_id}", fields="id,created_time,from,to,message").json()
    assert detail == {
        "id": newest.message_id,
        "created_time": newest.time.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "from": {
            "name": conversation.user_name,
            "email": f"{conversation.user_id}@facebook.com",
            "id": conversation.user_id,
        },
        "to": {"data": [{"name": account.name, "email": f"{page}@facebook.com", "id": page}]},
        "message": newest.text,
    }
    default = sim.graph(f"/{oldest_readable.message_id}").json()
    assert set(default) == {"id", "created_time"}  # Graph's default fields
    refused = sim.graph(f"/{too_old.message_id}", fields="id,message")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 100
    assert "deleted" in refused.json()["error"]["message"]
    # Another Page's message is not this Page's to read.
    other = sim.state.accounts["facebook"][1].conversations[0].messages[-1].message_id
    foreign = sim.graph(f"/{other}").json()["error"]
    assert foreign["code"] == 100 and foreign["type"] == "GraphMethodException"


def test_zalo_listings_cap_count_at_ten_and_match_the_truth(sim: Sim) -> None:
    over = sim.zalo("/v2.0/oa/listrecentchat", {"offset": 0, "count": 11}).json()
    assert over["error"] == -201
    recent = sim.zalo("/v2.0/oa/listrecentchat", {"offset": 0, "count": 10}).json()
    truth = truth_messages(sim, "zalo")
    users = list(dict.fromkeys(m["user_id"] for m in truth))
    assert [
        item["from_id"] if item["src"] == 1 else item["to_id"] for item in recent["data"]
    ] == users
    user = users[0]
    history = sim.zalo("/v2.0/oa/conversation", {"user_id": user, "offset": 0, "count": 10}).json()
    mine = [m for m in truth if m["user_id"] == user]
    assert [m["message_id"] for m in history["data"]] == [m["message_id"] for m in reversed(mine)]
    assert [bool(m["src"]) for m in history["data"]] == [m["from_customer"] for m in reversed(mine)]
    assert history["data"][0]["time"] == int(
        datetime.fromisoformat(mine[-1]["time"]).timestamp() * 1000
    )


# ---- ground truth ----------------------------------------------------------------------------


def test_ground_truth_shapes(sim: Sim) -> None:
    shopee = sim.state.ground_truth("shopee")
    assert shopee["platform"] == "shopee" and len(shopee["accounts"]) == 2
    json.dumps(shopee)  # plain data
    order = shopee["accounts"][0]["orders"][0]
    assert set(order) == {
        "order_id",
        "platform_status",
        "crm_status",
        "amount",
        "currency",
        "create_time",
        "update_time",
        "buyer_user_id",
        "buyer_name",
    }
    mapping = sim_platform("shopee").orders.crm_status  # type: ignore[union-attr]
    for account in shopee["accounts"]:
        assert len(account["orders"]) == 120
        for o in account["orders"]:
            assert o["crm_status"] == mapping[o["platform_status"]]
    message = sim.state.ground_truth("zalo")["accounts"][0]["messages"][0]
    assert set(message) == {
        "message_id",
        "conversation_id",
        "user_id",
        "user_name",
        "from_customer",
        "sender_id",
        "text",
        "time",
    }
    one = sim.state.ground_truth("facebook", sim.account("facebook", 1))
    assert [a["account_id"] for a in one["accounts"]] == [sim.account("facebook", 1)]
    with pytest.raises(KeyError, match="no lazada account '1'"):
        sim.state.ground_truth("lazada", "1")
    with pytest.raises(KeyError, match="no simulated platform 'ebay'"):
        sim.state.ground_truth("ebay")


def test_ground_truth_over_http(sim: Sim) -> None:
    for platform in ("shopee", "lazada", "tiktok", "facebook", "zalo"):
        served = call(sim.app, "GET", "/_sim/ground-truth", params={"platform": platform})
        assert served.status_code == 200
        assert served.json() == json.loads(json.dumps(sim.state.ground_truth(platform)))
    account = sim.account("tiktok", 1)
    one = call(
        sim.app, "GET", "/_sim/ground-truth", params={"platform": "tiktok", "account": account}
    )
    assert [a["account_id"] for a in one.json()["accounts"]] == [account]
    assert call(sim.app, "GET", "/_sim/ground-truth").status_code == 400
    assert (
        call(sim.app, "GET", "/_sim/ground-truth", params={"platform": "ebay"}).status_code == 400
    )
    unknown = call(
        sim.app, "GET", "/_sim/ground-truth", params={"platform": "zalo", "account": "1"}
    )
    assert unknown.status_code == 404 and "no zalo account '1'" in unknown.json()["error"]


def test_ground_truth_is_what_every_marketplace_serves(sim: Sim) -> None:
    for index in (0, 1):
        truth = truth_orders(sim, "shopee", index)
        listed = shopee_list_all(sim, "create_time", NOW - timedelta(days=31), NOW)
        if index:
            # the second shop's orders, listed with its own token
            listed = []
            start = NOW - timedelta(days=31)
            while start < NOW:
                end = min(start + timedelta(days=15), NOW)
                body = sim.shopee(
                    SHOPEE_LIST,
                    index=1,
                    time_range_field="create_time",
                    time_from=int(start.timestamp()),
                    time_to=int(end.timestamp()),
                    page_size=100,
                ).json()
                assert not body["response"]["more"]
                listed += [o["order_sn"] for o in body["response"]["order_list"]]
                start = end
        assert sorted(set(listed)) == sorted(truth)
        served: dict[str, dict[str, Any]] = {}
        ordered = sorted(truth)
        for i in range(0, len(ordered), 50):
            body = sim.shopee(
                SHOPEE_DETAIL,
                index=index,
                order_sn_list=",".join(ordered[i : i + 50]),
                response_optional_fields=OPTIONAL,
            ).json()
            served.update({o["order_sn"]: o for o in body["response"]["order_list"]})
        assert {
            sn: (
                o["order_status"],
                o["total_amount"],
                o["currency"],
                o["create_time"],
                o["update_time"],
                str(o["buyer_user_id"]),
                o["buyer_username"],
            )
            for sn, o in served.items()
        } == {
            sn: (
                t["platform_status"],
                t["amount"],
                t["currency"],
                ts(t["create_time"]),
                ts(t["update_time"]),
                t["buyer_user_id"],
                t["buyer_name"],
            )
            for sn, t in truth.items()
        }

    truth = truth_orders(sim, "lazada")
    orders: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        data = sim.lazada(
            "/orders/get", created_after="2026-10-01T00:00:00+07:00", limit="50", offset=str(offset)
        ).json()["data"]
        orders.update({o["order_id"]: o for o in data["orders"]})
        if len(data["orders"]) < 50:
            break
        offset += 50
    ids = sorted(orders)
    buyers: dict[str, str] = {}
    for i in range(0, len(ids), 50):
        data = sim.lazada("/orders/items/get", order_ids="[" + ",".join(ids[i : i + 50]) + "]")
        for entry in data.json()["data"]:
            buyers[entry["order_id"]] = entry["order_items"][0]["buyer_id"]
    assert {
        i: (
            o["statuses"][0],
            o["price"],
            ts(o["created_at"]),
            ts(o["updated_at"]),
            buyers[i],
            o["customer_first_name"],
        )
        for i, o in orders.items()
    } == {
        i: (
            t["platform_status"],
            f"{t['amount']:.2f}",
            ts(t["create_time"]),
            ts(t["update_time"]),
            t["buyer_user_id"],
            t["buyer_name"],
        )
        for i, t in truth.items()
    }


# ---- the data changes while the server runs ----------------------------------------------------


def test_added_orders_show_everywhere(sim: Sim) -> None:
    sim.clock.advance(minutes=10)
    now = sim.clock()
    for platform in ("shopee", "lazada", "tiktok"):
        added = sim.state.add_orders(platform, sim.account(platform), 3)
        assert len(added) == 3 and all(o.create_time == o.update_time == now for o in added)
        assert {o.status for o in added} == {sim_platform(platform).orders.statuses[0]}  # type: ignore[union-attr]
        truth = truth_orders(sim, platform)
        assert len(truth) == 123 and all(o.order_id in truth for o in added)
    new = [o.order_id for o in sim.state.accounts["shopee"][0].orders[-3:]]
    listed = sim.shopee(
        SHOPEE_LIST,
        time_range_field="update_time",
        time_from=int((now - timedelta(minutes=1)).timestamp()),
        time_to=int(now.timestamp()),
        page_size=10,
    ).json()["response"]["order_list"]
    assert [o["order_sn"] for o in listed] == new
    detail = sim.shopee(SHOPEE_DETAIL, order_sn_list=",".join(new)).json()["response"]
    assert [o["order_sn"] for o in detail["order_list"]] == new
    lazada = sim.lazada(
        "/orders/get",
        created_after=(now - timedelta(minutes=1)).astimezone(VN).isoformat(),
    ).json()["data"]
    assert lazada["countTotal"] == "3"
    tiktok = tiktok_search(sim, {"create_time_ge": int(now.timestamp())})["data"]
    assert tiktok["total_count"] == 3
    other = truth_orders(sim, "shopee", 1)
    assert len(other) == 120  # the other shop is untouched


def test_an_updated_order_moves_its_update_time(sim: Sim) -> None:
    order_id = next(iter(truth_orders(sim, "lazada")))
    sim.clock.advance(hours=1)
    changed = sim.state.update_order("lazada", sim.account("lazada"), order_id, status="canceled")
    assert changed.update_time == sim.clock() and changed.status == "canceled"
    truth = truth_orders(sim, "lazada")[order_id]
    assert truth["platform_status"] == "canceled" and truth["crm_status"] == "cancelled"
    since = (sim.clock() - timedelta(minutes=5)).astimezone(VN).isoformat()
    listed = sim.lazada("/orders/get", update_after=since).json()["data"]["orders"]
    assert [o["order_id"] for o in listed] == [order_id]
    assert listed[0]["statuses"] == ["canceled"]
    items = sim.lazada("/orders/items/get", order_ids=f"[{order_id}]").json()["data"]
    assert items[0]["order_items"][0]["status"] == "canceled"
    tiktok_id = next(iter(truth_orders(sim, "tiktok")))
    sim.state.update_order("tiktok", sim.account("tiktok"), tiktok_id, status="COMPLETED")
    found = tiktok_search(sim, {"update_time_ge": int(sim.clock().timestamp())})["data"]["orders"]
    assert [(o["id"], o["status"]) for o in found] == [(tiktok_id, "COMPLETED")]


def test_added_messages_show_everywhere(sim: Sim) -> None:
    page = sim.account("facebook")
    before = truth_messages(sim, "facebook")
    last = before[-1]  # the oldest conversation's newest message
    sim.clock.advance(minutes=3)
    conversation, message = sim.state.add_message(
        "facebook", page, user_id=last["user_id"], text="Còn hàng không shop?"
    )
    assert conversation.conversation_id == last["conversation_id"]
    assert message.time == sim.clock() and message.from_customer
    conversations = sim.graph(f"/{page}/conversations").json()["data"]
    assert conversations[0]["id"] == conversation.conversation_id  # now the most recent
    newest = sim.graph(f"/{conversation.conversation_id}/messages", fields="id,message").json()
    assert newest["data"][0] == {"id": message.message_id, "message": "Còn hàng không shop?"}
    truth = truth_messages(sim, "facebook")
    assert len(truth) == len(before) + 1
    assert truth[0]["conversation_id"] == conversation.conversation_id
    oa = sim.account("zalo")
    conversation, message = sim.state.add_message("zalo", oa, text="Xin chào", user_name="Lan")
    assert conversation.conversation_id == conversation.user_id  # Zalo: the user is the thread
    recent = sim.zalo("/v2.0/oa/listrecentchat", {"offset": 0, "count": 1}).json()["data"]
    assert recent[0]["message_id"] == message.message_id
    assert recent[0]["from_display_name"] == "Lan"
    reply = sim.state.add_message(
        "zalo", oa, user_id=conversation.user_id, text="Dạ, chào bạn", from_customer=False
    )[1]
    history = sim.zalo(
        "/v2.0/oa/conversation", {"user_id": conversation.user_id, "offset": 0, "count": 10}
    ).json()["data"]
    assert [m["message_id"] for m in history] == [reply.message_id, message.message_id]
    assert history[0]["src"] == 0 and history[0]["from_id"] == oa


def test_changes_are_refused_when_they_make_no_sense(sim: Sim) -> None:
    with pytest.raises(ValueError, match="Zalo OA has no orders"):
        sim.state.add_orders("zalo", sim.account("zalo"), 1)
    with pytest.raises(ValueError, match="Shopee has no conversations"):
        sim.state.add_message("shopee", sim.account("shopee"))
    with pytest.raises(ValueError, match="no order status 'PAID'"):
        sim.state.update_order("shopee", sim.account("shopee"), "x", status="PAID")
    with pytest.raises(KeyError, match="no order 'x'"):
        sim.state.update_order("shopee", sim.account("shopee"), "x", status="SHIPPED")
    with pytest.raises(KeyError, match="no tiktok account '9'"):
        sim.state.add_orders("tiktok", "9", 1)


def test_changes_from_many_threads_are_all_kept(sim: Sim) -> None:
    shop = sim.account("shopee")
    errors: list[BaseException] = []

    def add() -> None:
        try:
            for _ in range(20):
                sim.state.add_orders("shopee", shop, 5)
                sim.state.add_message("facebook", sim.account("facebook"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(10):  # the server reads meanwhile
        assert (
            sim.shopee(SHOPEE_DETAIL, order_sn_list=next(iter(truth_orders(sim, "shopee")))).json()[
                "error"
            ]
            == ""
        )
    for thread in threads:
        thread.join()
    assert not errors
    orders = sim.state.accounts["shopee"][0].orders
    assert len(orders) == 120 + 4 * 20 * 5
    assert len({o.order_id for o in orders}) == len(orders)
    assert len(truth_messages(sim, "facebook")) == len(
        [m for c in sim.state.accounts["facebook"][0].conversations for m in c.messages]
    )


# ---- many orders (--orders) --------------------------------------------------------------------


def test_twenty_thousand_orders_are_quick_small_and_spread_over_thirty_days() -> None:
    # Under an outside tracemalloc (PYTHONTRACEMALLOC) building takes a hundred times longer
    # and this test must not stop the tracing: only the data is checked then.
    measure = not tracemalloc.is_tracing()
    started = time.perf_counter()
    state = SimulatorState(3, lambda: NOW, orders_per_shop=20_000, conversations_per_account=0)
    elapsed = time.perf_counter() - started
    if measure:
        # 20,000 orders for each of the three marketplaces, in well under 2 s
        assert elapsed < 2.0, elapsed
    for platform in ("shopee", "lazada", "tiktok"):
        orders = state.accounts[platform][0].orders
        assert len(orders) == 20_000
        assert len({o.order_id for o in orders}) == 20_000
        assert min(o.create_time for o in orders) >= NOW - timedelta(days=30)
        assert min(o.create_time for o in orders) < NOW - timedelta(days=29)
        assert max(o.update_time for o in orders) <= NOW
        assert all(o.create_time <= o.update_time for o in orders)
        assert max(o.create_time for o in orders) > NOW - timedelta(days=1)
    if not measure:
        return
    del state
    tracemalloc.start()
    try:
        SimulatorState(3, lambda: NOW, orders_per_shop=5_000, conversations_per_account=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10e6, peak  # 15,000 orders: about 300 bytes an order


def test_the_orders_option() -> None:
    cli = typer.Typer()
    cli.command()(simulator)
    for value in ("-1", "100001"):
        result = CliRunner().invoke(cli, ["--orders", value])
        assert result.exit_code == 3
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "--orders: expected 0-100000" in lines[0]
    started = start_simulator(Environment(), SimulatorRequest(orders=7))
    try:
        for platform in ("shopee", "lazada", "tiktok"):
            assert len(started.state.accounts[platform][0].orders) == 7
        assert "7 orders per marketplace shop" in started.notes[-1]
    finally:
        started.server.sock.close()
    default = start_simulator(Environment(), SimulatorRequest())
    try:
        assert len(default.state.accounts["lazada"][0].orders) == 250
        assert "orders per marketplace shop" not in default.notes[-1]
    finally:
        default.server.sock.close()
    empty = start_simulator(Environment(), SimulatorRequest(orders=0))
    try:
        assert empty.state.accounts["tiktok"][0].orders == []
    finally:
        empty.server.sock.close()
