"""The platforms' sync pages against respx: one page of one window parsed into normalised
records, cursor continuation, the end of a window, each platform's paging quirk, the taxonomy
error for a malformed record or an HTML page, and every retry signed afresh."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
import respx

from nfdoctor.platforms import facebook, lazada, shopee, tiktok, zalo
from nfdoctor.platforms.base import FetchRetry, PlatformClient
from nfdoctor.platforms.errors import BodyProblem, TokenExpiredError, UnexpectedResponseError
from nfdoctor.platforms.facebook import FACEBOOK_BASE_URL, FacebookAuth, FacebookClient
from nfdoctor.platforms.lazada import LAZADA_BASE_URL, LazadaAuth, LazadaClient
from nfdoctor.platforms.registry import SPECS
from nfdoctor.platforms.shopee import SHOPEE_BASE_URL, ShopeeAuth, ShopeeClient
from nfdoctor.platforms.sync import ORDER_STATUSES, Page, Window
from nfdoctor.platforms.tiktok import TIKTOK_BASE_URL, TiktokAuth, TiktokClient
from nfdoctor.platforms.zalo import ZALO_BASE_URL, ZaloAuth, ZaloClient
from tests.platforms.conftest import NOW, fixed_clock, make_client

R = TypeVar("R")

START = datetime(2026, 11, 10, tzinfo=timezone.utc)
END = datetime(2026, 11, 20, tzinfo=timezone.utc)
WINDOW = Window(START, END)
IN_WINDOW = datetime(2026, 11, 15, 8, 30, tzinfo=timezone.utc)


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def page_of(fetch: Awaitable[Page[R]]) -> Page[R]:
    async def wait() -> Page[R]:
        return await fetch

    return asyncio.run(wait())


class TickingClock:
    """A clock one second later at every reading: two signings never share a timestamp."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def no_wait(client: PlatformClient, on_sleep: Callable[[], None] | None = None) -> list[float]:
    """Make the client's session retry at once; the waits it would have made are returned."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if on_sleep is not None:
            on_sleep()

    client.session.retry = FetchRetry(sleep=sleep, jitter=lambda: 0.0)
    return waits


def html(status: int = 502) -> httpx.Response:
    return httpx.Response(
        status, text="<html><h1>Bad Gateway</h1></html>", headers={"content-type": "text/html"}
    )


def test_every_platform_declares_its_sync() -> None:
    rates = {}
    for spec in SPECS:
        assert spec.sync is not None, spec.name
        streams = [s for s in (spec.sync.orders, spec.sync.messages) if s is not None]
        assert streams, spec.name
        assert spec.sync.rate_source.startswith("platforms.md §")
        rates[spec.name] = (spec.sync.default_rate_per_s, spec.sync.rate_confidence)
    assert rates == {
        "shopee": (10.0, "L"),
        "lazada": (10.0, "L"),
        "tiktok": (40.0, "H"),
        "facebook": (10.0, "M"),
        "zalo": (60.0, "M"),
    }
    assert shopee.SYNC.orders is not None
    assert shopee.SYNC.orders.max_window == timedelta(days=15)
    assert shopee.SPEC.sync is shopee.SYNC
    assert facebook.SYNC.orders is None and facebook.SYNC.messages is not None


def test_status_mappings_cover_the_crm_values_only() -> None:
    for table in (shopee.CRM_ORDER_STATUS, lazada.CRM_ITEM_STATUS, tiktok.CRM_ORDER_STATUS):
        assert set(table.values()) <= set(ORDER_STATUSES)


def test_page_refuses_another_platforms_client() -> None:
    assert shopee.SYNC.orders is not None
    with pytest.raises(TypeError, match="ShopeeClient"):
        page_of(shopee.SYNC.orders.page(zalo_client(), WINDOW, None))


# --- Shopee ------------------------------------------------------------------------------

SHOPEE = "https://partner.shopeemobile.com"
SHOPEE_LIST = SHOPEE + "/api/v2/order/get_order_list"
SHOPEE_DETAIL = SHOPEE + "/api/v2/order/get_order_detail"


def shopee_client(**kwargs: object) -> ShopeeClient:
    options: dict[str, object] = {
        "partner_id": 2001887,
        "partner_key": "test_partner_key",
        "shop_id": 14701711,
        "access_token": "AT",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: ShopeeClient = make_client(ShopeeClient, ShopeeAuth, SHOPEE_BASE_URL, **options)
    return client


def shopee_list(sns: list[str], *, more: bool = False, next_cursor: str = "") -> dict[str, Any]:
    return {
        "error": "",
        "message": "",
        "request_id": "r",
        "response": {
            "more": more,
            "next_cursor": next_cursor,
            "order_list": [{"order_sn": sn, "order_status": "READY_TO_SHIP"} for sn in sns],
        },
    }


def shopee_detail(sn: str, **fields: object) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "order_sn": sn,
        "region": "VN",
        "currency": "VND",
        "order_status": "READY_TO_SHIP",
        "create_time": ts(IN_WINDOW) - 3600,
        "update_time": ts(IN_WINDOW),
        "buyer_user_id": 9193214,
        "buyer_username": "ha.my",
        "total_amount": 1004.5,
    }
    detail.update(fields)
    return detail


def shopee_details(request: httpx.Request, **fields: object) -> httpx.Response:
    """get_order_detail answering for exactly the order numbers asked."""
    sns = request.url.params["order_sn_list"].split(",")
    orders = [shopee_detail(sn, **fields) for sn in sns]
    return httpx.Response(
        200,
        json={"error": "", "message": "", "request_id": "d", "response": {"order_list": orders}},
    )


def shopee_page(cursor: str | None = None, client: ShopeeClient | None = None) -> Page[Any]:
    return page_of(shopee.order_page(client or shopee_client(), WINDOW, cursor))


def test_shopee_page_parses_orders(mock_http: respx.MockRouter) -> None:
    listing = mock_http.get(SHOPEE_LIST).respond(200, json=shopee_list(["SN1", "SN2"]))
    detail = mock_http.get(SHOPEE_DETAIL).mock(
        side_effect=lambda request: httpx.Response(
            200,
            json={
                "error": "",
                "request_id": "d",
                "response": {
                    "order_list": [
                        shopee_detail("SN2", order_status="CANCELLED", total_amount=None),
                        shopee_detail(
                            "SN1", order_status="TO_CONFIRM_RECEIVE", currency=None, buyer_user_id=0
                        ),
                    ]
                },
            },
        )
    )
    page = shopee_page()
    sent = listing.calls.last.request.url.params
    assert sent["time_range_field"] == "update_time"
    assert sent["time_from"] == str(ts(START)) and sent["time_to"] == str(ts(END))
    assert sent["page_size"] == "100" and sent["cursor"] == ""
    assert sent["sign"] and sent["access_token"] == "AT"
    asked = detail.calls.last.request.url.params
    assert asked["order_sn_list"] == "SN1,SN2"
    assert {"buyer_user_id", "buyer_username", "total_amount"} <= set(
        asked["response_optional_fields"].split(",")
    )
    assert page.next_cursor is None and page.total is None
    first, second = page.records
    assert first.external_id == "SN1"  # the listing's order, not the detail's
    assert (first.platform_status, first.status) == ("TO_CONFIRM_RECEIVE", "delivered")
    assert first.total_amount == Decimal("1004.5")
    assert first.currency == "VND"  # not named: the default
    assert first.buyer is None  # buyer_user_id 0: a non-integrated order
    assert first.created_at == IN_WINDOW - timedelta(hours=1)
    assert first.updated_at == IN_WINDOW and first.updated_at.tzinfo is not None
    assert first.raw["region"] == "VN" and first.raw["order_sn"] == "SN1"
    assert (second.status, second.total_amount) == ("cancelled", Decimal(0))
    assert second.buyer is not None
    assert (second.buyer.external_user_id, second.buyer.display_name) == ("9193214", "ha.my")


def test_shopee_cursor_continues_until_more_is_false(mock_http: respx.MockRouter) -> None:
    listing = mock_http.get(SHOPEE_LIST).mock(
        side_effect=[
            httpx.Response(200, json=shopee_list(["SN1"], more=True, next_cursor="20")),
            httpx.Response(200, json=shopee_list(["SN2"])),
        ]
    )
    mock_http.get(SHOPEE_DETAIL).mock(side_effect=shopee_details)
    first = shopee_page()
    assert first.next_cursor == "20"
    last = shopee_page(first.next_cursor)
    assert listing.calls.last.request.url.params["cursor"] == "20"
    assert [r.external_id for r in last.records] == ["SN2"]
    assert last.next_cursor is None


def test_shopee_empty_window(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPEE_LIST).respond(200, json=shopee_list([]))
    detail = mock_http.get(SHOPEE_DETAIL)
    page = shopee_page()
    assert page.records == () and page.next_cursor is None
    assert not detail.called


def test_shopee_details_in_batches_of_50(mock_http: respx.MockRouter) -> None:
    sns = [f"SN{n:03d}" for n in range(120)]
    mock_http.get(SHOPEE_LIST).respond(200, json=shopee_list(sns))
    detail = mock_http.get(SHOPEE_DETAIL).mock(side_effect=shopee_details)
    page = shopee_page()
    batches = [c.request.url.params["order_sn_list"].split(",") for c in detail.calls]
    assert [len(b) for b in batches] == [50, 50, 20]
    assert [sn for batch in batches for sn in batch] == sns
    assert [r.external_id for r in page.records] == sns


def test_shopee_more_without_a_new_cursor_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPEE_LIST).respond(200, json=shopee_list([], more=True, next_cursor=""))
    with pytest.raises(UnexpectedResponseError) as caught:
        shopee_page()
    assert caught.value.field == "next_cursor"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"order_status": "TELEPORTED"}, "order_status"),
        ({"total_amount": "lots"}, "total_amount"),
        ({"create_time": None}, "create_time"),
        ({"update_time": "yesterday"}, "update_time"),
    ],
)
def test_shopee_malformed_order_is_unexpected(
    mock_http: respx.MockRouter, fields: dict[str, object], field: str
) -> None:
    mock_http.get(SHOPEE_LIST).respond(200, json=shopee_list(["SN1"]))
    mock_http.get(SHOPEE_DETAIL).mock(side_effect=lambda r: shopee_details(r, **fields))
    with pytest.raises(UnexpectedResponseError) as caught:
        shopee_page()
    assert caught.value.field == field


def test_shopee_detail_missing_an_order_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPEE_LIST).respond(200, json=shopee_list(["SN1", "SN2"]))
    mock_http.get(SHOPEE_DETAIL).respond(
        200, json={"error": "", "response": {"order_list": [shopee_detail("SN1")]}}
    )
    with pytest.raises(UnexpectedResponseError, match="SN2"):
        shopee_page()


def test_shopee_listing_not_a_list_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPEE_LIST).respond(
        200, json={"error": "", "response": {"more": False, "order_list": {"order_sn": "SN1"}}}
    )
    with pytest.raises(UnexpectedResponseError):
        shopee_page()


def test_shopee_html_page_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPEE_LIST).mock(return_value=html(403))
    with pytest.raises(UnexpectedResponseError) as caught:
        shopee_page()
    assert caught.value.problem is BodyProblem.HTML


def test_shopee_retry_is_signed_afresh(mock_http: respx.MockRouter) -> None:
    listing = mock_http.get(SHOPEE_LIST).mock(
        side_effect=[
            httpx.Response(429, text="slow down", headers={"Retry-After": "2"}),
            httpx.Response(200, json=shopee_list([])),
        ]
    )
    client = shopee_client(clock=TickingClock())
    waits = no_wait(client)
    page = shopee_page(client=client)
    assert page.records == ()
    assert waits == [2.0]
    first, second = (c.request.url.params for c in listing.calls)
    assert first["timestamp"] != second["timestamp"]
    assert first["sign"] != second["sign"]
    assert client.session.stats.retries == 1 and client.session.stats.requests == 2


# --- Lazada ------------------------------------------------------------------------------

LAZADA_ORDERS = "https://api.lazada.vn/rest/orders/get"


def lazada_client(**kwargs: object) -> LazadaClient:
    options: dict[str, object] = {
        "app_key": "123456",
        "app_secret": "helloworld",
        "access_token": "test",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: LazadaClient = make_client(LazadaClient, LazadaAuth, LAZADA_BASE_URL, **options)
    return client


def lazada_order(n: int, **fields: object) -> Any:
    order: dict[str, Any] = {
        "order_id": 491253082180000 + n,
        "order_number": 491253082180000 + n,
        "created_at": "2026-11-15T14:30:00+07:00",
        "updated_at": "2026-11-15T15:30:00+07:00",
        "statuses": ["pending"],
        "price": "106000.00",
        "items_count": "1",
        "customer_first_name": "Ha Hung",
    }
    order.update(fields)
    return order


def lazada_body(orders: list[Any], count_total: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"count": str(len(orders)), "orders": orders}
    if count_total is not None:
        data["countTotal"] = str(count_total)
    return {"code": "0", "request_id": "r", "data": data}


def lazada_page(cursor: str | None = None, client: LazadaClient | None = None) -> Page[Any]:
    return page_of(lazada.order_page(client or lazada_client(), WINDOW, cursor))


def test_lazada_page_parses_orders(mock_http: respx.MockRouter) -> None:
    orders = [
        lazada_order(
            1, statuses=["delivered", "canceled"], voucher="6000.00", shipping_fee="15000"
        ),
        lazada_order(2, statuses=["canceled"], buyer_id=1002820096123, customer_last_name=""),
    ]
    route = mock_http.get(LAZADA_ORDERS).respond(200, json=lazada_body(orders, count_total=2))
    page = lazada_page()
    sent = route.calls.last.request.url.params
    assert sent["update_after"] == "2026-11-10T00:00:00+00:00"
    assert sent["update_before"] == "2026-11-20T00:00:00+00:00"
    assert (sent["sort_by"], sent["sort_direction"]) == ("updated_at", "ASC")
    assert (sent["limit"], sent["offset"]) == ("100", "0")
    assert sent["sign"] and sent["access_token"] == "test"
    assert page.next_cursor is None and page.total == 2
    first, second = page.records
    assert first.external_id == "491253082180001"
    assert (first.platform_status, first.status) == ("delivered,canceled", "delivered")
    assert first.total_amount == Decimal("115000.00")  # price - voucher + shipping_fee
    assert first.currency == "VND"
    assert first.created_at == datetime(2026, 11, 15, 7, 30, tzinfo=timezone.utc)
    assert first.updated_at == datetime(2026, 11, 15, 8, 30, tzinfo=timezone.utc)
    assert first.buyer is None  # GetOrders names no buyer id
    assert second.status == "cancelled"
    assert second.buyer is not None
    assert (second.buyer.external_user_id, second.buyer.display_name) == (
        "1002820096123",
        "Ha Hung",
    )


@pytest.mark.parametrize(
    ("statuses", "status"),
    [
        (["unpaid"], "pending"),
        (["pending", "shipped"], "paid"),  # the least advanced live item
        (["shipped", "delivered"], "shipped"),
        (["delivered", "canceled"], "delivered"),  # a cancelled item does not hold it back
        (["canceled", "lost_by_3pl"], "cancelled"),
        (["returned", "canceled"], "returned"),
        (["returned"], "returned"),
    ],
)
def test_lazada_item_statuses_make_one_order_status(statuses: list[str], status: str) -> None:
    assert lazada.crm_order_status(statuses) == status


def test_lazada_cursor_continues_by_offset(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(LAZADA_ORDERS).mock(
        side_effect=[
            httpx.Response(200, json=lazada_body([lazada_order(n) for n in range(100)], 150)),
            httpx.Response(200, json=lazada_body([lazada_order(n) for n in range(100, 150)], 150)),
        ]
    )
    first = lazada_page()
    assert first.next_cursor is not None
    assert json.loads(first.next_cursor) == {"after": "2026-11-10T00:00:00+00:00", "offset": 100}
    last = lazada_page(first.next_cursor)
    assert route.calls.last.request.url.params["offset"] == "100"
    assert len(last.records) == 50 and last.next_cursor is None
    assert last.total == 150


def test_lazada_full_last_page_ends_by_count_total(mock_http: respx.MockRouter) -> None:
    mock_http.get(LAZADA_ORDERS).respond(
        200, json=lazada_body([lazada_order(n) for n in range(100)], count_total=100)
    )
    assert lazada_page().next_cursor is None


def test_lazada_offset_past_5000_restarts_from_the_last_order(
    mock_http: respx.MockRouter,
) -> None:
    after = "2026-11-12T09:00:00+07:00"
    cursor = json.dumps({"after": after, "offset": 5000})
    orders = [
        lazada_order(n, updated_at=f"2026-11-13T10:{n // 60:02d}:{n % 60:02d}+07:00")
        for n in range(100)
    ]
    route = mock_http.get(LAZADA_ORDERS).respond(200, json=lazada_body(orders, count_total=9000))
    page = lazada_page(cursor)
    sent = route.calls.last.request.url.params
    assert (sent["update_after"], sent["offset"]) == (after, "5000")
    assert page.next_cursor is not None
    assert json.loads(page.next_cursor) == {"after": "2026-11-13T10:01:39+07:00", "offset": 0}
    # countTotal counts from the moved update_after, not the whole window
    assert page.total is None


def test_lazada_offset_stays_within_5000(mock_http: respx.MockRouter) -> None:
    cursor = json.dumps({"after": "2026-11-10T00:00:00+00:00", "offset": 4900})
    mock_http.get(LAZADA_ORDERS).respond(
        200, json=lazada_body([lazada_order(n) for n in range(100)], count_total=9000)
    )
    page = lazada_page(cursor)
    assert page.next_cursor is not None
    assert json.loads(page.next_cursor)["offset"] == 5000
    assert page.total == 9000


def test_lazada_5000_orders_in_one_second_cannot_be_paged(mock_http: respx.MockRouter) -> None:
    same = "2026-11-13T10:00:00+07:00"
    cursor = json.dumps({"after": same, "offset": 5000})
    mock_http.get(LAZADA_ORDERS).respond(
        200, json=lazada_body([lazada_order(n, updated_at=same) for n in range(100)], 9000)
    )
    with pytest.raises(UnexpectedResponseError) as caught:
        lazada_page(cursor)
    assert caught.value.field == "updated_at"


@pytest.mark.parametrize(
    "cursor",
    [
        "offset=100",
        json.dumps({"after": "yesterday", "offset": 0}),
        json.dumps({"after": "2026-11-10T00:00:00+00:00", "offset": -100}),
        json.dumps({"after": "2026-11-10T00:00:00+00:00"}),
    ],
)
def test_lazada_unreadable_cursor(cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        lazada_page(cursor)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"statuses": ["teleported"]}, "statuses"),
        ({"statuses": []}, "statuses"),
        ({"statuses": "pending"}, "statuses"),
        ({"price": None}, "price"),
        ({"voucher": "free"}, "voucher"),
        ({"created_at": "2026-11-15T14:30:00"}, "created_at"),  # no offset
        ({"order_id": None}, "order_id"),
    ],
)
def test_lazada_malformed_order_is_unexpected(
    mock_http: respx.MockRouter, fields: dict[str, object], field: str
) -> None:
    mock_http.get(LAZADA_ORDERS).respond(200, json=lazada_body([lazada_order(1, **fields)]))
    with pytest.raises(UnexpectedResponseError) as caught:
        lazada_page()
    assert caught.value.field == field


def test_lazada_bad_count_total_and_html(mock_http: respx.MockRouter) -> None:
    body = lazada_body([])
    body["data"]["countTotal"] = "many"
    mock_http.get(LAZADA_ORDERS).mock(side_effect=[httpx.Response(200, json=body), html(502)])
    with pytest.raises(UnexpectedResponseError):
        lazada_page()
    with pytest.raises(UnexpectedResponseError) as caught:
        lazada_page()
    assert caught.value.problem is BodyProblem.HTML


def test_lazada_retry_is_signed_afresh(mock_http: respx.MockRouter) -> None:
    limit = {
        "type": "ISV",
        "code": "ApiCallLimit",
        "message": "Api access frequency exceeds the limit. this ban will last 1 seconds",
        "request_id": "r",
    }
    route = mock_http.get(LAZADA_ORDERS).mock(
        side_effect=[httpx.Response(200, json=limit), httpx.Response(200, json=lazada_body([]))]
    )
    client = lazada_client(clock=TickingClock())
    waits = no_wait(client)
    assert lazada_page(client=client).records == ()
    assert waits == [1.0]  # the documented 1-second ban
    first, second = (c.request.url.params for c in route.calls)
    assert first["timestamp"] != second["timestamp"]
    assert first["sign"] != second["sign"]


# --- TikTok Shop -------------------------------------------------------------------------

TIKTOK = "https://open-api.tiktokglobalshop.com"
TIKTOK_SEARCH = TIKTOK + "/order/202309/orders/search"
TIKTOK_SHOPS = TIKTOK + "/authorization/202309/shops"


def tiktok_client(**kwargs: object) -> TiktokClient:
    options: dict[str, object] = {
        "app_key": "29a39d",
        "app_secret": "e59af819cc",
        "access_token": "TTP_at",
        "shop_id": "7494",
        "shop_cipher": "ROW_abc",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: TiktokClient = make_client(TiktokClient, TiktokAuth, TIKTOK_BASE_URL, **options)
    return client


def tiktok_order(order_id: str, **fields: object) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": order_id,
        "status": "AWAITING_SHIPMENT",
        "create_time": ts(IN_WINDOW) - 60,
        "update_time": ts(IN_WINDOW),
        "user_id": "7021436810468230477",
        "payment": {"currency": "VND", "total_amount": "1250000", "sub_total": "1200000"},
        "line_items": [{"id": "1", "sku_id": "2"}],
    }
    order.update(fields)
    return order


def tiktok_body(orders: list[Any], token: str = "", total: int | None = None) -> Any:
    data: dict[str, Any] = {"orders": orders, "next_page_token": token}
    if total is not None:
        data["total_count"] = total
    return {"code": 0, "message": "Success", "request_id": "r", "data": data}


def tiktok_page(cursor: str | None = None, client: TiktokClient | None = None) -> Page[Any]:
    return page_of(tiktok.order_page(client or tiktok_client(), WINDOW, cursor))


def test_tiktok_page_parses_orders(mock_http: respx.MockRouter) -> None:
    orders = [
        tiktok_order("576461413038785752"),
        tiktok_order("576461413038785753", status="IN_TRANSIT", user_id=None),
    ]
    route = mock_http.post(TIKTOK_SEARCH).respond(200, json=tiktok_body(orders, total=2))
    page = tiktok_page()
    request = route.calls.last.request
    assert json.loads(request.content) == {
        "update_time_ge": ts(START),
        "update_time_lt": ts(END),
    }
    params = request.url.params
    assert params["shop_cipher"] == "ROW_abc" and params["page_size"] == "100"
    assert (params["sort_field"], params["sort_order"]) == ("update_time", "ASC")
    assert "page_token" not in params and params["sign"]
    assert request.headers["x-tts-access-token"] == "TTP_at"
    assert page.next_cursor is None and page.total == 2
    first, second = page.records
    assert (first.external_id, first.platform_status, first.status) == (
        "576461413038785752",
        "AWAITING_SHIPMENT",
        "paid",
    )
    assert first.total_amount == Decimal("1250000") and first.currency == "VND"
    assert first.created_at == IN_WINDOW - timedelta(minutes=1)
    assert first.updated_at == IN_WINDOW
    assert first.buyer is not None and first.buyer.external_user_id == "7021436810468230477"
    assert first.raw["line_items"] == [{"id": "1", "sku_id": "2"}]
    assert second.status == "shipped" and second.buyer is None


def test_tiktok_cursor_is_the_page_token(mock_http: respx.MockRouter) -> None:
    route = mock_http.post(TIKTOK_SEARCH).mock(
        side_effect=[
            httpx.Response(200, json=tiktok_body([tiktok_order("1")], token="tok2", total=2)),
            httpx.Response(200, json=tiktok_body([tiktok_order("2")], total=2)),
        ]
    )
    first = tiktok_page()
    assert first.next_cursor == "tok2"
    last = tiktok_page(first.next_cursor)
    assert route.calls.last.request.url.params["page_token"] == "tok2"
    assert [r.external_id for r in last.records] == ["2"] and last.next_cursor is None


def test_tiktok_same_page_token_again_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.post(TIKTOK_SEARCH).respond(200, json=tiktok_body([], token="tok2"))
    with pytest.raises(UnexpectedResponseError) as caught:
        tiktok_page("tok2")
    assert caught.value.field == "next_page_token"


def test_tiktok_looks_up_the_cipher_once(mock_http: respx.MockRouter) -> None:
    shops = {
        "code": 0,
        "data": {"shops": [{"id": "9999", "cipher": "ROW_other"}, {"id": "7494", "cipher": "X"}]},
    }
    lookup = mock_http.get(TIKTOK_SHOPS).respond(200, json=shops)
    route = mock_http.post(TIKTOK_SEARCH).respond(200, json=tiktok_body([]))
    client = tiktok_client(shop_cipher=None)
    tiktok_page(client=client)
    tiktok_page(client=client)
    assert lookup.call_count == 1
    assert "shop_cipher" not in lookup.calls.last.request.url.params
    assert lookup.calls.last.request.url.params["sign"]  # signed, like every fetch
    assert route.calls.last.request.url.params["shop_cipher"] == "X"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"payment": None}, "payment"),
        ({"payment": {"currency": "VND", "total_amount": "NaN"}}, "payment.total_amount"),
        ({"status": "TELEPORTED"}, "status"),
        ({"update_time": "later"}, "update_time"),
        ({"id": 576461413038785752}, "id"),
    ],
)
def test_tiktok_malformed_order_is_unexpected(
    mock_http: respx.MockRouter, fields: dict[str, object], field: str
) -> None:
    mock_http.post(TIKTOK_SEARCH).respond(200, json=tiktok_body([tiktok_order("1", **fields)]))
    with pytest.raises(UnexpectedResponseError) as caught:
        tiktok_page()
    assert caught.value.field == field


def test_tiktok_without_data_or_html_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.post(TIKTOK_SEARCH).mock(
        side_effect=[httpx.Response(200, json={"code": 0, "data": []}), html(503)]
    )
    with pytest.raises(UnexpectedResponseError):
        tiktok_page()
    client = tiktok_client()
    client.session.retry = FetchRetry(attempts=1)
    with pytest.raises(UnexpectedResponseError) as caught:
        tiktok_page(client=client)
    assert caught.value.problem is BodyProblem.HTML


def test_tiktok_retry_is_signed_afresh(mock_http: respx.MockRouter) -> None:
    throttled = {"code": 36009002, "message": "Too many requests.", "request_id": "r"}
    route = mock_http.post(TIKTOK_SEARCH).mock(
        side_effect=[
            httpx.Response(429, json=throttled),
            httpx.Response(200, json=tiktok_body([tiktok_order("1")])),
        ]
    )
    client = tiktok_client(clock=TickingClock())
    no_wait(client)
    assert len(tiktok_page(client=client).records) == 1
    first, second = (c.request for c in route.calls)
    assert first.url.params["timestamp"] != second.url.params["timestamp"]
    assert first.url.params["sign"] != second.url.params["sign"]
    assert first.content == second.content  # the same body, signed again with it
    assert client.session.stats.rate_limited == 1


# --- Facebook ----------------------------------------------------------------------------

GRAPH = "https://graph.facebook.com/v25.0"
PAGE_ID = "111"
FB_CONVERSATIONS = GRAPH + f"/{PAGE_ID}/conversations"


def facebook_client(**kwargs: object) -> FacebookClient:
    options: dict[str, object] = {
        "access_token": "EAApage",
        "app_secret": "appsecret123",
        "page_id": PAGE_ID,
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: FacebookClient = make_client(FacebookClient, FacebookAuth, FACEBOOK_BASE_URL, **options)
    return client


def graph_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def conversation(thread: str, updated: datetime, psid: str | None = "222") -> dict[str, Any]:
    item: dict[str, Any] = {"id": thread, "updated_time": graph_time(updated)}
    if psid is not None:
        item["participants"] = {
            "data": [
                {"name": "Trần Thị Mai", "email": f"{psid}@facebook.com", "id": psid},
                {"name": "Shop", "email": f"{PAGE_ID}@facebook.com", "id": PAGE_ID},
            ]
        }
    return item


def conversations(items: list[Any], after: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": items}
    if items:
        body["paging"] = {"cursors": {"before": "QVFIb", "after": after or "QVFIend"}}
        if after:
            body["paging"]["next"] = FB_CONVERSATIONS + f"?after={after}&access_token=EAApage"
    return body


class Graph:
    """Conversations' messages (newest first) and their details, served from one dict:
    message id -> (thread, time, sender, text); ids in ``unreadable`` answer Graph's error."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.messages: dict[str, tuple[str, datetime, str, str]] = {}
        self.unreadable: set[str] = set()
        self.listing = router.get(path__regex=r"^/v25\.0/t_\w+/messages$").mock(
            side_effect=self.list_messages
        )
        self.detail = router.get(path__regex=r"^/v25\.0/m_\w+$").mock(side_effect=self.one)

    def add(self, thread: str, *sent: tuple[str, datetime, str, str]) -> None:
        for mid, at, sender, text in sent:
            self.messages[mid] = (thread, at, sender, text)

    def list_messages(self, request: httpx.Request) -> httpx.Response:
        thread = request.url.path.split("/")[-2]
        mine = sorted(
            ((mid, m) for mid, m in self.messages.items() if m[0] == thread),
            key=lambda item: item[1][1],
            reverse=True,
        )
        limit = int(request.url.params.get("limit", "25"))
        data = [{"id": mid, "created_time": graph_time(m[1])} for mid, m in mine[:limit]]
        return httpx.Response(200, json={"data": data})

    def one(self, request: httpx.Request) -> httpx.Response:
        mid = request.url.path.rsplit("/", 1)[1]
        if mid in self.unreadable:
            error = {"message": "This message has been deleted.", "code": 100, "fbtrace_id": "F"}
            return httpx.Response(400, json={"error": {**error, "type": "GraphMethodException"}})
        _, at, sender, text = self.messages[mid]
        other = PAGE_ID if sender != PAGE_ID else "222"
        return httpx.Response(
            200,
            json={
                "id": mid,
                "created_time": graph_time(at),
                "from": {"id": sender, "name": "Mai" if sender != PAGE_ID else "Shop"},
                "to": {"data": [{"id": other}]},
                "message": text,
            },
        )


