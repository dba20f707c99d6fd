"""Lazada Open Platform (VN): signing, error classification and the client (platforms.md §3)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from pydantic import Field, field_validator

from nfdoctor.config_fields import Section, SellerId, Url, unique_accounts
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
    rel_time,
    unknown_code_category,
    utc_now,
)
from nfdoctor.platforms.errors import (
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
    WebhookSpec,
    alnum_id,
    digits_id,
    hmac_sha256_hex,
    require_secret,
    utf8_json,
)
from nfdoctor.secrets.reference import SecretRef

__all__ = [
    "CRM_ITEM_STATUS",
    "LAZADA_AUTH_URL",
    "LAZADA_BASE_URL",
    "SPEC",
    "SYNC",
    "LazadaAuth",
    "LazadaClient",
    "LazadaConfig",
    "LazadaShop",
    "classify_lazada",
    "exchange_lazada_code",
    "lazada_authorize_url",
    "lazada_consent_url",
    "lazada_sign",
]

PLATFORM = "lazada"
LAZADA_BASE_URL = "https://api.lazada.vn/rest"
LAZADA_AUTH_URL = "https://auth.lazada.com/rest"
REFRESH_PATH = "/auth/token/refresh"
CREATE_PATH = "/auth/token/create"
AUTHORIZE_PATH = "/oauth/authorize"
_TOKEN_PATHS = ("/auth/token/create", "/auth/token/refresh")
MAX_LIMIT = 100
MAX_OFFSET = 5000
#: ApiCallLimit is documented as a 1-second ban (§3.7); used when no Retry-After is sent
API_CALL_LIMIT_BAN_S = 1.0

_CODES: dict[str, Category] = {
    # "invalid or expired" in one code; a refresh is the first remedy, so it counts as expired.
    "IllegalAccessToken": Category.TOKEN_EXPIRED,
    "IllegalRefreshToken": Category.REFRESH_TOKEN_INVALID,
    "InvalidCode": Category.REFRESH_TOKEN_INVALID,
    "AUTH_TYPE_UNSUPPORTED": Category.REFRESH_TOKEN_INVALID,
    "IncompleteSignature": Category.BAD_SIGNATURE,
    "ApiCallLimit": Category.RATE_LIMITED,
    "InvalidParameter": Category.BAD_PARAMETERS,
    "MissingParameter": Category.BAD_PARAMETERS,
    "ServiceTimeout": Category.TRANSIENT,
    "UnknownRuntimeException": Category.TRANSIENT,
    "HttpConnectError": Category.TRANSIENT,
    "6": Category.TRANSIENT,
    "SellerNotVerified": Category.PERMISSION_DENIED,
}
# Numeric order-API codes (E014 offset, E017 date, E019 limit, E036 status, 74/75 sort,
# E037/E038/E056 order ids), accepted with or without the E prefix.
for _n in ("14", "17", "19", "36", "74", "75", "37", "38", "56"):
    _CODES[_n] = Category.BAD_PARAMETERS
    _CODES[f"E{int(_n):03d}"] = Category.BAD_PARAMETERS


def lazada_sign(
    app_secret: str, api_path: str, params: Iterable[tuple[str, str]], raw_body: str = ""
) -> str:
    """``hex_upper(HMAC_SHA256(app_secret, api_path ‖ sorted name‖value ‖ raw_body))``,
    ``sign`` excluded; ``raw_body`` only with ``sign_raw_body`` (§3.2, low confidence)."""
    pairs = sorted((k, v) for k, v in params if k != "sign")
    base = api_path + "".join(k + v for k, v in pairs) + raw_body
    return hmac.new(app_secret.encode(), base.encode(), hashlib.sha256).hexdigest().upper()


def lazada_envelope(body: JsonObject, response: httpx.Response) -> Envelope | None:
    """Lazada's envelope: a string ``code`` ("0" on success), ``message``, ``request_id``."""
    code = body.get("code")
    if code is None or str(code) == "0":
        return None
    code_s = str(code)
    request_id = body.get("request_id")
    message = body.get("message")
    return Envelope(
        code=code_s,
        category=_CODES.get(code_s) or unknown_code_category(response),
        request_id=str(request_id) if request_id else None,
        message=str(message) if message else None,
        default_retry_after_s=API_CALL_LIMIT_BAN_S,
    )


def classify_lazada(
    response: httpx.Response,
    *,
    now: datetime | None = None,
    secrets: tuple[str, ...] = (),
) -> TaxonomyError | None:
    """Classify a Lazada response by its string ``code`` (success: ``code == "0"``)."""
    return read_response(
        response, platform=PLATFORM, envelope=lazada_envelope, now=now or utc_now(), secrets=secrets
    )[1]


