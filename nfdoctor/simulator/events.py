"""The platforms' event payloads, as the simulator makes them (platforms.md §2.8–§6.8).

Each builder returns the payload as a ``dict`` in the platform's documented shape (the
contract, ``webhooks-contract.md``, pins the chat message ones); each platform's module
picks its builders, fills in its credentials and ids, and encodes the result the way the
platform does: :func:`utf8_json` (non-ASCII as is) or :func:`escaped_json` (Meta: every
non-ASCII character as ``\\uXXXX`` with lowercase hex, which is what Meta signs).

Like ``verify.py``, this is written from the documentation, never from the clients.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "MALFORMED",
    "escaped_json",
    "facebook_message",
    "facebook_read",
    "from_milliseconds",
    "from_seconds",
    "json_object",
    "lazada_category_tree",
    "lazada_im_message",
    "milliseconds",
    "seconds",
    "shopee_order_status",
    "shopee_updates",
    "shopee_webchat",
    "stable_digits",
    "tiktok_new_message",
    "utf8_json",
    "zalo_received_message",
    "zalo_user_send_text",
]


def utf8_json(payload: Any) -> bytes:
    """Compact JSON, non-ASCII characters as UTF-8 (Shopee, Lazada, TikTok, Zalo)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def escaped_json(payload: Any) -> bytes:
    """Compact JSON with every non-ASCII character as ``\\uXXXX``, lowercase hex (Meta,
    §5.8): ``"Cảm ơn"`` is sent as ``"C\\u1ea3m \\u01a1n"``."""
    # json.dumps escapes with lowercase hex digits, as Meta does.
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def seconds(moment: datetime) -> int:
    """Unix seconds."""
    return int(moment.timestamp())


def milliseconds(moment: datetime) -> int:
    """Unix milliseconds."""
    return int(moment.timestamp() * 1000)


def stable_digits(key: str, n: int) -> str:
    """``n`` digits (no leading zero) that depend only on ``key``: a thread id that stays the
    same for every message between one buyer and one shop, without a draw."""
    number = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest(), "big")
    text = str(number)
    while len(text) < n:
        number = int.from_bytes(hashlib.sha256(text.encode("ascii")).digest(), "big")
        text += str(number)
    first = "123456789"[int(text[0]) % 9]
    return first + text[1:n]


# --- Shopee (§2.8) ---------------------------------------------------------------------------


def shopee_webchat(
    *,
    shop_id: int,
    message_id: str,
    conversation_id: str,
    from_id: int,
    from_user_name: str,
    text: str,
    at: datetime,
) -> dict[str, Any]:
    """Code 10, webchat: a buyer's text message (``message_id`` a 19-digit string, §2.9)."""
    return {
        "shop_id": shop_id,
        "code": 10,
        "timestamp": seconds(at),
        "data": {
            "type": "message",
            "content": {
                "message_id": message_id,
                "conversation_id": conversation_id,
                "from_id": from_id,
                "to_id": shop_id,
                "from_user_name": from_user_name,
                "message_type": "text",
                "content": {"text": text},
                "created_timestamp": seconds(at),
            },
        },
    }


def shopee_order_status(
    *, shop_id: int, order_sn: str, status: str, at: datetime
) -> dict[str, Any]:
    """Code 3, order status; the id is spelled ``ordersn`` (§2.8)."""
    return {
        "data": {
            "items": [],
            "ordersn": order_sn,
            "status": status,
            "completed_scenario": "",
            "update_time": seconds(at),
        },
        "shop_id": shop_id,
        "code": 3,
        "timestamp": seconds(at),
    }


def shopee_updates(*, shop_id: int, at: datetime) -> dict[str, Any]:
    """Code 5, "Shopee updates": an announcement, nothing a CRM stores."""
    return {
        "data": {
            "title": "Cập nhật chính sách vận chuyển",
            "content": "Shopee cập nhật chính sách vận chuyển từ tháng sau.",
            "url": "",
            "update_time": seconds(at),
        },
        "shop_id": shop_id,
        "code": 5,
        "timestamp": seconds(at),
    }


# --- Lazada (§3.8, §3.9) ---------------------------------------------------------------------


