"""What every client does with a token response it cannot trust, and how refresh is sent.

A malformed expiry is schema drift (UnexpectedResponseError naming the field), never a
ValueError traceback; a refused refresh never echoes the secrets it was sent with; the
refresh call carries the client's own timeout even on a shared AsyncClient.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from nfdoctor.platforms.errors import (
    BadCredentialsError,
    BadParametersError,
    UnexpectedResponseError,
)
from nfdoctor.platforms.facebook import FACEBOOK_BASE_URL, FacebookAuth, FacebookClient
from nfdoctor.platforms.lazada import LAZADA_BASE_URL, LazadaAuth, LazadaClient
from nfdoctor.platforms.tiktok import TIKTOK_BASE_URL, TiktokAuth, TiktokClient
from nfdoctor.platforms.zalo import ZALO_BASE_URL, ZaloAuth, ZaloClient
from tests.platforms.conftest import fixed_clock, make_client

LAZADA_REFRESH = "https://auth.lazada.com/rest/auth/token/refresh"
TIKTOK_REFRESH = "https://auth.tiktok-shops.com/api/v2/token/refresh"
ZALO_REFRESH = "https://oauth.zaloapp.com/v4/oa/access_token"
DEBUG_TOKEN = "https://graph.facebook.com/v25.0/debug_token"


def lazada(**kwargs: Any) -> LazadaClient:
    return make_client(
        LazadaClient,
        LazadaAuth,
        LAZADA_BASE_URL,
        app_key="123456",
        app_secret="lazada-app-secret-XYZ",
        access_token="AT-old-123456",
        clock=fixed_clock,
        **kwargs,
    )


@pytest.mark.parametrize("expires_in", ["abc", "inf", "1e30", {"s": 1}, True])
def test_lazada_malformed_expires_in_is_schema_drift(
    mock_http: respx.MockRouter, expires_in: object
) -> None:
    mock_http.get(LAZADA_REFRESH).respond(
        200,
        json={"code": "0", "access_token": "A2", "refresh_token": "R2", "expires_in": expires_in},
    )
    with pytest.raises(UnexpectedResponseError) as caught:
        asyncio.run(lazada().refresh("RT-old-123456"))
    assert caught.value.field == "expires_in"


def test_tiktok_absolute_expiry_out_of_range_is_schema_drift(mock_http: respx.MockRouter) -> None:
    mock_http.get(TIKTOK_REFRESH).respond(
        200,
        json={
            "code": 0,
            "data": {
                "access_token": "A2",
                "refresh_token": "R2",
                "access_token_expire_in": 1.5e18,
                "refresh_token_expire_in": 1767225600,
            },
        },
    )
    client = make_client(
        TiktokClient,
        TiktokAuth,
        TIKTOK_BASE_URL,
        app_key="6abc",
        app_secret="tiktok-secret",
        access_token="AT",
        clock=fixed_clock,
    )
    with pytest.raises(UnexpectedResponseError) as caught:
        asyncio.run(client.refresh("RT"))
    assert caught.value.field == "access_token_expire_in"


def test_facebook_debug_token_expiry_that_is_not_a_number(mock_http: respx.MockRouter) -> None:
    mock_http.get(DEBUG_TOKEN).respond(
        200, json={"data": {"is_valid": True, "expires_at": "never", "app_id": "1"}}
    )
    client = make_client(
        FacebookClient,
        FacebookAuth,
        FACEBOOK_BASE_URL,
        page_id="1",
        access_token="EAApage",
        app_id="1",
        app_secret="fb-secret",
        clock=fixed_clock,
    )
    with pytest.raises(UnexpectedResponseError) as caught:
        asyncio.run(client.introspect())
    assert caught.value.field == "data.expires_at"


def test_refused_refresh_never_echoes_the_secrets_it_was_sent(
    mock_http: respx.MockRouter,
) -> None:
    mock_http.get(LAZADA_REFRESH).respond(
        200,
        json={
            "code": "InvalidParameter",
            "type": "ISV",
            "message": "bad refresh_token RT-old-123456 for secret lazada-app-secret-XYZ",
            "request_id": "0b8f",
        },
    )
    with pytest.raises(BadParametersError) as caught:
        asyncio.run(lazada(refresh_token="RT-old-123456").refresh("RT-old-123456"))
    text = f"{caught.value} {caught.value.platform_message} {caught.value!r}"
    assert "bad refresh_token" in text  # the platform's words are kept …
    assert "RT-old-123456" not in text  # … without the token …
    assert "lazada-app-secret-XYZ" not in text  # … or the secret


def test_refresh_carries_the_clients_timeout_on_a_shared_http_client(
    mock_http: respx.MockRouter,
) -> None:
    route = mock_http.post(ZALO_REFRESH).respond(
        200, json={"access_token": "A2", "refresh_token": "R2", "expires_in": "90000"}
    )

    async def refresh() -> None:
        async with httpx.AsyncClient(timeout=30.0) as shared:
            client = make_client(
                ZaloClient,
                ZaloAuth,
                ZALO_BASE_URL,
                access_token="AT",
                app_id="1",
                app_secret="zalo-secret",
                http=shared,
                timeout_s=2.5,
                clock=fixed_clock,
            )
            tokens = await client.refresh("RT")
            assert client.auth.refresh_token == tokens.refresh_token == "R2"

    asyncio.run(refresh())
    timeout = route.calls.last.request.extensions["timeout"]
    assert timeout == httpx.Timeout(2.5).as_dict()


def test_zalo_refresh_without_app_credentials_is_refused_before_any_call(
    mock_http: respx.MockRouter,
) -> None:
    route = mock_http.post(ZALO_REFRESH).respond(200, json={})
    with pytest.raises(BadCredentialsError, match="app credentials"):
        asyncio.run(
            make_client(
                ZaloClient, ZaloAuth, ZALO_BASE_URL, access_token="AT", clock=fixed_clock
            ).refresh("RT")
        )
    assert not route.called