class LazadaAuth(PlatformAuth):
    """Lazada signing: ``api_path ‖ sorted k‖v`` of every parameter, HMAC-SHA256, UPPER hex."""

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
        base_url: str = LAZADA_BASE_URL,
        auth_url: str = LAZADA_AUTH_URL,
        sign_raw_body: bool = False,
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
        # The gateway prefixes (`/rest`) are not part of the signed api_path.
        self._prefixes = sorted(
            {httpx.URL(base_url).path.rstrip("/"), httpx.URL(auth_url).path.rstrip("/")},
            key=len,
            reverse=True,
        )
        # Low confidence (§3.2): only the official Java sample appends a raw non-form body.
        self.sign_raw_body = sign_raw_body

    def api_path(self, url: httpx.URL) -> str:
        """The signed path: the part after the gateway's ``/rest``."""
        path = url.path
        for prefix in self._prefixes:
            if prefix and path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return path

    def sign(self, request: httpx.Request) -> httpx.Request:
        """Add the system parameters (timestamp in ms) and ``sign`` to the query or form."""
        api_path = self.api_path(request.url)
        system = {
            "app_key": self.app_key,
            "sign_method": "sha256",
            "timestamp": str(int(self.clock().timestamp() * 1000)),
        }
        if self.access_token and not api_path.startswith(_TOKEN_PATHS):
            system["access_token"] = self.access_token
        content_type = request.headers.get("content-type", "")
        is_form = request.method != "GET" and content_type.startswith(
            "application/x-www-form-urlencoded"
        )
        query = [
            (k, v) for k, v in request.url.params.multi_items() if k not in system and k != "sign"
        ]
        if is_form:
            form = [
                (k, v)
                for k, v in parse_qsl(request.content.decode(), keep_blank_values=True)
                if k not in system and k != "sign"
            ]
            form += list(system.items())
            signed = lazada_sign(self.signing_secret, api_path, query + form)
            body = urlencode([*form, ("sign", signed)]).encode()
            return rebuild(request, content=body)
        query += list(system.items())
        raw_body = request.content.decode() if self.sign_raw_body else ""
        signed = lazada_sign(self.signing_secret, api_path, query, raw_body)
        params: list[tuple[str, str | int | float | bool | None]] = [*query, ("sign", signed)]
        return rebuild(request, url=request.url.copy_with(params=httpx.QueryParams(params)))

    def envelope(self, body: JsonObject, response: httpx.Response) -> Envelope | None:
        """See :func:`lazada_envelope`."""
        return lazada_envelope(body, response)

    def refresh_request(self, refresh_token: str) -> httpx.Request:
        """The unsigned ``GET {auth_url}/auth/token/refresh?refresh_token=…``."""
        return httpx.Request(
            "GET", self.auth_url + REFRESH_PATH, params={"refresh_token": refresh_token}
        )

    def build_refresh_request(self, refresh_token: str) -> httpx.Request | None:
        """The signed refresh call."""
        return self.sign(self.refresh_request(refresh_token))

    def parse_refresh(self, response: httpx.Response) -> TokenSet:
        """Tokens from the refresh response (REL ``expires_in`` / ``refresh_expires_in``)."""
        body, error = self.read(response)
        return lazada_tokens(body, error, response, now=self.clock())


def parse_lazada_tokens(
    response: httpx.Response, *, now: datetime, secrets: tuple[str, ...] = ()
) -> TokenSet:
    """A :class:`TokenSet` from a Lazada token response, or the classified refresh error."""
    body, error = read_response(
        response, platform=PLATFORM, envelope=lazada_envelope, now=now, secrets=secrets
    )
    return lazada_tokens(body, error, response, now=now)


def lazada_tokens(
    body: JsonObject | None, error: TaxonomyError | None, response: httpx.Response, *, now: datetime
) -> TokenSet:
    """The token pair in an already read token response, or its error as a refresh error."""
    raise_for_refresh(error)
    assert body is not None
    access, refresh = body.get("access_token"), body.get("refresh_token")
    expires_in = body.get("expires_in")
    if not isinstance(access, str) or not isinstance(refresh, str) or expires_in is None:
        raise UnexpectedResponseError(
            "token response lacks access_token/refresh_token/expires_in",
            platform=PLATFORM,
            http_status=response.status_code,
            field="expires_in" if expires_in is None else "access_token",
        )
    refresh_in = body.get("refresh_expires_in")
    # refresh_expires_in = 0 means "not refreshable" (§3.3): the deadline is now.
    refresh_at = (
        rel_time(now, refresh_in, platform=PLATFORM, field="refresh_expires_in")
        if refresh_in is not None
        else None
    )
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        access_expires_at=rel_time(now, expires_in, platform=PLATFORM, field="expires_in"),
        refresh_expires_at=refresh_at,
    )


