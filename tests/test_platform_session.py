"""From the config to clients: which accounts are in scope, their URLs, and their clients.

``registry.select_accounts`` turns ``--platform``/``--shop`` into the accounts a run measures
(a wrong name is a usage error with a did-you-mean); each spec's ``urls`` gives the hosts the
connectivity check probes and the clients call; ``PlatformSession.client`` makes each
account's client, through the platform's spec, with the section's knobs applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from nfdoctor.config.loader import load_config
from nfdoctor.errors import UsageError
from nfdoctor.platforms.base import PlatformClient
from nfdoctor.platforms.errors import Category
from nfdoctor.platforms.facebook import FacebookClient
from nfdoctor.platforms.lazada import LazadaClient
from nfdoctor.platforms.registry import select_accounts, spec
from nfdoctor.platforms.shopee import ShopeeClient
from nfdoctor.platforms.spec import Account
from nfdoctor.platforms.tiktok import TiktokClient
from nfdoctor.platforms.zalo import ZaloClient
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.secrets.resolver import ResolvedSecrets
from nfdoctor.session import PlatformSession
from nfdoctor.tokens.store import FileTokenStore

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)

#: every platform configured with two accounts, Shopee's and Lazada's sharing one id
ALL_FIVE = """\
platforms:
  shopee:
    partner_id: 2001234
    partner_key: env:NFD_F_SHOPEE
    shops:
      - shop_id: 220001
        name: Thời Trang Hà My
      - shop_id: 345678
  lazada:
    app_key: "100001"
    app_secret: env:NFD_F_LAZADA
    shops:
      - seller_id: VN1A2B3C
        name: Mỹ Phẩm Thảo Nguyên
      - seller_id: "220001"
  tiktok:
    app_key: 6abc123def456
    app_secret: env:NFD_F_TIKTOK
    shops:
      - shop_id: "7494000000000000001"
        shop_cipher: ROW_abcdefghijklmnop
  facebook:
    app_id: "100000000000001"
    app_secret: env:NFD_F_FACEBOOK
    pages:
      - page_id: "100000000000123"
  zalo:
    app_id: "1234567890123456789"
    secret_key: env:NFD_F_ZALO
    oas:
      - oa_id: "4318000000000000001"
"""

#: the same five platforms with every URL and client knob set away from its default
OVERRIDDEN = """\
platforms:
  shopee:
    base_url: http://sim.test/shopee/
    partner_id: 2001234
    partner_key: env:NFD_F_SHOPEE
    shops:
      - shop_id: 220001
  lazada:
    base_url: http://sim.test/lazada/rest
    auth_url: http://sim.test/lazada-auth/rest/
    sign_raw_body: true
    app_key: "100001"
    app_secret: env:NFD_F_LAZADA
    shops:
      - seller_id: VN1A2B3C
  tiktok:
    base_url: http://sim.test/tiktok
    auth_url: http://sim.test/tiktok-auth
    code_36009004_means: bad_signature
    app_key: 6abc123def456
    app_secret: env:NFD_F_TIKTOK
    shops:
      - shop_id: "7494000000000000001"
        shop_cipher: ROW_abcdefghijklmnop
  facebook:
    base_url: http://sim.test/facebook/
    graph_version: v19.0
    appsecret_proof: false
    zero_expiry_means_never: false
    code_100_means: bad_signature
    app_id: "100000000000001"
    app_secret: env:NFD_F_FACEBOOK
    pages:
      - page_id: "100000000000123"
  zalo:
    base_url: http://sim.test/zalo
    oauth_url: http://sim.test/zalo-oauth/v4/
    appsecret_proof: false
    refresh_token_lifetime: 30d
    app_id: "1234567890123456789"
    secret_key: env:NFD_F_ZALO
    oas:
      - oa_id: "4318000000000000001"
