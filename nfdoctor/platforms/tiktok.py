"""TikTok Shop Open API (202309+): signing, error classification, client (platforms.md §4)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field, field_validator

from nfdoctor.config_fields import DigitsId, ErrorCategoryName, Section, Url, unique_accounts
from nfdoctor.platforms.authorization import (
    AuthorizationSpec,
    ConsentInputs,
    ExchangeInputs,
    Grant,
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
    unknown_code_category,
    utc_now,
)
from nfdoctor.platforms.errors import (
    BadParametersError,
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
    SyncedMessage,
    SyncedOrder,
    SyncSpec,
    Window,
    object_list,
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
    "SPEC",
    "SYNC",
    "TIKTOK_AUTH_URL",
    "TIKTOK_BASE_URL",
    "TiktokAuth",
    "TiktokClient",
    "TiktokConfig",
    "TiktokShop",
    "classify_tiktok",
    "exchange_tiktok_code",
    "tiktok_consent_url",
    "tiktok_sign",
]

PLATFORM = "tiktok"
TIKTOK_BASE_URL = "https://open-api.tiktokglobalshop.com"
TIKTOK_AUTH_URL = "https://auth.tiktok-shops.com"
REFRESH_PATH = "/api/v2/token/refresh"
TOKEN_GET_PATH = "/api/v2/token/get"
#: the authorization link's host for shops outside the US (§4.1)
TIKTOK_AUTHORIZE_URL = "https://services.tiktokshop.com/open/authorize"
SHOPS_PATH = "/authorization/202309/shops"
ORDER_SEARCH_PATH = "/order/202309/orders/search"
WEBHOOKS_PATH = "/event/202309/webhooks"
#: the webhook event type of chat messages (type 14 in the payload)
MESSAGE_EVENT = "NEW_MESSAGE"
TOKEN_HEADER = "x-tts-access-token"
MAX_PAGE_SIZE = 100
_UNSIGNED = frozenset({"sign", "access_token"})

_CODES: dict[int, Category] = {
    105002: Category.TOKEN_EXPIRED,
    101000: Category.TOKEN_INVALID,
    106001: Category.BAD_SIGNATURE,
    36009002: Category.RATE_LIMITED,
    45101004: Category.RATE_LIMITED,
    106013: Category.BAD_PARAMETERS,
    36009009: Category.BAD_PARAMETERS,
    36009010: Category.BAD_PARAMETERS,
    36009022: Category.BAD_PARAMETERS,
    36009023: Category.BAD_PARAMETERS,
    36009003: Category.TRANSIENT,
    36009007: Category.TRANSIENT,
    105005: Category.PERMISSION_DENIED,
    36009033: Category.PERMISSION_DENIED,
    10006402: Category.PERMISSION_DENIED,
    21008111: Category.PERMISSION_DENIED,
}
#: 36009004 covers invalid token, missing sign, bad app_key, bad timestamp and unexpected
#: identifier (§4.6); nfdoctor classifies by code only, so its category is a parameter.
OVERLOADED_CODE = 36009004


def tiktok_sign(
    app_secret: str, api_path: str, params: Iterable[tuple[str, str]], body: bytes = b""
) -> str:
    """``hex_lower(HMAC(secret, secret ‖ path ‖ sorted k‖v ‖ body ‖ secret))``."""
    pairs = sorted((k, v) for k, v in params if k not in _UNSIGNED)
    inner = api_path.encode() + "".join(k + v for k, v in pairs).encode() + body
    message = app_secret.encode() + inner + app_secret.encode()
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


def tiktok_envelope(
    body: JsonObject,
    response: httpx.Response,
    overloaded_category: Category = Category.TOKEN_INVALID,
) -> Envelope | None:
    """TikTok's envelope: an integer ``code`` (0 on success), ``message``, ``request_id``."""
    code = body.get("code")
    if code == 0 or code is None:
        return None
    try:
        code_i = int(code)
    except (TypeError, ValueError):
        code_i = -1
    if code_i == OVERLOADED_CODE:
        category = overloaded_category
    else:
        category = _CODES.get(code_i) or unknown_code_category(response)
    request_id = body.get("request_id")
    message = body.get("message")
    return Envelope(
        code=str(code),
        category=category,
        request_id=str(request_id) if request_id else None,
        message=str(message) if message else None,
    )


def classify_tiktok(
    response: httpx.Response,
    *,
    now: datetime | None = None,
    secrets: tuple[str, ...] = (),
    overloaded_category: Category = Category.TOKEN_INVALID,
) -> TaxonomyError | None:
    """Classify a TikTok response by its integer ``code`` (success: ``code == 0``)."""
    return read_response(
        response,
        platform=PLATFORM,
        envelope=lambda body, r: tiktok_envelope(body, r, overloaded_category),
        now=now or utc_now(),
        secrets=secrets,
    )[1]