class LazadaClient(PlatformClient):
    """Lazada client for one seller: ping, refresh, order listing."""

    auth: LazadaAuth

    platform = PLATFORM

    def __init__(
        self, auth: LazadaAuth, session: ApiSession, *, seller_id: str | None = None
    ) -> None:
        super().__init__(auth, session)
        self.seller_id = seller_id

    async def ping(self) -> PingResult:
        """``GET /seller/get``; expects ``data.seller_id`` and ``data.name``."""
        body, response, latency = await self._call(
            "GET", self.base_url + "/seller/get", auth=self.auth
        )
        problems: list[str] = []
        data = body.get("data")
        if not isinstance(data, dict):
            problems.append("missing data")
        else:
            problems += [f"missing data.{f}" for f in ("seller_id", "name") if f not in data]
        return self._ping_result(response, latency, problems)

    async def list_orders(
        self, since: datetime, until: datetime, *, limit: int = MAX_LIMIT
    ) -> AsyncIterator[JsonObject]:
        """Orders created in [since, until), oldest first; restarts the window past offset 5000."""
        limit = max(1, min(limit, MAX_LIMIT))
        created_after = since.isoformat(timespec="seconds")
        created_before = until.isoformat(timespec="seconds")
        offset = 0
        # Orders at the boundary second are returned again after a window restart.
        seen_at_boundary: set[str] = set()
        while True:
            params = {
                "created_after": created_after,
                "created_before": created_before,
                "sort_by": "created_at",
                "sort_direction": "ASC",
                "limit": str(limit),
                "offset": str(offset),
            }
            body, _, _ = await self._call(
                "GET", self.base_url + "/orders/get", params=params, auth=self.auth
            )
            data = body.get("data")
            if not isinstance(data, dict):
                raise UnexpectedResponseError(
                    "/orders/get without 'data'", platform=PLATFORM, field="data"
                )
            orders = [o for o in data.get("orders") or [] if isinstance(o, dict)]
            for order in orders:
                if str(order.get("order_id")) not in seen_at_boundary:
                    yield order
            if len(orders) < limit:
                return
            offset += limit
            if offset + limit > MAX_OFFSET:
                last = orders[-1].get("created_at")
                if not isinstance(last, str) or last == created_after:
                    raise UnexpectedResponseError(
                        "cannot page past offset 5000: orders lack a moving created_at",
                        platform=PLATFORM,
                        field="created_at",
                    )
                seen_at_boundary = {
                    str(o.get("order_id")) for o in orders if o.get("created_at") == last
                }
                created_after = last
                offset = 0


# --- the platform's declaration -----------------------------------------------------------


class LazadaShop(Section):
    """One Lazada seller account."""

    seller_id: SellerId
    name: str | None = None


class LazadaConfig(PlatformSection):
    """Lazada Open Platform app (Vietnam)."""

    app_key: str
    app_secret: SecretRef
    auth_url: Url | None = None  # token host (default https://auth.lazada.com/rest)
    # The callback registered for the app (`token authorize`); Lazada requires exactly it.
    # Unset: a loopback URL.
    redirect_uri: Url | None = None
    # The OAuth consent page (default: /oauth/authorize on auth_url's host, without /rest).
    authorize_url: Url | None = None
    # Low confidence (platforms.md §3.2, Java sample only): append the raw body to the sign base.
    sign_raw_body: bool = False
    shops: list[LazadaShop] = Field(default_factory=list)

    @field_validator("shops")
    @classmethod
    def _unique(cls, value: list[LazadaShop]) -> list[LazadaShop]:
        return unique_accounts(value, "seller_id")


def _build(inputs: ClientInputs[LazadaConfig]) -> LazadaClient:
    auth = LazadaAuth(
        app_key=inputs.section.app_key,
        app_secret=inputs.secret("app_secret"),
        access_token=inputs.access_token,
        refresh_token=inputs.refresh_token,
        on_refresh=inputs.on_refresh,
        clock=inputs.clock,
        base_url=inputs.session.base_url,
        auth_url=inputs.token_url or LAZADA_AUTH_URL,
        sign_raw_body=inputs.section.sign_raw_body,
    )
    return LazadaClient(auth, inputs.session, seller_id=inputs.account_id)


# --- authorization (§3.3) -----------------------------------------------------------------


def lazada_authorize_url(section: LazadaConfig) -> str:
    """The consent page: ``authorize_url``, else ``/oauth/authorize`` on the token host
    (``https://auth.lazada.com/rest`` → ``https://auth.lazada.com/oauth/authorize``)."""
    if section.authorize_url is not None:
        return str(section.authorize_url)
    token_host = httpx.URL(str(section.auth_url) if section.auth_url else LAZADA_AUTH_URL)
    path = token_host.path.rstrip("/")
    path = path.removesuffix("/rest")
    return str(token_host.copy_with(path=path + AUTHORIZE_PATH, query=None, fragment=None))


def lazada_consent_url(*, authorize_url: str, app_key: str, redirect_uri: str, state: str) -> str:
    """``/oauth/authorize?response_type=code&force_auth=true&redirect_uri&client_id&state``
    (§3.1): ``force_auth`` makes Lazada ask again even when the seller is signed in."""
    query = urlencode(
        [
            ("response_type", "code"),
            ("force_auth", "true"),
            ("redirect_uri", redirect_uri),
            ("client_id", app_key),
            ("state", state),
        ]
    )
    return f"{authorize_url}?{query}"


def _consent_url(inputs: ConsentInputs[LazadaConfig]) -> str:
    return lazada_consent_url(
        authorize_url=lazada_authorize_url(inputs.section),
        app_key=inputs.section.app_key,
        redirect_uri=inputs.redirect_uri,
        state=inputs.state,
    )


