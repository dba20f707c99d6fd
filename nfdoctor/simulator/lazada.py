"""Simulated Lazada Open Platform, Vietnam (platforms.md §3).

The API gateway is mounted at ``/lazada`` (``/lazada/rest/...`` = ``api.lazada.vn/rest/...``)
and the token host at ``/lazada-auth`` (``/lazada-auth/rest/auth/token/refresh`` =
``auth.lazada.com/rest/auth/token/refresh``). Errors come with HTTP 200 and a string ``code``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nfdoctor.simulator.authorize import (
    CONSENT_LIFETIME,
    ConsentLink,
    consent_page,
    host_url,
    redirect_allowed,
    redirect_to,
    token_issued,
    token_refused,
    with_query,
)
from nfdoctor.simulator.base import json_response, platform_path, request_now, token_fault
from nfdoctor.simulator.events import (
    MALFORMED,
    from_milliseconds,
    json_object,
    lazada_category_tree,
    lazada_im_message,
    milliseconds,
    stable_digits,
    utf8_json,
)
from nfdoctor.simulator.model import (
    Account,
    Conversation,
    Message,
    Order,
    Token,
    TokenKind,
    alnum,
    digits,
)
from nfdoctor.simulator.spec import (
    ChatEventSource,
    ConfigContext,
    EmittedEvent,
    Host,
    InboundMessage,
    MarketChatSpec,
    OrderSpec,
    RequestView,
    SimPlatform,
    WebhookDelivery,
    WebhookSpec,
)
from nfdoctor.simulator.verify import (
    lazada_push_signature,
    lazada_sign,
    lazada_timestamp,
    verify_exact,
)

if TYPE_CHECKING:
    from nfdoctor.simulator.state import SimulatorState

__all__ = [
    "LAZADA",
    "LazadaSettings",
    "build_lazada_app",
    "build_lazada_auth_app",
    "lazada_error_body",
]

NAME = "lazada"
TIMESTAMP_TOLERANCE = 7200  # §3.2: within 7200 s of UTC
MAX_LIMIT = 100
MAX_OFFSET = 5000
#: §3.5: /orders/items/get takes at most 50 order ids, in brackets
MAX_ITEM_ORDERS = 50
#: §3.5 (LZ-API GetOrders): the status filter's values
ORDER_STATUSES = (
    "unpaid",
    "pending",
    "canceled",
    "ready_to_ship",
    "delivered",
    "returned",
    "shipped",
    "failed",
    "topack",
    "toship",
    "shipping",
    "lost",
    "packed",
)
#: §3.9: /im/message/list pages hold at most 20 messages; /im/session/list's limit is not
#: given, and the simulator holds it to the same 20
MAX_IM_PAGE = 20
#: §3.9: ``from_account_type`` 1 buyer, 2 seller
BUYER, SELLER = 1, 2
_VN = timezone(timedelta(hours=7))  # the docs' sample times carry +07:00 / +08:00
#: §3.1: the seller authorization page on the auth host; its links go to the second path
AUTHORIZE_PATH = "/oauth/authorize"
APPROVE_PATH = AUTHORIZE_PATH + "/approve"


@dataclass(kw_only=True)
class LazadaSettings:
    """The simulated app's credentials."""

    app_key: str
    app_secret: str


class LazadaError(Exception):
    """A Lazada error envelope to answer with (HTTP 200, as the gateway does)."""

    def __init__(self, code: str, message: str, kind: str = "ISV") -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.kind = kind


def lazada_error_body(kind: str, status: int) -> tuple[int, dict[str, Any]]:
    """Lazada's envelope for injected rate-limit and server faults."""
    if kind == "rate_limit":
        return status, {
            "type": "SYSTEM",
            "code": "ApiCallLimit",
            "message": "Api access frequency exceeds the limit. this ban will last 1 seconds",
            "request_id": "fault",
        }
    return status, {
        "type": "ISP",
        "code": "ServiceTimeout",
        "message": "The request has failed due to service timeout",
        "request_id": "fault",
    }


def _api_path(request: Request) -> str:
    path = platform_path(request)
    # The signed api_path is the part after the gateway's /rest (§3.2).
    return path[len("/rest") :] if path.startswith("/rest/") else path