class TiktokAuth(PlatformAuth):
    """TikTok signing: secret-wrapped HMAC over path, sorted query and raw body; lower hex."""

    platform = PLATFORM
    signing_secret: str

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        access_token: str | None = None,
        refresh_token: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
        clock: Clock = utc_now,
        base_url: str = TIKTOK_BASE_URL,
        auth_url: str = TIKTOK_AUTH_URL,
        overloaded_category: Category = Category.TOKEN_INVALID,
    ) -> None:
        super().__init__(
            access_token=access_token,
            clock=clock,
            refresh_token=refresh_token,
            on_refresh=on_refresh,
        )
        self.app_key = app_key
        self.signing_secret = app_secret
        self.auth_url = auth_url.rstrip("/")
        self._prefix = httpx.URL(base_url).path.rstrip("/")
        self.overloaded_category = overloaded_category

    def api_path(self, url: httpx.URL) -> str:
        """The signed path, without any base-URL prefix."""
        path = url.path
        if self._prefix and path.startswith(self._prefix + "/"):
            return path[len(self._prefix) :]
        return path

    def sign(self, request: httpx.Request) -> httpx.Request:
        """Add ``app_key``, ``timestamp`` (s), ``sign``; the token goes unsigned in a header."""
        timestamp = str(int(self.clock().timestamp()))
        query = [
            (k, v)
            for k, v in request.url.params.multi_items()
            if k not in ("app_key", "timestamp", "sign")
        ]
        query += [("app_key", self.app_key), ("timestamp", timestamp)]
        content_type = request.headers.get("content-type", "")
        # The body is signed as the exact bytes on the wire, except for multipart uploads.
        body = b"" if content_type.startswith("multipart/form-data") else request.content
        signed = tiktok_sign(self.signing_secret, self.api_path(request.url), query, body)
        params: list[tuple[str, str | int | float | bool | None]] = [*query, ("sign", signed)]
        headers = {TOKEN_HEADER: self.access_token} if self.access_token else {}
        return rebuild(
            request, url=request.url.copy_with(params=httpx.QueryParams(params)), headers=headers
        )

    def envelope(self, body: JsonObject, response: httpx.Response) -> Envelope | None:
        """See :func:`tiktok_envelope`, with this auth's 36009004 policy."""
        return tiktok_envelope(body, response, self.overloaded_category)

    def build_refresh_request(self, refresh_token: str) -> httpx.Request | None:
        """The unsigned ``GET /api/v2/token/refresh`` (the secret travels in the query)."""
        return httpx.Request(
            "GET",
            self.auth_url + REFRESH_PATH,
            params={
                "app_key": self.app_key,
                "app_secret": self.signing_secret,
                "refresh_token": refresh_token,
                "grant_type": "refresh_token",
            },
        )

    def parse_refresh(self, response: httpx.Response) -> TokenSet:
        """Tokens with ABS ``*_expire_in`` timestamps (§4.3)."""
        body, error = self.read(response)
        return tiktok_tokens(body, error, response)


def parse_tiktok_tokens(
    response: httpx.Response, *, now: datetime, secrets: tuple[str, ...] = ()
) -> TokenSet:
    """A :class:`TokenSet` from a TikTok token response; expiries are ABS Unix seconds."""
    body, error = read_response(
        response, platform=PLATFORM, envelope=tiktok_envelope, now=now, secrets=secrets
    )
    return tiktok_tokens(body, error, response)


def tiktok_tokens(
    body: JsonObject | None, error: TaxonomyError | None, response: httpx.Response
) -> TokenSet:
    """The token pair in an already read token response, or its error as a refresh error."""
    raise_for_refresh(error)
    assert body is not None
    data = body.get("data")
    if not isinstance(data, dict):
        raise UnexpectedResponseError(
            "token response without 'data'", platform=PLATFORM, field="data"
        )
    access, refresh = data.get("access_token"), data.get("refresh_token")
    access_exp = data.get("access_token_expire_in")
    if not isinstance(access, str) or not isinstance(refresh, str) or access_exp is None:
        raise UnexpectedResponseError(
            "token response lacks access_token/refresh_token/access_token_expire_in",
            platform=PLATFORM,
            http_status=response.status_code,
            field="access_token_expire_in" if access_exp is None else "access_token",
        )
    refresh_exp = data.get("refresh_token_expire_in")
    # Despite the names both are ABSOLUTE Unix timestamps (§4.3), not seconds remaining.
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        access_expires_at=abs_time(access_exp, platform=PLATFORM, field="access_token_expire_in"),
        refresh_expires_at=(
            abs_time(refresh_exp, platform=PLATFORM, field="refresh_token_expire_in")
            if refresh_exp is not None
            else None
        ),
    )


