"""Signature checks for the five platforms, written from ``platforms.md`` alone.

Deliberately independent of ``nfdoctor.platforms``: the simulator is the second opinion on
the clients' signing, so sharing code would let one bug pass both. Each ``*_sign`` function
computes what the platform expects; each ``verify_*`` compares in constant time and is
strict about hex case, because the real platforms are (or may be) too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone

__all__ = [
    "appsecret_proof",
    "facebook_webhook_sha1",
    "facebook_webhook_sha256",
    "lazada_push_signature",
    "lazada_sign",
    "lazada_timestamp",
    "pkce_s256",
    "pkce_verifier_ok",
    "shopee_push_signature",
    "shopee_sign",
    "tiktok_push_signature",
    "tiktok_sign",
    "verify_exact",
    "zalo_webhook_mac",
]


def _hmac_hex(key: str, msg: bytes, digest: str = "sha256") -> str:
    return hmac.new(key.encode("utf-8"), msg, digest).hexdigest()


def verify_exact(expected: str, given: str | None) -> bool:
    """Constant-time, case-sensitive comparison (a wrong hex case is a wrong signature)."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def shopee_sign(
    partner_key: str,
    partner_id: int | str,
    path: str,
    timestamp: int | str,
    access_token: str | None = None,
    identity_id: int | str | None = None,
) -> str:
    """Shopee v2 sign (§2.2): public when no token, shop/merchant when token and id given."""
    base = f"{partner_id}{path}{timestamp}"
    if access_token is not None:
        base += f"{access_token}{identity_id if identity_id is not None else ''}"
    return _hmac_hex(partner_key, base.encode("utf-8"))


def lazada_sign(app_secret: str, api_path: str, params: Mapping[str, str]) -> str:
    """Lazada sign (§3.2): every parameter but ``sign``, sorted by name, UPPERCASE hex."""
    base = api_path + "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return _hmac_hex(app_secret, base.encode("utf-8")).upper()


def lazada_timestamp(value: str) -> datetime | None:
    """Lazada's ``timestamp``: Unix milliseconds or ISO 8601; ``None`` if neither."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def tiktok_sign(app_secret: str, path: str, params: Mapping[str, str], body: bytes = b"") -> str:
    """TikTok sign (§4.2): secret-wrapped path, sorted params (no sign/access_token), raw body."""
    inner = path + "".join(
        f"{k}{params[k]}" for k in sorted(params) if k not in ("sign", "access_token")
    )
    msg = app_secret.encode("utf-8") + inner.encode("utf-8") + body + app_secret.encode("utf-8")
    return _hmac_hex(app_secret, msg)


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """Facebook and Zalo ``appsecret_proof`` (§5.2, §6.2): HMAC(app_secret, token), lower hex."""
    return _hmac_hex(app_secret, access_token.encode("utf-8"))


def shopee_push_signature(partner_key: str, callback_url: str, raw_body: bytes) -> str:
    """Shopee push ``Authorization`` (§2.8): HMAC(partner_key, url ‖ '|' ‖ raw body)."""
    return _hmac_hex(partner_key, callback_url.encode("utf-8") + b"|" + raw_body)


def lazada_push_signature(app_key: str, app_secret: str, raw_body: bytes) -> str:
    """Lazada push ``Authorization`` (§3.8): HMAC(app_secret, app_key ‖ raw body), lower hex."""
    return _hmac_hex(app_secret, app_key.encode("utf-8") + raw_body)


def tiktok_push_signature(app_key: str, app_secret: str, raw_body: bytes) -> str:
    """TikTok webhook ``Authorization`` (§4.8): the same scheme as Lazada's push."""
    return _hmac_hex(app_secret, app_key.encode("utf-8") + raw_body)


def facebook_webhook_sha256(app_secret: str, raw_body: bytes) -> str:
    """``X-Hub-Signature-256`` value (§5.8), including the ``sha256=`` prefix."""
    return "sha256=" + _hmac_hex(app_secret, raw_body)


def facebook_webhook_sha1(app_secret: str, raw_body: bytes) -> str:
    """Legacy ``X-Hub-Signature`` value (§5.8), including the ``sha1=`` prefix."""
    return "sha1=" + _hmac_hex(app_secret, raw_body, "sha1")


def zalo_webhook_mac(app_id: str, raw_body: bytes, timestamp: str, oa_secret: str) -> str:
    """Zalo ``X-ZEvent-Signature`` mac (§6.8): plain SHA256(app_id ‖ body ‖ ts ‖ secret)."""
    msg = app_id.encode("utf-8") + raw_body + timestamp.encode("utf-8") + oa_secret.encode("utf-8")
    return hashlib.sha256(msg).hexdigest()


def pkce_s256(code_verifier: str) -> str:
    """RFC 7636 S256 code challenge (§6.3): base64url without padding of SHA-256."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def pkce_verifier_ok(code_verifier: str) -> bool:
    """Whether a code verifier has RFC 7636's form (§4.1): 43-128 unreserved characters."""
    return _PKCE_VERIFIER.fullmatch(code_verifier) is not None
