"""Simulated Shopee Open Platform v2 (platforms.md §2), mounted at ``/shopee``."""

from __future__ import annotations

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
    shopee_order_status,
    shopee_updates,
    shopee_webchat,
    stable_digits,
    utf8_json,
)
from nfdoctor.simulator.model import Account, Order, TokenKind, alnum, digits, hex_string
from nfdoctor.simulator.spec import (
    ChatEventSource,
    ConfigContext,
    EmittedEvent,
    Host,
    InboundMessage,
    OrderSpec,
    RequestView,
    SimPlatform,
    WebhookDelivery,
    WebhookSpec,
    configured_webhook_url,
)
from nfdoctor.simulator.verify import shopee_push_signature, shopee_sign, verify_exact

if TYPE_CHECKING:
    from nfdoctor.simulator.state import SimulatorState

__all__ = ["SHOPEE", "ShopeeSettings", "build_shopee_app", "shopee_error_body"]

NAME = "shopee"
TIMESTAMP_TOLERANCE = 300  # §2.2: within 5 minutes of server time, either side
MAX_WINDOW = 15 * 86400  # §2.5: get_order_list window ≤ 15 days
#: §2.5: get_order_detail takes 1-50 order numbers
MAX_DETAIL_ORDERS = 50
#: §2.5: the order_status values get_order_list filters on
ORDER_STATUSES = (
    "UNPAID",
    "READY_TO_SHIP",
    "PROCESSED",
    "SHIPPED",
    "COMPLETED",
    "IN_CANCEL",
    "CANCELLED",
    "INVOICE_PENDING",
    "TO_CONFIRM_RECEIVE",
    "TO_RETURN",
)
#: get_order_detail's fields returned only when named in response_optional_fields (SH-SCHEMA);
#: of those, the ones the simulator has data for (others named are ignored)
OPTIONAL_DETAIL_FIELDS = ("buyer_user_id", "buyer_username", "total_amount", "payment_method")
#: days between an order and its ship-by date (days_to_ship, seller's listing setting)
DAYS_TO_SHIP = 2
#: §2.8: get_lost_push_message lists the earliest 100 of the last 3 days
LOST_PUSH_WINDOW = timedelta(days=3)
LOST_PUSH_PAGE = 100
#: the push code of webchat messages (§2.8)
WEBCHAT = 10
#: §2.1: the legacy seller authorization link (public sign); its consent page's links go to
#: the second path (the simulator's: the real page is Shopee's own)
AUTH_PARTNER_PATH = "/api/v2/shop/auth_partner"
APPROVE_PATH = AUTH_PARTNER_PATH + "/approve"


@dataclass(kw_only=True)
class ShopeeSettings:
    """The simulated partner app's credentials, and the status of error answers."""

    partner_id: int
    partner_key: str
    # The HTTP status of Shopee errors is undocumented (§2.6): clients must branch on
    # `error`. Tests change it (state.shopee_error_status) to prove clients don't care.
    error_status: int = 403


class ShopeeError(Exception):
    """A Shopee error envelope to answer with."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(error)
        self.error = error
        self.message = message


def shopee_error_body(kind: str, status: int) -> tuple[int, dict[str, Any]]:
    """Shopee's envelope for injected rate-limit and server faults."""
    if kind == "rate_limit":
        return status, {
            "request_id": "fault",
            "error": "error_rate_limit",
            "message": "Too many requests. You have reached the rate limit. "
            "Please try again later.",
        }
    return status, {
        "request_id": "fault",
        "error": "error_server",
        "message": "Something wrong. Please try later.",
    }