class TiktokClient(PlatformClient):
    """TikTok Shop client for one shop: ping, refresh, order listing."""

    auth: TiktokAuth

    platform = PLATFORM

    def __init__(
        self,
        auth: TiktokAuth,
        session: ApiSession,
        *,
        shop_id: str | None = None,
        shop_cipher: str | None = None,
    ) -> None:
        super().__init__(auth, session)
        self.shop_id = shop_id
        self.shop_cipher = shop_cipher

    async def _shops(self) -> tuple[JsonObject, httpx.Response, float]:
        # No shop_cipher here: /authorization/* rejects it with 36009004 (§4.2).
        return await self._call("GET", self.base_url + SHOPS_PATH, auth=self.auth)

    async def ping(self) -> PingResult:
        """``GET /authorization/202309/shops``; remembers the shop's ``cipher``."""
        body, response, latency = await self._shops()
        problems: list[str] = []
        data = body.get("data")
        shops = data.get("shops") if isinstance(data, dict) else None
        if not isinstance(shops, list):
            problems.append("missing data.shops")
        else:
            for shop in shops:
                if isinstance(shop, dict):
                    problems += [f"missing shops[].{f}" for f in ("id", "cipher") if f not in shop]
                    self._remember_cipher(shop)
        return self._ping_result(response, latency, sorted(set(problems)))

    def _remember_cipher(self, shop: JsonObject) -> None:
        if self.shop_cipher is None and (
            self.shop_id is None or str(shop.get("id")) == self.shop_id
        ):
            cipher = shop.get("cipher")
            if isinstance(cipher, str):
                self.shop_cipher = cipher

    async def _cipher(self) -> str:
        """The shop's ``shop_cipher``, from the config or the authorized-shops call (a
        repeatable read: retried on rate limits; no ``shop_cipher`` on /authorization/*)."""
        if self.shop_cipher is None:
            body, _, _ = await self._fetch("GET", self.base_url + SHOPS_PATH)
            data = body.get("data")
            for shop in (data.get("shops") or []) if isinstance(data, dict) else []:
                if isinstance(shop, dict):
                    self._remember_cipher(shop)
            if self.shop_cipher is None:
                raise BadParametersError(
                    "no shop_cipher for this shop in /authorization/202309/shops",
                    platform=PLATFORM,
                )
        return self.shop_cipher

    async def webhooks(self) -> list[JsonObject]:
        """``GET /event/202309/webhooks``: the shop's webhooks (event type and address)."""
        params = {"shop_cipher": await self._cipher()}
        body, _, _ = await self._call(
            "GET", self.base_url + WEBHOOKS_PATH, params=params, auth=self.auth
        )
        data = body.get("data")
        webhooks = data.get("webhooks") if isinstance(data, dict) else None
        if not isinstance(webhooks, list):
            raise UnexpectedResponseError(
                "event/202309/webhooks without data.webhooks", platform=PLATFORM, field="data"
            )
        return [w for w in webhooks if isinstance(w, dict)]

    async def list_orders(
        self, since: datetime, until: datetime, *, page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[JsonObject]:
        """Full order objects created in [since, until), following ``next_page_token``."""
        shop_cipher = await self._cipher()
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        filters = {
            "create_time_ge": int(since.timestamp()),
            "create_time_lt": int(until.timestamp()),
        }
        page_token = ""
        while True:
            params = {
                "shop_cipher": shop_cipher,
                "page_size": str(page_size),
                "sort_field": "create_time",
                "sort_order": "ASC",
            }
            if page_token:
                params["page_token"] = page_token
            body, _, _ = await self._call(
                "POST",
                self.base_url + ORDER_SEARCH_PATH,
                params=params,
                json_body=filters,
                auth=self.auth,
            )
            data = body.get("data")
            if not isinstance(data, dict):
                raise UnexpectedResponseError(
                    "orders/search without 'data'", platform=PLATFORM, field="data"
                )
            for order in data.get("orders") or []:
                if isinstance(order, dict):
                    yield order
            next_token = data.get("next_page_token")
            if not next_token or next_token == page_token:
                return
            page_token = str(next_token)


# --- the platform's declaration -----------------------------------------------------------


class TiktokShop(Section):
    """One TikTok Shop."""

    shop_id: DigitsId
    shop_cipher: str | None = None
    name: str | None = None


class TiktokConfig(PlatformSection):
    """TikTok Shop Open API app."""

    app_key: str
    app_secret: SecretRef
    auth_url: Url | None = None  # token host (default https://auth.tiktok-shops.com)
    # `token authorize`: the service id of the app's authorization link (Partner Center),
    # the link's host (default https://services.tiktokshop.com/open/authorize; US shops:
    # see platforms.md §4.1), and the redirect URL registered there, where TikTok sends the
    # seller's browser back (the link cannot choose it).
    service_id: str | None = None
    authorize_url: Url | None = None
    redirect_uri: Url | None = None
    # 36009004 means token, sign, app_key or timestamp trouble alike (platforms.md §4.6);
    # which category to report it as.
    code_36009004_means: ErrorCategoryName = "token_invalid"
    shops: list[TiktokShop] = Field(default_factory=list)

    @field_validator("shops")
    @classmethod
    def _unique(cls, value: list[TiktokShop]) -> list[TiktokShop]:
        return unique_accounts(value, "shop_id")


def _build(inputs: ClientInputs[TiktokConfig]) -> TiktokClient:
    section = inputs.section
    shop = next((s for s in section.shops if str(s.shop_id) == inputs.account_id), None)
    auth = TiktokAuth(
        app_key=section.app_key,
        app_secret=inputs.secret("app_secret"),
        access_token=inputs.access_token,
        refresh_token=inputs.refresh_token,
        on_refresh=inputs.on_refresh,
        clock=inputs.clock,
        base_url=inputs.session.base_url,
        auth_url=inputs.token_url or TIKTOK_AUTH_URL,
        overloaded_category=Category(section.code_36009004_means),
    )
    cipher = shop.shop_cipher if shop is not None else None
    return TiktokClient(auth, inputs.session, shop_id=inputs.account_id, shop_cipher=cipher)


# --- authorization (§4.3) -----------------------------------------------------------------


def tiktok_consent_url(*, authorize_url: str, service_id: str, state: str) -> str:
    """The service's authorization link: ``/open/authorize?service_id&state`` (§4.1); the
    redirect goes to the URL registered in Partner Center, not to one the link names."""
    return f"{authorize_url}?{urlencode([('service_id', service_id), ('state', state)])}"


def _consent_url(inputs: ConsentInputs[TiktokConfig]) -> str:
    section = inputs.section
    assert section.service_id is not None  # AUTHORIZATION.missing refused it before
    return tiktok_consent_url(
        authorize_url=str(section.authorize_url) if section.authorize_url else TIKTOK_AUTHORIZE_URL,
        service_id=section.service_id,
        state=inputs.state,
    )


async def exchange_tiktok_code(
    client: TiktokClient, code: str, *, secret_found: Callable[[str], None] = lambda _: None
) -> Grant:
    """``GET {auth_url}/api/v2/token/get?app_key&app_secret&auth_code&grant_type=
    authorized_code``: unsigned, the app secret in the query (§4.3), so the URL is never
    shown. ABS expiries. The response names the seller, not the shops: the new token's
    ``/authorization/202309/shops`` says which shops it reaches."""
    body, response, _ = await client._call(
        "GET",
        client.auth.auth_url + TOKEN_GET_PATH,
        params={
            "app_key": client.auth.app_key,
            "app_secret": client.auth.signing_secret,
            "auth_code": code,
            "grant_type": "authorized_code",
        },
    )
    tokens = tiktok_tokens(body, None, response)
    secret_found(tokens.access_token)
    secret_found(tokens.refresh_token)
    data = body.get("data")
    details = []
    seller = data.get("seller_name") if isinstance(data, dict) else None
    if isinstance(seller, str) and seller:
        details.append(f"seller: {seller}")
    client.auth.access_token = tokens.access_token
    shops_body, _, _ = await client._shops()
    shops_data = shops_body.get("data")
    listed = shops_data.get("shops") if isinstance(shops_data, dict) else None
    shops = tuple(
        str(shop["id"])
        for shop in (listed if isinstance(listed, list) else [])
        if isinstance(shop, dict) and isinstance(shop.get("id"), (str, int))
    )
    return Grant(tokens=tokens, account_ids=shops, details=tuple(details))


async def _exchange(inputs: ExchangeInputs[TiktokConfig]) -> Grant:
    assert isinstance(inputs.client, TiktokClient)
    return await exchange_tiktok_code(inputs.client, inputs.code, secret_found=inputs.secret_found)


def _missing(section: TiktokConfig) -> dict[str, str]:
    if section.service_id:
        return {}
    return {
        "service_id": "the service id in the app's authorization link (Partner Center → "
        "App → Authorization: …/open/authorize?service_id=…)"
    }


AUTHORIZATION: AuthorizationSpec[TiktokConfig] = AuthorizationSpec(
    consent_url=_consent_url,
    exchange=_exchange,
    redirect_uri=lambda section: str(section.redirect_uri) if section.redirect_uri else None,
    sends_redirect_uri=False,
    state="echoed",
    # One authorization is the seller's, and may reach several shops: the shop is asked
    # for, and the new token must reach it.
    account_source="asked",
    code_lifetime=timedelta(minutes=30),
    console="the app's Redirect URL in TikTok Shop Partner Center",
    missing=_missing,
)


# --- webhooks (§4.8) -----------------------------------------------------------------------


def _push_digest(keys: WebhookKeys, delivery: DeliveryInputs) -> str:
    # Lazada's scheme (§4.8, Medium: two independent implementations agree).
    return hmac_sha256_hex(keys.secret, (keys.app_key or "").encode("utf-8") + delivery.body)


def _new_message(inputs: EventInputs, shop_id: str) -> dict[str, Any]:
    seconds = int(inputs.now.timestamp())
    return {
        "type": 14,
        "tts_notification_id": digits_id(inputs.message_id.encode() + b"notification", 19),
        "shop_id": shop_id,
        "timestamp": seconds,
        "data": {
            "conversation_id": digits_id(inputs.sender_id.encode() + b"conversation", 19),
            "message_id": inputs.message_id,
            "type": "TEXT",
            # The message content is itself JSON, as text (§4.9).
            "content": json.dumps({"content": inputs.text}, ensure_ascii=False),
            "create_time": seconds,
            "sender": {"im_user_id": inputs.sender_id, "role": "BUYER"},
        },
    }


def _order_status(inputs: EventInputs) -> dict[str, Any]:
    seconds = int(inputs.now.timestamp())
    return {
        "type": 1,
        "tts_notification_id": digits_id(inputs.message_id.encode() + b"notification", 19),
        "shop_id": inputs.account_id,
        "timestamp": seconds,
        "data": {
            "order_id": digits_id(inputs.message_id.encode() + b"order", 18),
            "order_status": "AWAITING_SHIPMENT",
            "is_on_hold_order": False,
            "update_time": seconds,
        },
    }


#: the shop of probe messages: no CRM has a TikTok shop "0", so it acknowledges and drops them
PROBE_SHOP_ID = "0"


def _message_ids(payload: Any) -> list[tuple[str, str]]:
    if not isinstance(payload, dict) or payload.get("type") != 14:
        return []
    data = payload.get("data")
    if not isinstance(data, dict) or "message_id" not in data or "shop_id" not in payload:
        return []
    return [(str(payload["shop_id"]), str(data["message_id"]))]


def _keys(
    section: TiktokConfig, account_id: str, secret: Callable[[str], str | None], path: str
) -> WebhookKeys:
    return WebhookKeys(
        secret=require_secret(secret, f"{path}.app_secret"),
        secret_path=f"{path}.app_secret",
        app_key=section.app_key,
    )


async def _registration(client: TiktokClient) -> WebhookRegistration:
    webhooks = await client.webhooks()
    urls = tuple(dict.fromkeys(str(w["address"]) for w in webhooks if w.get("address")))
    types = sorted({str(w.get("event_type")) for w in webhooks if w.get("event_type")})
    details = [f"{w.get('event_type')!s}: {w.get('address')}" for w in webhooks]
    return WebhookRegistration(
        urls=urls,
        messages_subscribed=(MESSAGE_EVENT in types) if webhooks else False,
        details=tuple(details) or ("no webhook registered for this shop",),
    )


WEBHOOK = WebhookSpec(
    signature=SignatureScheme(
        header="Authorization",
        prefix="",
        digest=_push_digest,
        describe="HMAC-SHA256(app_secret, app_key + raw body), hex, Authorization (no Bearer)",
    ),
    encode=utf8_json,
    deadline_s=3.0,
    retries="2 min after the first failure, then 30 min, 3 h and 12 h; nothing after the "
    "4th retry fails (§4.8)",
    port_allowed=False,
    unauthorized_is_answer=True,
    events={
        "message": EventType(
            name="message",
            describe="type 14, new message",
            stored=True,
            build=lambda inputs: _new_message(inputs, inputs.account_id),
        ),
        "order_status": EventType(
            name="order_status", describe="type 1, order status", stored=False, build=_order_status
        ),
        "probe": EventType(
            name="probe",
            describe=f'type 14, new message for shop "{PROBE_SHOP_ID}" (a shop no CRM has)',
            stored=False,
            build=lambda inputs: _new_message(inputs, PROBE_SHOP_ID),
        ),
    },
    message_ids=_message_ids,
    new_message_id=lambda seed: digits_id(seed, 19),
    trace_sender="7000000000000000001",
    keys=_keys,
    registration_api="GET /event/202309/webhooks",
    registration=_registration,
)


# --- sync (§4.5) ---------------------------------------------------------------------------

#: TikTok Shop's order ``status`` (§4.5, described in the Get Order List reference) as the
#: CRM's six. TikTok has no "returned" order status: returns live in its Return and Refund
#: API, which nfdoctor does not read.
CRM_ORDER_STATUS: dict[str, OrderStatus] = {
    "UNPAID": "pending",
    # paid, but the buyer may still cancel without the seller (US and UK; a pre-order's
    # payment is authorised a day before release): not yet the seller's to fulfil
    "ON_HOLD": "paid",
    "AWAITING_SHIPMENT": "paid",
    # Some items shipped, not all: as with Lazada's items, the order counts as shipped only
    # once everything has (Seller Center still lists it under "To ship").
    "PARTIALLY_SHIPPING": "paid",
    # shipping arranged, the parcel not yet collected by the carrier
    "AWAITING_COLLECTION": "paid",
    "IN_TRANSIT": "shipped",
    "DELIVERED": "delivered",
    # delivered, and past the time for returns and refunds
    "COMPLETED": "delivered",
    "CANCELLED": "cancelled",
}


def synced_order(order: Mapping[str, Any]) -> SyncedOrder:
    """One ``orders/search`` order (a full object) normalised for the CRM's ``orders``."""
    order_id = order.get("id")
    if not isinstance(order_id, str) or not order_id:
        raise UnexpectedResponseError(
            "orders/search: an order without id", platform=PLATFORM, field="id"
        )
    platform_status = order.get("status")
    if not isinstance(platform_status, str) or platform_status not in CRM_ORDER_STATUS:
        raise UnexpectedResponseError(
            f"order {order_id}: status {platform_status!r} is not one nfdoctor knows",
            platform=PLATFORM,
            field="status",
        )
    payment = order.get("payment")
    if not isinstance(payment, dict):
        raise UnexpectedResponseError(
            f"order {order_id}: no payment object", platform=PLATFORM, field="payment"
        )
    currency = payment.get("currency")
    user_id = order.get("user_id")
    return SyncedOrder(
        external_id=order_id,
        platform_status=platform_status,
        status=CRM_ORDER_STATUS[platform_status],
        total_amount=parse_amount(
            payment.get("total_amount"),
            platform=PLATFORM,
            record=f"order {order_id}",
            field="payment.total_amount",
        ),
        # payment.currency is always named in the reference; a shop's orders are in VND if not
        currency=currency if isinstance(currency, str) and currency else "VND",
        created_at=abs_time(order.get("create_time"), platform=PLATFORM, field="create_time"),
        updated_at=abs_time(order.get("update_time"), platform=PLATFORM, field="update_time"),
        # the buyer's TikTok user id; the order names no buyer's display name
        buyer=Buyer(external_user_id=user_id) if isinstance(user_id, str) and user_id else None,
        raw=dict(order),
    )


def _total_count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).isdigit():
        return int(value)
    raise UnexpectedResponseError(
        "orders/search: total_count is not a count", platform=PLATFORM, field="total_count"
    )


