"""Simulated TikTok Shop Open API, 202309+ (platforms.md §4).

API host mounted at ``/tiktok`` (``open-api.tiktokglobalshop.com``); token host at
``/tiktok-auth`` (``auth.tiktok-shops.com``); the seller authorization page at
``/tiktok-services`` (``services.tiktokshop.com``). Token expiries are ABSOLUTE Unix seconds.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

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
    from_seconds,
    json_object,
    milliseconds,
    seconds,
    stable_digits,
    tiktok_new_message,
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
    hex_string,
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
    configured_webhook_url,
)
from nfdoctor.simulator.verify import tiktok_push_signature, tiktok_sign, verify_exact

if TYPE_CHECKING:
    from nfdoctor.simulator.state import SimulatorState

__all__ = [
    "TIKTOK",
    "TiktokSettings",
    "build_tiktok_app",
    "build_tiktok_auth_app",
    "build_tiktok_services_app",
    "tiktok_error_body",
]

NAME = "tiktok"

PAST_TOLERANCE = 300  # §4.2: [now − 5 min, now + 30 s]
FUTURE_TOLERANCE = 30
# Code for a bad business parameter: TikTok's reference gives none for page_size, so this
# is a simulator choice (HTTP 400).
INVALID_PARAMETER = 40006
#: §4.6 (TT-API Get Order Detail): an order that is not the shop's
NOT_THE_SELLERS = 21008111
#: §4.5: Get Order Detail takes at most 50 ids
MAX_DETAIL_ORDERS = 50
#: TT-API: ``recipient_address`` "is not available under UNPAID and ON_HOLD status"
_NO_ADDRESS_YET = ("UNPAID", "ON_HOLD")
#: §4.9: customer service pages: at most 20 conversations, 10 messages
MAX_CONVERSATIONS_PAGE = 20
MAX_MESSAGES_PAGE = 10
#: the webhook type of a new chat message (§4.8)
NEW_MESSAGE = 14
#: the event type name of type 14 in the webhook API (as registered per shop)
NEW_MESSAGE_EVENT = "NEW_MESSAGE"
#: what a CRM registers for each shop: order status, new conversation, new message
DEFAULT_EVENT_TYPES = ("ORDER_STATUS_CHANGE", "NEW_CONVERSATION", NEW_MESSAGE_EVENT)
#: the shop of probe events: no CRM has a TikTok shop "0", so it acknowledges and drops them
PROBE_SHOP_ID = "0"
#: §4.1: the authorize link (copied from Partner Center); its consent page's links go to
#: the simulator's own two paths beside it
AUTHORIZE_PATH = "/open/authorize"
APPROVE_PATH = AUTHORIZE_PATH + "/approve"
DENY_PATH = AUTHORIZE_PATH + "/deny"
#: where the app's registered callback points unless a test says otherwise: the authorize
#: link carries none, so TikTok redirects to what the app registered
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8976/callback"


@dataclass(kw_only=True)
class TiktokSettings:
    """The simulated app's credentials, its service id and its registered callback."""

    app_key: str
    app_secret: str
    #: the app's service (Partner Center), named by the authorize link
    service_id: str
    #: the redirect URI registered for the app (``state.tiktok_redirect_uri = …``)
    redirect_uri: str = DEFAULT_REDIRECT_URI


class TiktokError(Exception):
    """A TikTok error envelope and its HTTP status."""

    def __init__(self, code: int, message: str, status: int = 401) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status


def tiktok_error_body(kind: str, status: int) -> tuple[int, dict[str, Any]]:
    """TikTok's envelope for injected rate-limit and server faults."""
    if kind == "rate_limit":
        return status, {
            "code": 36009002,
            "message": "Too many requests. You've made too many requests in a short period "
            "of time.",
            "request_id": "fault",
        }
    return status, {
        "code": 36009003,
        "message": "Internal error. Please try again later.",
        "request_id": "fault",
    }


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text[2:]) if text.startswith("o:") else None
    except ValueError:
        return None


def _position_token(position: int) -> str:
    return base64.urlsafe_b64encode(f"m:{position}".encode()).decode().rstrip("=")


def _position(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text[2:]) if text.startswith("m:") else None
    except ValueError:
        return None


def _page_size(raw: str | None, most: int) -> int:
    """``page_size``: required, 1 to ``most`` (else 40006, HTTP 400)."""
    try:
        size = int(raw or "")
    except ValueError:
        size = 0
    if not 1 <= size <= most:
        raise TiktokError(
            INVALID_PARAMETER,
            f"Invalid request parameters. `page_size` must be between 1 and {most}.",
            400,
        )
    return size


