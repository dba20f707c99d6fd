"""LazadaClient against respx: ping, errors, refresh, offset paging past the 5000 cap."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest
import respx

from nfdoctor.platforms.base import TokenSet, retry_call
from nfdoctor.platforms.errors import (
    RateLimitedError,
    RefreshTokenInvalidError,
    TokenExpiredError,
    UnexpectedResponseError,
)
from nfdoctor.platforms.lazada import LAZADA_BASE_URL, LazadaAuth, LazadaClient
from tests.platforms.conftest import NOW, fixed_clock, make_client

API = "https://api.lazada.vn/rest"
AUTH = "https://auth.lazada.com/rest"
SELLER = API + "/seller/get"
ORDERS = API + "/orders/get"
REFRESH = AUTH + "/auth/token/refresh"
OK_SELLER = {"code": "0", "request_id": "r", "data": {"seller_id": 1001, "name": "Shop"}}


def client(**kwargs: object) -> LazadaClient:
    options: dict[str, object] = {
        "app_key": "123456",
        "app_secret": "helloworld",
        "access_token": "AT-old",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: LazadaClient = make_client(LazadaClient, LazadaAuth, LAZADA_BASE_URL, **options)
    return client


def test_ping_signs_with_ms_and_upper_hex(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(SELLER).respond(200, json=OK_SELLER)
    result = asyncio.run(client().ping())
    assert result.shape_problems == ()
    params = route.calls.last.request.url.params
    assert params["timestamp"] == str(int(NOW.timestamp() * 1000))
    assert params["sign"] == params["sign"].upper()
    assert params["access_token"] == "AT-old"


def test_illegal_access_token(mock_http: respx.MockRouter) -> None:
    mock_http.get(SELLER).respond(
        200,
        json={
            "type": "ISV",
            "code": "IllegalAccessToken",
            "message": "The specified access token is invalid or expired",
            "request_id": "0b8f",
        },
    )
    with pytest.raises(TokenExpiredError) as caught:
        asyncio.run(client().ping())
    assert caught.value.code == "IllegalAccessToken"
    assert caught.value.http_status == 200


def test_api_call_limit_then_ok_with_retry(mock_http: respx.MockRouter) -> None:
    mock_http.get(SELLER).mock(
        side_effect=[
            httpx.Response(200, json={"code": "ApiCallLimit", "message": "ban 1 seconds"}),
            httpx.Response(429, text="busy", headers={"Retry-After": "2"}),
            httpx.Response(200, json=OK_SELLER),
        ]
    )
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    result = asyncio.run(retry_call(client().ping, sleep=fake_sleep, attempts=3))
    assert result.http_status == 200
    assert slept == [1.0, 2.0]


def test_429_surfaces_rate_limited(mock_http: respx.MockRouter) -> None:
    mock_http.get(SELLER).respond(429, text="busy", headers={"Retry-After": "9"})
    with pytest.raises(RateLimitedError) as caught:
        asyncio.run(client().ping())
    assert caught.value.retry_after_s == 9.0


def test_html_502_and_truncated_json(mock_http: respx.MockRouter) -> None:
    mock_http.get(SELLER).mock(
        side_effect=[
            httpx.Response(502, text="<html>502</html>", headers={"content-type": "text/html"}),
            httpx.Response(200, content=b'{"code":"0","data":{"sel'),
        ]
    )
    lazada = client()
    with pytest.raises(UnexpectedResponseError, match="HTML error page, HTTP 502"):
        asyncio.run(lazada.ping())
    with pytest.raises(UnexpectedResponseError, match="truncated"):
        asyncio.run(lazada.ping())


TOKENS = {
    "access_token": "AT-new",
    "refresh_token": "RT-new",
    "expires_in": 604800,
    "refresh_expires_in": 2592000,
    "country": "vn",
    "country_user_info_list": [{"country": "vn", "seller_id": "1001"}],
    "code": "0",
    "request_id": "r",
}


def test_refresh_endpoint(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(REFRESH).respond(200, json=TOKENS)
    tokens = asyncio.run(client().refresh("RT-old"))
    request = route.calls.last.request
    assert request.method == "GET"
    params = request.url.params
    assert params["refresh_token"] == "RT-old"
    assert params["app_key"] == "123456"
    assert params["sign_method"] == "sha256"
    assert "sign" in params and "access_token" not in params
    assert tokens.access_expires_at == NOW + timedelta(days=7)
    assert tokens.refresh_expires_at == NOW + timedelta(days=30)


def test_refresh_illegal_refresh_token(mock_http: respx.MockRouter) -> None:
    mock_http.get(REFRESH).respond(
        200, json={"code": "IllegalRefreshToken", "message": "invalid or expired"}
    )
    with pytest.raises(RefreshTokenInvalidError):
        asyncio.run(client().refresh("RT-old"))


def test_refresh_on_expired_persists_before_retry(mock_http: respx.MockRouter) -> None:
    seller = mock_http.get(SELLER).mock(
        side_effect=[
            httpx.Response(200, json={"code": "IllegalAccessToken", "message": "x"}),
            httpx.Response(200, json=OK_SELLER),
        ]
    )
    mock_http.get(REFRESH).respond(200, json=TOKENS)
    persisted: list[tuple[TokenSet, int]] = []
    lazada = client(
        refresh_token="RT-old",
        on_refresh=lambda tokens: persisted.append((tokens, seller.call_count)),
    )
    asyncio.run(lazada.ping())
    assert [(t.access_token, n) for t, n in persisted] == [("AT-new", 1)]
    assert seller.calls.last.request.url.params["access_token"] == "AT-new"
    assert lazada.auth.refresh_token == "RT-new"


def test_list_orders_offset_pages_and_restart_past_5000(mock_http: respx.MockRouter) -> None:
    start = NOW - timedelta(days=60)
    orders = [
        {
            "order_id": str(1000 + i),
            "created_at": (start + timedelta(seconds=i)).isoformat(),
            "statuses": ["pending"],
        }
        for i in range(5250)
    ]
    offsets: list[tuple[str, int]] = []

    def serve(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        offset, limit = int(params["offset"]), int(params["limit"])
        assert offset <= 5000 and limit <= 100
        after = datetime.fromisoformat(params["created_after"])
        offsets.append((params["created_after"], offset))
        matching = [o for o in orders if datetime.fromisoformat(o["created_at"]) >= after]
        page = matching[offset : offset + limit]
        return httpx.Response(
            200,
            json={
                "code": "0",
                "data": {
                    "count": str(len(page)),
                    "countTotal": str(len(matching)),
                    "orders": page,
                },
            },
        )

    mock_http.get(ORDERS).mock(side_effect=serve)

    async def collect() -> list[str]:
        return [o["order_id"] async for o in client().list_orders(start, NOW)]

    found = asyncio.run(collect())
    assert found == [o["order_id"] for o in orders]  # every order once, in order
    restarts = [after for after, offset in offsets if offset == 0]
    assert len(restarts) == 2  # the window moved once past the cap
    assert restarts[1] == orders[4999]["created_at"]