async def order_page(
    client: PlatformClient, window: Window, cursor: str | None
) -> Page[SyncedOrder]:
    """One ``POST /order/202309/orders/search`` page: orders *updated* in the window
    (``update_time_ge``/``update_time_lt`` in the signed body), oldest first, 100 at most.
    The cursor is TikTok's opaque ``next_page_token``; ``total_count`` is the window's."""
    if not isinstance(client, TiktokClient):
        raise TypeError(f"a TikTok order page needs a TiktokClient, not {type(client).__name__}")
    params = {
        "shop_cipher": await client._cipher(),
        "page_size": str(MAX_PAGE_SIZE),
        "sort_field": "update_time",
        "sort_order": "ASC",
    }
    if cursor:
        params["page_token"] = cursor
    filters = {
        "update_time_ge": int(window.start.timestamp()),
        "update_time_lt": int(window.end.timestamp()),
    }
    body, _, _ = await client._fetch(
        "POST", client.base_url + ORDER_SEARCH_PATH, params=params, json_body=filters
    )
    data = body.get("data")
    if not isinstance(data, dict):
        raise UnexpectedResponseError(
            "orders/search without 'data'", platform=PLATFORM, field="data"
        )
    orders = data.get("orders") or []
    if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
        raise UnexpectedResponseError(
            "orders/search: data.orders is not a list of objects", platform=PLATFORM, field="orders"
        )
    records = tuple(synced_order(order) for order in orders)
    token = data.get("next_page_token")
    next_cursor: str | None = None
    if token not in (None, ""):
        if not isinstance(token, str) or token == cursor:
            # The same token again would list the same page for ever.
            raise UnexpectedResponseError(
                "orders/search: next_page_token does not move on",
                platform=PLATFORM,
                field="next_page_token",
            )
        next_cursor = token
    return Page(
        records=records, next_cursor=next_cursor, total=_total_count(data.get("total_count"))
    )