def _seller_ids(body: JsonObject) -> tuple[str, ...]:
    # `country_user_info` on create, `country_user_info_list` in the refresh doc (§3.3).
    infos = body.get("country_user_info")
    if not isinstance(infos, list):
        infos = body.get("country_user_info_list")
    found = []
    for info in infos if isinstance(infos, list) else []:
        seller = info.get("seller_id") if isinstance(info, dict) else None
        if isinstance(seller, (str, int)) and not isinstance(seller, bool) and str(seller):
            found.append(str(seller))
    return tuple(dict.fromkeys(found))


async def exchange_lazada_code(client: LazadaClient, code: str) -> Grant:
    """``POST {auth_url}/auth/token/create`` with ``code``, signed, no access token (§3.3):
    the code travels in the form body, out of every URL. REL expiries; the sellers from
    ``country_user_info``."""
    body, response, _ = await client._call(
        "POST", client.auth.auth_url + CREATE_PATH, data={"code": code}, auth=client.auth
    )
    tokens = lazada_tokens(body, None, response, now=client.clock())
    return Grant(tokens=tokens, account_ids=_seller_ids(body))


async def _exchange(inputs: ExchangeInputs[LazadaConfig]) -> Grant:
    assert isinstance(inputs.client, LazadaClient)
    return await exchange_lazada_code(inputs.client, inputs.code)


AUTHORIZATION: AuthorizationSpec[LazadaConfig] = AuthorizationSpec(
    consent_url=_consent_url,
    exchange=_exchange,
    redirect_uri=lambda section: str(section.redirect_uri) if section.redirect_uri else None,
    state="echoed",
    # The redirect carries only code and state; the token response names the seller.
    account_source="exchange",
    code_lifetime=timedelta(minutes=30),
    console="the app's Callback URL in the Lazada Open Platform console",
)


# --- webhooks (§3.8) -----------------------------------------------------------------------


def _push_digest(keys: WebhookKeys, delivery: DeliveryInputs) -> str:
    # app_key followed by the raw body; lower-case hex, per the official Java sample.
    return hmac_sha256_hex(keys.secret, (keys.app_key or "").encode("utf-8") + delivery.body)


def _milliseconds(inputs: EventInputs) -> int:
    return int(inputs.now.timestamp() * 1000)


def _im_message(inputs: EventInputs) -> dict[str, Any]:
    ms = _milliseconds(inputs)
    return {
        "seller_id": inputs.account_id,
        "message_type": 2,
        "data": {
            "session_id": alnum_id(inputs.message_id.encode() + b"session", 24),
            "message_id": inputs.message_id,
            "from_account_id": inputs.sender_id,
            "from_account_type": 1,
            "to_account_id": inputs.account_id,
            "type": 1,
            "template_id": 1,
            # The IM content is itself JSON, as text (§3.9).
            "content": json.dumps({"txt": inputs.text}, ensure_ascii=False),
            "send_time": ms,
        },
        "timestamp": ms,
        "site": "lazada_vn",
    }


def _trade_order(inputs: EventInputs) -> dict[str, Any]:
    seconds = int(inputs.now.timestamp())
    order_id = digits_id(inputs.message_id.encode(), 15)
    return {
        "seller_id": inputs.account_id,
        "message_type": 0,
        "data": {
            "order_status": "unpaid",
            "status_update_time": seconds,
            "trade_order_id": order_id,
            "trade_order_line_id": digits_id(order_id.encode(), 15),
        },
        "timestamp": _milliseconds(inputs),
        "site": "lazada_vn",
    }


def _category_tree(inputs: EventInputs) -> dict[str, Any]:
    # message_type 12: the category tree changed. Metadata only: nothing a CRM stores.
    return {
        "seller_id": inputs.account_id,
        "message_type": 12,
        "data": {"update_time": int(inputs.now.timestamp())},
        "timestamp": _milliseconds(inputs),
        "site": "lazada_vn",
    }


def _message_ids(payload: Any) -> list[tuple[str, str]]:
    if not isinstance(payload, dict) or payload.get("message_type") != 2:
        return []
    data = payload.get("data")
    if not isinstance(data, dict) or "message_id" not in data or "seller_id" not in payload:
        return []
    return [(str(payload["seller_id"]), str(data["message_id"]))]


def _keys(
    section: LazadaConfig, account_id: str, secret: Callable[[str], str | None], path: str
) -> WebhookKeys:
    return WebhookKeys(
        secret=require_secret(secret, f"{path}.app_secret"),
        secret_path=f"{path}.app_secret",
        app_key=section.app_key,
    )


WEBHOOK = WebhookSpec(
    signature=SignatureScheme(
        header="Authorization",
        prefix="",
        digest=_push_digest,
        describe="HMAC-SHA256(app_secret, app_key + raw body), hex, Authorization",
    ),
    encode=utf8_json,
    deadline_s=0.5,
    retries="every 30 min, up to 12 times, then never again (§3.8)",
    # "DV does not work" (§3.8): the callback needs an OV or EV certificate.
    certificate_levels=frozenset({"OV", "EV"}),
    events={
        "message": EventType(
            name="message", describe="message_type 2, IM message", stored=True, build=_im_message
        ),
        "order": EventType(
            name="order", describe="message_type 0, trade order", stored=False, build=_trade_order
        ),
        "probe": EventType(
            name="probe",
            describe="message_type 12, category tree update (metadata the CRM does not store)",
            stored=False,
            build=_category_tree,
        ),
    },
    message_ids=_message_ids,
    new_message_id=lambda seed: alnum_id(seed, 18),
    trace_sender="100000001",
    keys=_keys,
)