"""

SECRETS = {
    "platforms.shopee.partner_key": "shopee-partner-key-0001",
    "platforms.lazada.app_secret": "lazada-app-secret-0002",
    "platforms.tiktok.app_secret": "tiktok-app-secret-0003",
    "platforms.facebook.app_secret": "facebook-app-secret-0004",
    "platforms.zalo.secret_key": "zalo-secret-key-0005",
}


def _config(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "nfdoctor.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path).config


def _urls(config: Any, platform: str) -> list[str]:
    found = spec(platform)
    return found.urls(found.section(config.platforms))


def _ids(scope: dict[str, list[Account]]) -> dict[str, list[str]]:
    return {platform: [a.account_id for a in accounts] for platform, accounts in scope.items()}


# --- select_accounts ------------------------------------------------------------------------


def test_every_enabled_platform_in_report_order_with_config_order_accounts(
    tmp_path: Path,
) -> None:
    # Zalo's section written first: the report's order wins, not the file's.
    head, zalo = ALL_FIVE.split("  zalo:")
    reordered = "platforms:\n  zalo:" + zalo + head.removeprefix("platforms:\n")
    assert reordered.index("zalo:") < reordered.index("shopee:")
    config = _config(tmp_path, reordered)
    scope = select_accounts(config.platforms)
    assert _ids(scope) == {
        "shopee": ["220001", "345678"],
        "lazada": ["VN1A2B3C", "220001"],
        "tiktok": ["7494000000000000001"],
        "facebook": ["100000000000123"],
        "zalo": ["4318000000000000001"],
    }
    first = scope["shopee"][0]
    assert first == Account(platform="shopee", account_id="220001", name="Thời Trang Hà My")
    assert first.label == "shopee 220001 (Thời Trang Hà My)"
    assert scope["shopee"][1].label == "shopee 345678"


def test_nothing_configured_is_an_empty_scope(tmp_path: Path) -> None:
    assert select_accounts(_config(tmp_path, "timezone: UTC\n").platforms) == {}


def test_only_the_platforms_asked_for(tmp_path: Path) -> None:
    config = _config(tmp_path, ALL_FIVE)
    scope = select_accounts(config.platforms, only=["zalo", "shopee"])
    assert list(scope) == ["shopee", "zalo"]


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        (
            "shoppe",
            "unknown platform 'shoppe' (did you mean 'shopee'?); "
            "expected one of shopee, lazada, tiktok, facebook, zalo",
        ),
        ("tiktokshop", "unknown platform 'tiktokshop' (did you mean 'tiktok'?)"),
        ("bogus", "unknown platform 'bogus'; expected one of shopee, lazada,"),
    ],
)
def test_unknown_platform_is_a_usage_error_with_did_you_mean(
    tmp_path: Path, asked: str, message: str
) -> None:
    config = _config(tmp_path, ALL_FIVE)
    with pytest.raises(UsageError) as caught:
        select_accounts(config.platforms, only=[asked])
    assert caught.value.message.startswith(message), caught.value.message


def test_platform_not_configured(tmp_path: Path) -> None:
    shopee_only = ALL_FIVE.split("  lazada:")[0]
    config = _config(tmp_path, shopee_only)
    with pytest.raises(UsageError) as caught:
        select_accounts(config.platforms, only=["shopee", "lazada"])
    assert caught.value.message == (
        "lazada is not configured (no enabled platforms.lazada section); configured: shopee"
    )


def test_platform_not_configured_when_nothing_is(tmp_path: Path) -> None:
    config = _config(tmp_path, "timezone: UTC\n")
    with pytest.raises(UsageError, match=r"configured: none$"):
        select_accounts(config.platforms, only=["zalo"])


def test_enabled_false_is_out_of_scope_and_cannot_be_asked_for(tmp_path: Path) -> None:
    text = ALL_FIVE.replace(
        "  shopee:\n    partner_id", "  shopee:\n    enabled: false\n    partner_id"
    )
    config = _config(tmp_path, text)
    scope = select_accounts(config.platforms)
    assert "shopee" not in scope
    assert list(scope) == ["lazada", "tiktok", "facebook", "zalo"]
    # Its shop id is gone from --shop too: 220001 is now only Lazada's seller.
    assert _ids(select_accounts(config.platforms, account_id="220001")) == {"lazada": ["220001"]}
    with pytest.raises(UsageError) as caught:
        select_accounts(config.platforms, only=["shopee"])
    assert caught.value.message == (
        "shopee is not configured (no enabled platforms.shopee section); "
        "configured: lazada, tiktok, facebook, zalo"
    )


def test_shop_narrows_across_platforms(tmp_path: Path) -> None:
    config = _config(tmp_path, ALL_FIVE)
    # The same id on two platforms: both kept, every other account dropped.
    assert _ids(select_accounts(config.platforms, account_id="220001")) == {
        "shopee": ["220001"],
        "lazada": ["220001"],
    }
    assert _ids(select_accounts(config.platforms, account_id="100000000000123")) == {
        "facebook": ["100000000000123"]
    }
    # Narrowed within the platforms asked for.
    assert _ids(select_accounts(config.platforms, only=["lazada"], account_id="220001")) == {
        "lazada": ["220001"]
    }


def test_unknown_shop_has_did_you_mean(tmp_path: Path) -> None:
    config = _config(tmp_path, ALL_FIVE)
    with pytest.raises(UsageError) as caught:
        select_accounts(config.platforms, account_id="34567")
    assert caught.value.message == (
        "--shop: no shop, page or OA '34567' in shopee, lazada, tiktok, facebook, zalo "
        "(did you mean '345678'?)"
    )


def test_shop_of_another_platform_is_not_found_in_the_one_asked(tmp_path: Path) -> None:
    config = _config(tmp_path, ALL_FIVE)
    with pytest.raises(UsageError) as caught:
        select_accounts(config.platforms, only=["shopee"], account_id="VN1A2B3C")
    # The suggestion comes from Shopee's shops only, and there is no close one.
    assert caught.value.message == "--shop: no shop, page or OA 'VN1A2B3C' in shopee"


def test_shop_when_nothing_is_configured(tmp_path: Path) -> None:
    config = _config(tmp_path, "timezone: UTC\n")
    with pytest.raises(UsageError) as caught:
        select_accounts(config.platforms, account_id="220001")
    assert caught.value.message == "--shop: no shop, page or OA '220001' in any platform"


# --- urls -----------------------------------------------------------------------------------


def test_api_urls_defaults(tmp_path: Path) -> None:
    config = _config(tmp_path, ALL_FIVE)
    assert {p: _urls(config, p) for p in ("shopee", "lazada", "tiktok", "facebook", "zalo")} == {
        "shopee": ["https://partner.shopeemobile.com"],
        "lazada": ["https://api.lazada.vn/rest", "https://auth.lazada.com/rest"],
        "tiktok": ["https://open-api.tiktokglobalshop.com", "https://auth.tiktok-shops.com"],
        "facebook": ["https://graph.facebook.com/v25.0"],
        "zalo": ["https://openapi.zalo.me", "https://oauth.zaloapp.com/v4"],
    }


def test_api_urls_overrides(tmp_path: Path) -> None:
    config = _config(tmp_path, OVERRIDDEN)
    assert {p: _urls(config, p) for p in ("shopee", "lazada", "tiktok", "facebook", "zalo")} == {
        "shopee": ["http://sim.test/shopee"],
        "lazada": ["http://sim.test/lazada/rest", "http://sim.test/lazada-auth/rest"],
        "tiktok": ["http://sim.test/tiktok", "http://sim.test/tiktok-auth"],
        # graph_version is appended to the configured base URL, its trailing slash dropped
        "facebook": ["http://sim.test/facebook/v19.0"],
        "zalo": ["http://sim.test/zalo", "http://sim.test/zalo-oauth/v4"],
    }


def test_api_urls_graph_version_with_default_host(tmp_path: Path) -> None:
    text = ALL_FIVE.replace("    pages:", "    graph_version: v26.0\n    pages:")
    config = _config(tmp_path, text)
    assert _urls(config, "facebook") == ["https://graph.facebook.com/v26.0"]


# --- PlatformSession.client --------------------------------------------------------------


class RecordingSecrets(ResolvedSecrets):
    """The run's resolved secrets, noting which key paths a build asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: list[str] = []

    def get(self, key_path: str) -> str:
        self.asked.append(key_path)
        return super().get(key_path)