def _cs_message(account: Account, chat: Conversation, message: Message) -> dict[str, Any]:
    """One customer-service message (§4.9): a 19-digit string id, the content JSON in a
    string, ``create_time`` in seconds; ``index`` a sortable string (its send time in ms,
    so two messages of one millisecond share it: not strictly increasing)."""
    sender = chat.user_id if message.from_customer else account.account_id
    return {
        "id": message.message_id,
        "type": "TEXT",
        "content": json.dumps({"content": message.text}, ensure_ascii=False),
        "create_time": seconds(message.time),
        "is_visible": True,
        "sender": {
            "im_user_id": sender,
            "role": "BUYER" if message.from_customer else "SHOP",
            "nickname": chat.user_name if message.from_customer else account.name,
            "avatar": "",
        },
        "index": str(milliseconds(message.time)),
    }


def _conversation(account: Account, chat: Conversation) -> dict[str, Any]:
    """One conversation as the list serves it (§4.9). The buyer's ``im_user_id`` is their
    ``user_id`` (the id the orders name them by; the type-14 webhook says the same), the
    shop's its shop id."""
    unread = 0
    for message in reversed(chat.messages):
        if not message.from_customer:
            break
        unread += 1
    return {
        "id": chat.conversation_id,
        "participant_count": 2,
        "can_send_message": True,
        "unread_count": unread,
        "create_time": seconds(chat.messages[0].time),
        "participants": [
            {
                "im_user_id": chat.user_id,
                "user_id": chat.user_id,
                "role": "BUYER",
                "nickname": chat.user_name,
                "avatar": "",
            },
            {
                "im_user_id": account.account_id,
                "user_id": account.account_id,
                "role": "SHOP",
                "nickname": account.name,
                "avatar": "",
            },
        ],
        "latest_message": _cs_message(account, chat, chat.messages[-1]),
    }


def _order_item(order: Order) -> dict[str, Any]:
    """One order as orders/search lists it and Get Order Detail returns it (§4.5: full
    objects): ``user_id`` the buyer; the buyer's name only as the recipient's, which is not
    served while the order is UNPAID or ON_HOLD."""
    amount = str(order.amount)
    item: dict[str, Any] = {
        "id": order.order_id,
        "status": order.status,
        "user_id": order.buyer_user_id,
        "create_time": int(order.create_time.timestamp()),
        "update_time": int(order.update_time.timestamp()),
        "payment": {
            "currency": order.currency,
            "sub_total": amount,
            "shipping_fee": "0",
            "seller_discount": "0",
            "platform_discount": "0",
            "total_amount": amount,
        },
        "line_items": [],
    }
    if order.status not in _NO_ADDRESS_YET:
        item["recipient_address"] = {
            "name": order.buyer_name,
            "first_name": order.buyer_name,
            "last_name": "",
            "region_code": "VN",
        }
    return item