# --- sync (§3.5) ---------------------------------------------------------------------------

ORDERS_PATH = "/orders/get"

#: Lazada's item statuses (GetOrders' ``statuses[]``: Lazada has no order status, only the
#: distinct statuses of the order's items, §3.5 and the GetOrders reference) as the CRM's six
CRM_ITEM_STATUS: dict[str, OrderStatus] = {
    "unpaid": "pending",
    # "pending" is Lazada's paid (or confirmed cash-on-delivery) order, waiting to be packed
    "pending": "paid",
    "topack": "paid",
    "packed": "paid",
    "repacked": "paid",
    "toship": "paid",
    "ready_to_ship_pending": "paid",
    "ready_to_ship": "paid",
    "shipping": "shipped",
    "shipped": "shipped",
    # Guess: a failed delivery attempt is still with the carrier (it may be tried again).
    "failed_delivery": "shipped",
    "delivered": "delivered",
    "confirmed": "delivered",
    "canceled": "cancelled",
    # Guess: lost, damaged or scrapped by the carrier, the item never reaches the buyer and
    # is refunded: the CRM has no other value for it.
    "lost": "cancelled",
    "lost_by_3pl": "cancelled",
    "damaged_by_3pl": "cancelled",
    "package_scrapped": "cancelled",
    "returned": "returned",
    # Guess: a delivery that failed for good, and a parcel shipped back, end with the goods
    # back at the seller.
    "failed": "returned",
    "shipped_back": "returned",
    "shipped_back_success": "returned",
    "shipped_back_failed": "returned",
}
#: how far an item still under way has got, least first
_PROGRESS: tuple[OrderStatus, ...] = ("pending", "paid", "shipped", "delivered")


def crm_order_status(statuses: Sequence[str]) -> OrderStatus:
    """One CRM status for an order from its items' statuses: the least advanced status among
    the items still under way (pending < paid < shipped < delivered), so the order is, say,
    "shipped" only once every live item has shipped; "cancelled" or "returned" only when every
    item is (then "returned" if any item came back, else "cancelled")."""
    mapped = [CRM_ITEM_STATUS[status] for status in statuses]
    live = [status for status in mapped if status in _PROGRESS]
    if live:
        return min(live, key=_PROGRESS.index)
    return "returned" if "returned" in mapped else "cancelled"


def _iso(moment: datetime) -> str:
    """A window bound as GetOrders takes it: ISO 8601 with an offset, to the second."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _time(value: object, *, order_id: str, field: str) -> datetime:
    """A Lazada time (``2018-02-09T22:44:30+08:00``) as an aware UTC datetime."""
    moment: datetime | None = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment is None:  # "+0800" (no colon) is not ISO to Python 3.10
            with contextlib.suppress(ValueError):
                moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    if moment is None or moment.tzinfo is None:
        raise UnexpectedResponseError(
            f"order {order_id}: {field} is not a time with an offset",
            platform=PLATFORM,
            field=field,
        )
    return moment.astimezone(timezone.utc)


def synced_order(order: Mapping[str, Any]) -> SyncedOrder:
    """One GetOrders order normalised for the CRM's ``orders``."""
    raw_id = order.get("order_id")
    if not isinstance(raw_id, (int, str)) or isinstance(raw_id, bool) or raw_id == "":
        raise UnexpectedResponseError(
            "/orders/get: an order without order_id", platform=PLATFORM, field="order_id"
        )
    order_id = str(raw_id)
    statuses = order.get("statuses")
    if (
        not isinstance(statuses, list)
        or not statuses
        or not all(isinstance(s, str) and s in CRM_ITEM_STATUS for s in statuses)
    ):
        raise UnexpectedResponseError(
            f"order {order_id}: statuses {statuses!r} is not a list of item statuses nfdoctor"
            " knows",
            platform=PLATFORM,
            field="statuses",
        )
    # What the buyer paid, by GetOrders' own guide: price - voucher + shipping_fee ("price"
    # excludes both); an absent voucher or fee counts as none.
    total = parse_amount(
        order.get("price"), platform=PLATFORM, record=f"order {order_id}", field="price"
    )
    for field, sign in (("voucher", -1), ("shipping_fee", 1)):
        if order.get(field) not in (None, ""):
            total += sign * parse_amount(
                order.get(field), platform=PLATFORM, record=f"order {order_id}", field=field
            )
    # GetOrders names no buyer id (its reference lists customer_first_name, masked, and the
    # addresses, nothing else about the buyer): a buyer_id is used only if one is ever sent.
    buyer_id = order.get("buyer_id")
    buyer = None
    if isinstance(buyer_id, (int, str)) and not isinstance(buyer_id, bool) and buyer_id != "":
        names = [order.get("customer_first_name"), order.get("customer_last_name")]
        name = " ".join(n for n in names if isinstance(n, str) and n.strip())
        buyer = Buyer(external_user_id=str(buyer_id), display_name=name or None)
    return SyncedOrder(
        external_id=order_id,
        platform_status=",".join(statuses),
        status=crm_order_status(statuses),
        total_amount=total,
        # GetOrders names no currency; nfdoctor's Lazada is the Vietnam venture (§3).
        currency="VND",
        created_at=_time(order.get("created_at"), order_id=order_id, field="created_at"),
        updated_at=_time(order.get("updated_at"), order_id=order_id, field="updated_at"),
        buyer=buyer,
        raw=dict(order),
    )