def facebook_page(cursor: str | None = None, client: FacebookClient | None = None) -> Page[Any]:
    return page_of(facebook.message_page(client or facebook_client(), WINDOW, cursor))


def test_facebook_page_parses_messages(mock_http: respx.MockRouter) -> None:
    graph = Graph(mock_http)
    graph.add(
        "t_1",
        ("m_new", END + timedelta(hours=1), "222", "after the window"),
        ("m_out", IN_WINDOW + timedelta(minutes=5), PAGE_ID, "Dạ shop chào chị"),
        ("m_in", IN_WINDOW, "222", "xin chào"),
        ("m_old", START - timedelta(hours=1), "222", "before the window"),
    )
    route = mock_http.get(FB_CONVERSATIONS).respond(
        200, json=conversations([conversation("t_1", END + timedelta(hours=1))])
    )
    page = facebook_page()
    sent = route.calls.last.request.url.params
    assert sent["platform"] == "messenger" and "participants" in sent["fields"]
    assert sent["access_token"] == "EAApage" and sent["appsecret_proof"]
    assert graph.listing.calls.last.request.url.params["limit"] == "20"
    asked = [c.request.url.path.rsplit("/", 1)[1] for c in graph.detail.calls]
    assert asked == ["m_out", "m_in"]  # none outside the window is read
    detail = graph.detail.calls.last.request.url.params
    assert detail["fields"] == facebook.MESSAGE_FIELDS
    assert detail["access_token"] == "EAApage" and detail["appsecret_proof"]
    out, inbound = page.records
    assert (out.external_id, out.thread_id, out.direction) == ("m_out", "t_1", "out")
    assert (out.sender_external_id, out.body) == (PAGE_ID, "Dạ shop chào chị")
    assert out.customer.external_user_id == "222"
    assert out.customer.display_name == "Trần Thị Mai"
    assert (inbound.direction, inbound.sender_external_id) == ("in", "222")
    assert inbound.sent_at == IN_WINDOW and inbound.sent_at.tzinfo is not None
    assert page.next_cursor is None  # no paging.next