class LazadaApp:
    """Handlers for both Lazada hosts, sharing one state."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    @property
    def settings(self) -> LazadaSettings:
        """The app's credentials (read per request: tests change them)."""
        return LAZADA.settings(self.state)

    def error(self, rid: str, exc: LazadaError) -> Response:
        return json_response(
            {"type": exc.kind, "code": exc.code, "message": exc.message, "request_id": rid}
        )

    async def params(self, request: Request) -> dict[str, str]:
        """Query plus form-encoded body: Lazada signs both (§3.2)."""
        params = dict(request.query_params)
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", "replace")
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    def check(
        self, request: Request, params: dict[str, str], *, seller: bool
    ) -> tuple[datetime, Account | None]:
        """Verify app_key, sign, timestamp and (for seller APIs) the access token."""
        now = request_now(request, self.state)
        for name in ("app_key", "sign", "sign_method", "timestamp"):
            if name not in params:
                raise LazadaError("MissingParameter", f"Missing required parameter: {name}")
        bad_sign = LazadaError(
            "IncompleteSignature",
            "The request signature does not conform to lazada standards",
            "SYSTEM",
        )
        # An unknown app_key has no secret to sign with: the gateway's documented answer for
        # it is not known (§3.6), so it is reported as a signature that cannot conform.
        if params["app_key"] != self.settings.app_key or params["sign_method"] != "sha256":
            raise bad_sign
        expected = lazada_sign(self.settings.app_secret, _api_path(request), params)
        if not verify_exact(expected, params["sign"]):
            raise bad_sign
        moment = lazada_timestamp(params["timestamp"])
        # No documented code for a bad timestamp (§3.6): InvalidParameter is our choice.
        if moment is None or abs((moment - now).total_seconds()) > TIMESTAMP_TOLERANCE:
            raise LazadaError("InvalidParameter", "The specified parameter timestamp is not valid")
        if not seller:
            return now, None
        if "access_token" not in params:
            raise LazadaError("MissingParameter", "Missing required parameter: access_token")
        status, token = self.state.check(NAME, params["access_token"], now=now)
        if status != "ok" or token is None or token_fault(request) is not None:
            raise LazadaError(
                "IllegalAccessToken",
                "The specified access token is invalid or expired",
                "SYSTEM",
            )
        return now, self.state.account(NAME, token.owner)

    async def refresh(self, request: Request) -> Response:
        """/auth/token/refresh on the auth host: both tokens rotate, deadline kept."""
        rid = self.state.new_request_id()
        owner: str | None = None
        try:
            params = await self.params(request)
            now, _ = self.check(request, params, seller=False)
            if "refresh_token" not in params:
                raise LazadaError("MissingParameter", "Missing required parameter: refresh_token")
            status, old = self.state.check(NAME, params["refresh_token"], "refresh", now=now)
            owner = old.owner if old is not None else None
            if status != "ok" or old is None:
                raise LazadaError(
                    "IllegalRefreshToken", "The specified refresh token is invalid or expired"
                )
            access, refresh = self.state.rotate(old, now=now)
            token_issued(
                request,
                self.state,
                platform=NAME,
                kind="refresh",
                account=old.owner,
                access=access,
                refresh=refresh,
                spent=old.value,
            )
            # §3.3: the refresh reference names the list country_user_info_list
            return json_response(_token_body(rid, now, access, refresh, "country_user_info_list"))
        except LazadaError as exc:
            token_refused(
                request, self.state, platform=NAME, kind="refresh", account=owner, error=exc.code
            )
            return self.error(rid, exc)

    # ---- authorization (§3.1, §3.3) --------------------------------------------------------

    def authorize_error(self, rid: str, exc: LazadaError) -> Response:
        # A browser page refusing the request: Lazada's envelope, with a 400 (the simulator's
        # choice; the API's own errors come with 200).
        return json_response(
            {"type": exc.kind, "code": exc.code, "message": exc.message, "request_id": rid}, 400
        )

    async def authorize(self, request: Request) -> Response:
        """GET /oauth/authorize?response_type=code&force_auth=true&redirect_uri=&client_id=
        &state=: the consent page, one approve link per seller."""
        rid = self.state.new_request_id()
        q = request.query_params
        now = request_now(request, self.state)
        redirect = q.get("redirect_uri")
        for name, ok in (
            ("response_type", q.get("response_type") == "code"),
            ("client_id", q.get("client_id") == self.settings.app_key),
            ("redirect_uri", redirect is not None and redirect_allowed(redirect)),
        ):
            if not ok:
                return self.authorize_error(
                    rid,
                    LazadaError("InvalidParameter", f"The specified parameter {name} is not valid"),
                )
        assert redirect is not None
        consent = self.state.new_consent(
            NAME, redirect_uri=redirect, state=q.get("state"), now=now, lifetime=CONSENT_LIFETIME
        )
        approve = host_url(request, APPROVE_PATH)
        links = [
            ConsentLink(
                href=with_query(
                    approve, {"consent": consent.consent_id, "seller_id": a.account_id}
                ),
                text=f"Authorize {a.name} (seller {a.account_id})",
                account=a.account_id,
            )
            for a in self.state.accounts[NAME]
        ]
        intro = f"App {self.settings.app_key} asks to access your Lazada Seller Center."
        return consent_page("Lazada Open Platform: authorize an app", intro, links)

    async def approve(self, request: Request) -> Response:
        """The consent page's link: 302 to ``<redirect_uri>?code=…&state=…``."""
        rid = self.state.new_request_id()
        q = request.query_params
        now = request_now(request, self.state)
        consent = self.state.live_consent(NAME, q.get("consent"), now=now)
        account = self.state.account(NAME, q.get("seller_id") or "")
        if consent is None or account is None:
            return self.authorize_error(
                rid, LazadaError("InvalidParameter", "The authorization link is not valid")
            )
        code = self.state.issue_code(consent, account.account_id, now=now)
        params = {"code": code.value}
        if consent.state is not None:
            params["state"] = consent.state
        return redirect_to(with_query(consent.redirect_uri, params))

    async def create(self, request: Request) -> Response:
        """/auth/token/create on the auth host, ``code`` + system params, signed: a seller's
        first tokens; the code is single use and lives 30 minutes (§3.3)."""
        rid = self.state.new_request_id()
        owner: str | None = None
        try:
            params = await self.params(request)
            now, _ = self.check(request, params, seller=False)
            if "code" not in params:
                raise LazadaError("MissingParameter", "Missing required parameter: code")
            status, code = self.state.redeem_code(NAME, params["code"], now=now)
            owner = code.account if code is not None else None
            if status != "ok" or code is None:
                raise LazadaError("InvalidCode", "Invalid authorization code")
            access, refresh = self.state.authorize(code, now=now)
            token_issued(
                request,
                self.state,
                platform=NAME,
                kind="exchange",
                account=code.account,
                access=access,
                refresh=refresh,
                spent=code.value,
            )
            return json_response(_token_body(rid, now, access, refresh, "country_user_info"))
        except LazadaError as exc:
            token_refused(
                request, self.state, platform=NAME, kind="exchange", account=owner, error=exc.code
            )
            return self.error(rid, exc)

    async def seller_get(self, request: Request) -> Response:
        """GET /seller/get: the ping call."""
        rid = self.state.new_request_id()
        try:
            _, account = self.check(request, await self.params(request), seller=True)
        except LazadaError as exc:
            return self.error(rid, exc)
        assert account is not None
        return json_response(
            {
                "code": "0",
                "data": {
                    "name": account.name,
                    "seller_id": int(account.account_id),
                    "short_code": "VN" + account.account_id[-6:],
                    "email": "seller@example.vn",
                    "cb": False,
                    "status": "ACTIVE",
                    "verified": True,
                    "location": "Hồ Chí Minh",
                    "name_company": account.name,
                    "logo_url": "",
                },
                "request_id": rid,
            }
        )

    async def orders_get(self, request: Request) -> Response:
        """GET /orders/get: offset/limit paging, limit ≤ 100, offset ≤ 5000."""
        rid = self.state.new_request_id()
        try:
            params = await self.params(request)
            _, account = self.check(request, params, seller=True)
            assert account is not None
            bounds: dict[str, datetime] = {}
            for name in ("created_after", "created_before", "update_after", "update_before"):
                if name in params:
                    try:
                        parsed = datetime.fromisoformat(params[name].replace("Z", "+00:00"))
                    except ValueError:
                        raise LazadaError("17", "E017: Invalid Date Format") from None
                    if parsed.tzinfo is None:
                        raise LazadaError("17", "E017: Invalid Date Format")
                    bounds[name] = parsed
            if "created_after" not in bounds and "update_after" not in bounds:
                raise LazadaError(
                    "MissingParameter", "Missing required parameter: created_after or update_after"
                )
            try:
                limit = int(params.get("limit", "10"))
            except ValueError:
                raise LazadaError("19", "E019: Invalid Limit") from None
            if not 1 <= limit <= MAX_LIMIT:
                raise LazadaError("19", "E019: Invalid Limit")
            try:
                offset = int(params.get("offset", "0"))
            except ValueError:
                raise LazadaError("14", "E014: Invalid Offset") from None
            if not 0 <= offset <= MAX_OFFSET:
                raise LazadaError("14", "E014: Invalid Offset")
            status = params.get("status", "all")
            if status != "all" and status not in ORDER_STATUSES:
                raise LazadaError("36", "E036: Invalid status filter")
            # LZ-API GetOrders: E074 is the direction, E075 the sort field
            sort_by = params.get("sort_by", "created_at")
            if sort_by not in ("created_at", "updated_at"):
                raise LazadaError("75", "E075: Invalid sort filter.")
            direction = params.get("sort_direction", "DESC")
            if direction not in ("ASC", "DESC"):
                raise LazadaError("74", "E074: Invalid sort direction.")
            orders = [
                o
                for o in account.orders  # a list the state swaps, never changes
                if ("created_after" not in bounds or o.create_time >= bounds["created_after"])
                and ("created_before" not in bounds or o.create_time <= bounds["created_before"])
                and ("update_after" not in bounds or o.update_time >= bounds["update_after"])
                and ("update_before" not in bounds or o.update_time <= bounds["update_before"])
                and (status == "all" or o.status == status)
            ]
            key = "create_time" if sort_by == "created_at" else "update_time"
            orders.sort(key=lambda o: getattr(o, key), reverse=direction == "DESC")
            page = orders[offset : offset + limit]
            return json_response(
                {
                    "code": "0",
                    "request_id": rid,
                    "data": {
                        "count": str(len(page)),
                        "countTotal": str(len(orders)),
                        "orders": [_order_item(o) for o in page],
                    },
                }
            )
        except LazadaError as exc:
            return self.error(rid, exc)

    async def order_get(self, request: Request) -> Response:
        """GET /order/get?order_id=: one order, ``data`` the order object itself (as the list
        item); an order the seller does not have is ``16`` E016 (LZ-API GetOrder)."""
        rid = self.state.new_request_id()
        try:
            params = await self.params(request)
            _, account = self.check(request, params, seller=True)
            assert account is not None
            if "order_id" not in params:
                raise LazadaError("MissingParameter", "Missing required parameter: order_id")
            order_id = params["order_id"].strip()
            order = self.state.find_order(NAME, account.account_id, order_id)
            if order is None:
                raise LazadaError("16", f'E016: "{order_id}" Invalid Order ID')
        except LazadaError as exc:
            return self.error(rid, exc)
        return json_response({"code": "0", "data": _order_item(order), "request_id": rid})

    async def orders_items_get(self, request: Request) -> Response:
        """GET /orders/items/get?order_ids=[1,2,3] (at most 50): ``data`` one entry per order
        with its ``order_items`` (each carries ``buyer_id`` and ``currency``; LZ-API
        GetMultipleOrderItems). E056 a list not in brackets, E038 more than 50, E037 an id
        the seller does not have, E039 none of them."""
        rid = self.state.new_request_id()
        try:
            params = await self.params(request)
            _, account = self.check(request, params, seller=True)
            assert account is not None
            if "order_ids" not in params:
                raise LazadaError("MissingParameter", "Missing required parameter: order_ids")
            ids = _bracketed_ids(params["order_ids"])
            if ids is None:
                raise LazadaError(
                    "56", "E056: Invalid OrdersIdList format. Must use array format [1,2]"
                )
            if len(ids) > MAX_ITEM_ORDERS:
                raise LazadaError("38", "E038: Too many orders were requested")
            found = [self.state.find_order(NAME, account.account_id, i) for i in ids]
            orders = [o for o in found if o is not None]
            if not orders:
                raise LazadaError("39", "E039: No orders were found")
            if len(orders) < len(ids):
                raise LazadaError("37", "E037: One or more order id in the list are incorrect")
        except LazadaError as exc:
            return self.error(rid, exc)
        data = [
            {
                "order_number": o.order_id,
                "order_id": o.order_id,
                "order_items": [_order_line(o)],
            }
            for o in orders
        ]
        return json_response({"code": "0", "data": data, "request_id": rid})

    # ---- IM (§3.9) ------------------------------------------------------------------------

    def im_error(self, rid: str, exc: LazadaError) -> Response:
        # §3.6: the IM APIs add success, err_code and err_message to the envelope
        return json_response(
            {
                "type": exc.kind,
                "code": exc.code,
                "message": exc.message,
                "request_id": rid,
                "success": False,
                "err_code": exc.code,
                "err_message": exc.message,
            }
        )

    async def im_call(self, request: Request) -> tuple[str, dict[str, str], Account] | Response:
        """The seller call's checks (gateway errors as the other APIs answer them), then the
        page parameters every IM list takes: ``start_time`` (ms) and ``page_size`` (1–20)."""
        rid = self.state.new_request_id()
        try:
            params = await self.params(request)
            _, account = self.check(request, params, seller=True)
        except LazadaError as exc:
            return self.error(rid, exc)
        assert account is not None
        try:
            _im_int(params, "start_time", None, 0)
            _im_int(params, "page_size", str(MAX_IM_PAGE), 1, MAX_IM_PAGE)
        except LazadaError as exc:
            return self.im_error(rid, exc)
        return rid, params, account

    def im_ok(self, rid: str, data: dict[str, Any]) -> Response:
        return json_response(
            {"code": "0", "success": True, "err_code": "0", "data": data, "request_id": rid}
        )

    async def session_list(self, request: Request) -> Response:
        """GET /im/session/list (``start_time`` ms, ``page_size``, ``last_session_id``): the
        seller's sessions by their last message, newest first, paging back in time."""
        checked = await self.im_call(request)
        if isinstance(checked, Response):
            return checked
        rid, params, account = checked
        start_time = int(params["start_time"])
        size = int(params.get("page_size", str(MAX_IM_PAGE)))
        last = params.get("last_session_id") or None
        chats = account.chats  # a list the state swaps, never changes
        keyed = sorted(
            ((milliseconds(c.updated_time), c.conversation_id, c) for c in chats),
            key=lambda k: (k[0], k[1]),
            reverse=True,
        )
        rest = [c for t, sid, c in keyed if _before(t, sid, start_time, last)]
        page = rest[:size]
        return self.im_ok(
            rid,
            {
                "session_list": [_session(account, c) for c in page],
                "has_more": len(rest) > size,
                "next_start_time": milliseconds(page[-1].updated_time) if page else start_time,
                "last_session_id": page[-1].conversation_id if page else (last or ""),
            },
        )

    async def message_list(self, request: Request) -> Response:
        """GET /im/message/list (``session_id``, ``start_time`` ms, ``page_size`` ≤ 20,
        ``last_message_id``): the session's messages sent at or before ``start_time``, newest
        first; the next page asks with ``next_start_time`` and ``last_message_id``."""
        checked = await self.im_call(request)
        if isinstance(checked, Response):
            return checked
        rid, params, account = checked
        session_id = params.get("session_id")
        chat = next((c for c in account.chats if c.conversation_id == session_id), None)
        if chat is None:
            exc = (
                LazadaError("MissingParameter", "Missing required parameter: session_id")
                if not session_id
                else LazadaError(
                    "InvalidParameter", "The specified parameter session_id is not valid"
                )
            )
            return self.im_error(rid, exc)
        start_time = int(params["start_time"])
        size = int(params.get("page_size", str(MAX_IM_PAGE)))
        messages = chat.messages  # a list the state swaps, never changes
        last_id = params.get("last_message_id") or None
        # Messages of one session are in sending order: the position breaks a tie in time.
        last = next((i for i, m in enumerate(messages) if m.message_id == last_id), None)
        rest = [
            m
            for i, m in reversed(list(enumerate(messages)))
            if _before(milliseconds(m.time), i, start_time, last)
        ]
        page = rest[:size]
        return self.im_ok(
            rid,
            {
                "message_list": [_im_message(account, chat, m) for m in page],
                "has_more": len(rest) > size,
                "next_start_time": milliseconds(page[-1].time) if page else start_time,
                "last_message_id": page[-1].message_id if page else (last_id or ""),
            },
        )