def _read_cursor(cursor: str | None, window: Window) -> tuple[str, datetime, int]:
    """The ``update_after`` a cursor holds (as sent, and as a time) and its ``offset``: the
    window's start and 0 for the first page."""
    if cursor is None:
        return _iso(window.start), window.start, 0
    try:
        data = json.loads(cursor)
        after, offset = data["after"], data["offset"]
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(offset)
        moment = _time(after, order_id="(cursor)", field="after")
    except (ValueError, TypeError, KeyError, UnexpectedResponseError):
        raise ValueError(f"lazada: not a sync cursor of nfdoctor's: {cursor!r}") from None
    return after, moment, offset


def _count(value: object) -> int | None:
    """``countTotal``: a string of digits (or a number); None when absent."""
    if value is None:
        return None
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).isdigit():
        return int(value)
    raise UnexpectedResponseError(
        "/orders/get: countTotal is not a count", platform=PLATFORM, field="countTotal"
    )


async def order_page(
    client: PlatformClient, window: Window, cursor: str | None
) -> Page[SyncedOrder]:
    """One ``/orders/get`` page: orders *updated* in the window, oldest first, 100 at most.

    The cursor is ``{"after": <update_after>, "offset": <n>}``. GetOrders refuses an offset
    past 5000 (§3.5; the API reference's own parameter table says 4500), so when the next
    offset would pass it, the listing goes on from the last order's ``updated_at`` at offset
    0: orders updated in that same second are listed twice, which the engine's upsert
    absorbs."""
    if not isinstance(client, LazadaClient):
        raise TypeError(f"a Lazada order page needs a LazadaClient, not {type(client).__name__}")
    after, after_time, offset = _read_cursor(cursor, window)
    params = {
        "update_after": after,
        "update_before": _iso(window.end),
        "sort_by": "updated_at",
        "sort_direction": "ASC",
        "limit": str(MAX_LIMIT),
        "offset": str(offset),
    }
    body, _, _ = await client._fetch("GET", client.base_url + ORDERS_PATH, params=params)
    data = body.get("data")
    if not isinstance(data, dict):
        raise UnexpectedResponseError("/orders/get without 'data'", platform=PLATFORM, field="data")
    orders = data.get("orders") or []
    if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
        raise UnexpectedResponseError(
            "/orders/get: data.orders is not a list of objects", platform=PLATFORM, field="orders"
        )
    records = tuple(synced_order(order) for order in orders)
    count_total = _count(data.get("countTotal"))
    done = len(orders) < MAX_LIMIT or (
        count_total is not None and offset + len(orders) >= count_total
    )
    next_cursor: str | None = None
    if not done:
        next_after, next_offset = after, offset + MAX_LIMIT
        if next_offset > MAX_OFFSET:
            if records[-1].updated_at <= after_time:
                # More than 5000 orders updated within one second: no way past them.
                raise UnexpectedResponseError(
                    "/orders/get: cannot page past offset 5000, the orders' updated_at does"
                    " not move",
                    platform=PLATFORM,
                    field="updated_at",
                )
            last_text = orders[-1].get("updated_at")
            next_after, next_offset = str(last_text), 0
        next_cursor = json.dumps({"after": next_after, "offset": next_offset})
    # countTotal counts the request's own filter: the window's only before a restart.
    total = count_total if after == _iso(window.start) else None
    return Page(records=records, next_cursor=next_cursor, total=total)


# Chat (§3.9): the seller's IM sessions, newest first, and each one's messages.

SESSIONS_PATH = "/im/session/list"
IM_MESSAGES_PATH = "/im/message/list"
#: sessions per page: each costs at least one message listing, read together
SESSIONS_PER_PAGE = 20
#: the most ``/im/message/list`` returns at once (§3.9)
MAX_IM_PAGE_SIZE = 20
#: ``type``: 1 a user's message, 2 the platform's (skipped: no one in the chat wrote it)
_USER_MESSAGE, _SYSTEM_MESSAGE = 1, 2
#: ``from_account_type``: 1 the buyer, 2 the seller
_FROM_BUYER, _FROM_SELLER = 1, 2
#: ``status``: 0 normal, 1 recalled by its sender
_NORMAL, _RECALLED = 0, 1


