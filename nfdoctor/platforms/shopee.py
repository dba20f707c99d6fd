"""Shopee Open Platform v2: signing, error classification and the client (platforms.md §2)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import Field, field_validator

from nfdoctor.config_fields import PositiveId, Section, Url, unique_accounts
from nfdoctor.platforms.authorization import (
    AuthorizationSpec,
    ConsentInputs,
    ExchangeInputs,
    Grant,
    with_query,
)
from nfdoctor.platforms.base import (
    ApiSession,
    Clock,
    Envelope,
    JsonObject,
    PingResult,
    PlatformAuth,
    PlatformClient,
    TokenSet,
    abs_time,
    raise_for_refresh,
    read_response,
    rebuild,
    rel_time,
    seconds_of,
    unknown_code_category,
    utc_now,
)
from nfdoctor.platforms.errors import (
    BadCredentialsError,
    Category,
    TaxonomyError,
    UnexpectedResponseError,
)
from nfdoctor.platforms.spec import Capabilities, ClientInputs, PlatformSection, PlatformSpec
from nfdoctor.platforms.sync import (
    Buyer,
    OrderStatus,
    Page,
    StreamSpec,
    SyncedOrder,
    SyncSpec,
    Window,
    parse_amount,
)
from nfdoctor.platforms.webhook import (
    DeliveryInputs,
    EventInputs,
    EventType,
    SignatureScheme,
    WebhookKeys,
    WebhookRegistration,
    WebhookSpec,
    digits_id,
    hmac_sha256_hex,
    require_secret,
    utf8_json,
)
from nfdoctor.secrets.reference import SecretRef

__all__ = [
    "CRM_ORDER_STATUS",
    "SHOPEE_BASE_URL",
    "SPEC",
    "SYNC",
    "ShopeeAuth",
    "ShopeeClient",
    "ShopeeConfig",
    "ShopeeShop",
    "classify_shopee",
    "exchange_shopee_code",
    "is_public_path",
    "shopee_consent_url",
    "shopee_sign",
]

PLATFORM = "shopee"
SHOPEE_BASE_URL = "https://partner.shopeemobile.com"
REFRESH_PATH = "/api/v2/auth/access_token/get"
PING_PATH = "/api/v2/shop/get_shop_info"
ORDER_LIST_PATH = "/api/v2/order/get_order_list"
ORDER_DETAIL_PATH = "/api/v2/order/get_order_detail"
PUSH_CONFIG_PATH = "/api/v2/push/get_app_push_config"
LOST_PUSH_PATH = "/api/v2/push/get_lost_push_message"
CONFIRM_LOST_PUSH_PATH = "/api/v2/push/confirm_consumed_lost_push_message"
AUTH_PARTNER_PATH = "/api/v2/shop/auth_partner"
TOKEN_GET_PATH = "/api/v2/auth/token/get"
#: get_order_list rejects windows over 15 days (§2.5)
MAX_WINDOW = timedelta(days=15)
MAX_PAGE_SIZE = 100

# Public sign: auth/token endpoints, push config, auth links; SDKs apply it to every
# /public/ and /push/ path (§2.2).
_PUBLIC_PREFIXES = ("/api/v2/public/", "/api/v2/push/", "/api/v2/auth/")
_PUBLIC_PATHS = frozenset({"/api/v2/shop/auth_partner", "/api/v2/shop/cancel_auth_partner"})
_SYSTEM_PARAMS = frozenset(
    {"partner_id", "timestamp", "sign", "access_token", "shop_id", "merchant_id"}
)

# §2.6, by the `error` value. `error_auth` is deliberately absent: it is context-dependent.
_CODES: dict[str, Category] = {
    # Production really spells it "acceess"; §9 says it is what an expired token gets.
    "invalid_acceess_token": Category.TOKEN_EXPIRED,
    "invalid_access_token": Category.TOKEN_EXPIRED,
    "refresh_token_expired": Category.REFRESH_TOKEN_INVALID,
    "error_shop_refresh_token": Category.REFRESH_TOKEN_INVALID,
    "error_merchant_refresh_token": Category.REFRESH_TOKEN_INVALID,
    "shop_access_expired": Category.REFRESH_TOKEN_INVALID,
    "invalid_code": Category.REFRESH_TOKEN_INVALID,
    "error_sign": Category.BAD_SIGNATURE,
    "invalid_partner_id": Category.BAD_CREDENTIALS,
    "error_partner_key_expired": Category.BAD_CREDENTIALS,
    "error_shop": Category.BAD_CREDENTIALS,
    "invalid_shop_id": Category.BAD_CREDENTIALS,
    "shop_no_linked": Category.BAD_CREDENTIALS,
    "partner_shop_no_link": Category.BAD_CREDENTIALS,
    "error_rate_limit": Category.RATE_LIMITED,
    "error_limit": Category.RATE_LIMITED,
    "error_param": Category.BAD_PARAMETERS,
    "order.order_list_invalid_time": Category.BAD_PARAMETERS,
    "order_list_invalid_time": Category.BAD_PARAMETERS,
    "error_server": Category.TRANSIENT,
    "error_network": Category.TRANSIENT,
    "error_data": Category.TRANSIENT,
    "error_api_permission": Category.PERMISSION_DENIED,
    "error_api_call_restricted": Category.PERMISSION_DENIED,
    "source_ip_undeclared": Category.PERMISSION_DENIED,
    "shop_banned": Category.PERMISSION_DENIED,
}


def is_public_path(api_path: str) -> bool:
    """Whether ``api_path`` takes the public sign (no token, no shop id)."""
    return api_path in _PUBLIC_PATHS or api_path.startswith(_PUBLIC_PREFIXES)


def shopee_sign(partner_key: str, base: str) -> str:
    """``hex_lower(HMAC_SHA256(partner_key, base))``; the key is used as text, never hex-decoded."""
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()


def _category_for(error: str, api_path: str) -> Category:
    category = _CODES.get(error)
    if category is None and "." in error:
        # Module-prefixed values such as `common.error_auth` (§2.6): match the suffix too.
        error = error.rsplit(".", 1)[1]
        category = _CODES.get(error)
    if category is not None:
        return category
    if error == "error_auth":
        # error_auth appears in the token, refresh, credentials and permission rows; on the
        # token endpoints it means the refresh token or code, elsewhere the access token.
        if api_path.startswith("/api/v2/auth/"):
            return Category.REFRESH_TOKEN_INVALID
        return Category.TOKEN_INVALID
    return Category.UNEXPECTED_RESPONSE


def shopee_envelope(body: JsonObject, response: httpx.Response) -> Envelope | None:
    """Shopee's envelope: ``error`` (empty on success), ``message``, ``request_id``."""
    error = body.get("error")
    if error in ("", None):
        return None
    code = str(error)
    category = _category_for(code, response.request.url.path if _has_request(response) else "")
    if category is Category.UNEXPECTED_RESPONSE:
        category = unknown_code_category(response)
    request_id = body.get("request_id")
    message = body.get("message")
    return Envelope(
        code=code,
        category=category,
        request_id=str(request_id) if request_id else None,
        message=str(message) if message else None,
    )