class TiktokApp:
    """Handlers for both TikTok hosts, sharing one state."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    @property
    def settings(self) -> TiktokSettings:
        """The app's credentials (read per request: tests change them)."""
        return TIKTOK.settings(self.state)

    def respond(self, rid: str, data: Any) -> Response:
        return json_response({"code": 0, "message": "Success", "request_id": rid, "data": data})

    def error(self, rid: str, exc: TiktokError) -> Response:
        return json_response(
            {"code": exc.code, "message": exc.message, "request_id": rid}, exc.status
        )

    async def check(
        self, request: Request, *, shop_scoped: bool
    ) -> tuple[datetime, Account, bytes]:
        """Verify app_key, timestamp, sign (with raw body), token header and shop_cipher."""
        q = request.query_params
        now = request_now(request, self.state)
        if q.get("app_key") != self.settings.app_key:
            raise TiktokError(36009004, "Invalid credentials. Invalid `app_key` query parameter.")
        if "sign" not in q:
            raise TiktokError(
                36009004, "Invalid credentials. The `sign` query parameter is missing."
            )
        try:
            timestamp = int(q.get("timestamp", ""))
        except ValueError:
            raise TiktokError(
                36009004, "Invalid timestamp. The `timestamp` query parameter is invalid."
            ) from None
        if timestamp < now.timestamp() - PAST_TOLERANCE:
            raise TiktokError(
                36009004,
                "Invalid timestamp. The `timestamp` query parameter must not be earlier than "
                "5 minutes before the current time.",
            )
        if timestamp > now.timestamp() + FUTURE_TOLERANCE:
            raise TiktokError(
                36009004,
                "Invalid timestamp. The `timestamp` query parameter must not exceed the current "
                "time by more than 30 seconds.",
            )
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        signed_body = b"" if content_type.startswith("multipart/form-data") else body
        expected = tiktok_sign(
            self.settings.app_secret, platform_path(request), dict(q), signed_body
        )
        if not verify_exact(expected, q["sign"]):
            raise TiktokError(106001, "Invalid credentials. The `sign` query parameter is invalid.")
        status, token = self.state.check(NAME, request.headers.get("x-tts-access-token"), now=now)
        fault = token_fault(request)
        if fault is not None or status in ("expired", "revoked"):
            raise TiktokError(
                105002,
                "Expired credentials. The `access_token` or `x-tts-access-token` header has "
                "expired.",
            )
        if status != "ok" or token is None:
            raise TiktokError(
                36009004, "Invalid credentials. The `x-tts-access-token` header is invalid."
            )
        account = self.state.account(NAME, token.owner)
        assert account is not None
        cipher = q.get("shop_cipher")
        if not shop_scoped and cipher is not None:
            raise TiktokError(
                36009004,
                "Unexpected identifier. The `shop_cipher` query parameter is not expected for "
                "this API.",
                400,
            )
        if shop_scoped:
            if cipher is None:
                raise TiktokError(
                    106013,
                    "Missing identifier. The `shop_cipher` query parameter is required for this "
                    "API.",
                    400,
                )
            owner = next(
                (a for a in self.state.accounts[NAME] if a.extra["cipher"] == cipher), None
            )
            if owner is None or owner is not account:
                raise TiktokError(101000, "The access token does not match the shop.", 401)
        return now, account, body

    async def shops(self, request: Request) -> Response:
        """GET /authorization/202309/shops: the ping call; yields the shop cipher."""
        rid = self.state.new_request_id()
        try:
            _, account, _ = await self.check(request, shop_scoped=False)
        except TiktokError as exc:
            return self.error(rid, exc)
        return self.respond(
            rid,
            {
                "shops": [
                    {
                        "id": account.account_id,
                        "name": account.name,
                        "region": "VN",
                        "seller_type": "LOCAL",
                        "cipher": account.extra["cipher"],
                        "code": account.extra["code"],
                    }
                ]
            },
        )

    async def orders_search(self, request: Request) -> Response:
        """POST /order/202309/orders/search: page_size 1–100, opaque page_token."""
        rid = self.state.new_request_id()
        try:
            _, account, body = await self.check(request, shop_scoped=True)
            q = request.query_params
            try:
                page_size = int(q.get("page_size", ""))
            except ValueError:
                page_size = 0
            if not 1 <= page_size <= 100:
                raise TiktokError(
                    INVALID_PARAMETER,
                    "Invalid request parameters. `page_size` must be between 1 and 100.",
                    400,
                )
            token = q.get("page_token", "")
            offset = _offset(token) if token else 0
            if offset is None:
                raise TiktokError(
                    INVALID_PARAMETER, "Invalid request parameters. Invalid `page_token`.", 400
                )
            try:
                filters = json.loads(body) if body else {}
            except ValueError:
                raise TiktokError(36009023, "Invalid request body format.", 400) from None
            if not isinstance(filters, dict):
                raise TiktokError(36009023, "Invalid request body format.", 400)
            sort_field = q.get("sort_field", "create_time")
            if sort_field not in ("create_time", "update_time"):
                raise TiktokError(INVALID_PARAMETER, "Invalid `sort_field`.", 400)
            sort_order = q.get("sort_order", "DESC")
            if sort_order not in ("ASC", "DESC"):
                raise TiktokError(INVALID_PARAMETER, "Invalid `sort_order`.", 400)
            orders = account.orders  # a list the state swaps, never changes
            for name, attr, below in (
                ("create_time_ge", "create_time", False),
                ("create_time_lt", "create_time", True),
                ("update_time_ge", "update_time", False),
                ("update_time_lt", "update_time", True),
            ):
                if name not in filters:
                    continue
                bound = filters[name]
                if not isinstance(bound, int) or isinstance(bound, bool):
                    raise TiktokError(36009023, f"Invalid request body format: `{name}`.", 400)
                orders = [o for o in orders if (getattr(o, attr).timestamp() < bound) is below]
            if "order_status" in filters:
                orders = [o for o in orders if o.status == filters["order_status"]]
            orders = sorted(
                orders, key=lambda o: getattr(o, sort_field), reverse=sort_order == "DESC"
            )
            page = orders[offset : offset + page_size]
            more = offset + page_size < len(orders)
            return self.respond(
                rid,
                {
                    "total_count": len(orders),
                    "next_page_token": _page_token(offset + page_size) if more else "",
                    "orders": [_order_item(o) for o in page],
                },
            )
        except TiktokError as exc:
            return self.error(rid, exc)

    async def orders_detail(self, request: Request) -> Response:
        """GET /order/202309/orders?ids=a,b (at most 50): ``data.orders``, full objects in
        the order asked; an id that is not the shop's order is 21008111 (HTTP 200)."""
        rid = self.state.new_request_id()
        try:
            _, account, _ = await self.check(request, shop_scoped=True)
            raw = request.query_params.get("ids", "")
            ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
            if not ids:
                raise TiktokError(
                    INVALID_PARAMETER, "Invalid request parameters. `ids` is required.", 400
                )
            if len(ids) > MAX_DETAIL_ORDERS:
                raise TiktokError(
                    INVALID_PARAMETER,
                    f"Invalid request parameters. At most {MAX_DETAIL_ORDERS} `ids`.",
                    400,
                )
            found = [self.state.find_order(NAME, account.account_id, i) for i in ids]
            if any(o is None for o in found):
                raise TiktokError(
                    NOT_THE_SELLERS,
                    "The order or package does not belong to the current seller.",
                    200,
                )
        except TiktokError as exc:
            return self.error(rid, exc)
        return self.respond(rid, {"orders": [_order_item(o) for o in found if o is not None]})

    async def conversations(self, request: Request) -> Response:
        """GET /customer_service/202309/conversations?page_size=(1–20)&page_token=: the
        shop's conversations by their latest message, newest first (§4.9)."""
        rid = self.state.new_request_id()
        try:
            _, account, _ = await self.check(request, shop_scoped=True)
            q = request.query_params
            size = _page_size(q.get("page_size"), MAX_CONVERSATIONS_PAGE)
            token = q.get("page_token", "")
            offset = _offset(token) if token else 0
            if offset is None:
                raise TiktokError(
                    INVALID_PARAMETER, "Invalid request parameters. Invalid `page_token`.", 400
                )
        except TiktokError as exc:
            return self.error(rid, exc)
        chats = account.chats  # a list the state swaps, never changes
        page = chats[offset : offset + size]
        more = offset + size < len(chats)
        return self.respond(
            rid,
            {
                "conversations": [_conversation(account, c) for c in page],
                "next_page_token": _page_token(offset + size) if more else "",
            },
        )

    async def messages(self, request: Request) -> Response:
        """GET /customer_service/202309/conversations/{id}/messages?page_size=(1–10)
        &page_token=&sort_field=create_time|index&sort_order=DESC|ASC (§4.9)."""
        rid = self.state.new_request_id()
        try:
            _, account, _ = await self.check(request, shop_scoped=True)
            q = request.query_params
            size = _page_size(q.get("page_size"), MAX_MESSAGES_PAGE)
            if q.get("sort_field", "create_time") not in ("create_time", "index"):
                raise TiktokError(INVALID_PARAMETER, "Invalid `sort_field`.", 400)
            sort_order = q.get("sort_order", "DESC")
            if sort_order not in ("ASC", "DESC"):
                raise TiktokError(INVALID_PARAMETER, "Invalid `sort_order`.", 400)
            conversation_id = request.path_params["conversation_id"]
            chat = next((c for c in account.chats if c.conversation_id == conversation_id), None)
            if chat is None:
                raise TiktokError(
                    INVALID_PARAMETER,
                    "Invalid request parameters. The conversation does not exist.",
                    400,
                )
            token = q.get("page_token", "")
            after = _position(token) if token else None
            if token and after is None:
                raise TiktokError(
                    INVALID_PARAMETER, "Invalid request parameters. Invalid `page_token`.", 400
                )
        except TiktokError as exc:
            return self.error(rid, exc)
        # Messages are kept in sending order (time, then index): the token is the position of
        # the last one served, so messages sent meanwhile move no page.
        numbered = list(enumerate(chat.messages))  # a list the state swaps, never changes
        if sort_order == "DESC":
            numbered.reverse()
            rest = [(i, m) for i, m in numbered if after is None or i < after]
        else:
            rest = [(i, m) for i, m in numbered if after is None or i > after]
        page = rest[:size]
        more = len(rest) > size
        return self.respond(
            rid,
            {
                "messages": [_cs_message(account, chat, m) for _, m in page],
                "next_page_token": _position_token(page[-1][0]) if more else "",
            },
        )

    async def webhooks(self, request: Request) -> Response:
        """GET /event/202309/webhooks?shop_cipher=…: the shop's webhooks, one per event type
        (the fault plan's ``registrations:`` overrides the address and the types)."""
        rid = self.state.new_request_id()
        try:
            await self.check(request, shop_scoped=True)
        except TiktokError as exc:
            return self.error(rid, exc)
        listed = registered_webhooks(self.state, f"{request.url.scheme}://{request.url.netloc}")
        return self.respond(rid, {"webhooks": listed, "total_count": len(listed)})

    def check_app(self, request: Request, grant_type: str) -> None:
        """The token endpoints' unsigned app credentials (``app_secret`` in the query, §4.3)."""
        q = request.query_params
        if (
            q.get("app_key") != self.settings.app_key
            or q.get("app_secret") != self.settings.app_secret
        ):
            raise TiktokError(36009004, "Invalid credentials. Invalid `app_key` or secret.", 200)
        if q.get("grant_type") != grant_type:
            raise TiktokError(INVALID_PARAMETER, "Invalid `grant_type`.", 200)

    def token_data(self, access: Token, refresh: Token | None) -> dict[str, Any]:
        """``data`` of the token endpoints (§4.3): ABS expiries, the seller, the scopes."""
        assert access.expires_at is not None and refresh is not None
        assert refresh.expires_at is not None
        account = self.state.account(NAME, access.owner)
        return {
            "access_token": access.value,
            "access_token_expire_in": int(access.expires_at.timestamp()),  # ABS
            "refresh_token": refresh.value,
            "refresh_token_expire_in": int(refresh.expires_at.timestamp()),  # ABS
            "open_id": "70" + access.owner[-17:],
            "seller_name": account.name if account else "",
            "seller_base_region": "VN",
            "user_type": 0,
            "granted_scopes": ["seller.authorization.info", "seller.order.info"],
        }

    async def refresh(self, request: Request) -> Response:
        """GET /api/v2/token/refresh: unsigned, secret in the query, ABS expiries."""
        rid = self.state.new_request_id()
        now = request_now(request, self.state)
        owner: str | None = None
        try:
            self.check_app(request, "refresh_token")
            status, old = self.state.check(
                NAME, request.query_params.get("refresh_token"), "refresh", now=now
            )
            owner = old.owner if old is not None else None
            if status != "ok" or old is None:
                # The real code for a bad or reused refresh token is undocumented (§4.6, §8.8).
                raise TiktokError(
                    36009004, "Invalid credentials. The `refresh_token` is invalid.", 200
                )
        except TiktokError as exc:
            token_refused(
                request,
                self.state,
                platform=NAME,
                kind="refresh",
                account=owner,
                error=str(exc.code),
            )
            return self.error(rid, exc)
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
        return self.respond(rid, self.token_data(access, refresh))

    async def token_get(self, request: Request) -> Response:
        """GET /api/v2/token/get?app_key=&app_secret=&auth_code=&grant_type=authorized_code:
        a shop's first tokens; the code is single use and lives 30 minutes (§4.3)."""
        rid = self.state.new_request_id()
        now = request_now(request, self.state)
        owner: str | None = None
        try:
            self.check_app(request, "authorized_code")
            status, code = self.state.redeem_code(
                NAME, request.query_params.get("auth_code"), now=now
            )
            owner = code.account if code is not None else None
            # Undocumented too: the simulator answers 36009004 with a message per reason.
            if status == "used":
                raise TiktokError(36009004, "Invalid credentials. The `auth_code` was used.", 200)
            if status == "expired":
                raise TiktokError(
                    36009004, "Invalid credentials. The `auth_code` has expired.", 200
                )
            if status != "ok" or code is None:
                raise TiktokError(36009004, "Invalid credentials. The `auth_code` is invalid.", 200)
        except TiktokError as exc:
            token_refused(
                request,
                self.state,
                platform=NAME,
                kind="exchange",
                account=owner,
                error=str(exc.code),
            )
            return self.error(rid, exc)
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
        return self.respond(rid, self.token_data(access, refresh))

    # ---- authorization (§4.1, §4.3) --------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        """GET /open/authorize?service_id=&state= (services.tiktokshop.com): the consent
        page, one approve link per shop and one refusal link."""
        rid = self.state.new_request_id()
        q = request.query_params
        now = request_now(request, self.state)
        if q.get("service_id") != self.settings.service_id:
            # A browser page: TikTok's envelope with a 400 (the simulator's choice).
            return self.error(rid, TiktokError(INVALID_PARAMETER, "Invalid `service_id`.", 400))
        # The link names no callback: TikTok redirects to the one the app registered.
        registered = self.settings.redirect_uri
        if not redirect_allowed(registered, registered):
            return self.error(
                rid,
                TiktokError(
                    INVALID_PARAMETER, "The app has no valid redirect URL registered.", 400
                ),
            )
        consent = self.state.new_consent(
            NAME, redirect_uri=registered, state=q.get("state"), now=now, lifetime=CONSENT_LIFETIME
        )
        approve = host_url(request, APPROVE_PATH)
        links = [
            ConsentLink(
                href=with_query(approve, {"consent": consent.consent_id, "shop_id": a.account_id}),
                text=f"Authorize {a.name} (shop {a.account_id})",
                account=a.account_id,
            )
            for a in self.state.accounts[NAME]
        ]
        links.append(
            ConsentLink(
                href=with_query(host_url(request, DENY_PATH), {"consent": consent.consent_id}),
                text="Cancel",
                decision="deny",
            )
        )
        intro = f"Service {self.settings.service_id} asks to access your TikTok Shop."
        return consent_page("TikTok Shop Partner Center: authorize a service", intro, links)

    async def decide(self, request: Request, *, approved: bool) -> Response:
        """A consent link: 302 to the registered callback with ``?code=…&state=…``, or
        ``?code=null&error=auth_denied&state=…`` when the seller refused (§4.1)."""
        rid = self.state.new_request_id()
        q = request.query_params
        now = request_now(request, self.state)
        consent = self.state.live_consent(NAME, q.get("consent"), now=now)
        account = self.state.account(NAME, q.get("shop_id") or "") if approved else None
        if consent is None or (approved and account is None):
            return self.error(
                rid, TiktokError(INVALID_PARAMETER, "The authorization link expired.", 400)
            )
        if account is not None:
            params = {"code": self.state.issue_code(consent, account.account_id, now=now).value}
        else:
            params = {"code": "null", "error": "auth_denied"}
        if consent.state is not None:
            params["state"] = consent.state
        return redirect_to(with_query(consent.redirect_uri, params))

    async def approve(self, request: Request) -> Response:
        """The consent page's approve link of one shop."""
        return await self.decide(request, approved=True)

    async def deny(self, request: Request) -> Response:
        """The consent page's refusal link."""
        return await self.decide(request, approved=False)


