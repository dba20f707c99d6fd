"""Error classification by code, transport failures, usage headers, and no secret leaks."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable
from datetime import datetime, timezone

import httpx
import pytest
import respx

from nfdoctor.errors import PlatformError
from nfdoctor.platforms.base import TokenSet, retry_call, transport_error
from nfdoctor.platforms.errors import (
    BadCredentialsError,
    BadParametersError,
    BadSignatureError,
    Category,
    PermissionDeniedError,
    RateLimitedError,
    RefreshTokenInvalidError,
    TaxonomyError,
    TokenExpiredError,
    TokenInvalidError,
    TransientError,
    UnexpectedResponseError,
    UnreachableError,
    strip_query,
)
from nfdoctor.platforms.facebook import classify_facebook
from nfdoctor.platforms.lazada import LazadaAuth, classify_lazada
from nfdoctor.platforms.ratelimit import (
    clock_skew_s,
    parse_business_use_case_usage,
    parse_retry_after,
    parse_usage_headers,
    parse_x_app_usage,
    parse_zalo_rate_limit,
)
from nfdoctor.platforms.registry import spec
from nfdoctor.platforms.shopee import SHOPEE_BASE_URL, ShopeeAuth, ShopeeClient, classify_shopee
from nfdoctor.platforms.tiktok import classify_tiktok
from nfdoctor.platforms.zalo import classify_zalo
from tests.platforms.conftest import make_client

NOW = datetime(2026, 11, 20, 8, 0, 0, tzinfo=timezone.utc)
Classifier = Callable[..., TaxonomyError | None]


def response(
    status: int,
    body: object = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    url: str = "https://example.test/api/v2/shop/get_shop_info?access_token=SECRET&sign=SIG",
) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.Response(
        status,
        content=content,
        headers={"content-type": "application/json", **(headers or {})},
        request=httpx.Request("GET", url),
    )


# --- every platform: success markers, HTML, truncated JSON, 429 ------------------------------

SUCCESS: list[tuple[Classifier, object]] = [
    (classify_shopee, {"error": "", "message": "", "request_id": "r"}),
    (classify_lazada, {"code": "0", "request_id": "r"}),
    (classify_tiktok, {"code": 0, "message": "Success", "request_id": "r"}),
    (classify_facebook, {"id": "1", "name": "Page"}),
    (classify_zalo, {"error": 0, "message": "Success", "data": {}}),
]
CLASSIFIERS = [c for c, _ in SUCCESS]


@pytest.mark.parametrize(("classify", "body"), SUCCESS)
def test_success_markers(classify: Classifier, body: object) -> None:
    assert classify(response(200, body), now=NOW) is None


@pytest.mark.parametrize("classify", CLASSIFIERS)
def test_html_error_page(classify: Classifier) -> None:
    page = response(
        502,
        raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        headers={"content-type": "text/html"},
    )
    error = classify(page, now=NOW)
    assert isinstance(error, UnexpectedResponseError)
    assert error.message == "HTML error page, HTTP 502"
    assert error.http_status == 502


@pytest.mark.parametrize("classify", CLASSIFIERS)
def test_html_without_content_type(classify: Classifier) -> None:
    error = classify(response(200, raw=b"  <!DOCTYPE html><p>maintenance"), now=NOW)
    assert isinstance(error, UnexpectedResponseError)
    assert error.message == "HTML error page, HTTP 200"


@pytest.mark.parametrize("classify", CLASSIFIERS)
def test_truncated_json(classify: Classifier) -> None:
    error = classify(response(200, raw=b'{"error": "", "response": {"more": tr'), now=NOW)
    assert isinstance(error, UnexpectedResponseError)
    assert "malformed or truncated JSON" in error.message


@pytest.mark.parametrize("classify", CLASSIFIERS)
def test_429_retry_after_seconds(classify: Classifier) -> None:
    error = classify(response(429, raw=b"Too Many Requests", headers={"retry-after": "7"}), now=NOW)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 7.0
    assert error.category is Category.RATE_LIMITED


@pytest.mark.parametrize("classify", CLASSIFIERS)
def test_429_retry_after_http_date(classify: Classifier) -> None:
    error = classify(
        response(429, {}, headers={"retry-after": "Fri, 20 Nov 2026 08:00:30 GMT"}), now=NOW
    )
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 30.0


@pytest.mark.parametrize("classify", CLASSIFIERS)
def test_503_without_envelope_is_transient(classify: Classifier) -> None:
    assert isinstance(classify(response(503, {}), now=NOW), TransientError)


# --- Shopee --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("invalid_acceess_token", TokenExpiredError),  # production's misspelling
        ("invalid_access_token", TokenExpiredError),
        ("error_auth", TokenInvalidError),
        ("common.error_auth", TokenInvalidError),
        ("error_sign", BadSignatureError),
        ("invalid_partner_id", BadCredentialsError),
        ("partner_shop_no_link", BadCredentialsError),
        ("error_rate_limit", RateLimitedError),
        ("error_limit", RateLimitedError),
        ("error_param", BadParametersError),
        ("order.order_list_invalid_time", BadParametersError),
        ("error_server", TransientError),
        ("error_api_permission", PermissionDeniedError),
        ("source_ip_undeclared", PermissionDeniedError),
        ("refresh_token_expired", RefreshTokenInvalidError),
        ("something_new", UnexpectedResponseError),
    ],
)
def test_shopee_codes(error: str, expected: type[TaxonomyError]) -> None:
    # Status 403: Shopee's error status is undocumented; classification ignores it.
    result = classify_shopee(
        response(403, {"error": error, "message": "x", "request_id": "rid-1"}), now=NOW
    )
    assert type(result) is expected
    assert result.code == error
    assert result.request_id == "rid-1"
    assert result.platform == "shopee"


def test_shopee_error_auth_on_token_endpoint_is_refresh_token() -> None:
    result = classify_shopee(
        response(
            200,
            {"error": "error_auth", "message": "Invalid refresh_token."},
            url="https://partner.shopeemobile.com/api/v2/auth/access_token/get",
        ),
        now=NOW,
    )
    assert isinstance(result, RefreshTokenInvalidError)


def test_classification_ignores_message_text() -> None:
    misleading = {"error": "error_server", "message": "Invalid access_token, expired sign"}
    assert isinstance(classify_shopee(response(200, misleading), now=NOW), TransientError)


# --- Lazada --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("IllegalAccessToken", TokenExpiredError),
        ("IllegalRefreshToken", RefreshTokenInvalidError),
        ("InvalidCode", RefreshTokenInvalidError),
        ("IncompleteSignature", BadSignatureError),
        ("ApiCallLimit", RateLimitedError),
        ("InvalidParameter", BadParametersError),
        ("14", BadParametersError),
        ("E019", BadParametersError),
        ("ServiceTimeout", TransientError),
        ("6", TransientError),
        ("SellerNotVerified", PermissionDeniedError),
    ],
)
def test_lazada_codes(code: str, expected: type[TaxonomyError]) -> None:
    body = {"type": "ISV", "code": code, "message": "m", "request_id": "0b1"}
    result = classify_lazada(response(200, body), now=NOW)
    assert type(result) is expected
    assert result.code == code
    assert result.request_id == "0b1"


def test_lazada_api_call_limit_defaults_to_one_second_ban() -> None:
    result = classify_lazada(response(200, {"code": "ApiCallLimit", "message": "m"}), now=NOW)
    assert isinstance(result, RateLimitedError)
    assert result.retry_after_s == 1.0


def test_lazada_success_is_string_zero() -> None:
    assert classify_lazada(response(200, {"code": "0", "data": {}}), now=NOW) is None


# --- TikTok --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (200, 105002, TokenExpiredError),
        (200, 36009004, TokenInvalidError),
        (200, 101000, TokenInvalidError),
        (401, 106001, BadSignatureError),
        (429, 36009002, RateLimitedError),
        (200, 106013, BadParametersError),
        (200, 36009003, TransientError),
        (200, 105005, PermissionDeniedError),
        (200, 36009033, PermissionDeniedError),
    ],
)
def test_tiktok_codes(status: int, code: int, expected: type[TaxonomyError]) -> None:
    body = {"code": code, "message": "m", "request_id": "2022080809462301024509910319695C45"}
    result = classify_tiktok(response(status, body, headers={"retry-after": "2"}), now=NOW)
    assert type(result) is expected
    assert result.code == str(code)
    assert result.http_status == status
    assert result.request_id == "2022080809462301024509910319695C45"


def test_tiktok_overloaded_code_category_is_configurable() -> None:
    body = {"code": 36009004, "message": "Invalid credentials. Invalid `app_key`."}
    result = classify_tiktok(
        response(200, body), now=NOW, overloaded_category=Category.BAD_CREDENTIALS
    )
    assert isinstance(result, BadCredentialsError)


def test_tiktok_429_envelope_keeps_retry_after() -> None:
    body = {"code": 36009002, "message": "Too many requests."}
    result = classify_tiktok(response(429, body, headers={"retry-after": "3"}), now=NOW)
    assert isinstance(result, RateLimitedError)
    assert result.retry_after_s == 3.0


# --- Facebook ------------------------------------------------------------------------------


def fb_error(code: int, subcode: int | None = None) -> dict[str, object]:
    error: dict[str, object] = {
        "message": "Error validating access token",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "EJplcsCHuLu",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize(
    ("code", "subcode", "expected"),
    [
        (190, 463, TokenExpiredError),
        (190, 467, TokenInvalidError),
        (190, 460, TokenInvalidError),
        (190, 458, TokenInvalidError),
        (190, None, TokenInvalidError),
        (190, 459, BadCredentialsError),
        (190, 492, PermissionDeniedError),
        (102, None, TokenInvalidError),
        (4, None, RateLimitedError),
        (17, None, RateLimitedError),
        (32, None, RateLimitedError),
        (613, None, RateLimitedError),
        (613, 1996, RateLimitedError),
        (80001, None, RateLimitedError),
        (80006, None, RateLimitedError),
        (100, None, BadParametersError),
        (100, 2018001, BadParametersError),
        (2, None, TransientError),
        (10, 2018278, PermissionDeniedError),
        (551, 1545041, PermissionDeniedError),
        (200, None, PermissionDeniedError),
        (1, 1357046, UnexpectedResponseError),  # the message WAS sent: never retry
    ],
)
def test_facebook_codes(code: int, subcode: int | None, expected: type[TaxonomyError]) -> None:
    result = classify_facebook(response(400, fb_error(code, subcode)), now=NOW)
    assert type(result) is expected
    assert result.code == (f"{code}/{subcode}" if subcode else str(code))
    assert result.request_id == "EJplcsCHuLu"


def test_facebook_613_on_429_and_400() -> None:
    for status in (400, 429):
        result = classify_facebook(response(status, fb_error(613)), now=NOW)
        assert isinstance(result, RateLimitedError)


def test_facebook_bare_100_can_mean_bad_proof() -> None:
    result = classify_facebook(
        response(400, fb_error(100)), now=NOW, code_100_category=Category.BAD_SIGNATURE
    )
    assert isinstance(result, BadSignatureError)


# --- Zalo ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (-216, TokenInvalidError),
        (-220, TokenExpiredError),
        (-242, BadSignatureError),
        (-14002, BadCredentialsError),
        (-32, RateLimitedError),
        (-201, BadParametersError),
        (-213, PermissionDeniedError),
        (-234, PermissionDeniedError),
        (-99999, UnexpectedResponseError),
    ],
)
def test_zalo_codes_inside_http_200(code: int, expected: type[TaxonomyError]) -> None:
    result = classify_zalo(response(200, {"error": code, "message": "m"}), now=NOW)
    assert type(result) is expected
    assert result.code == str(code)
    assert result.http_status == 200


# --- transport failures --------------------------------------------------------------------

URL = "https://api.lazada.vn/rest/seller/get?access_token=SECRET&sign=SIG"


def _with_cause(exc: Exception, cause: BaseException) -> Exception:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "expected", "phase"),
    [
        (
            _with_cause(httpx.ConnectError("x"), socket.gaierror(-2, "Name unknown")),
            UnreachableError,
            "dns",
        ),
        (_with_cause(httpx.ConnectError("x"), ssl.SSLError("bad cert")), UnreachableError, "tls"),
        (httpx.ConnectError("refused"), UnreachableError, "connect"),
        (httpx.ConnectTimeout("t"), UnreachableError, "connect"),
        (httpx.ReadTimeout("t"), UnreachableError, "read"),
        (httpx.RemoteProtocolError("peer closed"), TransientError, "read"),
        (httpx.ReadError("reset"), TransientError, "read"),
    ],
)
def test_transport_errors(exc: httpx.TransportError, expected: type, phase: str) -> None:
    error = transport_error("lazada", exc, URL)
    assert type(error) is expected
    assert getattr(error, "phase") == phase  # noqa: B009
    assert "SECRET" not in error.message and "SIG" not in error.message
    assert "https://api.lazada.vn/rest/seller/get" in error.message


def test_strip_query() -> None:
    assert strip_query(URL) == "https://api.lazada.vn/rest/seller/get"


# --- usage headers, Retry-After, clock skew ------------------------------------------------


def test_x_app_usage_is_max_percentage() -> None:
    usage = parse_x_app_usage('{"call_count":28,"total_time":25,"total_cputime":91}')
    assert usage is not None and usage.percent_used == 91.0 and usage.source == "X-App-Usage"


def test_business_use_case_usage_busiest_entry_minutes_to_seconds() -> None:
    raw = json.dumps(
        {
            "111": [
                {
                    "type": "pages",
                    "call_count": 10,
                    "total_cputime": 5,
                    "total_time": 5,
                    "estimated_time_to_regain_access": 0,
                }
            ],
            "222": [
                {
                    "type": "messenger",
                    "call_count": 97,
                    "total_cputime": 23,
                    "total_time": 23,
                    "estimated_time_to_regain_access": 4,
                }
            ],
        }
    )
    usage = parse_business_use_case_usage(raw)
    assert usage is not None
    assert usage.percent_used == 97.0
    assert usage.reset_after_s == 240.0
    assert "222/messenger" in usage.source


def test_zalo_rate_limit_headers() -> None:
    usage = parse_zalo_rate_limit("4000", "1000")
    assert usage is not None and usage.percent_used == 75.0
    combined = parse_usage_headers(
        httpx.Headers({"X-RateLimit-Limit": "4000", "X-RateLimit-Remain": "3000"})
    )
    assert combined is not None and combined.percent_used == 25.0


def test_bad_usage_headers_are_ignored() -> None:
    assert parse_x_app_usage("not json") is None
    assert parse_business_use_case_usage('{"1": "x"}') is None
    assert parse_zalo_rate_limit("0", "0") is None
    assert parse_usage_headers(httpx.Headers({})) is None


def test_retry_after_forms() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Fri, 20 Nov 2026 07:59:00 GMT", NOW) == 0.0  # past: no wait
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_clock_skew_and_tolerances() -> None:
    skew = clock_skew_s("Fri, 20 Nov 2026 07:58:00 GMT", NOW)
    assert skew == 120.0  # local clock 2 min ahead
    assert spec("shopee").skew_acceptable(120.0)
    assert not spec("tiktok").skew_acceptable(120.0)  # only +30 s allowed ahead
    assert spec("tiktok").skew_acceptable(-200.0)
    assert not spec("shopee").skew_acceptable(-400.0)
    assert spec("lazada").skew_acceptable(7000.0)
    assert spec("zalo").skew_acceptable(99999.0)
    assert clock_skew_s(None, NOW) is None


# --- no secrets in messages or reprs -------------------------------------------------------

SECRETS = ("ACCESS-TOKEN-abcdef", "REFRESH-TOKEN-uvwxyz", "APP-SECRET-123456", "SIGN-0f0f0f0f")


def test_error_messages_and_reprs_never_contain_secrets() -> None:
    url = (
        "https://partner.shopeemobile.com/api/v2/shop/get_shop_info?access_token="
        f"{SECRETS[0]}&refresh_token={SECRETS[1]}&sign={SECRETS[3]}"
    )
    echoing = {
        "error": "error_param",
        "code": "InvalidParameter",
        "message": f"bad token {SECRETS[0]} secret {SECRETS[2]} sign {SECRETS[3]}",
        "request_id": "r",
    }
    errors: list[PlatformError] = []
    for classify in (classify_shopee, classify_lazada):
        result = classify(response(400, echoing, url=url), now=NOW, secrets=SECRETS)
        assert result is not None
        errors.append(result)
    errors.append(transport_error("shopee", httpx.ReadTimeout("t"), url))
    errors.append(
        classify_zalo(
            response(200, {"error": -216, "message": f"token {SECRETS[0]}"}, url=url),
            now=NOW,
            secrets=SECRETS,
        )
        or TransientError("x", platform="zalo")
    )
    for error in errors:
        text = " ".join([str(error), repr(error), str(getattr(error, "platform_message", ""))])
        for secret in SECRETS:
            assert secret not in text, (secret, text)


def test_token_set_and_auth_reprs_mask_secrets() -> None:
    tokens = TokenSet(
        access_token=SECRETS[0],
        refresh_token=SECRETS[1],
        access_expires_at=NOW,
        refresh_expires_at=None,
    )
    auth = LazadaAuth(
        app_key="k", app_secret=SECRETS[2], access_token=SECRETS[0], refresh_token=SECRETS[1]
    )
    shopee = make_client(
        ShopeeClient,
        ShopeeAuth,
        SHOPEE_BASE_URL,
        partner_id=1,
        partner_key=SECRETS[2],
        shop_id=2,
        access_token=SECRETS[0],
    )
    for text in (repr(tokens), str(tokens), repr(auth), repr(shopee), repr(shopee.auth)):
        for secret in SECRETS:
            assert secret not in text


def test_client_error_scrubs_platform_echo() -> None:
    shopee = make_client(
        ShopeeClient,
        ShopeeAuth,
        SHOPEE_BASE_URL,
        partner_id=1,
        partner_key=SECRETS[2],
        shop_id=2,
        access_token=SECRETS[0],
    )
    with respx.mock(assert_all_mocked=True) as router:
        router.get("https://partner.shopeemobile.com/api/v2/shop/get_shop_info").respond(
            200, json={"error": "error_param", "message": f"bad access_token {SECRETS[0]}"}
        )
        with pytest.raises(BadParametersError) as caught:
            asyncio.run(shopee.ping())
    error = caught.value
    text = " ".join([str(error), repr(error), error.platform_message or ""])
    assert SECRETS[0] not in text
    assert "***" in (error.platform_message or "")


def test_retry_call_gives_up_on_long_waits_and_retries_transient() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def throttled() -> int:
        raise RateLimitedError("x", platform="tiktok", retry_after_s=3600.0)

    with pytest.raises(RateLimitedError):
        asyncio.run(retry_call(throttled, sleep=fake_sleep, max_wait_s=60.0))
    assert slept == []

    outcomes: list[Exception | int] = [TransientError("x", platform="lazada"), 7]

    async def flaky() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert asyncio.run(retry_call(flaky, sleep=fake_sleep, jitter=lambda: 0.0)) == 7
    assert slept == [1.0]