def _im_int(
    params: dict[str, str], name: str, default: str | None, low: int, high: int | None = None
) -> int:
    """A whole-number IM parameter within ``[low, high]`` (MissingParameter when absent
    without a default, InvalidParameter when not a number or out of range)."""
    raw = params.get(name, default)
    if raw is None:
        raise LazadaError("MissingParameter", f"Missing required parameter: {name}")
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        raise LazadaError("InvalidParameter", f"The specified parameter {name} is not valid")
    return value


def _before(t: int, tie: Any, start_time: int, last: Any | None) -> bool:
    """Whether an item at ``t`` (ms) comes after the cursor ``(start_time, last)`` in a
    newest-first list: sent before ``start_time``, or at it and after the last one served
    (``tie`` orders items of the same time; no ``last``: every item at ``start_time``)."""
    return t < start_time or (t == start_time and (last is None or tie < last))


def _unread(chat: Conversation) -> int:
    """The buyer's messages since the seller last wrote."""
    unread = 0
    for message in reversed(chat.messages):
        if not message.from_customer:
            break
        unread += 1
    return unread


def _session(account: Account, chat: Conversation) -> dict[str, Any]:
    """One session as /im/session/list lists it (§3.9)."""
    last = chat.messages[-1]
    return {
        "session_id": chat.conversation_id,
        "buyer_id": chat.user_id,
        "title": chat.user_name,
        "summary": last.text,
        "head_url": "",
        "last_message_id": last.message_id,
        "last_message_time": milliseconds(last.time),
        "unread_count": _unread(chat),
    }