def _im_data(body: JsonObject, path: str) -> JsonObject:
    """The ``data`` of an IM answer; IM APIs add ``success``/``err_code``/``err_message``
    (§3.6), so one that says it failed without an error ``code`` is refused here."""
    if body.get("success") in (False, "false"):
        err_code, err_message = body.get("err_code"), body.get("err_message")
        raise UnexpectedResponseError(
            f"{path}: success is false (err_code {err_code!r}: {err_message!r})",
            platform=PLATFORM,
            field="success",
        )
    data = body.get("data")
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"{path} without 'data'", platform=PLATFORM, field="data")
    return data


def _im_id(value: object, *, field: str) -> str:
    """An IM id (opaque string; numbers kept as their exact text)."""
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value):
        return str(value)
    raise UnexpectedResponseError(f"{field} is not an id", platform=PLATFORM, field=field)


def _im_int(value: object, *, field: str, allowed: tuple[int, ...] | None = None) -> int:
    """A whole number sent as a number or a string of digits (IM answers use both)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isdigit():
        number = int(value)
    else:
        raise UnexpectedResponseError(
            f"{field} is not a whole number: {value!r}", platform=PLATFORM, field=field
        )
    if allowed is not None and number not in allowed:
        raise UnexpectedResponseError(
            f"{field} {number} is not one nfdoctor knows", platform=PLATFORM, field=field
        )
    return number


def _im_flag(value: object, *, field: str) -> bool:
    """``has_more``: a JSON boolean, or ``"true"``/``"false"``/0/1 as some answers spell it."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false", 0, 1, "0", "1"):
        return value in ("true", 1, "1")
    raise UnexpectedResponseError(f"{field} is not a boolean", platform=PLATFORM, field=field)


def _ms_time(value: object, *, field: str) -> datetime:
    """Unix milliseconds (``send_time``, ``last_message_time``) as an aware UTC datetime."""
    millis = _im_int(value, field=field)
    return abs_time(millis / 1000, platform=PLATFORM, field=field)


def _now_ms(client: LazadaClient) -> int:
    return int(client.clock().timestamp() * 1000)


def synced_message(
    item: Mapping[str, Any], *, session_id: str, customer: Buyer
) -> SyncedMessage | None:
    """One ``/im/message/list`` message normalised for the CRM's ``messages``; None for a
    system message (``type`` 2). A recalled message (``status`` 1) is kept, without its
    text: it was sent, and the list still shows it, but its sender took the words back."""
    message_id = _im_id(item.get("message_id"), field="message_id")
    kind = _im_int(item.get("type"), field="type", allowed=(_USER_MESSAGE, _SYSTEM_MESSAGE))
    if kind == _SYSTEM_MESSAGE:
        return None
    sender_type = _im_int(
        item.get("from_account_type"),
        field="from_account_type",
        allowed=(_FROM_BUYER, _FROM_SELLER),
    )
    status = item.get("status")
    recalled = status is not None and (
        _im_int(status, field="status", allowed=(_NORMAL, _RECALLED)) == _RECALLED
    )
    body: str | None = None
    if not recalled:
        # ``content`` is a JSON string; a text message's words are its "txt" (an image, an
        # item or an order card has none).
        content: object = None
        with contextlib.suppress(TypeError, ValueError):
            content = json.loads(item["content"])
        if not isinstance(content, dict):
            raise UnexpectedResponseError(
                f"message {message_id}: content is not a JSON object",
                platform=PLATFORM,
                field="content",
            )
        text = content.get("txt")
        body = text if isinstance(text, str) and text else None
    return SyncedMessage(
        external_id=message_id,
        thread_id=session_id,
        customer=customer,
        direction="in" if sender_type == _FROM_BUYER else "out",
        sender_external_id=_im_id(item.get("from_account_id"), field="from_account_id"),
        body=body,
        sent_at=_ms_time(item.get("send_time"), field="send_time"),
        raw=dict(item),
    )


async def _session_messages(
    client: LazadaClient, session: Mapping[str, Any], window: Window, now_ms: int
) -> list[SyncedMessage]:
    """The messages of one session sent in the window: ``/im/message/list`` from now back
    (newest first, §3.9), page by page, until one older than the window or the end."""
    session_id = _im_id(session.get("session_id"), field="session_id")
    # The customer is the session's buyer, whoever sent the message.
    customer = Buyer(external_user_id=_im_id(session.get("buyer_id"), field="buyer_id"))
    start_time, last_message_id = now_ms, ""
    messages: list[SyncedMessage] = []
    while True:
        params = {
            "session_id": session_id,
            "start_time": str(start_time),
            "page_size": str(MAX_IM_PAGE_SIZE),
        }
        if last_message_id:
            params["last_message_id"] = last_message_id
        body, _, _ = await client._fetch("GET", client.base_url + IM_MESSAGES_PATH, params=params)
        data = _im_data(body, IM_MESSAGES_PATH)
        older = False
        for item in object_list(data, "message_list", where=IM_MESSAGES_PATH, platform=PLATFORM):
            sent_at = _ms_time(item.get("send_time"), field="send_time")
            if sent_at >= window.end:
                continue
            if sent_at < window.start:
                older = True  # newest first: every later message is older still
                break
            message = synced_message(item, session_id=session_id, customer=customer)
            if message is not None:
                messages.append(message)
        if older or not _im_flag(data.get("has_more"), field="has_more"):
            return messages
        next_start = _im_int(data.get("next_start_time"), field="next_start_time")
        next_last = _im_id(data.get("last_message_id"), field="last_message_id")
        if (next_start, next_last) == (start_time, last_message_id):
            # The same position again would list the same page for ever.
            raise UnexpectedResponseError(
                f"{IM_MESSAGES_PATH}: has_more, but next_start_time and last_message_id do not"
                " move on",
                platform=PLATFORM,
                field="last_message_id",
            )
        start_time, last_message_id = next_start, next_last


