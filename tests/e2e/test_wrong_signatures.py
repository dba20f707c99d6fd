"""Wrongly signed requests, rejected by the simulator with each platform's real error.

First through the CLI, with the signing secret in the config's secret file replaced by a
wrong one. Then at the client level against the real server: a wrapping transport changes
the request AFTER the client's ``httpx.Auth`` signed it (hex case of the sign or proof, the
timestamp's unit, one byte of a signed body); a pass-through control shows the unchanged
request is accepted, so the change is what the platform rejects.

Codes (platforms.md §2.6, §3.6, §4.6, §5.2, §6.2, and the simulator's modules):
Shopee ``error_sign``; Lazada ``IncompleteSignature``; TikTok 106001; Facebook code 100
``GraphMethodException`` "Invalid appsecret_proof…" (no subcode); Zalo -242.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import yaml

from nfdoctor.platforms.base import PlatformClient
from nfdoctor.platforms.errors import Category, TaxonomyError
from nfdoctor.platforms.facebook import FACEBOOK_BASE_URL, FacebookAuth, FacebookClient
from nfdoctor.platforms.lazada import LAZADA_BASE_URL, LazadaAuth, LazadaClient, classify_lazada
from nfdoctor.platforms.shopee import SHOPEE_BASE_URL, ShopeeAuth, ShopeeClient
from nfdoctor.platforms.tiktok import TIKTOK_BASE_URL, TiktokAuth, TiktokClient
from nfdoctor.platforms.zalo import ZALO_BASE_URL, ZaloAuth, ZaloClient
from tests.e2e.conftest import (
    PLATFORMS,
    SIGNING_SECRET_FILE,
    CheckRun,
    Simulated,
    assert_no_secrets,
    details_text,
)
from tests.platforms.conftest import make_client

Start = Callable[..., Simulated]
Check = Callable[..., CheckRun]
WRONG_SECRET = "wrong-secret-4d2f9a7c1e"

# ---- (a) a wrong signing secret in the config ---------------------------------------------

#: platform -> (category, platform error code, what the platform says)
WRONG_KEY_ANSWER = {
    "shopee": ("bad_signature", "error_sign", "Wrong sign."),
    "lazada": (
        "bad_signature",
        "IncompleteSignature",
        "The request signature does not conform to lazada standards",
    ),
    "tiktok": (
        "bad_signature",
        "106001",
        "Invalid credentials. The `sign` query parameter is invalid.",
    ),
    # A bare Graph code 100 is also "bad parameter"; facebook.code_100_means decides, and
    # its default is bad_parameters (see the next test for bad_signature).
    "facebook": (
        "bad_parameters",
        "100",
        "Invalid appsecret_proof provided in the API argument",
    ),
    "zalo": ("bad_signature", "-242", "Invalid appsecret_proof provided in the API argument"),
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_wrong_signing_secret_is_rejected_with_the_platforms_code(
    platform: str, simulator: Start, check: Check
) -> None:
    sim = simulator()
    sim.rewrite_secret(SIGNING_SECRET_FILE[platform], WRONG_SECRET)
    run = check(sim, platform)
    assert run.code == 2
    category, code, says = WRONG_KEY_ANSWER[platform]
    api = run.report.one(f"platforms.{platform}.api", sim.label(platform))
    assert api["status"] == "CRITICAL"
    assert f"category: {category}" in api["details"], api
    assert f"platform error code: {code}" in api["details"], api
    assert f"platform says: {says}" in api["details"], api
    token = run.report.one(f"platforms.{platform}.token", sim.label(platform))
    if platform == "facebook":
        # debug_token needs the app token APP_ID|APP_SECRET: with the wrong secret it is
        # refused too (code 100, "You must provide an app access token…").
        assert token["status"] == "CRITICAL"
        assert "platform error code: 100" in token["details"]
        assert "You must provide an app access token" in details_text(token)
    else:
        assert token["status"] == "OK"  # read from the store: no signed call


def test_facebook_wrong_app_secret_is_bad_signature_when_configured_so(
    simulator: Start, check: Check
) -> None:
    sim = simulator()
    sim.rewrite_secret(SIGNING_SECRET_FILE["facebook"], WRONG_SECRET)
    config = yaml.safe_load(sim.config.read_text("utf-8"))
    config["platforms"]["facebook"]["code_100_means"] = "bad_signature"
    sim.config.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    run = check(sim, "facebook")
    assert run.code == 2
    for kind in ("api", "token"):
        result = run.report.one(f"platforms.facebook.{kind}", sim.label("facebook"))
        assert result["status"] == "CRITICAL"
        assert "category: bad_signature" in result["details"], result
        assert "platform error code: 100" in result["details"]


def test_wrong_secrets_everywhere_with_debug_as_a_real_process(
    simulator: Start, check: Check
) -> None:
    sim = simulator()
    for name in SIGNING_SECRET_FILE.values():
        sim.rewrite_secret(name, WRONG_SECRET)
    # --debug turns on logging; the run must still print no secret, the wrong one included
    # (the check fixture searches stdout and stderr for every value of the secret files).
    run = check(sim, "all", "--debug", process=True)
    assert run.code == 2
    assert {p: run.report.one(f"platforms.{p}.api")["status"] for p in PLATFORMS} == {
        p: "CRITICAL" for p in PLATFORMS
    }


# ---- (b) requests changed after signing ----------------------------------------------------


class TamperingTransport(httpx.AsyncBaseTransport):
    """Sends each (already signed) request through ``change`` before the real transport."""

    def __init__(self, change: Callable[[httpx.Request], httpx.Request]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.change = change
        self.exchanges: list[tuple[httpx.Request, httpx.Request]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        changed = self.change(request)
        self.exchanges.append((request, changed))
        return await self.inner.handle_async_request(changed)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _copy(
    request: httpx.Request,
    *,
    url: httpx.URL | None = None,
    headers: httpx.Headers | None = None,
    content: bytes | None = None,
) -> httpx.Request:
    return httpx.Request(
        request.method,
        url if url is not None else request.url,
        headers=headers if headers is not None else request.headers,
        content=content if content is not None else request.content,
        extensions=request.extensions,
    )


def unchanged(request: httpx.Request) -> httpx.Request:
    """The control: the request as signed."""
    return request


def query_param(
    name: str, change: Callable[[str], str]
) -> Callable[[httpx.Request], httpx.Request]:
    """Change one query parameter's value."""

    def apply(request: httpx.Request) -> httpx.Request:
        value = request.url.params[name]
        return _copy(request, url=request.url.copy_set_param(name, change(value)))

    return apply


