"""platforms.md §7 test vectors against the simulator's own verifier, plus negatives."""

from __future__ import annotations

import pytest

from nfdoctor.simulator import verify

V1_PARAMS = {
    "access_token": "test",
    "app_key": "123456",
    "order_id": "1234",
    "sign_method": "sha256",
    "timestamp": "1517820392000",
}
V1 = "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A"
V2 = "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"
V3 = "85554e3ceaba0391e1f8664f89dd4e587a76cccb6a298eac55b4a5d69f4be4b9"
V4_BODY = (
    b'{"object":"page","entry":[{"id":"111","time":1700000000000,"messaging":[{"sender":'
    b'{"id":"222"},"recipient":{"id":"111"},"timestamp":1700000000000,"message":{"mid":"m_1",'
    b'"text":"xin ch\\u00e0o"}}]}]}'
)
V4_256 = "sha256=7493948a194e10e6b72c223e8e76d666b4e3485181e047cdef5abe37ec7fc8c0"
V4_SHA1 = "sha1=593a70442fb46ad4367c1b75ef8561a8833472ed"
V5_BODY = (
    b'{"app_id":"1234567890","sender":{"id":"246845883529197922"},"recipient":{"id":'
    b'"388613280878808645"},"event_name":"user_send_text","message":{"text":"hello","msg_id":'
    b'"96d3cdf3af150460909"},"timestamp":"1700000000000"}'
)
V5 = "62dd050ba7dd543c945495aaa3739d387346531daeee70d8c193bd18aa7cba5e"
V10_BODY = (
    b'{"shop_id": 123, "code": 1, "success": 1, "extra": "shop_id 123 is authorized '
    b'successfully", "data": {"more_info": "more info"}, "timestamp": 1470198856}'
)
V10 = "a08ebd427adc083727aa24fad074cf8f9cd10efcce2e063cd2f53db3d01e749a"
V11_BODY = (
    b'{"seller_id":"1234567","message_type":0,"data":{"order_status":"unpaid",'
    b'"status_update_time":1603698638,"trade_order_id":"260422900198363",'
    b'"trade_order_line_id":"260422900298363"},"timestamp":1603766859530,"site":"lazada_vn"}'
)
V11 = "64ffc8b10a9921ded17f88bb861dd1c2d879514c51c6731946becba319ec6b63"
V12_BODY = (
    b'{"type":1,"shop_id":"7494726673780148744","timestamp":1664095733,"data":{"order_id":'
    b'"576684019603311365","order_status":"AWAITING_SHIPMENT","update_time":1664095610}}'
)
V12 = "21109834de72ec53c9959716d8514ae388ce1f123e5ffdcafc46713fcdf62b27"


def test_body_lengths_match_the_document() -> None:
    assert (len(V4_BODY), len(V5_BODY), len(V10_BODY), len(V11_BODY), len(V12_BODY)) == (
        197,
        216,
        153,
        225,
        166,
    )


def test_v1_lazada_request() -> None:
    assert verify.lazada_sign("helloworld", "/order/get", V1_PARAMS) == V1
    # sign itself is never part of the base
    assert verify.lazada_sign("helloworld", "/order/get", {**V1_PARAMS, "sign": "x"}) == V1


def test_v1_negatives() -> None:
    assert verify.lazada_sign("wrongsecret", "/order/get", V1_PARAMS) != V1
    assert not verify.verify_exact(V1, V1.lower())  # Lazada is UPPERCASE
    seconds = {**V1_PARAMS, "timestamp": "1517820392"}  # s where ms belongs
    assert verify.lazada_sign("helloworld", "/order/get", seconds) != V1


def test_v2_tiktok_request() -> None:
    params = {"app_key": "29a39d", "timestamp": "1623812664"}
    assert verify.tiktok_sign("e59af819cc", "/authorization/202309/shops", params) == V2
    # access_token and sign are excluded from the signature
    with_token = {**params, "access_token": "t", "sign": "s"}
    assert verify.tiktok_sign("e59af819cc", "/authorization/202309/shops", with_token) == V2


def test_v2_negatives() -> None:
    params = {"app_key": "29a39d", "timestamp": "1623812664"}
    path = "/authorization/202309/shops"
    assert verify.tiktok_sign("wrong", path, params) != V2
    assert not verify.verify_exact(V2, V2.upper())
    assert verify.tiktok_sign("e59af819cc", path, {**params, "timestamp": "1623812664000"}) != V2
    assert verify.tiktok_sign("e59af819cc", path, params, b"{}") != V2  # body is signed