def build_tiktok_app(state: SimulatorState) -> Starlette:
    """The TikTok Shop API host."""
    app = TiktokApp(state)
    return Starlette(
        routes=[
            Route("/authorization/202309/shops", app.shops, methods=["GET"]),
            Route("/order/202309/orders/search", app.orders_search, methods=["POST"]),
            Route("/order/202309/orders", app.orders_detail, methods=["GET"]),
            Route("/event/202309/webhooks", app.webhooks, methods=["GET"]),
            Route("/customer_service/202309/conversations", app.conversations, methods=["GET"]),
            Route(
                "/customer_service/202309/conversations/{conversation_id}/messages",
                app.messages,
                methods=["GET"],
            ),
        ]
    )


def registered_webhooks(state: SimulatorState, origin: str | None = None) -> list[dict[str, Any]]:
    """The webhooks registered for a shop: the configured URL (see
    :func:`~nfdoctor.simulator.spec.configured_webhook_url`) for the CRM's event types,
    unless ``registrations:`` says otherwise (``address: null``: none registered)."""
    registration = state.registrations.get(NAME, {})
    if "address" in registration:
        address = registration["address"]
    else:
        address = configured_webhook_url(state, NAME, origin)
    if not address:
        return []
    types = registration.get("event_types", list(DEFAULT_EVENT_TYPES)) or []
    # Registered when the CRM connected the shop: before the simulator's data begins.
    created = seconds(state.started_at - timedelta(days=30))
    return [
        {"event_type": kind, "address": address, "create_time": created, "update_time": created}
        for kind in types
    ]