def header(name: str, change: Callable[[str], str]) -> Callable[[httpx.Request], httpx.Request]:
    """Change one header's value."""

    def apply(request: httpx.Request) -> httpx.Request:
        headers = request.headers.copy()
        headers[name] = change(headers[name])
        return _copy(request, headers=headers)

    return apply


def body_digit_after(marker: bytes) -> Callable[[httpx.Request], httpx.Request]:
    """Change the first digit after ``marker`` in the body: one byte of a signed field, the
    length kept (so Content-Length still holds)."""

    def apply(request: httpx.Request) -> httpx.Request:
        body = bytearray(request.content)
        start = body.index(marker) + len(marker)
        index = next(i for i in range(start, len(body)) if chr(body[i]).isdigit())
        body[index] = ord(str((int(chr(body[index])) + 1) % 10))
        return _copy(request, content=bytes(body))

    return apply


def client_for(
    sim: Simulated, platform: str, transport: httpx.AsyncBaseTransport, **options: Any
) -> PlatformClient:
    """The platform's client for account 0, with the credentials the simulator issued."""
    state = sim.state
    account = state.accounts[platform][0]
    token = state.current(platform, account.account_id, "access")
    assert token is not None
    common: dict[str, Any] = {"transport": transport, "access_token": token.value}
    if platform == "shopee":
        return make_client(
            ShopeeClient,
            ShopeeAuth,
            SHOPEE_BASE_URL,
            partner_id=state.shopee_partner_id,
            partner_key=state.shopee_partner_key,
            shop_id=account.account_id,
            base_url=f"{sim.url}/shopee",
            **common,
            **options,
        )
    if platform == "lazada":
        return make_client(
            LazadaClient,
            LazadaAuth,
            LAZADA_BASE_URL,
            app_key=state.lazada_app_key,
            app_secret=state.lazada_app_secret,
            seller_id=account.account_id,
            base_url=f"{sim.url}/lazada/rest",
            auth_url=f"{sim.url}/lazada-auth/rest",
            **common,
            **options,
        )
    if platform == "tiktok":
        return make_client(
            TiktokClient,
            TiktokAuth,
            TIKTOK_BASE_URL,
            app_key=state.tiktok_app_key,
            app_secret=state.tiktok_app_secret,
            shop_id=account.account_id,
            shop_cipher=account.extra["cipher"],
            base_url=f"{sim.url}/tiktok",
            auth_url=f"{sim.url}/tiktok-auth",
            **common,
            **options,
        )
    if platform == "facebook":
        return make_client(
            FacebookClient,
            FacebookAuth,
            FACEBOOK_BASE_URL,
            page_id=account.account_id,
            app_id=state.facebook_app_id,
            app_secret=state.facebook_app_secret,
            base_url=f"{sim.url}/facebook/{state.facebook_version}",
            **common,
            **options,
        )
    return make_client(
        ZaloClient,
        ZaloAuth,
        ZALO_BASE_URL,
        oa_id=account.account_id,
        app_id=state.zalo_app_id,
        app_secret=state.zalo_secret_key,
        base_url=f"{sim.url}/zalo",
        oauth_url=f"{sim.url}/zalo-oauth/v4",
        **common,
        **options,
    )