def _im_message(account: Account, chat: Conversation, message: Message) -> dict[str, Any]:
    """One message as /im/message/list lists it (§3.9): the content is JSON in a string."""
    buyer, seller = chat.user_id, account.account_id
    return {
        "message_id": message.message_id,
        "session_id": chat.conversation_id,
        "from_account_id": buyer if message.from_customer else seller,
        "from_account_type": BUYER if message.from_customer else SELLER,
        "to_account_id": seller if message.from_customer else buyer,
        "to_account_type": SELLER if message.from_customer else BUYER,
        "template_id": 1,
        "type": 1,
        "content": json.dumps({"txt": message.text}, ensure_ascii=False),
        "send_time": milliseconds(message.time),
        "status": 0,
    }


def _bracketed_ids(text: str) -> list[str] | None:
    """``[1, 2,3]`` -> ``["1", "2", "3"]``; None when not a bracketed list of whole numbers."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    ids = [part.strip() for part in text[1:-1].split(",")]
    if not ids or not all(i.isascii() and i.isdigit() for i in ids):
        return None
    return list(dict.fromkeys(ids))


def _token_body(
    rid: str, now: datetime, access: Token, refresh: Token | None, list_name: str
) -> dict[str, Any]:
    """The answer of /auth/token/create and /auth/token/refresh (§3.3), REL lifetimes."""
    assert access.expires_at is not None and refresh is not None
    assert refresh.expires_at is not None
    seller = access.owner
    return {
        "access_token": access.value,
        "refresh_token": refresh.value,
        "expires_in": int((access.expires_at - now).total_seconds()),
        "refresh_expires_in": int((refresh.expires_at - now).total_seconds()),
        "country": "vn",
        "account_platform": "seller_center",
        "account": "seller@example.vn",
        list_name: [
            {
                "country": "vn",
                "seller_id": seller,
                "user_id": int(seller) + 1,
                "short_code": "VN" + seller[-6:],
            }
        ],
        "code": "0",
        "request_id": rid,
    }


def _vn_time(moment: datetime) -> str:
    return moment.astimezone(_VN).isoformat(timespec="seconds")


def _order_item(order: Order) -> dict[str, Any]:
    """One order as /orders/get lists it and /order/get returns it (LZ-API GetOrders,
    GetOrder): no buyer id and no currency there (those are on the order items); the buyer's
    whole name in ``customer_first_name``, as GetOrders documents ``customer_last_name``
    "Empty for now. See customer_first_name"."""
    return {
        "order_id": order.order_id,
        "order_number": order.order_id,
        "created_at": _vn_time(order.create_time),
        "updated_at": _vn_time(order.update_time),
        "statuses": [order.status],
        "price": f"{order.amount:.2f}",
        "items_count": "1",
        "customer_first_name": order.buyer_name,
        "customer_last_name": "",
        "payment_method": "COD",
        "shipping_fee": "0.00",
        "voucher": "0.00",
    }


def _order_line(order: Order) -> dict[str, Any]:
    """The order's one item as /orders/items/get returns it (LZ-API GetMultipleOrderItems)."""
    item_id = stable_digits(f"{NAME}/item/{order.order_id}", 15)
    price = f"{order.amount:.2f}"
    return {
        "order_item_id": item_id,
        "order_id": order.order_id,
        "buyer_id": order.buyer_user_id,
        "name": _PRODUCTS[int(item_id) % len(_PRODUCTS)],
        "sku": "SKU-" + item_id[-6:],
        "shop_sku": f"{item_id[-9:]}_VNAMZ-{item_id[-6:]}",
        "status": order.status,
        "currency": order.currency,
        "item_price": price,
        "paid_price": price,
        "voucher_amount": "0.00",
        "shipping_amount": "0.00",
        "tax_amount": "0.00",
        # ISO 8601 as the field reference says (its sample shows milliseconds: a conflict)
        "created_at": _vn_time(order.create_time),
        "updated_at": _vn_time(order.update_time),
    }


