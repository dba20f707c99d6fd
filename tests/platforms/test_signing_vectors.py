"""platforms.md §7 request-signing vectors, pushed through the real ``httpx.Auth`` classes."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import httpx
import pytest

from nfdoctor.platforms.facebook import FacebookAuth
from nfdoctor.platforms.lazada import LazadaAuth
from nfdoctor.platforms.shopee import ShopeeAuth
from nfdoctor.platforms.tiktok import TiktokAuth
from nfdoctor.platforms.zalo import ZaloAuth


def clock_at(seconds: float) -> datetime:
    """A datetime at Unix ``seconds``."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def signed(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    """The first request the auth flow yields: the signed one."""
    return next(auth.sync_auth_flow(request))


# --- Shopee V7, V8, V9 ----------------------------------------------------------------------

SHOPEE = "https://partner.shopeemobile.com"


def shopee_auth(partner_id: int, ts: int, **kwargs: object) -> ShopeeAuth:
    return ShopeeAuth(
        partner_id=partner_id,
        partner_key="test_partner_key",
        clock=lambda: clock_at(ts),
        **kwargs,  # type: ignore[arg-type]
    )


def test_v7_shopee_public_sign() -> None:
    auth = shopee_auth(2001887, 1655714431)
    request = signed(auth, httpx.Request("GET", SHOPEE + "/api/v2/public/get_shops_by_partner"))
    params = request.url.params
    assert params["sign"] == "bfd95b21eda3ed2c80e9373e8c0ce80bdc39b2dc02e4c6dc19e1413c75f8ab09"
    assert params["partner_id"] == "2001887"
    assert params["timestamp"] == "1655714431"
    assert "access_token" not in params and "shop_id" not in params


def test_v8_shopee_shop_sign() -> None:
    auth = shopee_auth(
        2001887,
        1655714431,
        shop_id=14701711,
        access_token="59777174636562737266615546704c6d",
    )
    request = signed(auth, httpx.Request("GET", SHOPEE + "/api/v2/shop/get_shop_info"))
    params = request.url.params
    assert params["sign"] == "9fdae5aeed86e753249982ec04aa54339280f12d3f456b9e3f7d8ee91e66a2b3"
    assert params["access_token"] == "59777174636562737266615546704c6d"
    assert params["shop_id"] == "14701711"


def test_v9_shopee_auth_link_sign_is_public() -> None:
    # A shop token configured on the auth must not leak into the public base string.
    auth = shopee_auth(10090, 1594897040, shop_id=1, access_token="tok")
    request = signed(auth, httpx.Request("GET", SHOPEE + "/api/v2/shop/auth_partner"))
    assert (
        request.url.params["sign"]
        == "db2b48b12a290e1a81ddf4b3f8ca6e021c5896a40e7186acbb74033745019e31"
    )


def test_shopee_business_params_and_body_are_not_signed() -> None:
    auth = shopee_auth(2001887, 1655714431)
    request = signed(
        auth,
        httpx.Request(
            "POST",
            SHOPEE + "/api/v2/public/get_shops_by_partner?page_size=10",
            json={"anything": 1},
        ),
    )
    assert (
        request.url.params["sign"]
        == "bfd95b21eda3ed2c80e9373e8c0ce80bdc39b2dc02e4c6dc19e1413c75f8ab09"
    )
    assert request.url.params["page_size"] == "10"


def test_shopee_sign_uses_seconds_and_lower_hex() -> None:
    auth = shopee_auth(2001887, 1655714431.999)
    sign = signed(auth, httpx.Request("GET", SHOPEE + "/api/v2/public/get_shops_by_partner"))
    value = sign.url.params["sign"]
    assert value == value.lower() and value != value.upper()
    assert sign.url.params["timestamp"] == "1655714431"  # seconds, truncated; never ms


def test_shopee_base_url_path_prefix_is_not_signed() -> None:
    auth = shopee_auth(2001887, 1655714431, base_url="http://127.0.0.1:9000/shopee")
    request = signed(
        auth,
        httpx.Request("GET", "http://127.0.0.1:9000/shopee/api/v2/public/get_shops_by_partner"),
    )
    assert (
        request.url.params["sign"]
        == "bfd95b21eda3ed2c80e9373e8c0ce80bdc39b2dc02e4c6dc19e1413c75f8ab09"
    )


# --- Lazada V1, V13 -------------------------------------------------------------------------

V1_SIGN = "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A"
V13_SIGN = "E8219E97886D43736487FB37006D432A04ED755A9754B69D2DCB21AD42EEAADF"


def lazada_auth(ms: int) -> LazadaAuth:
    return LazadaAuth(
        app_key="123456",
        app_secret="helloworld",
        access_token="test",
        clock=lambda: clock_at(ms / 1000),
    )


def test_v1_lazada_get() -> None:
    request = signed(
        lazada_auth(1517820392000),
        httpx.Request("GET", "https://api.lazada.vn/rest/order/get?order_id=1234"),
    )
    params = request.url.params
    assert params["sign"] == V1_SIGN
    assert params["timestamp"] == "1517820392000"  # milliseconds
    assert params["sign_method"] == "sha256"
    assert params["access_token"] == "test"


def test_v1_lazada_post_form_is_signed_in_the_body() -> None:
    request = signed(
        lazada_auth(1517820392000),
        httpx.Request("POST", "https://api.lazada.vn/rest/order/get", data={"order_id": "1234"}),
    )
    form = dict(parse_qsl(request.content.decode()))
    assert form["sign"] == V1_SIGN
    assert "sign" not in request.url.params
    assert request.headers["content-length"] == str(len(request.content))


def test_v13_lazada_values_signed_unencoded() -> None:
    request = signed(
        lazada_auth(1517820392000),
        httpx.Request(
            "GET",
            "https://api.lazada.vn/rest/orders/get",
            params={"created_after": "2018-02-10T00:00:00+07:00", "limit": "100", "offset": "0"},
        ),
    )
    assert request.url.params["sign"] == V13_SIGN
    assert request.url.params["created_after"] == "2018-02-10T00:00:00+07:00"


def test_lazada_upper_hex_and_ms_not_seconds() -> None:
    request = signed(
        lazada_auth(1517820392000),
        httpx.Request("GET", "https://api.lazada.vn/rest/order/get?order_id=1234"),
    )
    assert request.url.params["sign"] != V1_SIGN.lower()
    # The same instant with a seconds timestamp is a different base string, so another sign.
    base = "/order/getaccess_tokentestapp_key123456order_id1234sign_methodsha256timestamp1517820392"
    seconds_sign = hmac.new(b"helloworld", base.encode(), hashlib.sha256).hexdigest().upper()
    assert request.url.params["sign"] != seconds_sign


def test_lazada_refresh_call_is_signed_without_access_token() -> None:
    auth = lazada_auth(1517820392000)
    request = auth.build_refresh_request("RT")
    assert request is not None
    assert request.url.path == "/rest/auth/token/refresh"
    assert "access_token" not in request.url.params
    base = "/auth/token/refreshapp_key123456refresh_tokenRTsign_methodsha256timestamp1517820392000"
    expected = hmac.new(b"helloworld", base.encode(), hashlib.sha256).hexdigest().upper()
    assert request.url.params["sign"] == expected


# --- TikTok V2 ------------------------------------------------------------------------------

V2_SIGN = "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"


def tiktok_auth(ts: int, app_key: str = "29a39d", secret: str = "e59af819cc") -> TiktokAuth:
    return TiktokAuth(
        app_key=app_key, app_secret=secret, access_token="TTP_tok", clock=lambda: clock_at(ts)
    )


def test_v2_tiktok_get() -> None:
    request = signed(
        tiktok_auth(1623812664),
        httpx.Request("GET", "https://open-api.tiktokglobalshop.com/authorization/202309/shops"),
    )
    assert request.url.params["sign"] == V2_SIGN
    assert request.url.params["timestamp"] == "1623812664"
    # The token travels in a header and is not part of the signature.
    assert request.headers["x-tts-access-token"] == "TTP_tok"
    assert "access_token" not in request.url.params


def test_tiktok_access_token_query_param_is_excluded_from_sign() -> None:
    request = signed(
        tiktok_auth(1623812664),
        httpx.Request(
            "GET",
            "https://open-api.tiktokglobalshop.com/authorization/202309/shops?access_token=zzz",
        ),
    )
    assert request.url.params["sign"] == V2_SIGN


def test_tiktok_raw_body_is_appended_as_in_the_doc_layout() -> None:
    body = b'{"address":"https://partner.tiktokshop.com","event_type":"PACKAGE_UPDATE"}'
    layout = (
        "/event/202309/webhooksapp_key68xu9ks5p4i8shop_cipherROW_xkMbgAAAeVAQra0eZWebFQq5aIK"
        "timestamp1696909648" + body.decode()
    )
    secret = "some_secret"
    expected = hmac.new(
        secret.encode(), (secret + layout + secret).encode(), hashlib.sha256
    ).hexdigest()
    request = signed(
        tiktok_auth(1696909648, app_key="68xu9ks5p4i8", secret=secret),
        httpx.Request(
            "POST",
            "https://open-api.tiktokglobalshop.com/event/202309/webhooks"
            "?shop_cipher=ROW_xkMbgAAAeVAQra0eZWebFQq5aIK",
            content=body,
            headers={"content-type": "application/json"},
        ),
    )
    assert request.url.params["sign"] == expected
    assert request.content == body


def test_tiktok_seconds_not_ms() -> None:
    request = signed(
        tiktok_auth(1623812664),
        httpx.Request("GET", "https://open-api.tiktokglobalshop.com/authorization/202309/shops"),
    )
    assert len(request.url.params["timestamp"]) == 10
    assert request.url.params["sign"] != V2_SIGN.upper()


# --- Facebook V3 and the Zalo proof (same formula) -------------------------------------------

V3_PROOF = "85554e3ceaba0391e1f8664f89dd4e587a76cccb6a298eac55b4a5d69f4be4b9"


def test_v3_facebook_appsecret_proof() -> None:
    auth = FacebookAuth(access_token="EAAtesttoken", app_secret="appsecret123")
    request = signed(auth, httpx.Request("GET", "https://graph.facebook.com/v25.0/me?fields=id"))
    assert request.url.params["appsecret_proof"] == V3_PROOF
    assert request.url.params["access_token"] == "EAAtesttoken"
    assert request.url.params["appsecret_proof"] != V3_PROOF.upper()


def test_facebook_without_secret_sends_no_proof() -> None:
    auth = FacebookAuth(access_token="EAAtesttoken")
    request = signed(auth, httpx.Request("GET", "https://graph.facebook.com/v25.0/me"))
    assert "appsecret_proof" not in request.url.params


def test_zalo_proof_header_and_token_header() -> None:
    auth = ZaloAuth(access_token="EAAtesttoken", app_secret="appsecret123")
    request = signed(auth, httpx.Request("GET", "https://openapi.zalo.me/v2.0/oa/getoa"))
    assert request.headers["access_token"] == "EAAtesttoken"
    assert request.headers["appsecret_proof"] == V3_PROOF
    assert "authorization" not in request.headers
    assert "access_token" not in request.url.params


@pytest.mark.parametrize("send_proof", [False])
def test_zalo_proof_can_be_switched_off(send_proof: bool) -> None:
    auth = ZaloAuth(access_token="tok", app_secret="appsecret123", send_proof=send_proof)
    request = signed(auth, httpx.Request("GET", "https://openapi.zalo.me/v2.0/oa/getoa"))
    assert "appsecret_proof" not in request.headers