def build_tiktok_auth_app(state: SimulatorState) -> Starlette:
    """The TikTok token host."""
    app = TiktokApp(state)
    return Starlette(
        routes=[
            Route("/api/v2/token/refresh", app.refresh, methods=["GET"]),
            Route("/api/v2/token/get", app.token_get, methods=["GET"]),
        ]
    )


def build_tiktok_services_app(state: SimulatorState) -> Starlette:
    """The seller authorization host (``services.tiktokshop.com``)."""
    app = TiktokApp(state)
    return Starlette(
        routes=[
            Route(AUTHORIZE_PATH, app.authorize, methods=["GET"]),
            Route(APPROVE_PATH, app.approve, methods=["GET"]),
            Route(DENY_PATH, app.deny, methods=["GET"]),
        ]
    )


# ---- the declaration ---------------------------------------------------------------------


def _new_settings(rng: random.Random) -> TiktokSettings:
    app_key = "6" + alnum(rng, 12).lower()
    app_secret = hex_string(rng, 40)
    # Derived, not drawn: the seeded data stays what it was before service ids existed.
    service_id = stable_digits(f"{NAME}/service/{app_key}", 19)
    return TiktokSettings(app_key=app_key, app_secret=app_secret, service_id=service_id)


def _new_account(rng: random.Random, name: str) -> Account:
    shop_id = "749" + digits(rng, 16)
    cipher = "ROW_" + alnum(rng, 24)
    code = "VNLC" + alnum(rng, 6)
    return Account(NAME, shop_id, name, extra={"cipher": cipher, "code": code})


