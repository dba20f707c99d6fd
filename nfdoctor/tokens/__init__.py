"""Access and refresh tokens per platform account: state kept between runs, not config."""

from __future__ import annotations

from nfdoctor.tokens.store import (
    FORMAT,
    FileTokenStore,
    KeyringTokenStore,
    StoredToken,
    TokenStore,
    open_token_store,
)

__all__ = [
    "FORMAT",
    "FileTokenStore",
    "KeyringTokenStore",
    "StoredToken",
    "TokenStore",
    "open_token_store",
]