def classify_shopee(
    response: httpx.Response,
    *,
    now: datetime | None = None,
    secrets: tuple[str, ...] = (),
) -> TaxonomyError | None:
    """Classify a Shopee response by its ``error`` value (success: ``error == ""``)."""
    return read_response(
        response,
        platform=PLATFORM,
        envelope=shopee_envelope,
        now=now or utc_now(),
        secrets=secrets,
    )[1]


def _has_request(response: httpx.Response) -> bool:
    try:
        response.request  # noqa: B018 - raises when the response was built without one
    except RuntimeError:
        return False
    return True


class ShopeeAuth(PlatformAuth):
    """Shopee v2 signing: public ``partner_id‖path‖ts`` or shop ``…‖access_token‖shop_id``."""

    platform = PLATFORM
    signing_secret: str

    def __init__(
        self,
        *,
        partner_id: int | str,
        partner_key: str,
        shop_id: int | str | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
        clock: Clock = utc_now,
        base_url: str = SHOPEE_BASE_URL,
        refresh_ttl_s: float = 30 * 86400,
    ) -> None:
        super().__init__(
            access_token=access_token,
            clock=clock,
            refresh_token=refresh_token,
            on_refresh=on_refresh,
        )
        self.partner_id = str(partner_id)
        self.signing_secret = partner_key
        self.shop_id = None if shop_id is None else str(shop_id)
        self.base_url = httpx.URL(base_url)
        self._prefix = self.base_url.path.rstrip("/")
        self.refresh_ttl_s = refresh_ttl_s

    def api_path(self, url: httpx.URL) -> str:
        """The signed path: the full ``/api/v2/…`` path without any base-URL prefix."""
        path = url.path
        if self._prefix and path.startswith(self._prefix + "/"):
            return path[len(self._prefix) :]
        return path

    def sign(self, request: httpx.Request) -> httpx.Request:
        """Set ``partner_id``, ``timestamp`` (s), token/shop for shop calls, and ``sign``."""
        api_path = self.api_path(request.url)
        timestamp = str(int(self.clock().timestamp()))
        kept = [(k, v) for k, v in request.url.params.multi_items() if k not in _SYSTEM_PARAMS]
        system = [("partner_id", self.partner_id), ("timestamp", timestamp)]
        base = self.partner_id + api_path + timestamp
        if not is_public_path(api_path):
            if self.shop_id is None or not self.access_token:
                raise BadCredentialsError(
                    f"a shop-level call ({api_path}) needs an access token and a shop id",
                    platform=PLATFORM,
                )
            base += self.access_token + self.shop_id
            system += [("access_token", self.access_token), ("shop_id", self.shop_id)]
        system.append(("sign", shopee_sign(self.signing_secret, base)))
        params: list[tuple[str, str | int | float | bool | None]] = [*kept, *system]
        url = request.url.copy_with(params=httpx.QueryParams(params))
        return rebuild(request, url=url)

    def envelope(self, body: JsonObject, response: httpx.Response) -> Envelope | None:
        """See :func:`shopee_envelope`."""
        return shopee_envelope(body, response)

    def build_refresh_request(self, refresh_token: str) -> httpx.Request | None:
        """``POST /api/v2/auth/access_token/get`` (public sign) with the JSON body of §2.3."""
        if self.shop_id is None:
            return None
        return self.sign(self.refresh_request(refresh_token))

    def refresh_request(self, refresh_token: str) -> httpx.Request:
        """The unsigned refresh request."""
        body: dict[str, Any] = {"refresh_token": refresh_token, "partner_id": int(self.partner_id)}
        if self.shop_id is not None:
            body["shop_id"] = int(self.shop_id)
        return httpx.Request("POST", self.base_url.join(self._prefix + REFRESH_PATH), json=body)

    def parse_refresh(self, response: httpx.Response) -> TokenSet:
        """Tokens from the refresh response; ``expire_in`` is REL seconds (§2.3)."""
        body, error = self.read(response)
        return shopee_tokens(
            body, error, response, now=self.clock(), refresh_ttl_s=self.refresh_ttl_s
        )