def test_facebook_cursor_is_graphs_after(mock_http: respx.MockRouter) -> None:
    Graph(mock_http)
    route = mock_http.get(FB_CONVERSATIONS).mock(
        side_effect=[
            httpx.Response(200, json=conversations([conversation("t_1", END)], after="QVFIone")),
            httpx.Response(200, json=conversations([conversation("t_2", IN_WINDOW)])),
        ]
    )
    first = facebook_page()
    assert first.next_cursor == "QVFIone"
    last = facebook_page(first.next_cursor)
    assert route.calls.last.request.url.params["after"] == "QVFIone"
    assert last.next_cursor is None


def test_facebook_empty_page_with_next_is_not_the_end(mock_http: respx.MockRouter) -> None:
    body = {"data": [], "paging": {"cursors": {"after": "QVFItwo"}, "next": FB_CONVERSATIONS}}
    mock_http.get(FB_CONVERSATIONS).respond(200, json=body)
    page = facebook_page("QVFIone")
    assert page.records == () and page.next_cursor == "QVFItwo"


def test_facebook_stops_at_the_window_start(mock_http: respx.MockRouter) -> None:
    graph = Graph(mock_http)
    graph.add("t_1", ("m_1", IN_WINDOW, "222", "hello"))
    graph.add("t_2", ("m_2", START - timedelta(days=1), "333", "long ago"))
    mock_http.get(FB_CONVERSATIONS).respond(
        200,
        json=conversations(
            [conversation("t_1", IN_WINDOW), conversation("t_2", START - timedelta(days=1))],
            after="QVFImore",
        ),
    )
    page = facebook_page()
    assert [r.external_id for r in page.records] == ["m_1"]
    assert page.next_cursor is None  # older conversations have nothing in the window
    assert [c.request.url.path for c in graph.listing.calls] == ["/v25.0/t_1/messages"]