#: what the sellers sell (one item per order)
_PRODUCTS = (
    "Kem chống nắng SPF50+ 50ml",
    "Sữa rửa mặt dịu nhẹ 150ml",
    "Tai nghe Bluetooth không dây",
    "Ốp lưng điện thoại trong suốt",
    "Bình giữ nhiệt inox 500ml",
    "Nồi chiên không dầu 4L",
    "Bộ đồ chơi xếp hình 120 chi tiết",
    "Sổ tay bìa da A5",
)


def build_lazada_app(state: SimulatorState) -> Starlette:
    """The Lazada API gateway (``api.lazada.vn``)."""
    app = LazadaApp(state)
    return Starlette(
        routes=[
            Route("/rest/seller/get", app.seller_get, methods=["GET", "POST"]),
            Route("/rest/orders/get", app.orders_get, methods=["GET", "POST"]),
            Route("/rest/order/get", app.order_get, methods=["GET", "POST"]),
            Route("/rest/orders/items/get", app.orders_items_get, methods=["GET", "POST"]),
            Route("/rest/im/session/list", app.session_list, methods=["GET", "POST"]),
            Route("/rest/im/message/list", app.message_list, methods=["GET", "POST"]),
        ]
    )


def build_lazada_auth_app(state: SimulatorState) -> Starlette:
    """The Lazada token host (``auth.lazada.com``)."""
    app = LazadaApp(state)
    return Starlette(
        routes=[
            Route("/rest/auth/token/refresh", app.refresh, methods=["GET", "POST"]),
            Route("/rest/auth/token/create", app.create, methods=["GET", "POST"]),
            Route(AUTHORIZE_PATH, app.authorize, methods=["GET"]),
            Route(APPROVE_PATH, app.approve, methods=["GET"]),
        ]
    )