def test_v3_appsecret_proof() -> None:
    assert verify.appsecret_proof("appsecret123", "EAAtesttoken") == V3
    assert verify.appsecret_proof("appsecret124", "EAAtesttoken") != V3


def test_v4_facebook_webhook() -> None:
    assert verify.facebook_webhook_sha256("appsecret123", V4_BODY) == V4_256
    assert verify.facebook_webhook_sha1("appsecret123", V4_BODY) == V4_SHA1
    # Hashing the decoded text (à as UTF-8) is the §5.8 bug: a different digest.
    decoded = V4_BODY.replace(b"\\u00e0", "à".encode())
    assert verify.facebook_webhook_sha256("appsecret123", decoded) != V4_256
    assert verify.facebook_webhook_sha256("wrong", V4_BODY) != V4_256


def test_v5_zalo_webhook() -> None:
    mac = verify.zalo_webhook_mac("1234567890", V5_BODY, "1700000000000", "oa-secret-key")
    assert mac == V5
    assert verify.zalo_webhook_mac("1234567890", V5_BODY, "1700000000", "oa-secret-key") != V5
    assert (
        verify.zalo_webhook_mac("1234567890", V5_BODY + b" ", "1700000000000", "oa-secret-key")
        != V5
    )


def test_v6_pkce() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert verify.pkce_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize(
    ("partner_id", "path", "timestamp", "token", "shop", "expected"),
    [
        (
            2001887,
            "/api/v2/public/get_shops_by_partner",
            1655714431,
            None,
            None,
            "bfd95b21eda3ed2c80e9373e8c0ce80bdc39b2dc02e4c6dc19e1413c75f8ab09",
        ),
        (
            2001887,
            "/api/v2/shop/get_shop_info",
            1655714431,
            "59777174636562737266615546704c6d",
            14701711,
            "9fdae5aeed86e753249982ec04aa54339280f12d3f456b9e3f7d8ee91e66a2b3",
        ),
        (
            10090,
            "/api/v2/shop/auth_partner",
            1594897040,
            None,
            None,
            "db2b48b12a290e1a81ddf4b3f8ca6e021c5896a40e7186acbb74033745019e31",
        ),
    ],
    ids=["V7-public", "V8-shop", "V9-auth-link"],
)
def test_v7_v8_v9_shopee(
    partner_id: int, path: str, timestamp: int, token: str | None, shop: int | None, expected: str
) -> None:
    key = "test_partner_key"
    assert verify.shopee_sign(key, partner_id, path, timestamp, token, shop) == expected
    assert verify.shopee_sign("wrong_key", partner_id, path, timestamp, token, shop) != expected
    assert verify.shopee_sign(key, partner_id, path, timestamp * 1000, token, shop) != expected
    assert not verify.verify_exact(expected, expected.upper())


def test_v10_shopee_push() -> None:
    url = "https://www.example.com/example/uri"
    assert verify.shopee_push_signature("test_partner_key", url, V10_BODY) == V10
    assert verify.shopee_push_signature("test_partner_key", url + "/", V10_BODY) != V10
    altered = V10_BODY.replace(b": ", b":")  # re-serialised JSON is not the raw body
    assert verify.shopee_push_signature("test_partner_key", url, altered) != V10


def test_v11_lazada_push() -> None:
    assert verify.lazada_push_signature("123456", "3412gyo124goi3124", V11_BODY) == V11
    assert verify.lazada_push_signature("123456", "wrong", V11_BODY) != V11
    assert not verify.verify_exact(V11, V11.upper())


def test_v12_tiktok_push() -> None:
    assert verify.tiktok_push_signature("fake_app_key", "fake_app_secret", V12_BODY) == V12
    assert verify.tiktok_push_signature("fake_app_key", "fake_app_secret", V12_BODY[:-1]) != V12


def test_v13_lazada_order_list() -> None:
    params = {
        "access_token": "test",
        "app_key": "123456",
        "created_after": "2018-02-10T00:00:00+07:00",
        "limit": "100",
        "offset": "0",
        "sign_method": "sha256",
        "timestamp": "1517820392000",
    }
    expected = "E8219E97886D43736487FB37006D432A04ED755A9754B69D2DCB21AD42EEAADF"
    assert verify.lazada_sign("helloworld", "/orders/get", params) == expected
    encoded = {**params, "created_after": "2018-02-10T00%3A00%3A00%2B07%3A00"}
    assert verify.lazada_sign("helloworld", "/orders/get", encoded) != expected