# Chat (§4.9): the shop's customer-service conversations and each one's messages.

CONVERSATIONS_PATH = "/customer_service/202309/conversations"
#: the most each listing returns at once (§4.9)
CONVERSATIONS_PAGE_SIZE = 20
MESSAGES_PAGE_SIZE = 10
#: ``sender.role`` -> the message's direction; SYSTEM messages are skipped (no one in the
#: chat wrote them); the shop's robot answers for the shop
_ROLE_DIRECTION: dict[str, Literal["in", "out"] | None] = {
    "BUYER": "in",
    "SHOP": "out",
    "CUSTOMER_SERVICE": "out",
    "ROBOT": "out",
    "SYSTEM": None,
}


def _cs_data(body: JsonObject, path: str) -> JsonObject:
    data = body.get("data")
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"{path} without 'data'", platform=PLATFORM, field="data")
    return data


def _cs_id(value: object, *, field: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise UnexpectedResponseError(f"{field} is not an id", platform=PLATFORM, field=field)


def _next_token(data: JsonObject, previous: str | None, path: str) -> str | None:
    """``next_page_token``: None at the end (``""``); the same token again is refused."""
    token = data.get("next_page_token")
    if token in (None, ""):
        return None
    if not isinstance(token, str) or token == previous:
        raise UnexpectedResponseError(
            f"{path}: next_page_token does not move on", platform=PLATFORM, field="next_page_token"
        )
    return token


def _conversation_buyer(conversation: Mapping[str, Any]) -> Buyer | None:
    """The conversation's BUYER participant: by ``user_id`` (the id orders name the buyer
    by, so chat and orders meet in one customer), else ``im_user_id``; None when not listed."""
    participants = conversation.get("participants")
    for person in participants if isinstance(participants, list) else []:
        if not isinstance(person, dict) or person.get("role") != "BUYER":
            continue
        for key in ("user_id", "im_user_id"):
            value = person.get(key)
            if isinstance(value, str) and value:
                name = person.get("nickname")
                return Buyer(
                    external_user_id=value,
                    display_name=name if isinstance(name, str) and name else None,
                )
    return None


def synced_message(
    message: Mapping[str, Any], *, conversation_id: str, customer: Buyer | None
) -> SyncedMessage | None:
    """One conversation message normalised for the CRM's ``messages``; None for a SYSTEM
    message. The customer is the conversation's BUYER participant (else, for a buyer's own
    message, its sender)."""
    message_id = _cs_id(message.get("id"), field="id")
    sender = message.get("sender")
    if not isinstance(sender, dict):
        raise UnexpectedResponseError(
            f"message {message_id} without sender", platform=PLATFORM, field="sender"
        )
    role = sender.get("role")
    if not isinstance(role, str) or role not in _ROLE_DIRECTION:
        raise UnexpectedResponseError(
            f"message {message_id}: sender.role {role!r} is not one nfdoctor knows",
            platform=PLATFORM,
            field="sender.role",
        )
    direction = _ROLE_DIRECTION[role]
    if direction is None:
        return None
    sender_id = _cs_id(sender.get("im_user_id"), field="sender.im_user_id")
    if not isinstance(message.get("type"), str) or not message.get("type"):
        raise UnexpectedResponseError(
            f"message {message_id} without type", platform=PLATFORM, field="type"
        )
    # ``content`` is a JSON string; a text's words are its "content" (an image or an order
    # card has none).
    content: object = None
    with contextlib.suppress(TypeError, ValueError):
        content = json.loads(message["content"])
    if not isinstance(content, dict):
        raise UnexpectedResponseError(
            f"message {message_id}: content is not a JSON object",
            platform=PLATFORM,
            field="content",
        )
    text = content.get("content")
    if customer is None:
        if direction != "in":
            raise UnexpectedResponseError(
                f"conversation {conversation_id}: no BUYER participant",
                platform=PLATFORM,
                field="participants",
            )
        customer = Buyer(external_user_id=sender_id)
    return SyncedMessage(
        external_id=message_id,
        thread_id=conversation_id,
        customer=customer,
        direction=direction,
        sender_external_id=sender_id,
        body=text if isinstance(text, str) and text else None,
        sent_at=abs_time(message.get("create_time"), platform=PLATFORM, field="create_time"),
        raw=dict(message),
    )


def _outside(conversation: Mapping[str, Any], window: Window) -> bool:
    """Whether the conversation cannot hold a message sent in the window: created after it,
    or its latest message sent before it."""
    created = conversation.get("create_time")
    if created is None:
        created_at = None
    else:
        created_at = abs_time(created, platform=PLATFORM, field="create_time")
    if created_at is not None and created_at >= window.end:
        return True
    latest = conversation.get("latest_message")
    sent = latest.get("create_time") if isinstance(latest, dict) else None
    if sent is None:
        return False
    return abs_time(sent, platform=PLATFORM, field="latest_message.create_time") < window.start


async def _conversation_messages(
    client: TiktokClient, conversation: Mapping[str, Any], window: Window, cipher: str
) -> list[SyncedMessage]:
    """The messages of one conversation sent in the window, newest first, 10 a page, until
    one older than the window or the last page."""
    conversation_id = _cs_id(conversation.get("id"), field="id")
    customer = _conversation_buyer(conversation)
    path = f"{CONVERSATIONS_PATH}/{conversation_id}/messages"
    messages: list[SyncedMessage] = []
    token: str | None = None
    while True:
        params = {
            "shop_cipher": cipher,
            "page_size": str(MESSAGES_PAGE_SIZE),
            "sort_field": "create_time",
            "sort_order": "DESC",
        }
        if token:
            params["page_token"] = token
        body, _, _ = await client._fetch("GET", client.base_url + path, params=params)
        data = _cs_data(body, path)
        older = False
        for item in object_list(data, "messages", where=path, platform=PLATFORM):
            sent_at = abs_time(item.get("create_time"), platform=PLATFORM, field="create_time")
            if sent_at >= window.end:
                continue
            if sent_at < window.start:
                older = True  # sorted DESC: every later message is older still
                break
            message = synced_message(item, conversation_id=conversation_id, customer=customer)
            if message is not None:
                messages.append(message)
        token = None if older else _next_token(data, token, path)
        if token is None:
            return messages


async def message_page(
    client: PlatformClient, window: Window, cursor: str | None
) -> Page[SyncedMessage]:
    """One page of the shop's conversations (20) and, for each that can hold one, its
    messages sent in the window, the conversations read together. The cursor is TikTok's
    opaque conversations ``next_page_token``. The list has no time filter and its order is
    not documented, so every conversation is looked at (its ``create_time`` and latest
    message spare the reads of those that cannot hold one)."""
    if not isinstance(client, TiktokClient):
        raise TypeError(f"a TikTok page needs a TiktokClient, not {type(client).__name__}")
    cipher = await client._cipher()
    params = {"shop_cipher": cipher, "page_size": str(CONVERSATIONS_PAGE_SIZE)}
    if cursor:
        params["page_token"] = cursor
    body, _, _ = await client._fetch("GET", client.base_url + CONVERSATIONS_PATH, params=params)
    data = _cs_data(body, CONVERSATIONS_PATH)
    current = [
        c
        for c in object_list(data, "conversations", where=CONVERSATIONS_PATH, platform=PLATFORM)
        if not _outside(c, window)
    ]
    read = await asyncio.gather(
        *(_conversation_messages(client, c, window, cipher) for c in current)
    )
    return Page(
        records=tuple(message for listed in read for message in listed),
        next_cursor=_next_token(data, cursor, CONVERSATIONS_PATH),
    )


SYNC = SyncSpec(
    orders=StreamSpec(
        name="orders",
        max_window=None,
        page=order_page,
        source="platforms.md §4.5 (Get Order List, POST /order/202309/orders/search)",
    ),
    messages=StreamSpec(
        name="messages",
        max_window=None,
        page=message_page,
        # the conversation list has no time filter: a window per day would walk it daily
        grid=False,
        source="platforms.md §4.9 (customer_service conversations and their messages)",
    ),
    default_rate_per_s=40.0,
    rate_confidence="H",
    rate_source=(
        "platforms.md §4.7: default 50 QPS per API, counted per app + shop; throttled calls get"
        " HTTP 429, HTTP 503 means overload outside the limiter; exponential backoff with"
        " jitter recommended [TT-RATE · H]"
    ),
)


SPEC = PlatformSpec(
    name=PLATFORM,
    title="TikTok Shop",
    accounts_key="shops",
    account_id_key="shop_id",
    account_noun="shop",
    api_url=TIKTOK_BASE_URL,
    token_url=TIKTOK_AUTH_URL,
    token_url_key="auth_url",
    # timestamps older than 5 min or more than 30 s in the future are refused (§4.2)
    clock_tolerance_s=(300.0, 30.0),
    config_model=TiktokConfig,
    capabilities=Capabilities(
        refresh_tokens=True,
        single_use_refresh=False,
        orders=True,
        messages=True,
        introspection=False,
        webhook_signature="HMAC-SHA256(app_secret, app_key + raw body), Authorization header",
    ),
    build_client=_build,
    webhook=WEBHOOK,
    authorization=AUTHORIZATION,
    sync=SYNC,
)
