"""From the config to clients: which accounts are configured, and a client for each.

An *account* is what a platform calls a shop (Shopee, Lazada, TikTok Shop), a Page
(Facebook) or an Official Account (Zalo): the unit that has its own tokens.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nfdoctor.errors import UsageError
from nfdoctor.platforms import DEFAULT_URLS, PLATFORMS

if TYPE_CHECKING:
    import httpx

    from nfdoctor.platforms.base import Clock, PlatformClient, TokenSet

__all__ = [
    "ACCOUNT_KEYS",
    "PLATFORM_TITLES",
    "Account",
    "ClientFactory",
    "api_urls",
    "select_accounts",
]

PLATFORM_TITLES = {
    "shopee": "Shopee",
    "lazada": "Lazada",
    "tiktok": "TikTok Shop",
    "facebook": "Facebook",
    "zalo": "Zalo OA",
}
#: platform -> (config list key, id key, what the platform calls an account)
ACCOUNT_KEYS = {
    "shopee": ("shops", "shop_id", "shop"),
    "lazada": ("shops", "seller_id", "seller"),
    "tiktok": ("shops", "shop_id", "shop"),
    "facebook": ("pages", "page_id", "page"),
    "zalo": ("oas", "oa_id", "OA"),
}
_AUTH_URL_KEY = {"lazada": "auth_url", "tiktok": "auth_url", "zalo": "oauth_url"}


@dataclass(frozen=True, kw_only=True)
class Account:
    """One shop, seller, Page or OA as configured."""

    platform: str
    account_id: str
    name: str | None = None

    @property
    def label(self) -> str:
        """``shopee 12345678 (Thời Trang Hà My)``: how reports name the account."""
        suffix = f" ({self.name})" if self.name else ""
        return f"{self.platform} {self.account_id}{suffix}"


def enabled_platforms(config: Any) -> list[str]:
    """Platforms with a section in the config and not ``enabled: false``, in report order."""
    return [
        p
        for p in PLATFORMS
        if getattr(config.platforms, p) is not None and getattr(config.platforms, p).enabled
    ]


def _accounts_of(config: Any, platform: str) -> list[Account]:
    section = getattr(config.platforms, platform)
    list_key, id_key, _ = ACCOUNT_KEYS[platform]
    return [
        Account(platform=platform, account_id=str(getattr(item, id_key)), name=item.name)
        for item in getattr(section, list_key)
    ]


def select_accounts(
    config: Any, *, platforms: Sequence[str] = (), account_id: str | None = None
) -> dict[str, list[Account]]:
    """The accounts in scope per enabled platform; UsageError for a platform or id not found.

    ``platforms`` empty means every enabled platform. ``account_id`` keeps only the account
    with that id (in whichever selected platform has it).
    """
    enabled = enabled_platforms(config)
    for platform in platforms:
        if platform not in PLATFORMS:
            close = difflib.get_close_matches(platform, PLATFORMS, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(
                f"unknown platform {platform!r}{hint}; expected one of {', '.join(PLATFORMS)}"
            )
        if platform not in enabled:
            raise UsageError(
                f"{platform} is not configured (no enabled platforms.{platform} section); "
                f"configured: {', '.join(enabled) or 'none'}"
            )
    chosen = [p for p in enabled if not platforms or p in platforms]
    scope = {p: _accounts_of(config, p) for p in chosen}
    if account_id is None:
        return scope
    narrowed = {
        p: [a for a in accounts if a.account_id == account_id] for p, accounts in scope.items()
    }
    narrowed = {p: accounts for p, accounts in narrowed.items() if accounts}
    if not narrowed:
        known = [a.account_id for accounts in scope.values() for a in accounts]
        close = difflib.get_close_matches(account_id, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = ", ".join(chosen) or "any platform"
        raise UsageError(f"--shop: no shop, page or OA {account_id!r} in {where}{hint}")
    return narrowed


def api_urls(config: Any, platform: str) -> list[str]:
    """The platform's API base URL and (where separate) its token host, as configured."""
    section = getattr(config.platforms, platform)
    default_base, default_auth = DEFAULT_URLS[platform]
    base = str(section.base_url).rstrip("/") if section.base_url else default_base
    if platform == "facebook":
        base = f"{base}/{section.graph_version}"
    urls = [base]
    key = _AUTH_URL_KEY.get(platform)
    if key is not None:
        configured = getattr(section, key)
        urls.append(str(configured).rstrip("/") if configured else str(default_auth))
    return urls


class ClientFactory:
    """Builds the client for one account from the config, its secrets and its tokens.

    ``secret`` resolves a config key path (``platforms.shopee.partner_key``) to its value;
    ``http`` is the run's shared AsyncClient.
    """

    def __init__(
        self,
        config: Any,
        *,
        secret: Callable[[str], str],
        http: httpx.AsyncClient | None,
        clock: Clock,
        timeout_s: float,
    ) -> None:
        self.config = config
        self.secret = secret
        self.http = http
        self.clock = clock
        self.timeout_s = timeout_s

    def build(
        self,
        account: Account,
        *,
        access_token: str,
        refresh_token: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
    ) -> PlatformClient:
        """A client for ``account`` using those tokens."""
        from nfdoctor.platforms.errors import Category

        platform = account.platform
        section = getattr(self.config.platforms, platform)
        urls = api_urls(self.config, platform)
        common: dict[str, Any] = {
            "access_token": access_token,
            "base_url": urls[0],
            "http": self.http,
            "clock": self.clock,
            "timeout_s": self.timeout_s,
        }
        refreshing: dict[str, Any] = {"refresh_token": refresh_token, "on_refresh": on_refresh}
        key = f"platforms.{platform}"
        if platform == "shopee":
            from nfdoctor.platforms.shopee import ShopeeClient

            return ShopeeClient(
                partner_id=section.partner_id,
                partner_key=self.secret(f"{key}.partner_key"),
                shop_id=account.account_id,
                **refreshing,
                **common,
            )
        if platform == "lazada":
            from nfdoctor.platforms.lazada import LazadaClient

            return LazadaClient(
                app_key=section.app_key,
                app_secret=self.secret(f"{key}.app_secret"),
                seller_id=account.account_id,
                auth_url=urls[1],
                sign_raw_body=section.sign_raw_body,
                **refreshing,
                **common,
            )
        if platform == "tiktok":
            from nfdoctor.platforms.tiktok import TiktokClient

            shop = next(s for s in section.shops if str(s.shop_id) == account.account_id)
            return TiktokClient(
                app_key=section.app_key,
                app_secret=self.secret(f"{key}.app_secret"),
                shop_id=account.account_id,
                shop_cipher=shop.shop_cipher,
                auth_url=urls[1],
                overloaded_category=Category(section.code_36009004_means),
                **refreshing,
                **common,
            )
        if platform == "facebook":
            from nfdoctor.platforms.facebook import FacebookClient

            return FacebookClient(
                page_id=account.account_id,
                app_id=section.app_id,
                app_secret=self.secret(f"{key}.app_secret"),
                send_proof=section.appsecret_proof,
                zero_expiry_means_never=section.zero_expiry_means_never,
                code_100_category=Category(section.code_100_means),
                **common,
            )
        from nfdoctor.platforms.zalo import ZaloClient

        return ZaloClient(
            oa_id=account.account_id,
            app_id=section.app_id,
            app_secret=self.secret(f"{key}.secret_key"),
            send_proof=section.appsecret_proof,
            oauth_url=urls[1],
            refresh_ttl_s=section.refresh_token_lifetime.total_seconds(),
            **refreshing,
            **common,
        )