def test_facebook_reads_the_20_most_recent_and_skips_the_rest(
    mock_http: respx.MockRouter,
) -> None:
    graph = Graph(mock_http)
    graph.add(
        "t_1",
        *[(f"m_{n:02d}", IN_WINDOW - timedelta(minutes=n), "222", f"#{n}") for n in range(30)],
    )
    graph.unreadable = {"m_05"}
    mock_http.get(FB_CONVERSATIONS).respond(
        200, json=conversations([conversation("t_1", IN_WINDOW)])
    )
    page = facebook_page()
    read = [c.request.url.path.rsplit("/", 1)[1] for c in graph.detail.calls]
    assert read == [f"m_{n:02d}" for n in range(20)]  # never beyond the 20 most recent
    assert [r.external_id for r in page.records] == [f"m_{n:02d}" for n in range(20) if n != 5]


def test_facebook_customer_from_the_message_without_participants(
    mock_http: respx.MockRouter,
) -> None:
    graph = Graph(mock_http)
    graph.add(
        "t_1", ("m_out", IN_WINDOW, PAGE_ID, "Dạ"), ("m_in", IN_WINDOW - timedelta(1), "222", "")
    )
    mock_http.get(FB_CONVERSATIONS).respond(
        200, json=conversations([conversation("t_1", IN_WINDOW, psid=None)])
    )
    out, inbound = facebook_page().records
    assert out.customer.external_user_id == "222" and out.direction == "out"
    assert inbound.customer.external_user_id == "222" and inbound.body is None