async def _ping(client: PlatformClient) -> Any:
    try:
        return await client.ping()
    finally:
        await client.aclose()


async def _tiktok_orders(client: PlatformClient) -> list[dict[str, Any]]:
    assert isinstance(client, TiktokClient)
    until = datetime.now(timezone.utc)
    try:
        return [o async for o in client.list_orders(until - timedelta(days=31), until)]
    finally:
        await client.aclose()


def assert_rejected(
    sim: Simulated,
    exc: TaxonomyError,
    *,
    category: Category,
    code: str,
    says: str,
) -> None:
    assert exc.category is category, repr(exc)
    assert exc.code == code, repr(exc)
    assert says in (exc.platform_message or ""), exc.platform_message
    assert_no_secrets(
        {"message": exc.message, "repr": repr(exc), "platform says": exc.platform_message or ""},
        sim.secret_values(),
    )


@pytest.mark.parametrize("platform", PLATFORMS)
def test_unchanged_signed_ping_is_accepted_over_the_tampering_transport(
    platform: str, simulator: Start
) -> None:
    sim = simulator()
    transport = TamperingTransport(unchanged)
    result = asyncio.run(_ping(client_for(sim, platform, transport)))
    assert result.http_status == 200 and result.shape_problems == ()
    assert len(transport.exchanges) == 1


def upper(value: str) -> str:
    assert value != value.upper(), "the sign should have lowercase hex letters to change"
    return value.upper()


def lower(value: str) -> str:
    assert value != value.lower(), "the sign should have uppercase hex letters to change"
    return value.lower()


#: (platform, what is changed, change, category, code, platform message, client options)
PING_TAMPERING: list[tuple[str, str, Any, Category, str, str, dict[str, Any]]] = [
    (
        "shopee",
        "sign-uppercased",
        query_param("sign", upper),
        Category.BAD_SIGNATURE,
        "error_sign",
        "Wrong sign.",
        {},
    ),
    # The window is checked before the sign, and Shopee answers a bad timestamp with
    # error_param, its generic parameter code (platforms.md §2.6): classified by code, that
    # is bad_parameters.
    (
        "shopee",
        "timestamp-in-ms",
        query_param("timestamp", lambda s: s + "000"),
        Category.BAD_PARAMETERS,
        "error_param",
        "Timestamp is expired.",
        {},
    ),
    (
        "lazada",
        "sign-lowercased",
        query_param("sign", lower),
        Category.BAD_SIGNATURE,
        "IncompleteSignature",
        "does not conform to lazada standards",
        {},
    ),
    # Lazada signs every parameter, timestamp included, and checks the sign first.
    (
        "lazada",
        "timestamp-in-seconds",
        query_param("timestamp", lambda ms: ms[:-3]),
        Category.BAD_SIGNATURE,
        "IncompleteSignature",
        "does not conform to lazada standards",
        {},
    ),
    (
        "tiktok",
        "sign-uppercased",
        query_param("sign", upper),
        Category.BAD_SIGNATURE,
        "106001",
        "The `sign` query parameter is invalid.",
        {},
    ),
    # TikTok checks the window before the sign and answers 36009004, its overloaded code
    # (platforms.md §4.6): its category is tiktok.code_36009004_means (default token_invalid).
    (
        "tiktok",
        "timestamp-in-ms",
        query_param("timestamp", lambda s: s + "000"),
        Category.TOKEN_INVALID,
        "36009004",
        "must not exceed the current time by more than 30 seconds",
        {},
    ),
    (
        "tiktok",
        "timestamp-in-ms-code-36009004-as-bad-signature",
        query_param("timestamp", lambda s: s + "000"),
        Category.BAD_SIGNATURE,
        "36009004",
        "Invalid timestamp.",
        {"overloaded_category": Category.BAD_SIGNATURE},
    ),
    # A bare code 100 is the category facebook.code_100_means names (default bad_parameters).
    (
        "facebook",
        "proof-uppercased",
        query_param("appsecret_proof", upper),
        Category.BAD_PARAMETERS,
        "100",
        "Invalid appsecret_proof provided in the API argument",
        {},
    ),
    (
        "facebook",
        "proof-uppercased-code-100-as-bad-signature",
        query_param("appsecret_proof", upper),
        Category.BAD_SIGNATURE,
        "100",
        "Invalid appsecret_proof provided in the API argument",
        {"code_100_category": Category.BAD_SIGNATURE},
    ),
    (
        "zalo",
        "proof-uppercased",
        header("appsecret_proof", upper),
        Category.BAD_SIGNATURE,
        "-242",
        "Invalid appsecret_proof provided in the API argument",
        {},
    ),
]


