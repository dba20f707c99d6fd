"""FacebookClient against respx: ping, usage headers, error codes, debug_token, cursors."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import respx

from nfdoctor.platforms.errors import (
    RateLimitedError,
    TokenExpiredError,
    TokenInvalidError,
    UnexpectedResponseError,
)
from nfdoctor.platforms.facebook import (
    FACEBOOK_BASE_URL,
    FacebookAuth,
    FacebookClient,
    appsecret_proof,
)
from tests.platforms.conftest import NOW, fixed_clock, make_client

GRAPH = "https://graph.facebook.com/v25.0"
ME = GRAPH + "/me"


def client(**kwargs: object) -> FacebookClient:
    options: dict[str, object] = {
        "page_id": "111",
        "access_token": "EAApage",
        "app_id": "999",
        "app_secret": "appsecret123",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: FacebookClient = make_client(FacebookClient, FacebookAuth, FACEBOOK_BASE_URL, **options)
    return client


def graph_error(code: int, subcode: int | None = None, status: int = 400) -> httpx.Response:
    error: dict[str, object] = {"message": "m", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "trace-1"
    return httpx.Response(status, json={"error": error})


def test_ping_with_usage_headers_and_proof(mock_http: respx.MockRouter) -> None:
    usage = {"111": [{"type": "messenger", "call_count": 40, "total_cputime": 12,
                      "total_time": 12, "estimated_time_to_regain_access": 0}]}  # fmt: skip
    route = mock_http.get(ME).respond(
        200,
        json={"id": "111", "name": "Page"},
        headers={
            "X-App-Usage": '{"call_count":28,"total_time":25,"total_cputime":25}',
            "X-Business-Use-Case-Usage": json.dumps(usage),
        },
    )
    result = asyncio.run(client().ping())
    assert result.rate_limit is not None and result.rate_limit.percent_used == 40.0
    assert result.shape_problems == ()
    params = route.calls.last.request.url.params
    assert params["appsecret_proof"] == appsecret_proof("appsecret123", "EAApage")
    assert params["fields"] == "id,name"


@pytest.mark.parametrize(
    ("code", "subcode", "expected"),
    [(190, 463, TokenExpiredError), (190, 460, TokenInvalidError), (190, 467, TokenInvalidError)],
)
def test_token_errors(
    mock_http: respx.MockRouter, code: int, subcode: int, expected: type[Exception]
) -> None:
    mock_http.get(ME).mock(return_value=graph_error(code, subcode))
    with pytest.raises(expected) as caught:
        asyncio.run(client().ping())
    assert getattr(caught.value, "code") == f"{code}/{subcode}"  # noqa: B009
    assert getattr(caught.value, "request_id") == "trace-1"  # noqa: B009


@pytest.mark.parametrize("code", [4, 17, 32, 613])
def test_rate_limit_codes(mock_http: respx.MockRouter, code: int) -> None:
    mock_http.get(ME).mock(return_value=graph_error(code))
    with pytest.raises(RateLimitedError):
        asyncio.run(client().ping())


def test_429_then_200(mock_http: respx.MockRouter) -> None:
    mock_http.get(ME).mock(
        side_effect=[
            httpx.Response(429, text="slow", headers={"Retry-After": "12"}),
            httpx.Response(200, json={"id": "111", "name": "Page"}),
        ]
    )
    facebook = client()
    with pytest.raises(RateLimitedError) as caught:
        asyncio.run(facebook.ping())
    assert caught.value.retry_after_s == 12.0
    assert asyncio.run(facebook.ping()).http_status == 200


def test_html_502_and_truncated(mock_http: respx.MockRouter) -> None:
    mock_http.get(ME).mock(
        side_effect=[
            httpx.Response(502, text="<!DOCTYPE html><title>Error</title>"),
            httpx.Response(200, content=b'{"id":"11'),
        ]
    )
    facebook = client()
    with pytest.raises(UnexpectedResponseError, match="HTML error page, HTTP 502"):
        asyncio.run(facebook.ping())
    with pytest.raises(UnexpectedResponseError, match="truncated"):
        asyncio.run(facebook.ping())


def test_introspect_debug_token(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(GRAPH + "/debug_token").respond(
        200,
        json={
            "data": {
                "app_id": "999",
                "type": "PAGE",
                "is_valid": True,
                "issued_at": 1700000000,
                "expires_at": 0,
                "data_access_expires_at": 1790000000,
                "scopes": ["pages_messaging", "pages_read_engagement"],
            }
        },
    )
    info = asyncio.run(client().introspect())
    assert info is not None
    assert info.is_valid and info.token_type == "PAGE"
    assert info.expires_at is None  # 0 = never
    assert info.issued_at == datetime.fromtimestamp(1700000000, tz=timezone.utc)
    assert info.data_access_expires_at == datetime.fromtimestamp(1790000000, tz=timezone.utc)
    params = route.calls.last.request.url.params
    assert params["input_token"] == "EAApage"
    assert params["access_token"] == "999|appsecret123"
    assert params["appsecret_proof"] == appsecret_proof("appsecret123", "999|appsecret123")


def test_refresh_is_long_lived_exchange(mock_http: respx.MockRouter) -> None:
    route = mock_http.get(GRAPH + "/oauth/access_token").respond(
        200, json={"access_token": "EAAlong", "token_type": "bearer", "expires_in": 5183944}
    )
    tokens = asyncio.run(client().refresh("EAAshort"))
    params = route.calls.last.request.url.params
    assert params["grant_type"] == "fb_exchange_token"
    assert params["client_id"] == "999"
    assert params["fb_exchange_token"] == "EAAshort"
    assert tokens.access_expires_at == NOW + timedelta(seconds=5183944)
    assert tokens.refresh_expires_at is None


def test_conversations_follow_cursors_across_empty_page(mock_http: respx.MockRouter) -> None:
    pages = {
        None: ([{"id": "t_1"}], "A"),
        "A": ([], "B"),  # an empty page that still has `next` is not the end
        "B": ([{"id": "t_2"}, {"id": "t_3"}], None),
    }

    def serve(request: httpx.Request) -> httpx.Response:
        assert request.url.params["platform"] == "messenger"
        items, following = pages[request.url.params.get("after")]
        paging: dict[str, object] = {"cursors": {"before": "x", "after": following or "Z"}}
        if following:
            paging["next"] = f"{GRAPH}/111/conversations?after={following}&access_token=EAApage"
        return httpx.Response(200, json={"data": items, "paging": paging})

    route = mock_http.get(GRAPH + "/111/conversations").mock(side_effect=serve)

    async def collect() -> list[str]:
        return [c["id"] async for c in client().list_conversations()]

    assert asyncio.run(collect()) == ["t_1", "t_2", "t_3"]
    assert route.call_count == 3


def test_messages_three_pages(mock_http: respx.MockRouter) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        following = {None: "c1", "c1": "c2", "c2": None}[after]
        paging: dict[str, object] = {"cursors": {"after": following or "end"}}
        if following:
            paging["next"] = "https://graph.facebook.com/next"
        return httpx.Response(
            200, json={"data": [{"id": f"m_{after}", "created_time": "t"}], "paging": paging}
        )

    mock_http.get(GRAPH + "/t_1/messages").mock(side_effect=serve)

    async def collect() -> list[str]:
        return [m["id"] async for m in client().list_messages("t_1")]

    assert asyncio.run(collect()) == ["m_None", "m_c1", "m_c2"]