def test_facebook_refused_cursor_restarts_the_window(mock_http: respx.MockRouter) -> None:
    graph = Graph(mock_http)
    graph.add("t_1", ("m_1", IN_WINDOW, "222", "hello"))
    refused = {"error": {"message": "(#100) The after cursor is invalid", "code": 100}}
    route = mock_http.get(FB_CONVERSATIONS).mock(
        side_effect=[
            httpx.Response(400, json=refused),
            httpx.Response(200, json=conversations([conversation("t_1", IN_WINDOW)])),
        ]
    )
    page = facebook_page("QVFIstale")
    first, second = (c.request.url.params for c in route.calls)
    assert first["after"] == "QVFIstale" and "after" not in second
    assert [r.external_id for r in page.records] == ["m_1"]


def test_facebook_other_errors_are_not_a_restart(mock_http: respx.MockRouter) -> None:
    expired = {"error": {"message": "Error validating access token", "code": 190}}
    route = mock_http.get(FB_CONVERSATIONS).respond(
        400, json={"error": {**expired["error"], "error_subcode": 463}}
    )
    with pytest.raises(TokenExpiredError):
        facebook_page("QVFIstale")
    assert route.call_count == 1


def test_facebook_malformed_message_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(FB_CONVERSATIONS).respond(
        200, json=conversations([conversation("t_1", IN_WINDOW)])
    )
    mock_http.get(GRAPH + "/t_1/messages").respond(
        200, json={"data": [{"id": "m_1", "created_time": graph_time(IN_WINDOW)}]}
    )
    mock_http.get(GRAPH + "/m_1").respond(200, json={"id": "m_1", "message": "no sender"})
    with pytest.raises(UnexpectedResponseError) as caught:
        facebook_page()
    assert caught.value.field == "from"


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"id": "t_1"}},
        {"data": [{"id": "t_1", "updated_time": "yesterday"}]},
        {"data": [{"updated_time": "2026-11-15T08:30:00+0000"}]},
    ],
)
def test_facebook_malformed_conversations_are_unexpected(
    mock_http: respx.MockRouter, body: dict[str, Any]
) -> None:
    Graph(mock_http)
    mock_http.get(FB_CONVERSATIONS).respond(200, json=body)
    with pytest.raises(UnexpectedResponseError):
        facebook_page()