@pytest.mark.parametrize(
    ("platform", "change", "category", "code", "says", "options"),
    [
        pytest.param(p, c, cat, code, s, o, id=f"{p}-{what}")
        for p, what, c, cat, code, s, o in PING_TAMPERING
    ],
)
def test_ping_changed_after_signing_is_rejected(
    platform: str,
    change: Callable[[httpx.Request], httpx.Request],
    category: Category,
    code: str,
    says: str,
    options: dict[str, Any],
    simulator: Start,
) -> None:
    sim = simulator()
    transport = TamperingTransport(change)
    with pytest.raises(TaxonomyError) as caught:
        asyncio.run(_ping(client_for(sim, platform, transport, **options)))
    assert len(transport.exchanges) == 1
    signed, sent = transport.exchanges[0]
    assert sent.url != signed.url or sent.headers != signed.headers
    assert_rejected(sim, caught.value, category=category, code=code, says=says)


def test_tiktok_post_body_changed_after_signing_is_rejected(simulator: Start) -> None:
    sim = simulator()
    orders = asyncio.run(_tiktok_orders(client_for(sim, "tiktok", TamperingTransport(unchanged))))
    assert len(orders) == 3  # the control: the signed search is accepted
    transport = TamperingTransport(body_digit_after(b'"create_time_lt":'))
    with pytest.raises(TaxonomyError) as caught:
        asyncio.run(_tiktok_orders(client_for(sim, "tiktok", transport)))
    signed, sent = transport.exchanges[-1]
    assert signed.method == "POST" and signed.url.path.endswith("/orders/search")
    assert len(sent.content) == len(signed.content) and sent.content != signed.content
    assert_rejected(
        sim,
        caught.value,
        category=Category.BAD_SIGNATURE,
        code="106001",
        says="The `sign` query parameter is invalid.",
    )


async def _lazada_form_post(sim: Simulated, transport: httpx.AsyncBaseTransport) -> httpx.Response:
    """POST /orders/get with a form body, signed by LazadaAuth (Lazada signs form fields)."""
    state = sim.state
    seller = state.accounts["lazada"][0].account_id
    token = state.current("lazada", seller, "access")
    assert token is not None
    auth = LazadaAuth(
        app_key=state.lazada_app_key,
        app_secret=state.lazada_app_secret,
        access_token=token.value,
        base_url=f"{sim.url}/lazada/rest",
        auth_url=f"{sim.url}/lazada-auth/rest",
    )
    since = (datetime.now(timezone.utc) - timedelta(days=31)).isoformat(timespec="seconds")
    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.post(
            f"{sim.url}/lazada/rest/orders/get",
            data={"created_after": since, "limit": "10", "offset": "0"},
            auth=auth,
        )
        await response.aread()
        return response


def test_lazada_form_body_changed_after_signing_is_rejected(simulator: Start) -> None:
    sim = simulator()
    control = asyncio.run(_lazada_form_post(sim, TamperingTransport(unchanged)))
    assert classify_lazada(control) is None
    assert control.json()["code"] == "0"
    # A business field of the form, not the `sign` field that travels in the same body.
    transport = TamperingTransport(body_digit_after(b"limit="))
    response = asyncio.run(_lazada_form_post(sim, transport))
    signed, sent = transport.exchanges[0]
    assert signed.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"sign=" in signed.content and "sign" not in signed.url.params
    assert b"limit=10&" in signed.content and b"limit=20&" in sent.content
    error = classify_lazada(response)
    assert error is not None
    assert_rejected(
        sim,
        error,
        category=Category.BAD_SIGNATURE,
        code="IncompleteSignature",
        says="does not conform to lazada standards",
    )
