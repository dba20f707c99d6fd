"""What a platform declares for ``nfdoctor sync``: its streams, and how one page is fetched.

The runbook's "order sync" (and the customer-data procedure's manual sync) as data each
platform module declares in a section ``# --- sync (§x.5) ---`` ending in a
:class:`SyncSpec` that its ``PlatformSpec`` references:

- ``windows`` cuts the operator's range into the windows the platform's listing accepts
  (Shopee: at most 15 days; the others: the whole range, or days, so windows run in
  parallel);
- ``page`` fetches one page of one window from a resumable cursor and returns the records,
  normalised (:class:`SyncedOrder`, :class:`SyncedMessage`), and the cursor of the next page
  (None: the window is done). A cursor is a string the engine stores in its checkpoint, so a
  run killed anywhere resumes at the page it had not yet committed.

Everything around it (leases, checkpoints, the shared rate limit, retries, writing to the
CRM, validation) is the engine's (:mod:`nfdoctor.sync`), the same for all five.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Literal, TypeVar

from nfdoctor.platforms.base import PlatformClient
from nfdoctor.platforms.errors import UnexpectedResponseError

__all__ = [
    "ORDER_STATUSES",
    "Buyer",
    "OrderStatus",
    "Page",
    "StreamName",
    "StreamSpec",
    "SyncSpec",
    "SyncedMessage",
    "SyncedOrder",
    "Window",
    "object_list",
    "parse_amount",
    "split_windows",
]

#: the CRM's six order statuses (crm-schema.md ``orders.status``)
OrderStatus = Literal["pending", "paid", "shipped", "delivered", "cancelled", "returned"]
ORDER_STATUSES: tuple[OrderStatus, ...] = (
    "pending",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "returned",
)
StreamName = Literal["orders", "messages", "customers"]

R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class Buyer:
    """The person on the platform: a marketplace buyer or a chat user."""

    external_user_id: str
    display_name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, kw_only=True)
class SyncedOrder:
    """One marketplace order, normalised for ``orders`` (upserted by ``(shop_id,
    external_id)``)."""

    external_id: str
    #: the platform's own status, as it spells it (``READY_TO_SHIP``, ``canceled``, …)
    platform_status: str
    status: OrderStatus
    total_amount: Decimal
    currency: str
    created_at: datetime
    updated_at: datetime
    #: None when the platform does not say who bought it
    buyer: Buyer | None
    #: the platform's JSON for the order (list item and detail merged), kept in ``raw``
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class SyncedMessage:
    """One chat message, for ``messages`` (inserted only where ``(shop_id, external_id)`` is
    absent)."""

    external_id: str
    #: the platform's conversation id, where it has one (Facebook ``t_…``); None on Zalo
    thread_id: str | None
    #: the customer the conversation is with (never the page or OA itself)
    customer: Buyer
    direction: Literal["in", "out"]
    sender_external_id: str
    body: str | None
    sent_at: datetime
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, order=True)
class Window:
    """A half-open time range ``[start, end)`` in UTC, listed on its own."""

    start: datetime
    end: datetime

    def key(self) -> str:
        """How the checkpoint names it: ``2026-11-20T00:00:00Z/2026-12-05T00:00:00Z``."""
        return f"{_z(self.start)}/{_z(self.end)}"


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class Page(Generic[R]):
    """One page of a window: its records, and where the next page starts."""

    records: tuple[R, ...]
    #: the cursor of the next page; None when this window is done
    next_cursor: str | None
    #: the platform's count of records in the whole window, where it says (Lazada's
    #: ``countTotal``, TikTok's ``total_count``): validation compares it with the CRM's
    total: int | None = None
    #: records in the window the platform would not let be read (Facebook reads only a
    #: conversation's 20 most recent messages in detail): reported, never silently lost
    skipped: int = 0


#: fetch one page: (client, window, cursor or None for the first page) -> the page
PageFetcher = Callable[[PlatformClient, Window, "str | None"], Awaitable[Page[R]]]


@dataclass(frozen=True, kw_only=True)
class StreamSpec(Generic[R]):
    """One stream of one platform: how a range becomes windows, and how a page is fetched."""

    name: StreamName
    #: the longest window the platform lists at once (Shopee: 15 days); None: no limit
    max_window: timedelta | None
    page: PageFetcher[R]
    #: cut the range into UTC days (windows in parallel, found again by a resumed run);
    #: False where every window walks the same listing from its newest end (Facebook's
    #: conversations have no time filter: a day per window would walk them once per day)
    grid: bool = True
    #: where the facts come from (platforms.md section), for the docs and messages
    source: str


@dataclass(frozen=True, kw_only=True)
class SyncSpec:
    """A platform's sync: its streams and its request rate."""

    orders: StreamSpec[SyncedOrder] | None = None
    messages: StreamSpec[SyncedMessage] | None = None
    #: requests per second nfdoctor allows itself on this platform by default (all shops
    #: and processes together), and how sure platforms.md is of the platform's own limit
    default_rate_per_s: float
    rate_confidence: Literal["H", "M", "L"]
    rate_source: str

    def stream(self, name: StreamName) -> StreamSpec[Any] | None:
        """The stream called ``name``, or None when the platform has none."""
        if name == "orders":
            return self.orders
        if name == "messages":
            return self.messages
        return None


def split_windows(
    since: datetime, until: datetime, max_window: timedelta | None, *, step: timedelta | None = None
) -> list[Window]:
    """``[since, until)`` cut into consecutive windows of at most ``max_window`` (or ``step``,
    when smaller: windows are listed in parallel), the last one shorter."""
    width = max_window
    if step is not None and (width is None or step < width):
        width = step
    if width is None or until - since <= width:
        return [Window(since, until)] if since < until else []
    windows = []
    start = since
    while start < until:
        end = min(start + width, until)
        windows.append(Window(start, end))
        start = end
    return windows


def parse_amount(value: object, *, platform: str, record: str, field: str) -> Decimal:
    """A money field (a JSON number or a string such as ``"106.00"``) as an exact Decimal,
    through its text (never a float's binary value); anything else is the platform's
    unexpected response, naming the record and the field."""
    amount = Decimal("NaN")
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        with contextlib.suppress(InvalidOperation):
            amount = Decimal(str(value))
    if not amount.is_finite():
        raise UnexpectedResponseError(
            f"{record}: {field} is not an amount", platform=platform, field=field
        )
    return amount


def object_list(
    data: Mapping[str, Any], key: str, *, where: str, platform: str
) -> list[dict[str, Any]]:
    """``data[key]`` as a list of JSON objects (absent: none); anything else is the
    platform's unexpected response, naming where and the field."""
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnexpectedResponseError(
            f"{where}: data.{key} is not a list of objects", platform=platform, field=key
        )
    return items