def test_facebook_html_page_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(FB_CONVERSATIONS).mock(return_value=html(404))
    with pytest.raises(UnexpectedResponseError) as caught:
        facebook_page()
    assert caught.value.problem is BodyProblem.HTML


def test_facebook_retry_goes_through_the_auth_afresh(mock_http: respx.MockRouter) -> None:
    throttled = {"error": {"message": "(#80006) too many calls", "code": 80006}}
    route = mock_http.get(FB_CONVERSATIONS).mock(
        side_effect=[httpx.Response(429, json=throttled), httpx.Response(200, json={"data": []})]
    )
    client = facebook_client()

    def new_token() -> None:  # a token replaced while the retry waited
        client.auth.access_token = "EAAnewer"

    no_wait(client, on_sleep=new_token)
    facebook_page(client=client)
    first, second = (c.request.url.params for c in route.calls)
    assert (first["access_token"], second["access_token"]) == ("EAApage", "EAAnewer")
    assert first["appsecret_proof"] != second["appsecret_proof"]


# --- Zalo --------------------------------------------------------------------------------

ZALO = "https://openapi.zalo.me"
ZALO_RECENT = ZALO + "/v2.0/oa/listrecentchat"
ZALO_CONVERSATION = ZALO + "/v2.0/oa/conversation"
OA_ID = "388613280878808645"