def parse_shopee_tokens(
    response: httpx.Response, *, now: datetime, refresh_ttl_s: float, secrets: tuple[str, ...] = ()
) -> TokenSet:
    """A :class:`TokenSet` from a Shopee token response, or the classified refresh error."""
    body, error = read_response(
        response, platform=PLATFORM, envelope=shopee_envelope, now=now, secrets=secrets
    )
    return shopee_tokens(body, error, response, now=now, refresh_ttl_s=refresh_ttl_s)


def shopee_tokens(
    body: JsonObject | None,
    error: TaxonomyError | None,
    response: httpx.Response,
    *,
    now: datetime,
    refresh_ttl_s: float,
) -> TokenSet:
    """The token pair in an already read token response, or its error as a refresh error."""
    raise_for_refresh(error)
    assert body is not None
    access = body.get("access_token")
    refresh = body.get("refresh_token")
    expire_in = body.get("expire_in")
    if not isinstance(access, str) or not isinstance(refresh, str) or expire_in is None:
        raise UnexpectedResponseError(
            "token response lacks access_token/refresh_token/expire_in",
            platform=PLATFORM,
            http_status=response.status_code,
            field="expire_in" if expire_in is None else "access_token",
        )
    # expire_in is REL (14400); one reference sample shows an ABS-looking 1767001812 (§2.3),
    # so a value that can only be a Unix time is read as one rather than as 56 years.
    where = {"platform": PLATFORM, "field": "expire_in"}
    if seconds_of(expire_in, **where) > 10**9:
        expires = abs_time(expire_in, **where)
    else:
        expires = rel_time(now, expire_in, **where)
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        access_expires_at=expires,
        refresh_expires_at=now + timedelta(seconds=refresh_ttl_s),
    )


_PING_FIELDS = ("shop_name", "region", "status")


