"""ZaloClient against respx: errors inside HTTP 200, string expires_in, refresh, offset paging."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from nfdoctor.platforms.base import TokenSet, appsecret_proof
from nfdoctor.platforms.errors import (
    BadSignatureError,
    RateLimitedError,
    RefreshTokenInvalidError,
    TokenExpiredError,
    TokenInvalidError,
    UnexpectedResponseError,
)
from nfdoctor.platforms.zalo import ZALO_BASE_URL, ZaloAuth, ZaloClient
from tests.platforms.conftest import NOW, fixed_clock, make_client

API = "https://openapi.zalo.me"
GETOA = API + "/v2.0/oa/getoa"
RECENT = API + "/v2.0/oa/listrecentchat"
CONVERSATION = API + "/v2.0/oa/conversation"
TOKEN = "https://oauth.zaloapp.com/v4/oa/access_token"
OK_OA = {"error": 0, "message": "Success", "data": {"oaid": "388613280878808645", "name": "OA"}}
TOKENS = {"access_token": "Z-new", "refresh_token": "ZR-new", "expires_in": "90000"}


def client(**kwargs: object) -> ZaloClient:
    options: dict[str, object] = {
        "access_token": "Z-old",
        "app_id": "360846524940903967",
        "app_secret": "appsecret123",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: ZaloClient = make_client(ZaloClient, ZaloAuth, ZALO_BASE_URL, **options)
    return client


def test_ping_headers_and_rate_limit(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(GETOA).respond(
        200, json=OK_OA, headers={"X-RateLimit-Limit": "4000", "X-RateLimit-Remain": "3900"}
    )
    result = asyncio.run(client().ping())
    assert result.shape_problems == ()
    assert result.rate_limit is not None and result.rate_limit.percent_used == 2.5
    request = route.calls.last.request
    assert request.headers["access_token"] == "Z-old"
    assert request.headers["appsecret_proof"] == appsecret_proof("appsecret123", "Z-old")


def test_ping_accepts_oa_id_spelling(mock_http: respx.MockRouter) -> None:
    mock_http.get(GETOA).respond(200, json={"error": 0, "data": {"oa_id": "1", "name": "OA"}})
    assert asyncio.run(client().ping()).shape_problems == ()


@pytest.mark.parametrize(
    ("code", "expected"),
    [(-216, TokenInvalidError), (-220, TokenExpiredError), (-242, BadSignatureError)],
)
def test_errors_inside_http_200(
    mock_http: respx.MockRouter, code: int, expected: type[Exception]
) -> None:
    mock_http.get(GETOA).respond(200, json={"error": code, "message": "m"})
    with pytest.raises(expected) as caught:
        asyncio.run(client().ping())
    assert getattr(caught.value, "http_status") == 200  # noqa: B009


def test_rate_limit_code_then_ok(mock_http: respx.MockRouter) -> None:
    mock_http.get(GETOA).mock(
        side_effect=[
            httpx.Response(200, json={"error": -32, "message": "reached limit call api"}),
            httpx.Response(429, text="busy", headers={"Retry-After": "4"}),
            httpx.Response(200, json=OK_OA),
        ]
    )
    zalo = client()
    with pytest.raises(RateLimitedError) as first:
        asyncio.run(zalo.ping())
    assert first.value.retry_after_s is None
    with pytest.raises(RateLimitedError) as second:
        asyncio.run(zalo.ping())
    assert second.value.retry_after_s == 4.0
    assert asyncio.run(zalo.ping()).http_status == 200


def test_html_502_and_truncated(mock_http: respx.MockRouter) -> None:
    mock_http.get(GETOA).mock(
        side_effect=[
            httpx.Response(502, text="<html>502</html>", headers={"content-type": "text/html"}),
            httpx.Response(200, content=b'{"error":0,"data":{'),
        ]
    )
    zalo = client()
    with pytest.raises(UnexpectedResponseError, match="HTML error page, HTTP 502"):
        asyncio.run(zalo.ping())
    with pytest.raises(UnexpectedResponseError, match="truncated"):
        asyncio.run(zalo.ping())


def test_refresh_endpoint_string_expires_in(mock_http: respx.MockRouter) -> None:
    route = mock_http.post(TOKEN).respond(200, json=TOKENS)
    tokens = asyncio.run(client().refresh("ZR-old"))
    request = route.calls.last.request
    assert request.headers["secret_key"] == "appsecret123"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(request.content.decode())) == {
        "refresh_token": "ZR-old",
        "app_id": "360846524940903967",
        "grant_type": "refresh_token",
    }
    assert tokens.access_expires_at == NOW + timedelta(hours=25)
    assert tokens.refresh_expires_at == NOW + timedelta(days=90)


def test_refresh_failure_in_http_200_is_terminal(mock_http: respx.MockRouter) -> None:
    mock_http.post(TOKEN).respond(
        200,
        json={"error": -14014, "error_name": "Invalid refresh token", "error_reason": "x"},
    )
    with pytest.raises(RefreshTokenInvalidError) as caught:
        asyncio.run(client().refresh("ZR-used"))
    assert caught.value.code == "-14014"
    assert "ZR-used" not in str(caught.value)


def test_refresh_on_expired_persists_before_retry(mock_http: respx.MockRouter) -> None:
    getoa = mock_http.get(GETOA).mock(
        side_effect=[
            httpx.Response(200, json={"error": -220, "message": "access_token is expired"}),
            httpx.Response(200, json=OK_OA),
        ]
    )
    mock_http.post(TOKEN).respond(200, json=TOKENS)
    persisted: list[tuple[TokenSet, int]] = []
    zalo = client(
        refresh_token="ZR-old",
        on_refresh=lambda tokens: persisted.append((tokens, getoa.call_count)),
    )
    asyncio.run(zalo.ping())
    assert [(t.access_token, n) for t, n in persisted] == [("Z-new", 1)]
    assert getoa.calls.last.request.headers["access_token"] == "Z-new"


def _offset_pages(total: int) -> object:
    def serve(request: httpx.Request) -> httpx.Response:
        query = json.loads(request.url.params["data"])
        assert query["count"] <= 10
        offset, count = query["offset"], query["count"]
        items = [
            {"message_id": f"m{i}", "time": 1700000000000 + i, "src": 1}
            for i in range(offset, min(offset + count, total))
        ]
        return httpx.Response(200, json={"error": 0, "message": "Success", "data": items})

    return serve


def test_list_recent_chats_offset_count(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(RECENT).mock(side_effect=_offset_pages(25))

    async def collect() -> list[str]:
        return [m["message_id"] async for m in client().list_conversations()]

    assert asyncio.run(collect()) == [f"m{i}" for i in range(25)]
    assert route.call_count == 3


def test_list_messages_with_user_exact_multiple(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(CONVERSATION).mock(side_effect=_offset_pages(30))

    async def collect() -> list[str]:
        return [m["message_id"] async for m in client().list_messages("246845883529197922")]

    assert len(asyncio.run(collect())) == 30
    assert route.call_count == 4  # the empty fourth page ends the list
    assert json.loads(route.calls.last.request.url.params["data"])["user_id"] == (
        "246845883529197922"
    )