def zalo_client(**kwargs: object) -> ZaloClient:
    options: dict[str, object] = {
        "access_token": "Z-at",
        "app_id": "360846524940903967",
        "app_secret": "appsecret123",
        "oa_id": OA_ID,
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: ZaloClient = make_client(ZaloClient, ZaloAuth, ZALO_BASE_URL, **options)
    return client


def zalo_message(mid: str, at: datetime, user: str, *, inbound: bool, text: str = "hi") -> Any:
    return {
        "src": 1 if inbound else 0,
        "time": int(at.timestamp() * 1000),
        "type": "text",
        "message": text,
        "message_id": mid,
        "from_id": user if inbound else OA_ID,
        "to_id": OA_ID if inbound else user,
        "from_display_name": f"User {user}" if inbound else "OA",
        "to_display_name": "OA" if inbound else f"User {user}",
    }


class Zalo:
    """listrecentchat and conversation served from per-user message lists (newest first)."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.chats: dict[str, list[Any]] = {}
        self.recent = router.get(ZALO_RECENT).mock(side_effect=self.list_recent)
        self.conversation = router.get(ZALO_CONVERSATION).mock(side_effect=self.one_user)

    @staticmethod
    def query(request: httpx.Request) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(request.url.params["data"])
        assert data["count"] <= 10
        return data

    def list_recent(self, request: httpx.Request) -> httpx.Response:
        q = self.query(request)
        latest = [messages[0] for messages in self.chats.values()]
        chunk = latest[q["offset"] : q["offset"] + q["count"]]
        return httpx.Response(200, json={"data": chunk, "error": 0, "message": "Success"})

    def one_user(self, request: httpx.Request) -> httpx.Response:
        q = self.query(request)
        chunk = self.chats[q["user_id"]][q["offset"] : q["offset"] + q["count"]]
        return httpx.Response(200, json={"data": chunk, "error": 0, "message": "Success"})


def zalo_page(cursor: str | None = None, client: ZaloClient | None = None) -> Page[Any]:
    return page_of(zalo.message_page(client or zalo_client(), WINDOW, cursor))


def test_zalo_page_parses_messages(mock_http: respx.MockRouter) -> None:
    server = Zalo(mock_http)
    server.chats["246845883529197922"] = [
        zalo_message("m4", END + timedelta(minutes=1), "246845883529197922", inbound=True),
        zalo_message("m3", IN_WINDOW, "246845883529197922", inbound=False, text="Dạ vâng"),
        zalo_message("m2", IN_WINDOW - timedelta(hours=1), "246845883529197922", inbound=True),
        zalo_message("m1", START - timedelta(hours=1), "246845883529197922", inbound=True),
    ]
    server.chats["5"] = [zalo_message("old", START - timedelta(days=2), "5", inbound=True)]
    page = zalo_page()
    assert json.loads(server.recent.calls.last.request.url.params["data"]) == {
        "offset": 0,
        "count": 10,
    }
    assert server.recent.calls.last.request.headers["access_token"] == "Z-at"
    assert server.conversation.call_count == 1  # user 5's latest message is before the window
    out, inbound = page.records
    assert (out.external_id, out.direction, out.sender_external_id) == ("m3", "out", OA_ID)
    assert out.body == "Dạ vâng" and out.thread_id is None
    assert out.customer.external_user_id == "246845883529197922"
    assert out.customer.display_name == "User 246845883529197922"
    assert (inbound.external_id, inbound.direction) == ("m2", "in")
    assert inbound.sender_external_id == "246845883529197922"
    assert inbound.sent_at == IN_WINDOW - timedelta(hours=1)
    assert page.next_cursor is None  # a short page of chats


def test_zalo_cursor_is_the_chat_offset(mock_http: respx.MockRouter) -> None:
    server = Zalo(mock_http)
    for n in range(13):
        server.chats[str(1000 + n)] = [
            zalo_message(f"m{n}", IN_WINDOW, str(1000 + n), inbound=True)
        ]
    first = zalo_page()
    assert first.next_cursor == "10" and len(first.records) == 10
    last = zalo_page(first.next_cursor)
    assert json.loads(server.recent.calls.last.request.url.params["data"])["offset"] == 10
    assert [r.external_id for r in last.records] == ["m10", "m11", "m12"]
    assert last.next_cursor is None


def test_zalo_pages_one_user_back_to_the_window_start(mock_http: respx.MockRouter) -> None:
    server = Zalo(mock_http)
    user = "246845883529197922"
    server.chats[user] = [
        zalo_message(f"m{n}", IN_WINDOW - timedelta(hours=n), user, inbound=n % 2 == 0)
        for n in range(30)
    ]
    server.chats[user].append(zalo_message("before", START - timedelta(days=1), user, inbound=True))
    page = zalo_page()
    offsets = [
        json.loads(c.request.url.params["data"])["offset"] for c in server.conversation.calls
    ]
    # 30 messages in the window, then one before it: the 4th page reaches it, and stops.
    assert offsets == [0, 10, 20, 30]
    assert len(page.records) == 30


def test_zalo_direction_from_src_without_the_oa_id(mock_http: respx.MockRouter) -> None:
    server = Zalo(mock_http)
    server.chats["42"] = [zalo_message("m1", IN_WINDOW, "42", inbound=True)]
    (record,) = zalo_page(client=zalo_client(oa_id=None)).records
    assert record.direction == "in" and record.customer.external_user_id == "42"


def test_zalo_offset_ignored_is_unexpected(mock_http: respx.MockRouter) -> None:
    user = "42"
    same = [zalo_message(f"m{n}", IN_WINDOW, user, inbound=True) for n in range(10)]
    mock_http.get(ZALO_RECENT).respond(200, json={"data": same[:1], "error": 0})
    mock_http.get(ZALO_CONVERSATION).respond(200, json={"data": same, "error": 0})
    with pytest.raises(UnexpectedResponseError) as caught:
        zalo_page()
    assert caught.value.field == "offset"


def test_zalo_unreadable_cursor() -> None:
    with pytest.raises(ValueError, match="cursor"):
        zalo_page("ten")


@pytest.mark.parametrize(
    ("drop", "field"), [("message_id", "message_id"), ("time", "time"), ("from_id", "from_id")]
)
def test_zalo_malformed_message_is_unexpected(
    mock_http: respx.MockRouter, drop: str, field: str
) -> None:
    server = Zalo(mock_http)
    good = zalo_message("m1", IN_WINDOW, "42", inbound=True)
    bad = {k: v for k, v in good.items() if k != drop}
    server.chats["42"] = [good, bad]
    with pytest.raises(UnexpectedResponseError) as caught:
        zalo_page()
    assert caught.value.field == field


def test_zalo_data_not_an_array_or_html_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(ZALO_RECENT).mock(
        side_effect=[
            httpx.Response(200, json={"data": {"offset": 0}, "error": 0}),
            html(502),
        ]
    )
    with pytest.raises(UnexpectedResponseError) as caught:
        zalo_page()
    assert caught.value.field == "data"
    client = zalo_client()
    client.session.retry = FetchRetry(attempts=1)
    with pytest.raises(UnexpectedResponseError) as caught:
        zalo_page(client=client)
    assert caught.value.problem is BodyProblem.HTML


def test_zalo_retry_goes_through_the_auth_afresh(mock_http: respx.MockRouter) -> None:
    limited = {"error": -32, "message": "Your application reached limit call api"}
    route = mock_http.get(ZALO_RECENT).mock(
        side_effect=[httpx.Response(200, json=limited), httpx.Response(200, json={"data": []})]
    )
    client = zalo_client()

    def refreshed() -> None:  # the pair refreshed by another task while the retry waited
        client.auth.access_token = "Z-new"

    no_wait(client, on_sleep=refreshed)
    assert zalo_page(client=client).records == ()
    first, second = (c.request.headers for c in route.calls)
    assert (first["access_token"], second["access_token"]) == ("Z-at", "Z-new")
    assert first["appsecret_proof"] != second["appsecret_proof"]


# --- against the simulator, in-process -----------------------------------------------------


@pytest.mark.parametrize("platform", ["shopee", "lazada", "tiktok", "facebook", "zalo"])
def test_pages_agree_with_the_simulator(platform: str) -> None:
    """The clients and the simulator were written apart from platforms.md: a whole range,
    window by window and page by page, lists what the simulator says it holds (its ground
    truth), each record normalised as the simulator's own declaration has it."""
    from nfdoctor.platforms.sync import split_windows
    from nfdoctor.simulator.app import build_simulator
    from tests.integration.test_clients_against_simulator import NOW as SIM_NOW
    from tests.integration.test_clients_against_simulator import _clients

    app, state = build_simulator(seed=7, clock=lambda: SIM_NOW)
    client = _clients(state, httpx.ASGITransport(app=app))[platform]
    sync = next(spec.sync for spec in SPECS if spec.name == platform)
    assert sync is not None
    stream = sync.orders or sync.messages
    assert stream is not None
    since, until = SIM_NOW - timedelta(days=120), SIM_NOW + timedelta(days=1)
    records: dict[str, Any] = {}
    totals: list[int] = []

    async def walk() -> None:
        for window in split_windows(since, until, stream.max_window):
            cursor = None
            while True:
                page = await stream.page(client, window, cursor)
                if cursor is None and page.total is not None:
                    totals.append(page.total)
                for record in page.records:
                    moment = getattr(record, "updated_at", None) or record.sent_at
                    # bounds included: a platform's end of a range may be inclusive
                    assert window.start <= moment <= window.end
                    records[record.external_id] = record
                cursor = page.next_cursor
                if cursor is None:
                    break

    asyncio.run(walk())
    truth = state.ground_truth(platform)["accounts"][0]

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text)

    if "orders" in truth:
        orders = {
            o["order_id"]: o for o in truth["orders"] if since <= when(o["update_time"]) < until
        }
        assert orders and set(records) == set(orders)
        for order_id, order in orders.items():
            record = records[order_id]
            assert (record.platform_status, record.status) == (
                order["platform_status"],
                order["crm_status"],
            )
            assert record.total_amount == Decimal(order["amount"])
            assert record.currency == order["currency"]
            assert record.created_at == when(order["create_time"])
            assert record.updated_at == when(order["update_time"])
            if record.buyer is not None:
                assert record.buyer.external_user_id == order["buyer_user_id"]
        if totals:
            assert sum(totals) == len(orders)
    else:
        messages = {
            m["message_id"]: m for m in truth["messages"] if since <= when(m["time"]) < until
        }
        assert messages and set(records) <= set(messages)
        if platform == "zalo":
            assert set(records) == set(messages)
        # Facebook reads only each conversation's 20 most recent messages in detail.
        for message_id, record in records.items():
            message = messages[message_id]
            assert record.direction == ("in" if message["from_customer"] else "out")
            assert record.customer.external_user_id == message["user_id"]
            assert record.sender_external_id == message["sender_id"]
            assert record.body == message["text"]
            assert record.sent_at == when(message["time"])