def _new_token(rng: random.Random, kind: TokenKind) -> str:
    return "TTP_" + alnum(rng, 36)


def _new_code(rng: random.Random) -> str:
    return "ROW_" + alnum(rng, 48)


def _new_order_id(rng: random.Random, created: datetime) -> str:
    return "57" + digits(rng, 16)


def _new_buyer_id(rng: random.Random) -> str:
    return "7" + digits(rng, 18)


def _conversation_id(shop_id: str, buyer_id: str) -> str:
    # the same id the type-14 webhook of the emitter derives for this buyer and shop
    return stable_digits(f"{NAME}/{shop_id}/{buyer_id}", 19)


def _new_cs_message_id(rng: random.Random) -> str:
    return rng.choice("123456789") + digits(rng, 18)  # 19 digits (§4.9)


def _payload(order: Order) -> dict[str, Any]:
    """The order as orders/search lists it (and Get Order Detail returns it)."""
    return _order_item(order)


def _rate_limited(state: SimulatorState, request: RequestView) -> tuple[int, dict[str, Any]]:
    # §4.6/§4.7: 36009002 with HTTP 429
    return 429, {
        "code": 36009002,
        "message": "Too many requests. You've made too many requests in a short period of time.",
        "request_id": state.new_request_id(),
    }


