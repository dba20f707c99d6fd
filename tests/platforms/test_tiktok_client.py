"""TiktokClient against respx: ping, errors, ABS token expiries, refresh, page_token paging."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import respx

from nfdoctor.platforms.base import TokenSet
from nfdoctor.platforms.errors import (
    BadSignatureError,
    RateLimitedError,
    TokenExpiredError,
    UnexpectedResponseError,
)
from nfdoctor.platforms.tiktok import TIKTOK_BASE_URL, TiktokAuth, TiktokClient, tiktok_sign
from tests.platforms.conftest import NOW, fixed_clock, make_client

API = "https://open-api.tiktokglobalshop.com"
SHOPS = API + "/authorization/202309/shops"
SEARCH = API + "/order/202309/orders/search"
REFRESH = "https://auth.tiktok-shops.com/api/v2/token/refresh"
OK_SHOPS = {
    "code": 0,
    "message": "Success",
    "request_id": "r",
    "data": {"shops": [{"id": "7494", "name": "S", "region": "VN", "cipher": "ROW_abc"}]},
}
TOKENS = {
    "code": 0,
    "message": "success",
    "request_id": "2022080809462301024509910319695C45",
    "data": {
        "access_token": "TTP_new",
        "access_token_expire_in": 1660556783,
        "refresh_token": "TTP_rnew",
        "refresh_token_expire_in": 1691487031,
        "open_id": "7010736057180325637",
        "user_type": 0,
    },
}


def client(**kwargs: object) -> TiktokClient:
    options: dict[str, object] = {
        "app_key": "29a39d",
        "app_secret": "e59af819cc",
        "access_token": "TTP_old",
        "shop_id": "7494",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: TiktokClient = make_client(TiktokClient, TiktokAuth, TIKTOK_BASE_URL, **options)
    return client


def test_ping_signs_and_remembers_cipher(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(SHOPS).respond(200, json=OK_SHOPS)
    tiktok = client()
    result = asyncio.run(tiktok.ping())
    assert result.shape_problems == ()
    request = route.calls.last.request
    assert "shop_cipher" not in request.url.params  # rejected on /authorization/*
    assert request.headers["x-tts-access-token"] == "TTP_old"
    params = request.url.params
    expected = tiktok_sign(
        "e59af819cc",
        "/authorization/202309/shops",
        [(k, params[k]) for k in ("app_key", "timestamp")],
    )
    assert params["sign"] == expected
    assert tiktok.shop_cipher == "ROW_abc"


def test_expired_token_code(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPS).respond(200, json={"code": 105002, "message": "Expired credentials."})
    with pytest.raises(TokenExpiredError) as caught:
        asyncio.run(client().ping())
    assert caught.value.code == "105002"


def test_bad_sign_401(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPS).respond(401, json={"code": 106001, "message": "Invalid credentials."})
    with pytest.raises(BadSignatureError) as caught:
        asyncio.run(client().ping())
    assert caught.value.http_status == 401


def test_429_then_200(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPS).mock(
        side_effect=[
            httpx.Response(
                429,
                json={"code": 36009002, "message": "Too many requests."},
                headers={"Retry-After": "1"},
            ),
            httpx.Response(200, json=OK_SHOPS),
        ]
    )
    tiktok = client()
    with pytest.raises(RateLimitedError) as caught:
        asyncio.run(tiktok.ping())
    assert caught.value.retry_after_s == 1.0
    assert caught.value.code == "36009002"
    assert asyncio.run(tiktok.ping()).http_status == 200


def test_html_502_and_truncated(mock_http: respx.MockRouter) -> None:
    mock_http.get(SHOPS).mock(
        side_effect=[
            httpx.Response(502, text="<html>bad gateway</html>"),
            httpx.Response(200, content=b'{"code":0,"data":{"shops":['),
        ]
    )
    tiktok = client()
    with pytest.raises(UnexpectedResponseError, match="HTML error page, HTTP 502"):
        asyncio.run(tiktok.ping())
    with pytest.raises(UnexpectedResponseError, match="truncated"):
        asyncio.run(tiktok.ping())


def test_refresh_absolute_expiries(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(REFRESH).respond(200, json=TOKENS)
    tokens = asyncio.run(client().refresh("TTP_rold"))
    params = route.calls.last.request.url.params
    assert dict(params) == {
        "app_key": "29a39d",
        "app_secret": "e59af819cc",
        "refresh_token": "TTP_rold",
        "grant_type": "refresh_token",
    }
    # ABS timestamps, not "seconds from now".
    assert tokens.access_expires_at == datetime(2022, 8, 15, 9, 46, 23, tzinfo=timezone.utc)
    assert tokens.refresh_expires_at == datetime(2023, 8, 8, 9, 30, 31, tzinfo=timezone.utc)
    assert tokens.access_expires_at != NOW + timedelta(seconds=1660556783)


def test_refresh_on_expired_persists_before_retry(mock_http: respx.MockRouter) -> None:
    shops = mock_http.get(SHOPS).mock(
        side_effect=[
            httpx.Response(200, json={"code": 105002, "message": "Expired credentials."}),
            httpx.Response(200, json=OK_SHOPS),
        ]
    )
    refresh = mock_http.get(REFRESH).respond(200, json=TOKENS)
    persisted: list[tuple[TokenSet, int]] = []
    tiktok = client(
        refresh_token="TTP_rold",
        on_refresh=lambda tokens: persisted.append((tokens, shops.call_count)),
    )
    asyncio.run(tiktok.ping())
    assert refresh.call_count == 1
    assert [(t.access_token, n) for t, n in persisted] == [("TTP_new", 1)]
    assert shops.calls.last.request.headers["x-tts-access-token"] == "TTP_new"


def test_list_orders_page_token(mock_http: respx.MockRouter) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert params["shop_cipher"] == "ROW_abc"
        body = json.loads(request.content)
        assert body == {
            "create_time_ge": int((NOW - timedelta(days=1)).timestamp()),
            "create_time_lt": int(NOW.timestamp()),
        }
        # The raw body is part of the signature.
        signed = [(k, v) for k, v in params.multi_items() if k != "sign"]
        assert params["sign"] == tiktok_sign(
            "e59af819cc", "/order/202309/orders/search", signed, request.content
        )
        token = params.get("page_token", "")
        following = {"": "p2", "p2": "p3", "p3": ""}[token]
        return httpx.Response(
            200,
            json={
                "code": 0,
                "data": {
                    "next_page_token": following,
                    "total_count": 3,
                    "orders": [{"id": f"order-{token or 'p1'}", "status": "UNPAID"}],
                },
            },
        )

    mock_http.get(SHOPS).respond(200, json=OK_SHOPS)
    mock_http.post(SEARCH).mock(side_effect=serve)

    async def collect() -> list[str]:
        return [o["id"] async for o in client().list_orders(NOW - timedelta(days=1), NOW)]

    assert asyncio.run(collect()) == ["order-p1", "order-p2", "order-p3"]