# ---- the declaration ---------------------------------------------------------------------


def _new_settings(rng: random.Random) -> LazadaSettings:
    app_key = str(100_000 + rng.randrange(900_000))
    return LazadaSettings(app_key=app_key, app_secret=alnum(rng, 32))


def _new_account(rng: random.Random, name: str) -> Account:
    return Account(NAME, str(100_000_000 + rng.randrange(900_000_000)), name)


def _new_token(rng: random.Random, kind: TokenKind) -> str:
    return "50000" + alnum(rng, 40)


def _new_code(rng: random.Random) -> str:
    return "0_" + digits(rng, 6) + "_" + alnum(rng, 28)


def _new_order_id(rng: random.Random, created: datetime) -> str:
    return "4" + digits(rng, 14)


def _new_buyer_id(rng: random.Random) -> str:
    return rng.choice("123456789") + digits(rng, rng.choice((8, 9, 10)))


def _session_id(seller_id: str, buyer_id: str) -> str:
    # the same id the IM push of the emitter derives for this buyer and seller
    return stable_digits(f"{NAME}/{seller_id}/{buyer_id}", 16)


def _new_im_message_id(rng: random.Random) -> str:
    # §3.9: an opaque string, e.g. "1zYOS7N0cuIqw96026"
    return alnum(rng, 18)


