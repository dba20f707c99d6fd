"""Platform API clients: one interface, signing as ``httpx.Auth``, one error taxonomy.

Modules: :mod:`.errors` (taxonomy), :mod:`.base` (interface and shared machinery),
:mod:`.ratelimit` (usage headers, Retry-After, clock skew) and one module per platform
(:mod:`.shopee`, :mod:`.lazada`, :mod:`.tiktok`, :mod:`.facebook`, :mod:`.zalo`). Import the
platform modules directly; this package imports nothing heavy on its own.
"""

from __future__ import annotations

PLATFORMS = ("shopee", "lazada", "tiktok", "facebook", "zalo")

__all__ = ["PLATFORMS"]
