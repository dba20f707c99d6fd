"""Property tests: nfdoctor's webhook signing agrees with the simulator's own verifier.

The simulator's verifier (``nfdoctor/simulator/verify.py``) is written separately from the
platform modules' signing, from platforms.md alone; for any payload, both must compute the
same header value, and the platform's own encoding must round-trip the payload.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nfdoctor.platforms import facebook, lazada, shopee, tiktok, zalo
from nfdoctor.platforms.webhook import DeliveryInputs, WebhookKeys
from nfdoctor.simulator import verify

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_SECRET = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1)
_URL = st.sampled_from(
    [
        "https://crm.example.vn/webhooks/shopee",
        "https://crm.example.vn/webhooks/shopee/",
        "https://crm.example.vn/webhooks/shopee?tenant=hà-nội",
    ]
)


@settings(max_examples=80, deadline=None)
@given(payload=_JSON, secret=_SECRET, url=_URL)
def test_shopee(payload: Any, secret: str, url: str) -> None:
    body = shopee.WEBHOOK.encode(payload)
    assert json.loads(body) == payload
    keys = WebhookKeys(secret=secret, secret_path="p")
    mine = shopee.WEBHOOK.signature.header_value(keys, DeliveryInputs(url=url, body=body))
    assert mine == verify.shopee_push_signature(secret, url, body)


@settings(max_examples=80, deadline=None)
@given(payload=_JSON, secret=_SECRET, app_key=_SECRET)
def test_lazada_and_tiktok(payload: Any, secret: str, app_key: str) -> None:
    keys = WebhookKeys(secret=secret, secret_path="p", app_key=app_key)
    for module, theirs in (
        (lazada, verify.lazada_push_signature),
        (tiktok, verify.tiktok_push_signature),
    ):
        body = module.WEBHOOK.encode(payload)
        mine = module.WEBHOOK.signature.header_value(keys, DeliveryInputs(url="", body=body))
        assert mine == theirs(app_key, secret, body)


@settings(max_examples=80, deadline=None)
@given(payload=_JSON, secret=_SECRET)
def test_facebook_signs_the_escaped_body(payload: Any, secret: str) -> None:
    body = facebook.WEBHOOK.encode(payload)
    assert body.isascii()  # every non-ASCII character travels as \\uXXXX
    assert json.loads(body) == payload
    keys = WebhookKeys(secret=secret, secret_path="p")
    mine = facebook.WEBHOOK.signature.header_value(keys, DeliveryInputs(url="", body=body))
    assert mine == verify.facebook_webhook_sha256(secret, body)


@settings(max_examples=80, deadline=None)
@given(text=_TEXT, secret=_SECRET, app_id=st.from_regex(r"[1-9][0-9]{9,18}", fullmatch=True))
def test_zalo_signs_the_bodys_timestamp(text: str, secret: str, app_id: str) -> None:
    payload = {
        "app_id": app_id,
        "event_name": "user_send_text",
        "message": {"text": text, "msg_id": "96d3cdf3af150460909"},
        "timestamp": "1700000000123",
    }
    body = zalo.WEBHOOK.encode(payload)
    timestamp = zalo.WEBHOOK.signature.timestamp_of(body)
    assert timestamp == "1700000000123"
    keys = WebhookKeys(secret=secret, secret_path="p", app_key=app_id)
    mine = zalo.WEBHOOK.signature.header_value(
        keys, DeliveryInputs(url="", body=body, timestamp=timestamp)
    )
    assert mine == "mac=" + verify.zalo_webhook_mac(app_id, body, timestamp, secret)