def _payload(order: Order) -> dict[str, Any]:
    """The order as /orders/get lists it, with its items as /orders/items/get returns them
    (where the buyer's id is)."""
    return {**_order_item(order), "order_items": [_order_line(order)]}


def _rate_limited(state: SimulatorState, request: RequestView) -> tuple[int, dict[str, Any]]:
    # §3.6/§3.7: ApiCallLimit, with HTTP 200 like every Lazada error
    return 200, {
        "type": "SYSTEM",
        "code": "ApiCallLimit",
        "message": "Api access frequency exceeds the limit. this ban will last 1 seconds",
        "request_id": state.new_request_id(),
    }


def _secrets(state: SimulatorState) -> list[str]:
    return [LAZADA.settings(state).app_secret]


def _config_section(state: SimulatorState, ctx: ConfigContext) -> dict[str, Any]:
    settings = LAZADA.settings(state)
    return {
        "base_url": ctx.url(_API.prefix) + "/rest",
        "auth_url": ctx.url(_AUTH.prefix) + "/rest",
        "webhook_url": ctx.webhook_url,
        "app_key": settings.app_key,
        "app_secret": ctx.secret("lazada-app-secret", settings.app_secret),
        "shops": [{"seller_id": a.account_id, "name": a.name} for a in state.accounts[NAME]],
    }


def _verify_webhook(state: SimulatorState, delivery: WebhookDelivery) -> bool:
    # §3.8: Authorization = HMAC(app_secret, app_key ‖ raw body)
    settings = LAZADA.settings(state)
    expected = lazada_push_signature(settings.app_key, settings.app_secret, delivery.body)
    return verify_exact(expected, delivery.headers.get("authorization"))


#: the push type of IM messages (§3.8)
IM_MESSAGE = 2