def _whole(value: Any) -> bool:
    """A JSON whole number (``true`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class ShopeeApp:
    """Request handlers sharing one state."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    @property
    def settings(self) -> ShopeeSettings:
        """The partner app's credentials (read per request: tests change them)."""
        return SHOPEE.settings(self.state)

    def error(self, request_id: str, exc: ShopeeError) -> Response:
        status = self.settings.error_status
        return json_response(
            {"request_id": request_id, "error": exc.error, "message": exc.message}, status
        )

    def check_sign(self, request: Request, *, shop: bool) -> tuple[datetime, Account | None]:
        """Verify partner_id, timestamp, sign and (for shop calls) the access token."""
        q = request.query_params
        now = request_now(request, self.state)
        if "sign" not in q:
            raise ShopeeError("error_param", "There is no sign in query.")
        partner_id = _int(q.get("partner_id"))
        if partner_id is None:
            raise ShopeeError("error_param", "There is no partner_id in query.")
        if partner_id != self.settings.partner_id:
            raise ShopeeError("invalid_partner_id", "Invalid partner_id, please have a check.")
        timestamp = _int(q.get("timestamp"))
        if timestamp is None:
            raise ShopeeError("error_param", "Invalid timestamp")
        if abs(timestamp - now.timestamp()) > TIMESTAMP_TOLERANCE:
            raise ShopeeError("error_param", "Timestamp is expired.")
        path = platform_path(request)
        key = self.settings.partner_key
        if not shop:
            if not verify_exact(shopee_sign(key, partner_id, path, q["timestamp"]), q["sign"]):
                raise ShopeeError("error_sign", "Wrong sign.")
            return now, None
        token, shop_id = q.get("access_token"), q.get("shop_id")
        if token is None:
            raise ShopeeError("error_param", "There is no access_token in query.")
        if shop_id is None:
            raise ShopeeError("error_param", "There is no shop_id in query.")
        expected = shopee_sign(key, partner_id, path, q["timestamp"], token, shop_id)
        if not verify_exact(expected, q["sign"]):
            raise ShopeeError("error_sign", "Wrong sign.")
        account = self.state.account(NAME, shop_id)
        if account is None:
            raise ShopeeError("invalid_shop_id", "Invalid partner_id or shopid.")
        status, _ = self.state.check(NAME, token, now=now, owner=shop_id)
        fault = token_fault(request)
        if fault == "revoked" or status == "revoked":
            raise ShopeeError("common.error_auth", "Invalid access_token.")
        if fault == "expired" or status == "expired":
            # The misspelling is what production sends (§2.6).
            raise ShopeeError("invalid_acceess_token", "Invalid access_token, please have a check.")
        if status == "wrong_owner":
            raise ShopeeError("error_auth", "Invalid partner_id or shopid.")
        if status != "ok":
            raise ShopeeError("invalid_access_token", "Invalid access_token, please have a check.")
        return now, account

    async def json_body(self, request: Request) -> dict[str, Any]:
        """The POST body, a JSON object (business parameters are never signed, §2.2)."""
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise ShopeeError("error_param", "Wrong parameters, detail: invalid json.") from None
        if not isinstance(body, dict):
            raise ShopeeError("error_param", "Wrong parameters, detail: invalid json.")
        return body

    async def refresh(self, request: Request) -> Response:
        """POST /api/v2/auth/access_token/get: single-use, rotating refresh token."""
        rid = self.state.new_request_id()
        shop_id: str | None = None
        try:
            now, _ = self.check_sign(request, shop=False)
            body = await self.json_body(request)
            if "refresh_token" not in body:
                raise ShopeeError("error_param", "Wrong parameters, detail: refresh_token.")
            shop_id = str(body.get("shop_id", ""))
            status, old = self.state.check(
                NAME, str(body["refresh_token"]), "refresh", now=now, owner=shop_id
            )
            if status == "wrong_owner":
                raise ShopeeError("error_auth", "Invalid partner_id or shopid.")
            if status != "ok" or old is None:
                raise ShopeeError("error_auth", "Invalid refresh_token.")
            access, refresh = self.state.rotate(old, now=now)
            assert access.expires_at is not None and refresh is not None
            token_issued(
                request,
                self.state,
                platform=NAME,
                kind="refresh",
                account=shop_id,
                access=access,
                refresh=refresh,
                spent=old.value,
            )
            return json_response(
                {
                    "request_id": rid,
                    "error": "",
                    "message": "",
                    "partner_id": self.settings.partner_id,
                    "shop_id": int(shop_id),
                    "access_token": access.value,
                    "refresh_token": refresh.value,
                    "expire_in": int((access.expires_at - now).total_seconds()),  # REL
                }
            )
        except ShopeeError as exc:
            token_refused(
                request, self.state, platform=NAME, kind="refresh", account=shop_id, error=exc.error
            )
            return self.error(rid, exc)

    # ---- authorization (§2.1, §2.3) --------------------------------------------------------

    async def auth_partner(self, request: Request) -> Response:
        """GET /api/v2/shop/auth_partner?partner_id=&timestamp=&sign=&redirect= (public sign):
        the consent page, one approve link per shop."""
        rid = self.state.new_request_id()
        try:
            now, _ = self.check_sign(request, shop=False)
            redirect = request.query_params.get("redirect")
            if redirect is None or not redirect_allowed(redirect):
                raise ShopeeError("error_param", "Wrong parameters, detail: redirect.")
        except ShopeeError as exc:
            return self.error(rid, exc)
        consent = self.state.new_consent(
            NAME, redirect_uri=redirect, state=None, now=now, lifetime=CONSENT_LIFETIME
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
        intro = f"Partner {self.settings.partner_id} asks to manage your shop through the API."
        return consent_page("Shopee Open Platform: authorize a partner", intro, links)

    async def approve(self, request: Request) -> Response:
        """The consent page's link: 302 to ``<redirect>?code=…&shop_id=…`` (§2.3)."""
        rid = self.state.new_request_id()
        q = request.query_params
        now = request_now(request, self.state)
        consent = self.state.live_consent(NAME, q.get("consent"), now=now)
        account = self.state.account(NAME, q.get("shop_id") or "")
        if consent is None or account is None:
            return self.error(
                rid,
                ShopeeError(
                    "error_param", "Wrong parameters, detail: the authorization link expired."
                ),
            )
        code = self.state.issue_code(consent, account.account_id, now=now)
        return redirect_to(
            with_query(consent.redirect_uri, {"code": code.value, "shop_id": account.account_id})
        )

    async def token_get(self, request: Request) -> Response:
        """POST /api/v2/auth/token/get (public sign), ``{"code", "partner_id", "shop_id"}``:
        the shop's first tokens; the code is single use and lives 10 minutes (§2.3)."""
        rid = self.state.new_request_id()
        shop_id: str | None = None
        try:
            now, _ = self.check_sign(request, shop=False)
            body = await self.json_body(request)
            code, partner_id, shop = body.get("code"), body.get("partner_id"), body.get("shop_id")
            if not isinstance(code, str) or not code:
                raise ShopeeError("error_param", "Wrong parameters, detail: code.")
            if not _whole(partner_id) or partner_id != self.settings.partner_id:
                raise ShopeeError("invalid_partner_id", "Invalid partner_id, please have a check.")
            # main_account_id (a merchant's consent) is not simulated: a shop must be named.
            if not _whole(shop):
                raise ShopeeError("error_param", "Wrong parameters, detail: shop_id.")
            shop_id = str(shop)
            status, auth = self.state.redeem_code(NAME, code, now=now, account=shop_id)
            if status == "unknown":
                raise ShopeeError("invalid_code", "Invalid code")
            if status == "wrong_account":
                raise ShopeeError("error_auth", "Invalid partner_id or shopid.")
            if status != "ok" or auth is None:
                raise ShopeeError("error_auth", "The code is expired or used or invalid")
            access, refresh = self.state.authorize(auth, now=now)
            assert access.expires_at is not None and refresh is not None
            token_issued(
                request,
                self.state,
                platform=NAME,
                kind="exchange",
                account=shop_id,
                access=access,
                refresh=refresh,
                spent=auth.value,
            )
            return json_response(
                {
                    "request_id": rid,
                    "error": "",
                    "message": "",
                    "access_token": access.value,
                    "refresh_token": refresh.value,
                    "expire_in": int((access.expires_at - now).total_seconds()),  # REL
                    "shop_id_list": [int(shop_id)],
                    "merchant_id_list": [],
                }
            )
        except ShopeeError as exc:
            token_refused(
                request,
                self.state,
                platform=NAME,
                kind="exchange",
                account=shop_id,
                error=exc.error,
            )
            return self.error(rid, exc)

    async def get_shop_info(self, request: Request) -> Response:
        """GET /api/v2/shop/get_shop_info: fields at top level, not under ``response``."""
        rid = self.state.new_request_id()
        try:
            now, account = self.check_sign(request, shop=True)
        except ShopeeError as exc:
            return self.error(rid, exc)
        assert account is not None
        auth_time = int((now - timedelta(days=30)).timestamp())
        return json_response(
            {
                "request_id": rid,
                "error": "",
                "message": "",
                "shop_name": account.name,
                "region": "VN",
                "status": "NORMAL",
                "is_cb": False,
                "is_sip": False,
                "auth_time": auth_time,
                "expire_time": auth_time + 365 * 86400,
                "merchant_id": None,
            }
        )

    async def get_shops_by_partner(self, request: Request) -> Response:
        """GET /api/v2/public/get_shops_by_partner: works with the public sign alone."""
        rid = self.state.new_request_id()
        try:
            now, _ = self.check_sign(request, shop=False)
        except ShopeeError as exc:
            return self.error(rid, exc)
        auth_time = int((now - timedelta(days=30)).timestamp())
        shops = [
            {
                "shop_id": int(a.account_id),
                "region": "VN",
                "auth_time": auth_time,
                "expire_time": auth_time + 365 * 86400,
                "sip_affi_shop_list": [],
            }
            for a in self.state.accounts[NAME]
        ]
        return json_response(
            {
                "request_id": rid,
                "error": "",
                "message": "",
                "authed_shop_list": shops,
                "more": False,
            }
        )

    async def get_order_list(self, request: Request) -> Response:
        """GET /api/v2/order/get_order_list: ≤15-day window, page_size 1–100, cursor paging."""
        rid = self.state.new_request_id()
        try:
            _, account = self.check_sign(request, shop=True)
            assert account is not None
            q = request.query_params
            field = q.get("time_range_field")
            if field not in ("create_time", "update_time"):
                raise ShopeeError("error_param", "Wrong parameters, detail: time_range_field.")
            time_from, time_to = _int(q.get("time_from")), _int(q.get("time_to"))
            if time_from is None or time_to is None:
                raise ShopeeError("error_param", "Wrong parameters, detail: time_from/time_to.")
            if time_from >= time_to or time_to - time_from > MAX_WINDOW:
                raise ShopeeError(
                    "order.order_list_invalid_time",
                    "Start time must be earlier than end time and diff in 15days.",
                )
            page_size = _int(q.get("page_size"))
            if page_size is None or not 1 <= page_size <= 100:
                raise ShopeeError(
                    "error_param", "Wrong parameters, detail: page_size should be in [1, 100]."
                )
            cursor = q.get("cursor", "")
            offset = _int(cursor) if cursor else 0
            if offset is None or offset < 0:
                raise ShopeeError("error_param", "Wrong parameters, detail: cursor.")
            status_filter = q.get("order_status")
            if status_filter is not None and status_filter not in ORDER_STATUSES:
                raise ShopeeError("error_param", "Wrong parameters, detail: order_status.")
            with_status = "order_status" in q.get("response_optional_fields", "").split(",")
            matching = [
                o
                for o in account.orders  # a list the state swaps, never changes
                if time_from <= int(getattr(o, field).timestamp()) <= time_to
                and (status_filter is None or o.status == status_filter)
            ]
            page = matching[offset : offset + page_size]
            more = offset + page_size < len(matching)
            orders: list[dict[str, Any]] = []
            for o in page:
                item: dict[str, Any] = {"order_sn": o.order_id}
                if with_status:
                    item["order_status"] = o.status
                orders.append(item)
            return json_response(
                {
                    "request_id": rid,
                    "error": "",
                    "message": "",
                    "response": {
                        "more": more,
                        "next_cursor": str(offset + page_size) if more else "",
                        "order_list": orders,
                    },
                }
            )
        except ShopeeError as exc:
            return self.error(rid, exc)

    async def get_order_detail(self, request: Request) -> Response:
        """GET /api/v2/order/get_order_detail?order_sn_list=SN1,SN2 (1-50): ``response.
        order_list``; the buyer and the amount only when named in ``response_optional_fields``.
        Order numbers the shop does not have are left out and named in ``warning``; none
        found is ``error_not_found``."""
        rid = self.state.new_request_id()
        try:
            _, account = self.check_sign(request, shop=True)
            assert account is not None
            q = request.query_params
            wanted = list(dict.fromkeys(sn.strip() for sn in q.get("order_sn_list", "").split(",")))
            wanted = [sn for sn in wanted if sn]
            if not wanted:
                raise ShopeeError("error_param", "Wrong parameters, detail: order_sn_list.")
            if len(wanted) > MAX_DETAIL_ORDERS:
                raise ShopeeError(
                    "error_param",
                    "Wrong parameters, detail: order_sn_list should be in "
                    f"[1, {MAX_DETAIL_ORDERS}].",
                )
            optional = {f.strip() for f in q.get("response_optional_fields", "").split(",")}
            found = [(sn, self.state.find_order(NAME, account.account_id, sn)) for sn in wanted]
            orders = [_detail(order, optional) for _, order in found if order is not None]
            missing = [sn for sn, order in found if order is None]
            if not orders:
                raise ShopeeError(
                    "error_not_found", "Wrong parameters, detail: the order is not found."
                )
        except ShopeeError as exc:
            return self.error(rid, exc)
        body: dict[str, Any] = {
            "request_id": rid,
            "error": "",
            "message": "",
            "response": {"order_list": orders},
        }
        if missing:
            # The envelope's partial-success field (§2.6); its wording is the simulator's.
            body["warning"] = [f"order_sn {sn} is not found." for sn in missing]
        return json_response(body)

    # ---- push (§2.8): the partner's push configuration and the pushes it gave up on --------

    async def get_app_push_config(self, request: Request) -> Response:
        """GET /api/v2/push/get_app_push_config (public sign): where Shopee pushes, and which
        codes, shops and health status (the fault plan's ``registrations:`` overrides)."""
        rid = self.state.new_request_id()
        try:
            self.check_sign(request, shop=False)
        except ShopeeError as exc:
            return self.error(rid, exc)
        origin = f"{request.url.scheme}://{request.url.netloc}"
        config = push_config(self.state, origin)
        return json_response({"request_id": rid, "error": "", "message": "", "response": config})

    async def get_lost_push_message(self, request: Request) -> Response:
        """GET /api/v2/push/get_lost_push_message (public sign): the earliest 100 pushes of
        the last 3 days that were not confirmed; ``data`` is the push's data as a JSON string."""
        rid = self.state.new_request_id()
        try:
            now, _ = self.check_sign(request, shop=False)
        except ShopeeError as exc:
            return self.error(rid, exc)
        pushes = self.state.lost_pushes(NAME, since=now - LOST_PUSH_WINDOW)
        page = pushes[:LOST_PUSH_PAGE]
        items = []
        for push in page:
            item: dict[str, Any] = {}
            if push.event.get("shop_id") is not None:  # partner-level codes have none
                item["shop_id"] = push.event["shop_id"]
            item["code"] = push.event.get("code")
            item["timestamp"] = push.event.get("timestamp")
            item["data"] = utf8_json(push.event.get("data")).decode("utf-8")
            items.append(item)
        return json_response(
            {
                "request_id": rid,
                "error": "",
                "message": "",
                "response": {
                    "push_message_list": items,
                    "has_next_page": len(pushes) > len(page),
                    "last_message_id": page[-1].push_id if page else 0,
                },
            }
        )

    async def confirm_consumed_lost_push_message(self, request: Request) -> Response:
        """POST /api/v2/push/confirm_consumed_lost_push_message (public sign), JSON
        ``{"last_message_id": N}``: every lost push up to N is consumed."""
        rid = self.state.new_request_id()
        try:
            self.check_sign(request, shop=False)
            payload = json_object(await request.body())
            last = payload.get("last_message_id") if payload is not None else None
            if not isinstance(last, int) or isinstance(last, bool) or last < 0:
                raise ShopeeError("error_param", "Wrong parameters, detail: last_message_id.")
        except ShopeeError as exc:
            return self.error(rid, exc)
        self.state.confirm_lost_pushes(NAME, last)
        return json_response({"request_id": rid, "error": "", "message": "", "response": {}})


def build_shopee_app(state: SimulatorState) -> Starlette:
    """The Shopee API host (token endpoints live on the same host)."""
    app = ShopeeApp(state)
    return Starlette(
        routes=[
            Route("/api/v2/auth/access_token/get", app.refresh, methods=["POST"]),
            Route("/api/v2/auth/token/get", app.token_get, methods=["POST"]),
            Route(AUTH_PARTNER_PATH, app.auth_partner, methods=["GET"]),
            Route(APPROVE_PATH, app.approve, methods=["GET"]),
            Route("/api/v2/shop/get_shop_info", app.get_shop_info, methods=["GET"]),
            Route("/api/v2/public/get_shops_by_partner", app.get_shops_by_partner, methods=["GET"]),
            Route("/api/v2/order/get_order_list", app.get_order_list, methods=["GET"]),
            Route("/api/v2/order/get_order_detail", app.get_order_detail, methods=["GET"]),
            Route("/api/v2/push/get_app_push_config", app.get_app_push_config, methods=["GET"]),
            Route("/api/v2/push/get_lost_push_message", app.get_lost_push_message, methods=["GET"]),
            Route(
                "/api/v2/push/confirm_consumed_lost_push_message",
                app.confirm_consumed_lost_push_message,
                methods=["POST"],
            ),
        ]
    )


def push_config(state: SimulatorState, origin: str | None = None) -> dict[str, Any]:
    """The partner's push configuration: the configured callback URL (see
    :func:`~nfdoctor.simulator.spec.configured_webhook_url`) and the codes a CRM subscribes
    to, unless the fault plan's ``registrations:`` says otherwise."""
    config: dict[str, Any] = {
        "callback_url": configured_webhook_url(state, NAME, origin) or "",
        "live_push_status": "Normal",
        # authorization (1, 2, 12), order status (3) and webchat (10): what a CRM uses
        "push_config_on_list": [1, 2, 3, WEBCHAT, 12],
        "push_config_off_list": [4, 5, 6, 7, 8, 9, 11, 13, 15],
        "blocked_shop_id_list": [],
    }
    config.update(state.registrations.get(NAME, {}))
    if config["callback_url"] is None:
        config["callback_url"] = ""
    if str(config["live_push_status"]).lower() == "suspended":
        config["suspended_time"] = int((state.started_at - timedelta(days=1)).timestamp())
    return config


# ---- the declaration ---------------------------------------------------------------------


def _new_settings(rng: random.Random) -> ShopeeSettings:
    partner_id = 2_000_000 + rng.randrange(100_000)
    return ShopeeSettings(partner_id=partner_id, partner_key="shpk" + hex_string(rng, 60))


def _new_account(rng: random.Random, name: str) -> Account:
    return Account(NAME, str(10_000_000 + rng.randrange(90_000_000)), name)


def _new_token(rng: random.Random, kind: TokenKind) -> str:
    return hex_string(rng, 32)


def _new_code(rng: random.Random) -> str:
    return hex_string(rng, 32)


def _new_order_id(rng: random.Random, created: datetime) -> str:
    # order_sn: the creation date and 8 characters (e.g. 201218V2Y6E59M)
    return created.strftime("%y%m%d") + alnum(rng, 8).upper()


def _new_buyer_id(rng: random.Random) -> str:
    return rng.choice("123456789") + digits(rng, rng.choice((7, 8, 9)))


def _detail(order: Order, optional: set[str] | frozenset[str]) -> dict[str, Any]:
    """One order as get_order_detail returns it: the fields returned by default, and those
    of ``optional`` (response_optional_fields) the simulator has (SH-SCHEMA)."""
    created = int(order.create_time.timestamp())
    detail: dict[str, Any] = {
        "order_sn": order.order_id,
        "region": "VN",
        "currency": order.currency,
        "cod": False,
        "order_status": order.status,
        "message_to_seller": "",
        "create_time": created,
        "update_time": int(order.update_time.timestamp()),
        "days_to_ship": DAYS_TO_SHIP,
        "ship_by_date": created + DAYS_TO_SHIP * 86400,
    }
    extra = {
        "buyer_user_id": int(order.buyer_user_id),
        "buyer_username": order.buyer_name,
        # VND has no minor unit: a whole number (the reference's type is float)
        "total_amount": order.amount,
        "payment_method": "Cash on Delivery",
    }
    detail.update({k: v for k, v in extra.items() if k in optional})
    return detail


def _payload(order: Order) -> dict[str, Any]:
    """The order as get_order_detail returns it with every optional field the simulator has
    (the list endpoint returns ids only)."""
    return _detail(order, frozenset(OPTIONAL_DETAIL_FIELDS))


def _rate_limited(state: SimulatorState, request: RequestView) -> tuple[int, dict[str, Any]]:
    # §2.6: error_rate_limit; the HTTP status of Shopee errors is undocumented: 429 here.
    return 429, {
        "request_id": state.new_request_id(),
        "error": "error_rate_limit",
        "message": "Too many requests. You have reached the rate limit. Please try again later.",
    }


def _secrets(state: SimulatorState) -> list[str]:
    return [SHOPEE.settings(state).partner_key]


def _config_section(state: SimulatorState, ctx: ConfigContext) -> dict[str, Any]:
    settings = SHOPEE.settings(state)
    return {
        "base_url": ctx.url(_HOST.prefix),
        "webhook_url": ctx.webhook_url,
        "partner_id": settings.partner_id,
        "partner_key": ctx.secret("shopee-partner-key", settings.partner_key),
        "shops": [{"shop_id": int(a.account_id), "name": a.name} for a in state.accounts[NAME]],
    }


def _verify_webhook(state: SimulatorState, delivery: WebhookDelivery) -> bool:
    # §2.8: Authorization = HMAC(partner_key, callback URL | raw body)
    key = SHOPEE.settings(state).partner_key
    expected = shopee_push_signature(key, delivery.url, delivery.body)
    return verify_exact(expected, delivery.headers.get("authorization"))


def _request_accounts(state: SimulatorState, request: RequestView) -> set[str]:
    # shop_id in the query (shop calls) or in the refresh call's JSON body
    found = (request.query.get("shop_id"), request.fields.get("shop_id"))
    return {str(shop_id) for shop_id in found if shop_id is not None}


def _message_event(
    state: SimulatorState, source: ChatEventSource, rng: random.Random
) -> EmittedEvent:
    # message_id: ~19 digits as a string, above 2**53 (§2.9)
    message_id = rng.choice("123456789") + digits(rng, 18)
    shop = source.account.account_id
    conversation = source.conversation_id or stable_digits(f"{NAME}/{shop}/{source.user_id}", 18)
    payload = shopee_webchat(
        shop_id=int(shop),
        message_id=message_id,
        conversation_id=conversation,
        from_id=int(source.user_id),
        from_user_name=source.user_name,
        text=source.text,
        at=source.sent_at,
    )
    return EmittedEvent(message_id, utf8_json(payload))


def _order_event(state: SimulatorState, account: Account, order: Order, at: datetime) -> bytes:
    payload = shopee_order_status(
        shop_id=int(account.account_id), order_sn=order.order_id, status=order.status, at=at
    )
    return utf8_json(payload)


def _probe_event(state: SimulatorState, account: Account, at: datetime) -> bytes:
    return utf8_json(shopee_updates(shop_id=int(account.account_id), at=at))


def _sign(state: SimulatorState, account: Account, url: str, body: bytes) -> dict[str, str]:
    # §2.8: Authorization = HMAC(partner_key, callback URL exactly as configured | raw body)
    key = SHOPEE.settings(state).partner_key
    return {"Authorization": shopee_push_signature(key, url, body)}


def _delivery_url(state: SimulatorState, account: Account) -> str | None:
    config = push_config(state)
    on, off = config["push_config_on_list"], config["push_config_off_list"]
    if (
        not config["callback_url"]
        or str(config["live_push_status"]).lower() == "suspended"
        or int(account.account_id) in config["blocked_shop_id_list"]
        or WEBCHAT not in on
        or WEBCHAT in off
    ):
        return None
    return str(config["callback_url"])


def _read_message_event(body: bytes) -> list[InboundMessage]:
    # Code 10, webchat; the seller's own messages (from the shop) are not inbound.
    payload = json_object(body)
    if payload is None or payload.get("code") != WEBCHAT:
        return []
    try:
        data = payload["data"]
        content = data["content"]
        if data.get("type", "message") != "message" or str(content["from_id"]) == str(
            payload["shop_id"]
        ):
            return []
        inner = content.get("content")
        text = inner.get("text") if isinstance(inner, dict) else None
        return [
            InboundMessage(
                channel=NAME,
                shop_external_id=str(payload["shop_id"]),
                external_id=str(content["message_id"]),
                sender_external_id=str(content["from_id"]),
                sender_name=content.get("from_user_name"),
                body=text if isinstance(text, str) else None,
                sent_at=from_seconds(content.get("created_timestamp", payload.get("timestamp"))),
                thread_id=str(content["conversation_id"]) if "conversation_id" in content else None,
            )
        ]
    except MALFORMED:
        return []


_HOST = Host(
    prefix="/shopee",
    real_host="partner.shopeemobile.com",
    build=build_shopee_app,
    # the seller's consent page and its links (not the partner's API calls)
    browser_paths=(AUTH_PARTNER_PATH, APPROVE_PATH),
)

SHOPEE: SimPlatform[ShopeeSettings] = SimPlatform(
    name=NAME,
    label="Shopee",
    # API and token endpoints share one host
    hosts=(_HOST,),
    error_body=shopee_error_body,
    # §0: 4 h access, 30 d single-use rotating refresh
    access_lifetime=timedelta(hours=4),
    refresh_lifetime=timedelta(days=30),
    single_use_refresh=True,
    # §2.3: the code is single use and expires after 10 minutes
    code_lifetime=timedelta(minutes=10),
    new_code=_new_code,
    first_account_name="Thời Trang Hà My",
    shop_categories=(
        "Thời Trang",
        "Giày Dép",
        "Túi Xách",
        "Phụ Kiện",
        "Áo Dài",
        "Đồ Bộ",
        "Thời Trang Nam",
        "Đồ Thể Thao",
    ),
    settings_type=ShopeeSettings,
    new_settings=_new_settings,
    new_account=_new_account,
    new_token=_new_token,
    orders=OrderSpec(
        statuses=("UNPAID", "READY_TO_SHIP", "PROCESSED", "SHIPPED", "COMPLETED", "CANCELLED"),
        crm_status={
            "UNPAID": "pending",
            "READY_TO_SHIP": "paid",
            "PROCESSED": "paid",
            "SHIPPED": "shipped",
            "TO_CONFIRM_RECEIVE": "delivered",
            "COMPLETED": "delivered",
            "CANCELLED": "cancelled",
            "TO_RETURN": "returned",
        },
        new_order_id=_new_order_id,
        new_buyer_id=_new_buyer_id,
        payload=_payload,
    ),
    secrets=_secrets,
    config_section=_config_section,
    verify_webhook=_verify_webhook,
    request_accounts=_request_accounts,
    read_message_event=_read_message_event,
    webhooks=WebhookSpec(
        # §2.8: 3 s is stated for the verification push; assumed for all (Medium)
        ack_deadline=timedelta(seconds=3),
        # §2.8: not published (Low): simulated, and the fault plan may replace it
        retry_schedule=(timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30)),
        message_event=_message_event,
        probe_event=_probe_event,
        order_event=_order_event,
        sign=_sign,
        delivery_url=_delivery_url,
        registration_fields={
            "callback_url": "url",
            "live_push_status": "text",
            "push_config_on_list": "ints",
            "push_config_off_list": "ints",
            "blocked_shop_id_list": "ints",
        },
        keeps_lost_pushes=True,
    ),
    rate_limit_answer=_rate_limited,
)
