"""Platform API clients: one interface, signing as ``httpx.Auth``, one error taxonomy.

Modules: :mod:`.errors` (taxonomy), :mod:`.base` (interface and shared machinery),
:mod:`.ratelimit` (usage headers, Retry-After, clock skew) and one module per platform
(:mod:`.shopee`, :mod:`.lazada`, :mod:`.tiktok`, :mod:`.facebook`, :mod:`.zalo`). Import the
platform modules directly; this package imports nothing heavy on its own.
"""

from __future__ import annotations

#: every platform nfdoctor knows, in the order reports list them
PLATFORMS = ("shopee", "lazada", "tiktok", "facebook", "zalo")

#: Graph API version when the config names none (platforms.md §5.1: each version lives about
#: two years; the config's ``graph_version`` overrides it)
DEFAULT_GRAPH_VERSION = "v25.0"

#: production hosts: platform -> (API base URL, token host or None when it is the API host)
DEFAULT_URLS: dict[str, tuple[str, str | None]] = {
    "shopee": ("https://partner.shopeemobile.com", None),
    "lazada": ("https://api.lazada.vn/rest", "https://auth.lazada.com/rest"),
    "tiktok": ("https://open-api.tiktokglobalshop.com", "https://auth.tiktok-shops.com"),
    "facebook": ("https://graph.facebook.com", None),
    "zalo": ("https://openapi.zalo.me", "https://oauth.zaloapp.com/v4"),
}

__all__ = ["DEFAULT_GRAPH_VERSION", "DEFAULT_URLS", "PLATFORMS"]