def _session(
    config: Any,
    accounts: dict[str, list[Account]],
    tmp: Path,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PlatformSession:
    return PlatformSession(
        config=config,
        secrets=RecordingSecrets(SECRETS),
        token_store=FileTokenStore(tmp / "tokens.json"),
        redactor=Redactor(),
        clock=lambda: NOW,
        accounts=accounts,
        call_timeout_s=4.0,
        transport=transport,
    )


_OPEN: list[PlatformSession] = []


def _build(config: Any, account: Account, **kwargs: Any) -> tuple[Any, list[str]]:
    """The client the session makes for ``account``, and the secret key paths it asked for."""
    session = _session(config, {account.platform: [account]}, Path("/nonexistent"))
    asyncio.run(session.__aenter__())
    _OPEN.append(session)
    secrets = session.secrets
    assert isinstance(secrets, RecordingSecrets)
    return session.client(account, access_token="access-token-xyz", **kwargs), secrets.asked


def _account(config: Any, platform: str, index: int = 0) -> Account:
    return select_accounts(config.platforms, only=[platform])[platform][index]


def _close(client: Any) -> None:
    asyncio.run(client.aclose())
    while _OPEN:
        asyncio.run(_OPEN.pop().__aexit__(None, None, None))


@pytest.mark.parametrize(
    ("platform", "cls", "secret_key", "base_url"),
    [
        ("shopee", ShopeeClient, "platforms.shopee.partner_key", "http://sim.test/shopee"),
        ("lazada", LazadaClient, "platforms.lazada.app_secret", "http://sim.test/lazada/rest"),
        ("tiktok", TiktokClient, "platforms.tiktok.app_secret", "http://sim.test/tiktok"),
        (
            "facebook",
            FacebookClient,
            "platforms.facebook.app_secret",
            "http://sim.test/facebook/v19.0",
        ),
        ("zalo", ZaloClient, "platforms.zalo.secret_key", "http://sim.test/zalo"),
    ],
)
def test_build_returns_the_platform_client_with_its_secret_and_base_url(
    tmp_path: Path, platform: str, cls: type[PlatformClient], secret_key: str, base_url: str
) -> None:
    config = _config(tmp_path, OVERRIDDEN)
    client, asked = _build(config, _account(config, platform))
    try:
        assert type(client) is cls
        assert asked == [secret_key]
        assert client.base_url == base_url
        assert client.timeout_s == 4.0
        assert client.clock() == NOW
        # The signing secret and the token are what the client scrubs from platform text.
        assert SECRETS[secret_key] in client.secrets()
        assert "access-token-xyz" in client.secrets()
    finally:
        _close(client)


def test_build_shopee_ids(tmp_path: Path) -> None:
    config = _config(tmp_path, ALL_FIVE)
    client, _ = _build(config, _account(config, "shopee", 1))
    try:
        assert client.shop_id == "345678"
        assert client.auth.partner_id == "2001234"
        assert client.auth.access_token == "access-token-xyz"
    finally:
        _close(client)


def test_build_lazada_knobs(tmp_path: Path) -> None:
    config = _config(tmp_path, OVERRIDDEN)
    client, _ = _build(config, _account(config, "lazada"))
    try:
        assert client.seller_id == "VN1A2B3C"
        assert client.auth.sign_raw_body is True
        assert client.auth.auth_url == "http://sim.test/lazada-auth/rest"
    finally:
        _close(client)
    default = _config(tmp_path, ALL_FIVE)
    client, _ = _build(default, _account(default, "lazada"))
    try:
        assert client.auth.sign_raw_body is False
        assert client.auth.auth_url == "https://auth.lazada.com/rest"
    finally:
        _close(client)


def test_build_tiktok_knobs(tmp_path: Path) -> None:
    config = _config(tmp_path, OVERRIDDEN)
    client, _ = _build(config, _account(config, "tiktok"))
    try:
        assert client.auth.overloaded_category is Category.BAD_SIGNATURE
        assert client.shop_id == "7494000000000000001"
        assert client.shop_cipher == "ROW_abcdefghijklmnop"
        assert client.auth.auth_url == "http://sim.test/tiktok-auth"
    finally:
        _close(client)
    default = _config(tmp_path, ALL_FIVE)
    client, _ = _build(default, _account(default, "tiktok"))
    try:
        assert client.auth.overloaded_category is Category.TOKEN_INVALID
        assert client.auth.auth_url == "https://auth.tiktok-shops.com"
    finally:
        _close(client)


def test_build_tiktok_classifies_36009004_as_configured(tmp_path: Path) -> None:
    """The knob changes what an overloaded 36009004 is reported as, not just an attribute."""
    body = {"code": 36009004, "message": "Invalid timestamp.", "request_id": "r-1"}
    response = httpx.Response(
        401, json=body, request=httpx.Request("GET", "http://sim.test/tiktok/x")
    )
    categories = []
    for text in (ALL_FIVE, OVERRIDDEN):
        config = _config(tmp_path, text)
        client, _ = _build(config, _account(config, "tiktok"))
        try:
            error = client.classify(response)
            assert error is not None
            categories.append(error.category)
        finally:
            _close(client)
    assert categories == [Category.TOKEN_INVALID, Category.BAD_SIGNATURE]


def test_build_facebook_knobs(tmp_path: Path) -> None:
    config = _config(tmp_path, OVERRIDDEN)
    client, _ = _build(config, _account(config, "facebook"))
    try:
        assert client.page_id == "100000000000123"
        assert client.app_id == "100000000000001"
        assert client.base_url == "http://sim.test/facebook/v19.0"
        assert client.auth.send_proof is False
        assert client.zero_expiry_means_never is False
        assert client.auth.code_100_category is Category.BAD_SIGNATURE
    finally:
        _close(client)
    default = _config(tmp_path, ALL_FIVE)
    client, _ = _build(default, _account(default, "facebook"))
    try:
        assert client.auth.send_proof is True
        assert client.zero_expiry_means_never is True
        assert client.auth.code_100_category is Category.BAD_PARAMETERS
    finally:
        _close(client)


def test_build_zalo_knobs(tmp_path: Path) -> None:
    config = _config(tmp_path, OVERRIDDEN)
    client, _ = _build(config, _account(config, "zalo"))
    try:
        assert client.oa_id == "4318000000000000001"
        assert client.auth.refresh_ttl_s == timedelta(days=30).total_seconds()
        assert client.auth.oauth_url == "http://sim.test/zalo-oauth/v4"
        assert client.auth.send_proof is False
    finally:
        _close(client)
    default = _config(tmp_path, ALL_FIVE)
    client, _ = _build(default, _account(default, "zalo"))
    try:
        assert client.auth.refresh_ttl_s == timedelta(days=90).total_seconds()
        assert client.auth.oauth_url == "https://oauth.zaloapp.com/v4"
        assert client.auth.send_proof is True
    finally:
        _close(client)


@pytest.mark.parametrize("platform", ["shopee", "lazada", "tiktok", "zalo"])
def test_build_passes_the_refresh_token_and_callback(tmp_path: Path, platform: str) -> None:
    config = _config(tmp_path, ALL_FIVE)
    seen: list[object] = []
    callback: Callable[[object], None] = seen.append
    client, _ = _build(
        config, _account(config, platform), refresh_token="refresh-abc", on_refresh=callback
    )
    try:
        assert client.auth.refresh_token == "refresh-abc"
        assert client.auth.on_refresh is callback
        assert "refresh-abc" in client.secrets()
    finally:
        _close(client)


def test_clients_share_the_platforms_http_client_and_leave_it_open(tmp_path: Path) -> None:
    """Every shop of a platform shares one AsyncClient, owned by the session: closing one
    shop's client keeps it; closing the session closes it."""
    config = _config(
        tmp_path,
        OVERRIDDEN.replace(
            "      - shop_id: 220001\n", "      - shop_id: 220001\n      - shop_id: 220002\n", 1
        ),
    )
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"shop_name": "x", "region": "VN", "status": "NORMAL"})

    accounts = select_accounts(config.platforms, only=["shopee"])

    async def scenario() -> tuple[bool, bool]:
        session = _session(config, accounts, tmp_path, transport=httpx.MockTransport(handler))
        async with session:
            first, second = (
                session.client(a, access_token="access-token-xyz") for a in accounts["shopee"]
            )
            assert first.session is second.session  # one ApiSession per platform
            await first.ping()
            await first.aclose()
            await second.ping()
            still_open = not first.session.http.is_closed
            http = first.session.http
        return still_open, http.is_closed

    still_open, closed_after = asyncio.run(scenario())
    assert still_open and closed_after
    assert [r.url.host for r in requests] == ["sim.test", "sim.test"]
    assert requests[0].url.path == "/shopee/api/v2/shop/get_shop_info"
    assert [r.url.params["shop_id"] for r in requests] == ["220001", "220002"]
