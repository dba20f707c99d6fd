"""The clients and the simulator were written separately from platforms.md: they must agree.

Each client pings its simulator in-process (httpx.ASGITransport, no socket) with the
credentials and tokens the simulator issued; a signing disagreement fails here.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from nfdoctor.platforms.facebook import FACEBOOK_BASE_URL, FacebookAuth, FacebookClient
from nfdoctor.platforms.lazada import LAZADA_BASE_URL, LazadaAuth, LazadaClient
from nfdoctor.platforms.shopee import SHOPEE_BASE_URL, ShopeeAuth, ShopeeClient
from nfdoctor.platforms.tiktok import TIKTOK_BASE_URL, TiktokAuth, TiktokClient
from nfdoctor.platforms.zalo import ZALO_BASE_URL, ZaloAuth, ZaloClient
from nfdoctor.simulator.app import build_simulator
from tests.platforms.conftest import make_client

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
BASE = "http://simulator.test"


def _clients(state: Any, transport: httpx.AsyncBaseTransport) -> dict[str, Any]:
    def token(platform: str) -> tuple[str, str]:
        account = state.accounts[platform][0]
        access = state.current(platform, account.account_id, "access")
        return account.account_id, access.value

    common: dict[str, Any] = {"transport": transport, "clock": lambda: NOW}
    shop_id, shopee_token = token("shopee")
    seller_id, lazada_token = token("lazada")
    tiktok_shop, tiktok_token = token("tiktok")
    page_id, facebook_token = token("facebook")
    oa_id, zalo_token = token("zalo")
    return {
        "shopee": make_client(
            ShopeeClient,
            ShopeeAuth,
            SHOPEE_BASE_URL,
            partner_id=state.shopee_partner_id,
            partner_key=state.shopee_partner_key,
            shop_id=shop_id,
            access_token=shopee_token,
            base_url=f"{BASE}/shopee",
            **common,
        ),
        "lazada": make_client(
            LazadaClient,
            LazadaAuth,
            LAZADA_BASE_URL,
            app_key=state.lazada_app_key,
            app_secret=state.lazada_app_secret,
            access_token=lazada_token,
            seller_id=seller_id,
            base_url=f"{BASE}/lazada/rest",
            auth_url=f"{BASE}/lazada-auth/rest",
            **common,
        ),
        "tiktok": make_client(
            TiktokClient,
            TiktokAuth,
            TIKTOK_BASE_URL,
            app_key=state.tiktok_app_key,
            app_secret=state.tiktok_app_secret,
            access_token=tiktok_token,
            shop_id=tiktok_shop,
            shop_cipher=state.accounts["tiktok"][0].extra["cipher"],
            base_url=f"{BASE}/tiktok",
            auth_url=f"{BASE}/tiktok-auth",
            **common,
        ),
        "facebook": make_client(
            FacebookClient,
            FacebookAuth,
            FACEBOOK_BASE_URL,
            page_id=page_id,
            access_token=facebook_token,
            app_id=state.facebook_app_id,
            app_secret=state.facebook_app_secret,
            base_url=f"{BASE}/facebook/{state.facebook_version}",
            **common,
        ),
        "zalo": make_client(
            ZaloClient,
            ZaloAuth,
            ZALO_BASE_URL,
            access_token=zalo_token,
            oa_id=oa_id,
            app_id=state.zalo_app_id,
            app_secret=state.zalo_secret_key,
            base_url=f"{BASE}/zalo",
            oauth_url=f"{BASE}/zalo-oauth/v4",
            **common,
        ),
    }


@pytest.mark.parametrize("platform", ["shopee", "lazada", "tiktok", "facebook", "zalo"])
def test_client_ping_is_accepted_by_simulator(platform: str) -> None:
    app, state = build_simulator(seed=7, clock=lambda: NOW)
    transport = httpx.ASGITransport(app=app)
    client = _clients(state, transport)[platform]
    result = asyncio.run(client.ping())
    assert result.http_status == 200
    assert result.shape_problems == ()


@pytest.mark.parametrize("platform", ["shopee", "lazada", "tiktok", "zalo"])
def test_client_refresh_rotates_through_simulator(platform: str) -> None:
    app, state = build_simulator(seed=7, clock=lambda: NOW)
    client = _clients(state, httpx.ASGITransport(app=app))[platform]
    owner = state.accounts[platform][0].account_id
    old_refresh = state.current(platform, owner, "refresh").value
    tokens = asyncio.run(client.refresh(old_refresh))
    assert tokens.access_token == state.current(platform, owner, "access").value
    assert tokens.refresh_token != old_refresh
    assert tokens.access_expires_at > NOW
    # The old refresh token is single use: presenting it again must fail.
    with pytest.raises(Exception) as caught:
        asyncio.run(client.refresh(old_refresh))
    assert type(caught.value).__name__ in ("RefreshTokenInvalidError", "TokenInvalidError")