def _secrets(state: SimulatorState) -> list[str]:
    return [TIKTOK.settings(state).app_secret]


def _config_section(state: SimulatorState, ctx: ConfigContext) -> dict[str, Any]:
    settings = TIKTOK.settings(state)
    return {
        "base_url": ctx.url(_API.prefix),
        "auth_url": ctx.url(_AUTH.prefix),
        "webhook_url": ctx.webhook_url,
        "app_key": settings.app_key,
        "app_secret": ctx.secret("tiktok-app-secret", settings.app_secret),
        # the authorize link names the service; TikTok redirects to the registered callback
        "service_id": settings.service_id,
        "authorize_url": ctx.url(_SERVICES.prefix) + AUTHORIZE_PATH,
        "redirect_uri": settings.redirect_uri,
        "shops": [
            {"shop_id": a.account_id, "shop_cipher": a.extra["cipher"], "name": a.name}
            for a in state.accounts[NAME]
        ],
    }


def _verify_webhook(state: SimulatorState, delivery: WebhookDelivery) -> bool:
    # §4.8: the same scheme as Lazada's push, HMAC(app_secret, app_key ‖ raw body)
    settings = TIKTOK.settings(state)
    expected = tiktok_push_signature(settings.app_key, settings.app_secret, delivery.body)
    return verify_exact(expected, delivery.headers.get("authorization"))


def _request_accounts(state: SimulatorState, request: RequestView) -> set[str]:
    # the shop whose cipher the call names
    cipher = request.query.get("shop_cipher")
    if cipher is None:
        return set()
    return {a.account_id for a in state.accounts[NAME] if a.extra.get("cipher") == cipher}


def _message_event(
    state: SimulatorState, source: ChatEventSource, rng: random.Random
) -> EmittedEvent:
    message_id = rng.choice("123456789") + digits(rng, 18)  # 19 digits (§4.9)
    shop = source.account.account_id
    payload = tiktok_new_message(
        shop_id=shop,
        notification_id=rng.choice("123456789") + digits(rng, 18),
        conversation_id=source.conversation_id or _conversation_id(shop, source.user_id),
        message_id=message_id,
        sender_id=source.user_id,
        text=source.text,
        at=source.sent_at,
    )
    return EmittedEvent(message_id, utf8_json(payload))


def _probe_event(state: SimulatorState, account: Account, at: datetime) -> bytes:
    # A new message for shop "0": well formed and signed, for a shop no CRM has.
    payload = tiktok_new_message(
        shop_id=PROBE_SHOP_ID,
        notification_id=stable_digits(f"{NAME}/probe/{seconds(at)}", 19),
        conversation_id=stable_digits(f"{NAME}/probe", 19),
        message_id=stable_digits(f"{NAME}/probe/{seconds(at)}/message", 19),
        sender_id=stable_digits(f"{NAME}/probe/sender", 19),
        text="nfdoctor probe",
        at=at,
    )
    return utf8_json(payload)


def _sign(state: SimulatorState, account: Account, url: str, body: bytes) -> dict[str, str]:
    settings = TIKTOK.settings(state)
    # §4.8: no "Bearer" prefix
    return {"Authorization": tiktok_push_signature(settings.app_key, settings.app_secret, body)}