class ShopeeClient(PlatformClient):
    """Shopee v2 client for one shop: ping, refresh, order listing."""

    auth: ShopeeAuth

    platform = PLATFORM

    def __init__(self, auth: ShopeeAuth, session: ApiSession) -> None:
        super().__init__(auth, session)
        if auth.shop_id is None:
            raise ValueError("a ShopeeClient is for one shop: its auth needs a shop_id")
        self.shop_id = auth.shop_id

    async def ping(self) -> PingResult:
        """``GET /api/v2/shop/get_shop_info``; its fields are top level, not under ``response``."""
        body, response, latency = await self._call("GET", self.base_url + PING_PATH, auth=self.auth)
        problems = []
        for name in _PING_FIELDS:
            if name not in body:
                nested = isinstance(body.get("response"), dict) and name in body["response"]
                problems.append(f"{name} under 'response'" if nested else f"missing {name}")
        return self._ping_result(response, latency, problems)

    async def list_orders(
        self,
        since: datetime,
        until: datetime,
        *,
        time_range_field: str = "create_time",
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[JsonObject]:
        """Orders (``order_sn`` + status) in [since, until): 15-day windows, cursor pages."""
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        start = since
        while start < until:
            end = min(start + MAX_WINDOW, until)
            cursor = ""
            while True:
                params = {
                    "time_range_field": time_range_field,
                    "time_from": str(int(start.timestamp())),
                    "time_to": str(int(end.timestamp())),
                    "page_size": str(page_size),
                    "cursor": cursor,
                    "response_optional_fields": "order_status",
                }
                body, _, _ = await self._call(
                    "GET", self.base_url + ORDER_LIST_PATH, params=params, auth=self.auth
                )
                page = body.get("response")
                if not isinstance(page, dict):
                    raise UnexpectedResponseError(
                        "get_order_list without 'response'", platform=PLATFORM, field="response"
                    )
                for order in page.get("order_list") or []:
                    if isinstance(order, dict):
                        yield order
                cursor = str(page.get("next_cursor") or "")
                if not page.get("more") or not cursor:
                    break
            start = end

    async def push_config(self) -> JsonObject:
        """``GET /api/v2/push/get_app_push_config`` (public sign): where Shopee pushes, whether
        live push is healthy, which push codes are on (§2.8)."""
        body, _, _ = await self._call("GET", self.base_url + PUSH_CONFIG_PATH, auth=self.auth)
        return _response_object(body, "get_app_push_config")

    async def lost_pushes(self) -> LostPushPage:
        """``GET /api/v2/push/get_lost_push_message`` (public sign): the earliest 100 pushes of
        the last 3 days that Shopee could not deliver. The next page comes only after this one
        is confirmed (:meth:`confirm_lost_pushes`)."""
        body, _, _ = await self._call("GET", self.base_url + LOST_PUSH_PATH, auth=self.auth)
        page = _response_object(body, "get_lost_push_message")
        items = page.get("push_message_list") or []
        if not isinstance(items, list):
            raise UnexpectedResponseError(
                "get_lost_push_message: push_message_list is not a list",
                platform=PLATFORM,
                field="push_message_list",
            )
        last = page.get("last_message_id")
        return LostPushPage(
            pushes=tuple(_lost_push(item) for item in items if isinstance(item, dict)),
            has_next_page=bool(page.get("has_next_page")),
            last_message_id=int(last)
            if isinstance(last, (int, str)) and str(last).isdigit()
            else None,
        )

    async def confirm_lost_pushes(self, last_message_id: int) -> None:
        """``POST /api/v2/push/confirm_consumed_lost_push_message``: Shopee forgets every lost
        push up to ``last_message_id``; they can no longer be listed."""
        await self._call(
            "POST",
            self.base_url + CONFIRM_LOST_PUSH_PATH,
            json_body={"last_message_id": last_message_id},
            auth=self.auth,
        )


def _response_object(body: JsonObject, call: str) -> JsonObject:
    page = body.get("response")
    if not isinstance(page, dict):
        raise UnexpectedResponseError(
            f"{call} without 'response'", platform=PLATFORM, field="response"
        )
    return page


@dataclass(frozen=True, kw_only=True)
class LostPush:
    """One push Shopee gave up on: the push as it would have been delivered."""

    shop_id: int | None
    code: int
    timestamp: int
    #: the push's ``data`` object (Shopee lists it as a JSON string; decoded here)
    data: Any

    def payload(self) -> dict[str, Any]:
        """The body Shopee would have pushed (§2.8): shop_id, code, timestamp, data."""
        payload: dict[str, Any] = {}
        if self.shop_id is not None:
            payload["shop_id"] = self.shop_id
        payload.update(code=self.code, timestamp=self.timestamp, data=self.data)
        return payload


@dataclass(frozen=True, kw_only=True)
class LostPushPage:
    """One page of lost pushes and the id that confirms all of it."""

    pushes: tuple[LostPush, ...]
    has_next_page: bool
    last_message_id: int | None


def _lost_push(item: JsonObject) -> LostPush:
    data = item.get("data")
    if isinstance(data, str):
        # Listed as a JSON string; one that is not JSON is replayed as the string it is.
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    shop_id = item.get("shop_id")
    try:
        return LostPush(
            shop_id=int(shop_id) if shop_id not in (None, "", 0) else None,
            code=int(item.get("code", 0)),
            timestamp=int(item.get("timestamp", 0)),
            data=data,
        )
    except (TypeError, ValueError):
        raise UnexpectedResponseError(
            "get_lost_push_message: a push with a non-numeric shop_id, code or timestamp",
            platform=PLATFORM,
            field="push_message_list",
        ) from None


# --- the platform's declaration -----------------------------------------------------------


class ShopeeShop(Section):
    """One Shopee shop."""

    shop_id: PositiveId
    name: str | None = None


class ShopeeConfig(PlatformSection):
    """Shopee Open Platform v2 partner app."""

    partner_id: PositiveId
    partner_key: SecretRef
    # Where the seller's browser comes back after authorising (`token authorize`): a URL in
    # the app's "Redirect URL domain" (Shopee Open Platform console). Unset: a loopback URL.
    redirect_uri: Url | None = None
    shops: list[ShopeeShop] = Field(default_factory=list)

    @field_validator("shops")
    @classmethod
    def _unique(cls, value: list[ShopeeShop]) -> list[ShopeeShop]:
        return unique_accounts(value, "shop_id")


def _build(inputs: ClientInputs[ShopeeConfig]) -> ShopeeClient:
    auth = ShopeeAuth(
        partner_id=inputs.section.partner_id,
        partner_key=inputs.secret("partner_key"),
        shop_id=inputs.account_id,
        access_token=inputs.access_token,
        refresh_token=inputs.refresh_token,
        on_refresh=inputs.on_refresh,
        clock=inputs.clock,
        base_url=inputs.session.base_url,
    )
    return ShopeeClient(auth, inputs.session)


# --- authorization (§2.3) -----------------------------------------------------------------


def shopee_consent_url(
    *, base_url: str, partner_id: int | str, partner_key: str, redirect: str, timestamp: int
) -> str:
    """The seller's authorization link: ``{host}/api/v2/shop/auth_partner?partner_id&timestamp
    &sign&redirect``, with the public sign over ``partner_id‖path‖timestamp`` (§2.2, V9)."""
    sign = shopee_sign(partner_key, f"{partner_id}{AUTH_PARTNER_PATH}{timestamp}")
    query = urlencode(
        [
            ("partner_id", str(partner_id)),
            ("timestamp", str(timestamp)),
            ("sign", sign),
            ("redirect", redirect),
        ]
    )
    return f"{base_url.rstrip('/')}{AUTH_PARTNER_PATH}?{query}"


def _consent_url(inputs: ConsentInputs[ShopeeConfig]) -> str:
    section = inputs.section
    # The link has no state parameter: the state rides in the redirect URL, which Shopee
    # sends the browser back to with `code` and `shop_id` added.
    return shopee_consent_url(
        base_url=SPEC.base_url(section),
        partner_id=section.partner_id,
        partner_key=inputs.secret("partner_key"),
        redirect=with_query(inputs.redirect_uri, state=inputs.state),
        timestamp=int(inputs.now.timestamp()),
    )


async def exchange_shopee_code(client: ShopeeClient, code: str) -> Grant:
    """``POST /api/v2/auth/token/get`` (public sign), body ``{code, partner_id, shop_id}``;
    the shop is the client's (the redirect's ``shop_id``). ``expire_in`` is REL (§2.3)."""
    body = {"code": code, "partner_id": int(client.auth.partner_id), "shop_id": int(client.shop_id)}
    data, response, _ = await client._call(
        "POST", client.base_url + TOKEN_GET_PATH, json_body=body, auth=client.auth
    )
    tokens = shopee_tokens(
        data, None, response, now=client.clock(), refresh_ttl_s=client.auth.refresh_ttl_s
    )
    listed = data.get("shop_id_list")
    shops = tuple(
        str(shop)
        for shop in (listed if isinstance(listed, list) else [])
        if isinstance(shop, (int, str)) and not isinstance(shop, bool)
    )
    return Grant(tokens=tokens, account_ids=shops)


async def _exchange(inputs: ExchangeInputs[ShopeeConfig]) -> Grant:
    assert isinstance(inputs.client, ShopeeClient)
    return await exchange_shopee_code(inputs.client, inputs.code)


AUTHORIZATION: AuthorizationSpec[ShopeeConfig] = AuthorizationSpec(
    consent_url=_consent_url,
    exchange=_exchange,
    redirect_uri=lambda section: str(section.redirect_uri) if section.redirect_uri else None,
    # No state parameter at Shopee: nfdoctor's rides in the redirect URL, and a redirect
    # that lost it is still bound to the shop the code is exchanged for.
    state="if_echoed",
    account_source="callback",
    account_param="shop_id",
    exchange_needs_account=True,
    code_lifetime=timedelta(minutes=10),
    console="the app's Redirect URL domain in the Shopee Open Platform console",
)


# --- webhooks (§2.8) -----------------------------------------------------------------------


def _push_digest(keys: WebhookKeys, delivery: DeliveryInputs) -> str:
    # The callback URL exactly as configured at Shopee, "|", the raw body.
    return hmac_sha256_hex(keys.secret, delivery.url.encode("utf-8") + b"|" + delivery.body)


def _webchat(inputs: EventInputs) -> dict[str, Any]:
    seconds = int(inputs.now.timestamp())
    shop = int(inputs.account_id)
    return {
        "shop_id": shop,
        "code": 10,
        "timestamp": seconds,
        "data": {
            "type": "message",
            "content": {
                "message_id": inputs.message_id,
                "conversation_id": digits_id(inputs.message_id.encode(), 18),
                "from_id": int(inputs.sender_id),
                "to_id": shop,
                "from_user_name": "nfdoctor",
                "message_type": "text",
                "content": {"text": inputs.text},
                "created_timestamp": seconds,
            },
        },
    }


def _order_status(inputs: EventInputs) -> dict[str, Any]:
    seconds = int(inputs.now.timestamp())
    return {
        "data": {
            "items": [],
            "ordersn": inputs.now.strftime("%y%m%d") + inputs.message_id[-8:],
            "status": "PROCESSED",
            "completed_scenario": "",
            "update_time": seconds,
        },
        "shop_id": int(inputs.account_id),
        "code": 3,
        "timestamp": seconds,
    }


def _shopee_updates(inputs: EventInputs) -> dict[str, Any]:
    # Code 5 ("Shopee updates") is an announcement to the partner: nothing a CRM stores.
    seconds = int(inputs.now.timestamp())
    return {
        "data": {
            "title": "nfdoctor webhook check",
            "content": inputs.text,
            "url": "",
            "update_time": seconds,
        },
        "shop_id": int(inputs.account_id),
        "code": 5,
        "timestamp": seconds,
    }


def _message_ids(payload: Any) -> list[tuple[str, str]]:
    if not isinstance(payload, dict) or payload.get("code") != 10:
        return []
    content = (payload.get("data") or {}).get("content") or {}
    message_id = content.get("message_id") if isinstance(content, dict) else None
    if message_id is None or payload.get("shop_id") is None:
        return []
    return [(str(payload["shop_id"]), str(message_id))]


def _new_message_id(seed: bytes) -> str:
    # 19 digits, above 2**53 like Shopee's own (§2.9): it must never pass through a float.
    return digits_id(seed, 19)


def _keys(
    section: ShopeeConfig, account_id: str, secret: Callable[[str], str | None], path: str
) -> WebhookKeys:
    return WebhookKeys(
        secret=require_secret(secret, f"{path}.partner_key"), secret_path=f"{path}.partner_key"
    )


async def _registration(client: ShopeeClient) -> WebhookRegistration:
    config = await client.push_config()
    url = config.get("callback_url")
    status = str(config.get("live_push_status") or "")
    on = config.get("push_config_on_list")
    details = [f"live_push_status: {status or '(not given)'}"]
    problems = []
    warnings = []
    if status.lower() == "suspended":
        since = config.get("suspended_time")
        problems.append(
            "Shopee suspended live push"
            + (f" at {since}" if since else "")
            + ": fewer than 30% of pushes succeeded; missed pushes are not re-sent"
        )
    elif status.lower() == "warning":
        warnings.append(
            "Shopee warns that fewer than 70% of pushes succeed (live_push_status Warning)"
        )
    subscribed: bool | None = None
    if isinstance(on, list):
        details.append("push codes on: " + (", ".join(str(c) for c in on) or "none"))
        subscribed = 10 in on or "10" in on
    blocked = config.get("blocked_shop_id_list")
    if isinstance(blocked, list) and blocked:
        details.append("blocked shops: " + ", ".join(str(b) for b in blocked))
        if any(str(b) == client.shop_id for b in blocked):
            problems.append(f"shop {client.shop_id} is in the push config's blocked_shop_id_list")
    return WebhookRegistration(
        urls=(str(url),) if url else (),
        messages_subscribed=subscribed,
        details=tuple(details),
        problems=tuple(problems),
        warnings=tuple(warnings),
    )


WEBHOOK = WebhookSpec(
    signature=SignatureScheme(
        header="Authorization",
        prefix="",
        digest=_push_digest,
        describe="HMAC-SHA256(partner_key, callback URL + '|' + raw body), hex, Authorization",
        signs_url=True,
    ),
    encode=utf8_json,
    # "3 s" is stated for the URL-verification push only; assumed for all (§2.8, Medium).
    deadline_s=3.0,
    retries="not published (§2.8); pushes Shopee gave up on can be fetched for 3 days: "
    "nfdoctor webhook lost shopee",
    events={
        "message": EventType(
            name="message", describe="code 10, webchat message", stored=True, build=_webchat
        ),
        "order_status": EventType(
            name="order_status", describe="code 3, order status", stored=False, build=_order_status
        ),
        "probe": EventType(
            name="probe",
            describe="code 5, Shopee updates (an announcement the CRM does not store)",
            stored=False,
            build=_shopee_updates,
        ),
    },
    message_ids=_message_ids,
    new_message_id=_new_message_id,
    trace_sender="1000000001",
    keys=_keys,
    registration_api="GET /api/v2/push/get_app_push_config",
    registration=_registration,
    registration_per_app=True,  # get_app_push_config is the partner app's (§2.8)
    lost_push_api=True,  # get_lost_push_message: 3 days of pushes (§2.8)
)


# --- sync (§2.5) ---------------------------------------------------------------------------

#: get_order_detail takes 1–50 order numbers at a time (§2.5)
MAX_DETAIL_BATCH = 50
#: what get_order_detail returns only when asked (order_sn, order_status, currency,
#: create_time and update_time come by default)
DETAIL_FIELDS = "buyer_user_id,buyer_username,total_amount"

#: Shopee's ``order_status`` (§2.5, plus RETRY_SHIP, TO_CONFIRM_RECEIVE and TO_RETURN of the
#: data definitions) as one of the CRM's six statuses
CRM_ORDER_STATUS: dict[str, OrderStatus] = {
    "UNPAID": "pending",
    "READY_TO_SHIP": "paid",
    # shipment arranged and a tracking number issued, not yet handed to the carrier
    "PROCESSED": "paid",
    # the carrier's pickup failed and the shipment is arranged again
    "RETRY_SHIP": "paid",
    # Guess: Brazil's "waiting for the seller's invoice" comes after payment, before shipping.
    "INVOICE_PENDING": "paid",
    "SHIPPED": "shipped",
    # received by the buyer, who has not confirmed yet
    "TO_CONFIRM_RECEIVE": "delivered",
    "COMPLETED": "delivered",
    # A cancellation or return still being processed: the CRM has no "in progress" value,
    # and Shopee none for a finished return; one refused moves the order on again, and the
    # next sync (orders are upserted by update_time) corrects it.
    "IN_CANCEL": "cancelled",
    "CANCELLED": "cancelled",
    "TO_RETURN": "returned",
}


def _order_objects(value: object, field: str) -> list[JsonObject]:
    """A list of order objects, or UnexpectedResponseError naming ``field``."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise UnexpectedResponseError(
            f"{field} is not a list of objects", platform=PLATFORM, field=field
        )
    return value


def _order_sn(order: Mapping[str, Any], field: str) -> str:
    sn = order.get("order_sn")
    if not isinstance(sn, str) or not sn:
        raise UnexpectedResponseError(
            f"{field}: an order without order_sn", platform=PLATFORM, field="order_sn"
        )
    return sn


def _amount(value: object, *, order_sn: str) -> Decimal:
    """``total_amount`` as an exact Decimal; absent means unpaid (Shopee returns it only once
    the buyer has paid)."""
    if value is None:
        return Decimal(0)
    return parse_amount(value, platform=PLATFORM, record=f"order {order_sn}", field="total_amount")


def synced_order(order: Mapping[str, Any]) -> SyncedOrder:
    """One order (list item and detail merged) normalised for the CRM's ``orders``."""
    sn = _order_sn(order, "get_order_detail")
    platform_status = order.get("order_status")
    if not isinstance(platform_status, str) or platform_status not in CRM_ORDER_STATUS:
        raise UnexpectedResponseError(
            f"order {sn}: order_status {platform_status!r} is not one nfdoctor knows",
            platform=PLATFORM,
            field="order_status",
        )
    buyer_id = order.get("buyer_user_id")
    buyer = None
    # Empty (or 0) for non-integrated orders in TW, whose username is masked "****".
    known = isinstance(buyer_id, (int, str)) and not isinstance(buyer_id, bool)
    if known and str(buyer_id) not in ("", "0"):
        name = order.get("buyer_username")
        buyer = Buyer(
            external_user_id=str(buyer_id),
            display_name=name if isinstance(name, str) and name and name != "****" else None,
        )
    currency = order.get("currency")
    return SyncedOrder(
        external_id=sn,
        platform_status=platform_status,
        status=CRM_ORDER_STATUS[platform_status],
        total_amount=_amount(order.get("total_amount"), order_sn=sn),
        # get_order_detail always names it; a shop's orders are in VND when it does not
        currency=currency if isinstance(currency, str) and currency else "VND",
        created_at=abs_time(order.get("create_time"), platform=PLATFORM, field="create_time"),
        updated_at=abs_time(order.get("update_time"), platform=PLATFORM, field="update_time"),
        buyer=buyer,
        raw=dict(order),
    )


async def order_page(
    client: PlatformClient, window: Window, cursor: str | None
) -> Page[SyncedOrder]:
    """One ``get_order_list`` page (orders *updated* in the window, 100 at most, from
    ``cursor``: ``""`` first, then Shopee's ``next_cursor``), completed by
    ``get_order_detail`` in batches of 50; the next cursor is None once ``more`` is false."""
    if not isinstance(client, ShopeeClient):
        raise TypeError(f"a Shopee order page needs a ShopeeClient, not {type(client).__name__}")
    params = {
        "time_range_field": "update_time",
        "time_from": str(int(window.start.timestamp())),
        "time_to": str(int(window.end.timestamp())),
        "page_size": str(MAX_PAGE_SIZE),
        "cursor": cursor or "",
        "response_optional_fields": "order_status",
    }
    body, _, _ = await client._fetch("GET", client.base_url + ORDER_LIST_PATH, params=params)
    page = _response_object(body, "get_order_list")
    listed: dict[str, JsonObject] = {}
    for item in _order_objects(page.get("order_list"), "response.order_list"):
        listed.setdefault(_order_sn(item, "get_order_list"), item)
    details: dict[str, JsonObject] = {}
    numbers = list(listed)
    for first in range(0, len(numbers), MAX_DETAIL_BATCH):
        batch = numbers[first : first + MAX_DETAIL_BATCH]
        body, _, _ = await client._fetch(
            "GET",
            client.base_url + ORDER_DETAIL_PATH,
            params={"order_sn_list": ",".join(batch), "response_optional_fields": DETAIL_FIELDS},
        )
        detail = _response_object(body, "get_order_detail")
        for order in _order_objects(detail.get("order_list"), "response.order_list"):
            details[_order_sn(order, "get_order_detail")] = order
    missing = [sn for sn in numbers if sn not in details]
    if missing:
        raise UnexpectedResponseError(
            f"get_order_detail did not return {len(missing)} listed order(s), e.g. {missing[0]}",
            platform=PLATFORM,
            field="order_list",
        )
    records = tuple(synced_order({**listed[sn], **details[sn]}) for sn in numbers)
    next_cursor: str | None = None
    if page.get("more") is True:
        following = page.get("next_cursor")
        if following in (None, "") or str(following) == (cursor or ""):
            # Without a new cursor the same page would be listed for ever.
            raise UnexpectedResponseError(
                "get_order_list says more but gives no new next_cursor",
                platform=PLATFORM,
                field="next_cursor",
            )
        next_cursor = str(following)
    return Page(records=records, next_cursor=next_cursor)


SYNC = SyncSpec(
    orders=StreamSpec(
        name="orders",
        max_window=MAX_WINDOW,
        page=order_page,
        source="platforms.md §2.5 (get_order_list, get_order_detail)",
    ),
    default_rate_per_s=10.0,
    rate_confidence="L",
    rate_source=(
        "platforms.md §2.7: no limits published (every rate_limit field in the reference is"
        " [0,0,0]); one community report puts throttling above 100–1,000 requests/s"
        " [SH-ISSUE54 · L]; error_rate_limit and error_limit are the signals"
    ),
)


SPEC = PlatformSpec(
    name=PLATFORM,
    title="Shopee",
    accounts_key="shops",
    account_id_key="shop_id",
    account_noun="shop",
    api_url=SHOPEE_BASE_URL,
    # ±5 min either way (§2.2)
    clock_tolerance_s=(300.0, 300.0),
    config_model=ShopeeConfig,
    capabilities=Capabilities(
        refresh_tokens=True,
        single_use_refresh=True,
        orders=True,
        messages=False,
        introspection=False,
        webhook_signature="HMAC-SHA256(partner_key, callback URL | raw body), Authorization header",
    ),
    build_client=_build,
    webhook=WEBHOOK,
    authorization=AUTHORIZATION,
    sync=SYNC,
)
