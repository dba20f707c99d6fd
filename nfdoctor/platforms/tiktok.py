"""TikTok Shop Open API (202309+): signing, error classification, client (platforms.md §4)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime

import httpx

from nfdoctor.platforms import DEFAULT_URLS
from nfdoctor.platforms.base import (
    Clock,
    JsonObject,
    PingResult,
    PlatformAuth,
    PlatformClient,
    TokenSet,
    abs_time,
    decode_json,
    envelope_error,
    http_fallback_error,
    raise_for_refresh,
    rebuild,
    status_only_error,
    unknown_code_category,
    utc_now,
)
from nfdoctor.platforms.errors import (
    BadParametersError,
    Category,
    TaxonomyError,
    UnexpectedResponseError,
    scrub,
)

__all__ = [
    "TIKTOK_AUTH_URL",
    "TIKTOK_BASE_URL",
    "TiktokAuth",
    "TiktokClient",
    "classify_tiktok",
    "tiktok_sign",
]

PLATFORM = "tiktok"
TIKTOK_BASE_URL = DEFAULT_URLS["tiktok"][0]
TIKTOK_AUTH_URL = str(DEFAULT_URLS["tiktok"][1])
REFRESH_PATH = "/api/v2/token/refresh"
SHOPS_PATH = "/authorization/202309/shops"
ORDER_SEARCH_PATH = "/order/202309/orders/search"
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


def classify_tiktok(
    response: httpx.Response,
    *,
    now: datetime | None = None,
    secrets: tuple[str, ...] = (),
    overloaded_category: Category = Category.TOKEN_INVALID,
) -> TaxonomyError | None:
    """Classify a TikTok response by its integer ``code`` (success: ``code == 0``)."""
    now = now or utc_now()
    fallback = http_fallback_error(response, PLATFORM, now)
    if fallback is not None:
        return fallback
    body = decode_json(response, PLATFORM)
    code = body.get("code")
    if code == 0 or code is None:
        return status_only_error(response, PLATFORM, now)
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
    return envelope_error(
        category,
        platform=PLATFORM,
        response=response,
        code=str(code),
        request_id=str(request_id) if request_id else None,
        platform_message=scrub(str(message), secrets) if message else None,
        now=now,
    )


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

    def classify(self, response: httpx.Response) -> TaxonomyError | None:
        """Classify with this auth's clock and 36009004 policy."""
        return classify_tiktok(
            response,
            now=self.clock(),
            secrets=self.secrets(),
            overloaded_category=self.overloaded_category,
        )

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
        return parse_tiktok_tokens(response, now=self.clock(), secrets=self.secrets())


def parse_tiktok_tokens(
    response: httpx.Response, *, now: datetime, secrets: tuple[str, ...] = ()
) -> TokenSet:
    """A :class:`TokenSet` from a TikTok token response; expiries are ABS Unix seconds."""
    error = classify_tiktok(response, now=now, secrets=secrets)
    raise_for_refresh(error)
    body = decode_json(response, PLATFORM)
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
        *,
        app_key: str,
        app_secret: str,
        access_token: str,
        shop_id: str | None = None,
        shop_cipher: str | None = None,
        refresh_token: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
        base_url: str = TIKTOK_BASE_URL,
        auth_url: str = TIKTOK_AUTH_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        timeout_s: float = 10.0,
        overloaded_category: Category = Category.TOKEN_INVALID,
    ) -> None:
        super().__init__(
            base_url=base_url, transport=transport, http=http, clock=clock, timeout_s=timeout_s
        )
        self.shop_id = shop_id
        self.shop_cipher = shop_cipher
        self.auth = TiktokAuth(
            app_key=app_key,
            app_secret=app_secret,
            access_token=access_token,
            refresh_token=refresh_token,
            on_refresh=on_refresh,
            clock=clock,
            base_url=base_url,
            auth_url=auth_url,
            overloaded_category=overloaded_category,
        )

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

    async def list_orders(
        self, since: datetime, until: datetime, *, page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[JsonObject]:
        """Full order objects created in [since, until), following ``next_page_token``."""
        if self.shop_cipher is None:
            body, _, _ = await self._shops()
            data = body.get("data")
            for shop in (data.get("shops") or []) if isinstance(data, dict) else []:
                if isinstance(shop, dict):
                    self._remember_cipher(shop)
            if self.shop_cipher is None:
                raise BadParametersError(
                    "no shop_cipher for this shop in /authorization/202309/shops",
                    platform=PLATFORM,
                )
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        filters = {
            "create_time_ge": int(since.timestamp()),
            "create_time_lt": int(until.timestamp()),
        }
        page_token = ""
        while True:
            params = {
                "shop_cipher": self.shop_cipher,
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