def _answered(status: int, body: bytes) -> bool:
    # §4.8: 200, or 401 with an empty body (the receiver's auth failed) counts as answered
    return status == 200 or (status == 401 and not body)


def _delivery_url(state: SimulatorState, account: Account) -> str | None:
    for webhook in registered_webhooks(state):
        if webhook["event_type"] == NEW_MESSAGE_EVENT:
            return str(webhook["address"])
    return None


def _read_message_event(body: bytes) -> list[InboundMessage]:
    # Type 14, new message, from the buyer (the seller's own messages are not inbound)
    payload = json_object(body)
    if payload is None or payload.get("type") != NEW_MESSAGE:
        return []
    try:
        data = payload["data"]
        sender = data["sender"]
        if sender.get("role", "BUYER") != "BUYER":
            return []
        content = data.get("content")
        text: Any = None
        if isinstance(content, str):
            try:
                inner = json.loads(content)
                text = inner.get("content") if isinstance(inner, dict) else None
            except ValueError:
                text = content
        return [
            InboundMessage(
                channel=NAME,
                shop_external_id=str(payload["shop_id"]),
                external_id=str(data["message_id"]),
                sender_external_id=str(sender["im_user_id"]),
                body=text if isinstance(text, str) else None,
                sent_at=from_seconds(data.get("create_time", payload.get("timestamp"))),
                thread_id=str(data["conversation_id"]) if "conversation_id" in data else None,
            )
        ]
    except MALFORMED:
        return []


_API = Host(prefix="/tiktok", real_host="open-api.tiktokglobalshop.com", build=build_tiktok_app)
_AUTH = Host(prefix="/tiktok-auth", real_host="auth.tiktok-shops.com", build=build_tiktok_auth_app)
_SERVICES = Host(
    prefix="/tiktok-services",
    real_host="services.tiktokshop.com",
    build=build_tiktok_services_app,
    # the whole host is the seller's consent page and its links
    browser_paths=("*",),
)

TIKTOK: SimPlatform[TiktokSettings] = SimPlatform(
    name=NAME,
    label="TikTok Shop",
    hosts=(_API, _AUTH, _SERVICES),
    error_body=tiktok_error_body,
    # access 7 d; refresh = the authorization the seller granted (1 year here), which
    # rotation does not extend
    access_lifetime=timedelta(days=7),
    refresh_lifetime=timedelta(days=365),
    fixed_refresh_deadline=True,
    # §4.3: auth_code expires in 30 minutes, single use
    code_lifetime=timedelta(minutes=30),
    new_code=_new_code,
    first_account_name="Gia Dụng Minh Anh",
    shop_categories=(
        "Gia Dụng",
        "Đồ Bếp",
        "Nội Thất",
        "Đồ Ăn Vặt",
        "Thực Phẩm Sạch",
        "Trang Sức",
        "Nhà Cửa",
        "Đặc Sản",
    ),
    settings_type=TiktokSettings,
    new_settings=_new_settings,
    new_account=_new_account,
    new_token=_new_token,
    identifying_extras=("cipher",),
    orders=OrderSpec(
        statuses=("UNPAID", "AWAITING_SHIPMENT", "AWAITING_COLLECTION", "IN_TRANSIT", "COMPLETED"),
        # TikTok handles returns outside the order status: no status means "returned".
        crm_status={
            "UNPAID": "pending",
            "AWAITING_SHIPMENT": "paid",
            "AWAITING_COLLECTION": "paid",
            "IN_TRANSIT": "shipped",
            "DELIVERED": "delivered",
            "COMPLETED": "delivered",
            "CANCELLED": "cancelled",
        },
        new_order_id=_new_order_id,
        new_buyer_id=_new_buyer_id,
        payload=_payload,
    ),
    market_chat=MarketChatSpec(conversation_id=_conversation_id, new_message_id=_new_cs_message_id),
    secrets=_secrets,
    config_section=_config_section,
    verify_webhook=_verify_webhook,
    request_accounts=_request_accounts,
    read_message_event=_read_message_event,
    webhooks=WebhookSpec(
        # §4.8 (High): 200 (or 401 + empty body) within 3 s; +2 min, +30 min, +3 h, +12 h
        ack_deadline=timedelta(seconds=3),
        retry_schedule=(
            timedelta(minutes=2),
            timedelta(minutes=30),
            timedelta(hours=3),
            timedelta(hours=12),
        ),
        answered=_answered,
        message_event=_message_event,
        probe_event=_probe_event,
        sign=_sign,
        delivery_url=_delivery_url,
        registration_fields={"address": "url", "event_types": "strings"},
    ),
    rate_limit_answer=_rate_limited,
)