def lazada_im_message(
    *,
    seller_id: str,
    session_id: str,
    message_id: str,
    buyer_id: str,
    text: str,
    at: datetime,
) -> dict[str, Any]:
    """``message_type`` 2, IM: the content is itself JSON, as a string (§3.9); times in ms."""
    return {
        "seller_id": seller_id,
        "message_type": 2,
        "data": {
            "session_id": session_id,
            "message_id": message_id,
            "from_account_id": buyer_id,
            "from_account_type": 1,
            "to_account_id": seller_id,
            "type": 1,
            "template_id": 1,
            "content": json.dumps({"txt": text}, ensure_ascii=False),
            "send_time": milliseconds(at),
        },
        "timestamp": milliseconds(at),
        "site": "lazada_vn",
    }


def lazada_category_tree(*, seller_id: str, at: datetime) -> dict[str, Any]:
    """``message_type`` 12: the category tree changed (metadata the CRM does not store)."""
    return {
        "seller_id": seller_id,
        "message_type": 12,
        "data": {"update_time": seconds(at)},
        "timestamp": milliseconds(at),
        "site": "lazada_vn",
    }


# --- TikTok Shop (§4.8, §4.9) ---------------------------------------------------------------


def tiktok_new_message(
    *,
    shop_id: str,
    notification_id: str,
    conversation_id: str,
    message_id: str,
    sender_id: str,
    text: str,
    at: datetime,
) -> dict[str, Any]:
    """Type 14, new message: the content is JSON as a string; times in seconds."""
    return {
        "type": 14,
        "tts_notification_id": notification_id,
        "shop_id": shop_id,
        "timestamp": seconds(at),
        "data": {
            "conversation_id": conversation_id,
            "message_id": message_id,
            "type": "TEXT",
            "content": json.dumps({"content": text}, ensure_ascii=False),
            "create_time": seconds(at),
            "sender": {"im_user_id": sender_id, "role": "BUYER"},
        },
    }


# --- Facebook Messenger (§5.8) --------------------------------------------------------------


def facebook_message(
    *, page_id: str, psid: str, mid: str, text: str, at: datetime
) -> dict[str, Any]:
    """A ``messages`` event: one entry, one messaging item; times in ms."""
    return {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": milliseconds(at),
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": page_id},
                        "timestamp": milliseconds(at),
                        "message": {"mid": mid, "text": text},
                    }
                ],
            }
        ],
    }


def facebook_read(*, page_id: str, psid: str, watermark: datetime, at: datetime) -> dict[str, Any]:
    """A ``message_reads`` event: a read receipt, ``read`` instead of ``message``."""
    return {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": milliseconds(at),
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": page_id},
                        "timestamp": milliseconds(at),
                        "read": {"watermark": milliseconds(watermark)},
                    }
                ],
            }
        ],
    }


# --- Zalo OA (§6.8) -------------------------------------------------------------------------


def zalo_user_send_text(
    *,
    app_id: str,
    oa_id: str,
    user_id: str,
    user_id_by_app: str,
    msg_id: str,
    text: str,
    at: datetime,
) -> dict[str, Any]:
    """``user_send_text``: ids and the ms timestamp are strings."""
    return {
        "app_id": app_id,
        "sender": {"id": user_id},
        "recipient": {"id": oa_id},
        "user_id_by_app": user_id_by_app,
        "event_name": "user_send_text",
        "message": {"text": text, "msg_id": msg_id},
        "timestamp": str(milliseconds(at)),
    }


def zalo_received_message(
    *, app_id: str, oa_id: str, user_id: str, msg_id: str, at: datetime
) -> dict[str, Any]:
    """``user_received_message``: a ZNS delivery receipt (the OA's message reached the user)."""
    return {
        "app_id": app_id,
        "sender": {"id": oa_id},
        "recipient": {"id": user_id},
        "event_name": "user_received_message",
        "message": {"msg_ids": [msg_id], "delivery_time": str(milliseconds(at))},
        "timestamp": str(milliseconds(at)),
    }


# --- reading them back (the CRM's side) -----------------------------------------------------


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object; None when it is not one."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def from_seconds(value: Any) -> datetime:
    """A Unix time in seconds (a number or digits); ValueError/TypeError otherwise."""
    return datetime.fromtimestamp(_whole(value), tz=timezone.utc)


def from_milliseconds(value: Any) -> datetime:
    """A Unix time in milliseconds (a number or digits, as Zalo sends it)."""
    return datetime.fromtimestamp(_whole(value) / 1000, tz=timezone.utc)


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"not a whole number: {value!r}")
    return int(value)


#: what a malformed event raises while being read (the CRM then drops it)
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, OverflowError, OSError)