def _message_event(
    state: SimulatorState, source: ChatEventSource, rng: random.Random
) -> EmittedEvent:
    # An opaque string id, as the IM API's (§3.9), e.g. "1zYOS7N0cuIqw96026"
    message_id = alnum(rng, 18)
    seller = source.account.account_id
    session = source.conversation_id or _session_id(seller, source.user_id)
    payload = lazada_im_message(
        seller_id=seller,
        session_id=session,
        message_id=message_id,
        buyer_id=source.user_id,
        text=source.text,
        at=source.sent_at,
    )
    return EmittedEvent(message_id, utf8_json(payload))


def _probe_event(state: SimulatorState, account: Account, at: datetime) -> bytes:
    return utf8_json(lazada_category_tree(seller_id=account.account_id, at=at))


def _sign(state: SimulatorState, account: Account, url: str, body: bytes) -> dict[str, str]:
    settings = LAZADA.settings(state)
    return {"Authorization": lazada_push_signature(settings.app_key, settings.app_secret, body)}


def _read_message_event(body: bytes) -> list[InboundMessage]:
    # message_type 2, IM; from_account_type 1 is the buyer (2: the seller's own message)
    payload = json_object(body)
    if payload is None or payload.get("message_type") != IM_MESSAGE:
        return []
    try:
        data = payload["data"]
        if data.get("from_account_type", 1) != 1:
            return []
        content = data.get("content")
        text: str | None = None
        if isinstance(content, str):
            try:
                inner = json.loads(content)
                text = inner.get("txt") if isinstance(inner, dict) else None
            except ValueError:
                text = content  # not the usual JSON: the CRM keeps what came
        return [
            InboundMessage(
                channel=NAME,
                shop_external_id=str(payload["seller_id"]),
                external_id=str(data["message_id"]),
                sender_external_id=str(data["from_account_id"]),
                body=text if isinstance(text, str) else None,
                sent_at=from_milliseconds(data.get("send_time", payload.get("timestamp"))),
                thread_id=str(data["session_id"]) if "session_id" in data else None,
            )
        ]
    except MALFORMED:
        return []


_API = Host(prefix="/lazada", real_host="api.lazada.vn", build=build_lazada_app)
_AUTH = Host(
    prefix="/lazada-auth",
    real_host="auth.lazada.com",
    build=build_lazada_auth_app,
    # the seller's consent page and its links (the token endpoints are API calls)
    browser_paths=(AUTHORIZE_PATH, APPROVE_PATH),
)

LAZADA: SimPlatform[LazadaSettings] = SimPlatform(
    name=NAME,
    label="Lazada",
    hosts=(_API, _AUTH),
    error_body=lazada_error_body,
    # "Test" app: access 7 d; refresh 30 d per LZ-AUTH (LZ-ISV says 14 d). Refreshing
    # rotates both tokens without moving the refresh deadline.
    access_lifetime=timedelta(days=7),
    refresh_lifetime=timedelta(days=30),
    fixed_refresh_deadline=True,
    # §3.3: the code is single use and valid 30 minutes
    code_lifetime=timedelta(minutes=30),
    new_code=_new_code,
    first_account_name="Mỹ Phẩm Thảo Nguyên",
    shop_categories=(
        "Mỹ Phẩm",
        "Điện Máy",
        "Điện Thoại",
        "Mẹ Và Bé",
        "Nước Hoa",
        "Chăm Sóc Da",
        "Văn Phòng Phẩm",
        "Đồ Chơi",
    ),
    settings_type=LazadaSettings,
    new_settings=_new_settings,
    new_account=_new_account,
    new_token=_new_token,
    orders=OrderSpec(
        statuses=("unpaid", "pending", "ready_to_ship", "shipped", "delivered", "canceled"),
        crm_status={
            "unpaid": "pending",
            "pending": "paid",
            "topack": "paid",
            "ready_to_ship": "paid",
            "shipped": "shipped",
            "delivered": "delivered",
            "canceled": "cancelled",
            "returned": "returned",
        },
        new_order_id=_new_order_id,
        new_buyer_id=_new_buyer_id,
        payload=_payload,
    ),
    market_chat=MarketChatSpec(conversation_id=_session_id, new_message_id=_new_im_message_id),
    secrets=_secrets,
    config_section=_config_section,
    verify_webhook=_verify_webhook,
    read_message_event=_read_message_event,
    webhooks=WebhookSpec(
        # §3.8 (High): 200 within 500 ms; retried every 30 min, up to 12 times
        ack_deadline=timedelta(milliseconds=500),
        retry_schedule=(timedelta(minutes=30),) * 12,
        message_event=_message_event,
        probe_event=_probe_event,
        sign=_sign,
    ),
    rate_limit_answer=_rate_limited,
)
