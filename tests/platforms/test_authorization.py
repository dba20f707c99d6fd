"""The consent links and code exchanges of the five platforms (platforms.md §2.3–§6.3).

The links are pinned exactly (Shopee's sign against vector V9, Zalo's challenge against V6);
the exchanges run against respx: what is sent, how the answer is read in the platform's
units, and that an error inside HTTP 200 or a missing ``access_token`` is an error, never
tokens.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from nfdoctor.platforms import facebook, lazada, shopee, tiktok, zalo
from nfdoctor.platforms.authorization import (
    ConsentInputs,
    code_challenge,
    new_code_verifier,
    new_state,
    with_query,
)
from nfdoctor.platforms.errors import (
    PermissionDeniedError,
    RefreshTokenInvalidError,
    TaxonomyError,
    TokenInvalidError,
    UnexpectedResponseError,
)
from nfdoctor.platforms.facebook import FacebookAuth, FacebookClient, FacebookConfig
from nfdoctor.platforms.lazada import LazadaAuth, LazadaClient, LazadaConfig, lazada_sign
from nfdoctor.platforms.shopee import ShopeeAuth, ShopeeClient, ShopeeConfig, shopee_sign
from nfdoctor.platforms.tiktok import TiktokAuth, TiktokClient, TiktokConfig
from nfdoctor.platforms.zalo import ZaloAuth, ZaloClient, ZaloConfig
from tests.platforms.conftest import NOW, fixed_clock, make_client

REDIRECT = "http://127.0.0.1:8765/callback"


def inputs(section: Any, **secrets: str) -> ConsentInputs[Any]:
    return ConsentInputs(
        section=section,
        secret=lambda key: secrets[key],
        redirect_uri=REDIRECT,
        state="STATE-1",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        now=datetime.fromtimestamp(1594897040, tz=timezone.utc),
    )


# --- the consent links ----------------------------------------------------------------------


def test_shopee_link_is_signed_with_the_public_sign_of_vector_v9() -> None:
    url = shopee.shopee_consent_url(
        base_url="https://partner.shopeemobile.com",
        partner_id=10090,
        partner_key="test_partner_key",
        redirect="https://crm.example.vn/cb?state=S",
        timestamp=1594897040,
    )
    assert url == (
        "https://partner.shopeemobile.com/api/v2/shop/auth_partner?partner_id=10090"
        "&timestamp=1594897040"
        "&sign=db2b48b12a290e1a81ddf4b3f8ca6e021c5896a40e7186acbb74033745019e31"
        "&redirect=https%3A%2F%2Fcrm.example.vn%2Fcb%3Fstate%3DS"
    )


def test_shopee_link_behind_a_prefix_signs_the_platforms_path_and_carries_the_state() -> None:
    section = ShopeeConfig(
        partner_id=10090, partner_key="file:k", base_url="http://127.0.0.1:9/shopee"
    )
    url = shopee.AUTHORIZATION.consent_url(inputs(section, partner_key="test_partner_key"))
    assert url == (
        "http://127.0.0.1:9/shopee/api/v2/shop/auth_partner?partner_id=10090"
        "&timestamp=1594897040"
        "&sign=db2b48b12a290e1a81ddf4b3f8ca6e021c5896a40e7186acbb74033745019e31"
        "&redirect=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%3Fstate%3DSTATE-1"
    )


def test_lazada_link() -> None:
    section = LazadaConfig(app_key="123456", app_secret="file:s")
    assert lazada.AUTHORIZATION.consent_url(inputs(section)) == (
        "https://auth.lazada.com/oauth/authorize?response_type=code&force_auth=true"
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&client_id=123456&state=STATE-1"
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "https://auth.lazada.com/oauth/authorize"),
        (
            {"auth_url": "http://127.0.0.1:9/lazada-auth/rest"},
            "http://127.0.0.1:9/lazada-auth/oauth/authorize",
        ),
        (
            {"auth_url": "http://127.0.0.1:9/x/rest", "authorize_url": "https://a.example/o"},
            "https://a.example/o",
        ),
    ],
)
def test_lazada_consent_page_is_on_the_token_host_without_rest(
    config: dict[str, str], expected: str
) -> None:
    section = LazadaConfig(app_key="1", app_secret="file:s", **config)  # type: ignore[arg-type]
    assert lazada.lazada_authorize_url(section) == expected


def test_tiktok_link_names_the_service_and_no_redirect() -> None:
    section = TiktokConfig(app_key="29a39d", app_secret="file:s", service_id="7000000000000000001")
    assert tiktok.AUTHORIZATION.consent_url(inputs(section)) == (
        "https://services.tiktokshop.com/open/authorize?service_id=7000000000000000001"
        "&state=STATE-1"
    )
    assert tiktok.AUTHORIZATION.missing(section) == {}
    missing = tiktok.AUTHORIZATION.missing(TiktokConfig(app_key="1", app_secret="file:s"))
    assert list(missing) == ["service_id"]


def test_facebook_link_asks_for_the_messenger_scopes() -> None:
    section = FacebookConfig(app_id="999", app_secret="file:s", graph_version="v21.0")
    assert facebook.AUTHORIZATION.consent_url(inputs(section)) == (
        "https://www.facebook.com/v21.0/dialog/oauth?client_id=999"
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&state=STATE-1"
        "&scope=pages_show_list%2Cpages_messaging%2Cpages_manage_metadata%2Cpages_read_engagement"
    )


def test_zalo_link_carries_the_s256_challenge_of_vector_v6() -> None:
    challenge = code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    section = ZaloConfig(app_id="1234567890", secret_key="file:s")
    assert zalo.AUTHORIZATION.consent_url(inputs(section)) == (
        "https://oauth.zaloapp.com/v4/oa/permission?app_id=1234567890"
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&state=STATE-1"
    )
    assert zalo.AUTHORIZATION.pkce


def test_verifiers_and_states_are_fresh_and_shaped() -> None:
    verifiers = {new_code_verifier() for _ in range(20)}
    assert len(verifiers) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", v) for v in verifiers)
    states = {new_state() for _ in range(20)}
    assert len(states) == 20 and all(len(s) >= 43 for s in states)


def test_with_query_keeps_the_callbacks_own_parameters() -> None:
    assert with_query("https://crm.example.vn/cb?shop=1&state=old", state="new") == (
        "https://crm.example.vn/cb?shop=1&state=new"
    )


# --- the exchanges --------------------------------------------------------------------------


def shopee_client(shop_id: str = "14701711") -> ShopeeClient:
    client: ShopeeClient = make_client(
        ShopeeClient,
        ShopeeAuth,
        "https://partner.shopeemobile.com",
        partner_id=2001887,
        partner_key="shopee-partner-key-XYZ",
        shop_id=shop_id,
        access_token="",
        clock=fixed_clock,
    )
    return client


SHOPEE_TOKEN_GET = "https://partner.shopeemobile.com/api/v2/auth/token/get"


def test_shopee_exchange_sends_the_code_for_the_shop_public_signed(
    mock_http: respx.MockRouter,
) -> None:
    route = mock_http.post(SHOPEE_TOKEN_GET).respond(
        200,
        json={
            "error": "",
            "message": "",
            "access_token": "AT-new",
            "refresh_token": "RT-new",
            "expire_in": 14400,
            "shop_id_list": [14701711],
        },
    )
    grant = asyncio.run(shopee.exchange_shopee_code(shopee_client(), "CODE-1"))
    sent = route.calls.last.request
    assert json.loads(sent.content) == {
        "code": "CODE-1",
        "partner_id": 2001887,
        "shop_id": 14701711,
    }
    timestamp = str(int(NOW.timestamp()))
    assert dict(sent.url.params) == {
        "partner_id": "2001887",
        "timestamp": timestamp,
        "sign": shopee_sign("shopee-partner-key-XYZ", f"2001887/api/v2/auth/token/get{timestamp}"),
    }
    assert grant.account_ids == ("14701711",)
    assert grant.tokens.access_token == "AT-new"
    assert grant.tokens.access_expires_at == NOW + timedelta(hours=4)  # REL


def test_shopee_refused_code_is_an_error_that_does_not_show_it(
    mock_http: respx.MockRouter,
) -> None:
    mock_http.post(SHOPEE_TOKEN_GET).respond(
        403,
        json={"error": "error_auth", "message": "Invalid code CODE-1", "request_id": "r"},
    )
    with pytest.raises(RefreshTokenInvalidError) as refused:
        asyncio.run(shopee.exchange_shopee_code(shopee_client(), "CODE-1"))
    assert refused.value.code == "error_auth"
    assert "shopee-partner-key-XYZ" not in f"{refused.value} {refused.value!r}"


def lazada_client() -> LazadaClient:
    client: LazadaClient = make_client(
        LazadaClient,
        LazadaAuth,
        lazada.LAZADA_BASE_URL,
        app_key="123456",
        app_secret="lazada-app-secret-XYZ",
        access_token="",
        clock=fixed_clock,
    )
    return client


LAZADA_CREATE = "https://auth.lazada.com/rest/auth/token/create"


@pytest.mark.parametrize("sellers_key", ["country_user_info", "country_user_info_list"])
def test_lazada_exchange_signs_the_code_in_the_form_and_names_the_seller(
    mock_http: respx.MockRouter, sellers_key: str
) -> None:
    route = mock_http.post(LAZADA_CREATE).respond(
        200,
        json={
            "code": "0",
            "access_token": "AT-new",
            "refresh_token": "RT-new",
            "expires_in": 604800,
            "refresh_expires_in": 2592000,
            sellers_key: [{"country": "vn", "seller_id": "100234567", "user_id": 1}],
        },
    )
    grant = asyncio.run(lazada.exchange_lazada_code(lazada_client(), "CODE-1"))
    sent = route.calls.last.request
    assert "CODE-1" not in str(sent.url)  # out of every URL (and so out of httpx's logs)
    form = dict(parse_qsl(sent.content.decode()))
    assert form["code"] == "CODE-1" and "access_token" not in form
    unsigned = [(k, v) for k, v in form.items() if k != "sign"]
    assert form["sign"] == lazada_sign("lazada-app-secret-XYZ", "/auth/token/create", unsigned)
    assert grant.account_ids == ("100234567",)
    assert grant.tokens.access_expires_at == NOW + timedelta(days=7)
    assert grant.tokens.refresh_expires_at == NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"code": "InvalidCode", "message": "Invalid authorization code"}, TaxonomyError),
        ({"code": "0", "refresh_token": "R", "expires_in": 1}, UnexpectedResponseError),
    ],
)
def test_lazada_error_inside_http_200_is_never_tokens(
    mock_http: respx.MockRouter, body: dict[str, Any], error: type[Exception]
) -> None:
    mock_http.post(LAZADA_CREATE).respond(200, json=body)
    with pytest.raises(error):
        asyncio.run(lazada.exchange_lazada_code(lazada_client(), "CODE-1"))


TIKTOK_TOKEN_GET = "https://auth.tiktok-shops.com/api/v2/token/get"
TIKTOK_SHOPS = tiktok.TIKTOK_BASE_URL + "/authorization/202309/shops"


def tiktok_client() -> TiktokClient:
    client: TiktokClient = make_client(
        TiktokClient,
        TiktokAuth,
        tiktok.TIKTOK_BASE_URL,
        app_key="29a39d",
        app_secret="tiktok-app-secret-XYZ",
        access_token="",
        clock=fixed_clock,
    )
    return client


def test_tiktok_exchange_is_unsigned_and_asks_the_new_token_which_shops_it_reaches(
    mock_http: respx.MockRouter,
) -> None:
    token_get = mock_http.get(TIKTOK_TOKEN_GET).respond(
        200,
        json={
            "code": 0,
            "data": {
                "access_token": "TTP_new",
                "access_token_expire_in": 1767225600,
                "refresh_token": "TTP_refresh",
                "refresh_token_expire_in": 1798761600,
                "seller_name": "Gia Dụng Minh Anh",
            },
        },
    )
    shops = mock_http.get(TIKTOK_SHOPS).respond(
        200, json={"code": 0, "data": {"shops": [{"id": "7495", "cipher": "ROW_x"}]}}
    )
    seen: list[str] = []
    grant = asyncio.run(
        tiktok.exchange_tiktok_code(tiktok_client(), "CODE-1", secret_found=seen.append)
    )
    params = dict(token_get.calls.last.request.url.params)
    assert params == {
        "app_key": "29a39d",
        "app_secret": "tiktok-app-secret-XYZ",
        "auth_code": "CODE-1",
        "grant_type": "authorized_code",
    }
    assert shops.calls.last.request.headers["x-tts-access-token"] == "TTP_new"
    assert grant.account_ids == ("7495",)
    assert grant.tokens.access_expires_at == datetime(2026, 1, 1, tzinfo=timezone.utc)  # ABS
    assert seen == ["TTP_new", "TTP_refresh"]
    assert grant.details == ("seller: Gia Dụng Minh Anh",)


def test_tiktok_refused_code_never_shows_the_app_secret(mock_http: respx.MockRouter) -> None:
    mock_http.get(TIKTOK_TOKEN_GET).respond(
        200,
        json={
            "code": 36009004,
            "message": "Invalid credentials for app_secret=tiktok-app-secret-XYZ",
            "request_id": "r",
        },
    )
    with pytest.raises(TokenInvalidError) as refused:
        asyncio.run(tiktok.exchange_tiktok_code(tiktok_client(), "CODE-1"))
    text = f"{refused.value} {refused.value.platform_message} {refused.value!r}"
    assert "Invalid credentials" in text and "tiktok-app-secret-XYZ" not in text


GRAPH = "https://graph.facebook.com/v25.0"


def facebook_client() -> FacebookClient:
    client: FacebookClient = make_client(
        FacebookClient,
        FacebookAuth,
        facebook.FACEBOOK_BASE_URL,
        page_id="111",
        access_token="",
        app_id="999",
        app_secret="appsecret123",
        clock=fixed_clock,
    )
    return client


def test_facebook_exchange_goes_code_user_long_lived_page(mock_http: respx.MockRouter) -> None:
    def access_token(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if q.get("grant_type") == "fb_exchange_token":
            assert q["fb_exchange_token"] == "EAAshort"
            return httpx.Response(200, json={"access_token": "EAAlong", "expires_in": 5183944})
        assert (q["client_id"], q["client_secret"], q["code"]) == ("999", "appsecret123", "C1")
        assert q["redirect_uri"] == REDIRECT
        return httpx.Response(200, json={"access_token": "EAAshort", "expires_in": 3600})

    mock_http.get(GRAPH + "/oauth/access_token").mock(side_effect=access_token)
    page = mock_http.get(GRAPH + "/111").respond(200, json={"access_token": "EAApage", "id": "111"})
    seen: list[str] = []
    grant = asyncio.run(
        facebook.exchange_facebook_code(
            facebook_client(), "C1", redirect_uri=REDIRECT, secret_found=seen.append
        )
    )
    asked = page.calls.last.request.url.params
    assert asked["fields"] == "access_token" and asked["access_token"] == "EAAlong"
    assert asked["appsecret_proof"] == facebook.appsecret_proof("appsecret123", "EAAlong")
    assert grant.tokens.access_token == "EAApage" and grant.never_expires
    assert grant.account_ids == ("111",)
    assert seen == ["EAAshort", "EAAlong", "EAApage"]


def test_facebook_page_not_granted_is_no_page_token(mock_http: respx.MockRouter) -> None:
    mock_http.get(GRAPH + "/oauth/access_token").respond(200, json={"access_token": "EAAuser"})
    mock_http.get(GRAPH + "/111").respond(200, json={"id": "111", "name": "public"})
    with pytest.raises(PermissionDeniedError) as refused:
        asyncio.run(facebook.exchange_facebook_code(facebook_client(), "C1", redirect_uri=REDIRECT))
    assert "no Page token for page 111" in refused.value.message


ZALO_TOKEN = "https://oauth.zaloapp.com/v4/oa/access_token"


def zalo_client() -> ZaloClient:
    client: ZaloClient = make_client(
        ZaloClient,
        ZaloAuth,
        zalo.ZALO_BASE_URL,
        access_token="",
        app_id="1234567890",
        app_secret="zalo-secret-key-XYZ",
        clock=fixed_clock,
    )
    return client


def test_zalo_exchange_sends_the_verifier_and_the_secret_in_its_header(
    mock_http: respx.MockRouter,
) -> None:
    route = mock_http.post(ZALO_TOKEN).respond(
        200, json={"access_token": "ZA", "refresh_token": "ZR", "expires_in": "90000"}
    )
    getoa = mock_http.get(zalo.ZALO_BASE_URL + "/v2.0/oa/getoa").respond(
        200, json={"error": 0, "data": {"oaid": "4318", "name": "OA"}}
    )
    grant = asyncio.run(zalo.exchange_zalo_code(zalo_client(), "CODE-1", code_verifier="V" * 43))
    sent = route.calls.last.request
    assert sent.headers["secret_key"] == "zalo-secret-key-XYZ"
    assert dict(parse_qsl(sent.content.decode())) == {
        "code": "CODE-1",
        "app_id": "1234567890",
        "grant_type": "authorization_code",
        "code_verifier": "V" * 43,
    }
    assert grant.tokens.access_expires_at == NOW + timedelta(seconds=90000)  # REL, a string
    # The redirect named no OA: the new token's getoa says whose it is.
    assert getoa.calls.last.request.headers["access_token"] == "ZA"
    assert grant.account_ids == ("4318",)


def test_zalo_exchange_trusts_the_oa_the_redirect_named(mock_http: respx.MockRouter) -> None:
    mock_http.post(ZALO_TOKEN).respond(
        200, json={"access_token": "ZA", "refresh_token": "ZR", "expires_in": "90000"}
    )
    grant = asyncio.run(
        zalo.exchange_zalo_code(zalo_client(), "CODE-1", code_verifier="V" * 43, oa_id="4318")
    )
    assert grant.account_ids == ("4318",)  # and no getoa was mocked: none was made


def test_zalo_error_name_inside_http_200_is_a_refusal(mock_http: respx.MockRouter) -> None:
    mock_http.post(ZALO_TOKEN).respond(
        200,
        json={
            "error": -14019,
            "error_name": "Invalid code",
            "error_description": "code CODE-1 is invalid",
        },
    )
    with pytest.raises(RefreshTokenInvalidError) as refused:
        asyncio.run(zalo.exchange_zalo_code(zalo_client(), "CODE-1", code_verifier="V" * 43))
    assert refused.value.code == "-14019"
    assert refused.value.platform_message == "code *** is invalid"