def _read_session_cursor(cursor: str | None, now_ms: int) -> tuple[int, str]:
    """The session list's ``start_time`` and ``last_session_id`` a cursor holds: now and
    none for the first page."""
    if cursor is None:
        return now_ms, ""
    try:
        data = json.loads(cursor)
        start_time, last_session_id = data["start_time"], data["last_session_id"]
        if not isinstance(start_time, int) or isinstance(start_time, bool) or start_time < 0:
            raise ValueError(start_time)
        if not isinstance(last_session_id, str):
            raise ValueError(last_session_id)
    except (ValueError, TypeError, KeyError):
        raise ValueError(f"lazada: not a sync cursor of nfdoctor's: {cursor!r}") from None
    return start_time, last_session_id


async def message_page(
    client: PlatformClient, window: Window, cursor: str | None
) -> Page[SyncedMessage]:
    """One ``/im/session/list`` page (sessions by their latest message, newest first) and,
    for each session whose latest message is not older than the window, its messages sent in
    the window, the sessions read together.

    The cursor is ``{"start_time": <ms>, "last_session_id": "<id>"}``, the session list's own
    paging state. The list has no time filter but pages back in time from ``start_time``, so
    a page holding a session last active before the window's start ends the walk (the order
    is inferred from that paging, not documented)."""
    if not isinstance(client, LazadaClient):
        raise TypeError(f"a Lazada page needs a LazadaClient, not {type(client).__name__}")
    now_ms = _now_ms(client)
    start_time, last_session_id = _read_session_cursor(cursor, now_ms)
    params = {"start_time": str(start_time), "page_size": str(SESSIONS_PER_PAGE)}
    if last_session_id:
        params["last_session_id"] = last_session_id
    body, _, _ = await client._fetch("GET", client.base_url + SESSIONS_PATH, params=params)
    data = _im_data(body, SESSIONS_PATH)
    current: list[JsonObject] = []
    past_the_window = False
    for session in object_list(data, "session_list", where=SESSIONS_PATH, platform=PLATFORM):
        latest = _ms_time(session.get("last_message_time"), field="last_message_time")
        if latest < window.start:
            past_the_window = True  # nothing in it; the sessions after it are older still
        else:
            current.append(session)
    read = await asyncio.gather(*(_session_messages(client, s, window, now_ms) for s in current))
    records = tuple(message for listed in read for message in listed)
    if past_the_window or not _im_flag(data.get("has_more"), field="has_more"):
        return Page(records=records, next_cursor=None)
    next_start = _im_int(data.get("next_start_time"), field="next_start_time")
    next_last = _im_id(data.get("last_session_id"), field="last_session_id")
    if (next_start, next_last) == (start_time, last_session_id):
        raise UnexpectedResponseError(
            f"{SESSIONS_PATH}: has_more, but next_start_time and last_session_id do not move on",
            platform=PLATFORM,
            field="last_session_id",
        )
    next_cursor = json.dumps({"start_time": next_start, "last_session_id": next_last})
    return Page(records=records, next_cursor=next_cursor)


SYNC = SyncSpec(
    orders=StreamSpec(
        name="orders",
        max_window=None,
        page=order_page,
        source="platforms.md §3.5 (GetOrders /orders/get)",
    ),
    messages=StreamSpec(
        name="messages",
        max_window=None,
        page=message_page,
        # the session list has no time filter: every window walks it from now back
        grid=False,
        source="platforms.md §3.9 (IM /im/session/list, /im/message/list)",
    ),
    default_rate_per_s=10.0,
    rate_confidence="L",
    rate_source=(
        "platforms.md §3.7: per-API QPS limits exist but are unpublished; a breach gives a"
        " 1-second ban (ApiCallLimit); inventory APIs 50 calls/s per seller [LZ-QA · H];"
        " daily caps 10,000 (Test app) and 10 million (Online app) [LZ-ISV · M]"
    ),
)


SPEC = PlatformSpec(
    name=PLATFORM,
    title="Lazada",
    accounts_key="shops",
    account_id_key="seller_id",
    account_noun="seller",
    api_url=LAZADA_BASE_URL,
    token_url=LAZADA_AUTH_URL,
    token_url_key="auth_url",
    # ±7200 s (§3.2)
    clock_tolerance_s=(7200.0, 7200.0),
    config_model=LazadaConfig,
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
