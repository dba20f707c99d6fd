"""ShopeeClient against respx: ping, errors, refresh-on-expired, refresh, order listing."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
import respx

from nfdoctor.platforms.base import TokenSet, retry_call
from nfdoctor.platforms.errors import (
    RateLimitedError,
    RefreshTokenInvalidError,
    TokenExpiredError,
    UnexpectedResponseError,
    UnreachableError,
)
from nfdoctor.platforms.shopee import SHOPEE_BASE_URL, ShopeeAuth, ShopeeClient
from tests.platforms.conftest import NOW, fixed_clock, make_client

HOST = "https://partner.shopeemobile.com"
SHOP_INFO = HOST + "/api/v2/shop/get_shop_info"
REFRESH = HOST + "/api/v2/auth/access_token/get"
ORDERS = HOST + "/api/v2/order/get_order_list"
OK_INFO = {"error": "", "message": "", "request_id": "r", "shop_name": "S", "region": "VN"}


def client(**kwargs: object) -> ShopeeClient:
    options: dict[str, object] = {
        "partner_id": 2001887,
        "partner_key": "test_partner_key",
        "shop_id": 14701711,
        "access_token": "AT-old",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: ShopeeClient = make_client(ShopeeClient, ShopeeAuth, SHOPEE_BASE_URL, **options)
    return client


def test_ping_reports_skew_and_shape(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOP_INFO).respond(
        200,
        json={**OK_INFO, "status": "NORMAL"},
        headers={"Date": "Fri, 20 Nov 2026 07:59:50 GMT"},
    )
    result = asyncio.run(client().ping())
    assert result.http_status == 200
    assert result.clock_skew_s == 10.0
    assert result.server_date is not None
    assert result.shape_problems == ()
    sent = mock_http.calls.last.request
    assert sent.url.params["access_token"] == "AT-old"
    assert sent.url.params["timestamp"] == str(int(NOW.timestamp()))


def test_ping_reports_schema_drift(mock_http: respx.MockRouter) -> None:
    drifted = {"error": "", "request_id": "r", "response": {"shop_name": "S", "region": "VN"}}
    mock_http.get(SHOP_INFO).respond(200, json=drifted)
    result = asyncio.run(client().ping())
    assert "shop_name under 'response'" in result.shape_problems
    assert "missing status" in result.shape_problems


def test_429_then_200_with_retry_helper(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOP_INFO).mock(
        side_effect=[
            httpx.Response(429, text="slow down", headers={"Retry-After": "5"}),
            httpx.Response(200, json={**OK_INFO, "status": "NORMAL"}),
        ]
    )
    shopee = client()
    with pytest.raises(RateLimitedError) as caught:
        asyncio.run(shopee.ping())
    assert caught.value.retry_after_s == 5.0

    mock_http.get(SHOP_INFO).mock(
        side_effect=[
            httpx.Response(429, text="slow down", headers={"Retry-After": "5"}),
            httpx.Response(200, json={**OK_INFO, "status": "NORMAL"}),
        ]
    )
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    result = asyncio.run(retry_call(shopee.ping, sleep=fake_sleep))
    assert result.http_status == 200
    assert slept == [5.0]


def test_html_502(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOP_INFO).respond(
        502, text="<html><h1>502 Bad Gateway</h1></html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(UnexpectedResponseError, match="HTML error page, HTTP 502"):
        asyncio.run(client().ping())


def test_truncated_json(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOP_INFO).respond(200, content=b'{"error":"","shop_na')
    with pytest.raises(UnexpectedResponseError, match="truncated"):
        asyncio.run(client().ping())


def test_connect_error_is_unreachable(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOP_INFO).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(UnreachableError) as caught:
        asyncio.run(client().ping())
    assert caught.value.phase == "connect"
    assert "AT-old" not in str(caught.value)


def test_misspelled_invalid_acceess_token_is_token_expired(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOP_INFO).respond(
        200,
        json={
            "error": "invalid_acceess_token",
            "message": "Invalid access_token.",
            "request_id": "q",
        },
    )
    with pytest.raises(TokenExpiredError) as caught:
        asyncio.run(client().ping())
    assert caught.value.code == "invalid_acceess_token"
    assert caught.value.request_id == "q"


def test_refresh_on_expired_persists_before_retry(mock_http: respx.MockRouter) -> None:
    info = mock_http.get(SHOP_INFO).mock(
        side_effect=[
            httpx.Response(200, json={"error": "invalid_acceess_token", "message": "x"}),
            httpx.Response(200, json={**OK_INFO, "status": "NORMAL"}),
        ]
    )
    refresh = mock_http.post(REFRESH).respond(
        200,
        json={"error": "", "access_token": "AT-new", "refresh_token": "RT-new", "expire_in": 14400},
    )
    persisted: list[tuple[TokenSet, int]] = []
    shopee = client(
        refresh_token="RT-old",
        on_refresh=lambda tokens: persisted.append((tokens, info.call_count)),
    )
    asyncio.run(shopee.ping())
    assert refresh.call_count == 1
    assert len(persisted) == 1
    tokens, info_calls_when_persisted = persisted[0]
    assert info_calls_when_persisted == 1  # persisted before the retried call went out
    assert tokens.access_token == "AT-new" and tokens.refresh_token == "RT-new"
    assert tokens.access_expires_at == NOW + timedelta(hours=4)
    assert info.calls.last.request.url.params["access_token"] == "AT-new"
    body = json.loads(refresh.calls.last.request.content)
    assert body == {"refresh_token": "RT-old", "partner_id": 2001887, "shop_id": 14701711}


def test_refresh_endpoint(mock_http: respx.MockRouter) -> None:
    route = mock_http.post(REFRESH).respond(
        200,
        json={
            "request_id": "r",
            "error": "",
            "message": "",
            "access_token": "AT-new",
            "refresh_token": "RT-new",
            "expire_in": 14400,
            "partner_id": 2001887,
            "shop_id": 14701711,
        },
    )
    tokens = asyncio.run(client().refresh("RT-old"))
    request = route.calls.last.request
    assert request.method == "POST"
    assert set(request.url.params) == {"partner_id", "timestamp", "sign"}  # public sign
    assert json.loads(request.content)["refresh_token"] == "RT-old"
    assert tokens.access_expires_at == NOW + timedelta(seconds=14400)
    assert tokens.refresh_expires_at == NOW + timedelta(days=30)


def test_refresh_reused_token_is_refresh_invalid(mock_http: respx.MockRouter) -> None:
    mock_http.post(REFRESH).respond(
        200, json={"error": "error_auth", "message": "Invalid refresh_token.", "request_id": "r"}
    )
    with pytest.raises(RefreshTokenInvalidError):
        asyncio.run(client().refresh("RT-used"))


def test_list_orders_cursor_pages_and_15_day_windows(mock_http: respx.MockRouter) -> None:
    windows: list[tuple[int, int]] = []

    def pages(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        window = (int(params["time_from"]), int(params["time_to"]))
        if window not in windows:
            windows.append(window)
        assert window[1] - window[0] <= 15 * 86400
        assert params["page_size"] == "100"
        cursor = params["cursor"]
        index = len(windows)
        following = {"": "c1", "c1": "c2", "c2": ""}[cursor]
        return httpx.Response(
            200,
            json={
                "error": "",
                "response": {
                    "more": bool(following),
                    "next_cursor": following,
                    "order_list": [{"order_sn": f"W{index}-{cursor or 'c0'}"}],
                },
            },
        )

    mock_http.get(ORDERS).mock(side_effect=pages)

    async def collect() -> list[str]:
        since = NOW - timedelta(days=40)
        return [o["order_sn"] async for o in client().list_orders(since, NOW)]

    found = asyncio.run(collect())
    assert len(windows) == 3  # 15 + 15 + 10 days
    assert found[:3] == ["W1-c0", "W1-c1", "W1-c2"]
    assert len(found) == 9
