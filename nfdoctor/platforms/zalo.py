"""Zalo Official Account API and OAuth v4: auth, error classification, client (§6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import httpx

from nfdoctor.platforms import DEFAULT_URLS
from nfdoctor.platforms.base import (
    Clock,
    JsonObject,
    PingResult,
    PlatformAuth,
    PlatformClient,
    TokenSet,
    appsecret_proof,
    decode_json,
    envelope_error,
    http_fallback_error,
    rebuild,
    rel_time,
    status_only_error,
    unknown_code_category,
    utc_now,
)
from nfdoctor.platforms.errors import (
    Category,
    RefreshTokenInvalidError,
    TaxonomyError,
    UnexpectedResponseError,
    scrub,
)

__all__ = [
    "ZALO_BASE_URL",
    "ZALO_OAUTH_URL",
    "ZaloAuth",
    "ZaloClient",
    "classify_zalo",
]

PLATFORM = "zalo"
ZALO_BASE_URL = DEFAULT_URLS["zalo"][0]
ZALO_OAUTH_URL = str(DEFAULT_URLS["zalo"][1])
TOKEN_PATH = "/oa/access_token"
MAX_COUNT = 10
#: refresh tokens live 3 months (§6.3); the token response does not say when they expire
REFRESH_TTL_S = 90 * 86400

_CODES: dict[int, Category] = {
    -216: Category.TOKEN_INVALID,
    -220: Category.TOKEN_EXPIRED,
    -124: Category.TOKEN_INVALID,
    452: Category.TOKEN_INVALID,
    -242: Category.BAD_SIGNATURE,
    -1241: Category.BAD_SIGNATURE,
    -14002: Category.BAD_CREDENTIALS,
    -14003: Category.BAD_CREDENTIALS,
    -209: Category.BAD_CREDENTIALS,
    -219: Category.BAD_CREDENTIALS,
    112: Category.BAD_CREDENTIALS,
    -204: Category.BAD_CREDENTIALS,
    -205: Category.BAD_CREDENTIALS,
    -32: Category.RATE_LIMITED,
    -201: Category.BAD_PARAMETERS,
    -240: Category.BAD_PARAMETERS,
    -212: Category.PERMISSION_DENIED,
    -223: Category.PERMISSION_DENIED,
    -213: Category.PERMISSION_DENIED,
    -230: Category.PERMISSION_DENIED,
    -232: Category.PERMISSION_DENIED,
    -234: Category.PERMISSION_DENIED,
    -221: Category.PERMISSION_DENIED,
    -224: Category.PERMISSION_DENIED,
    -211: Category.PERMISSION_DENIED,
    -218: Category.PERMISSION_DENIED,
}


def _int_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def classify_zalo(
    response: httpx.Response,
    *,
    now: datetime | None = None,
    secrets: tuple[str, ...] = (),
) -> TaxonomyError | None:
    """Classify a Zalo response by ``error`` (success: ``error == 0``), usually inside HTTP 200."""
    now = now or utc_now()
    fallback = http_fallback_error(response, PLATFORM, now)
    if fallback is not None:
        return fallback
    body = decode_json(response, PLATFORM)
    raw = body.get("error")
    code = _int_code(raw)
    if raw is None or code == 0:
        return status_only_error(response, PLATFORM, now)
    category = _CODES.get(code) if code is not None else None
    if category is None:
        category = unknown_code_category(response)
    message = body.get("message") or body.get("error_description") or body.get("error_name")
    return envelope_error(
        category,
        platform=PLATFORM,
        response=response,
        code=str(raw),
        request_id=None,
        platform_message=scrub(str(message), secrets) if message else None,
        now=now,
    )


class ZaloAuth(PlatformAuth):
    """Zalo auth: header ``access_token`` and, when configured, header ``appsecret_proof``."""

    platform = PLATFORM

    def __init__(
        self,
        *,
        access_token: str,
        app_id: str | None = None,
        app_secret: str | None = None,
        send_proof: bool = True,
        refresh_token: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
        clock: Clock = utc_now,
        oauth_url: str = ZALO_OAUTH_URL,
        refresh_ttl_s: float = REFRESH_TTL_S,
    ) -> None:
        super().__init__(
            access_token=access_token,
            clock=clock,
            refresh_token=refresh_token,
            on_refresh=on_refresh,
        )
        self.app_id = app_id
        self.signing_secret = app_secret
        self.send_proof = send_proof
        self.oauth_url = oauth_url.rstrip("/")
        self.refresh_ttl_s = refresh_ttl_s

    def sign(self, request: httpx.Request) -> httpx.Request:
        """Put the token in the ``access_token`` header (not ``Authorization: Bearer``)."""
        token = self.access_token or ""
        headers = {"access_token": token}
        if self.signing_secret and self.send_proof:
            headers["appsecret_proof"] = appsecret_proof(self.signing_secret, token)
        return rebuild(request, headers=headers)

    def classify(self, response: httpx.Response) -> TaxonomyError | None:
        """Classify with this auth's clock, scrubbing its secrets."""
        return classify_zalo(response, now=self.clock(), secrets=self.secrets())

    def refresh_request(self, refresh_token: str) -> httpx.Request:
        """``POST /v4/oa/access_token``: form body, app secret in the ``secret_key`` header."""
        return httpx.Request(
            "POST",
            self.oauth_url + TOKEN_PATH,
            data={
                "refresh_token": refresh_token,
                "app_id": self.app_id or "",
                "grant_type": "refresh_token",
            },
            headers={"secret_key": self.signing_secret or ""},
        )

    def build_refresh_request(self, refresh_token: str) -> httpx.Request | None:
        """The refresh call, when app id and secret are configured."""
        if not self.app_id or not self.signing_secret:
            return None
        return self.refresh_request(refresh_token)

    def parse_refresh(self, response: httpx.Response) -> TokenSet:
        """Tokens from the OAuth response; ``expires_in`` is REL seconds as a string."""
        return parse_zalo_tokens(response, now=self.clock(), refresh_ttl_s=self.refresh_ttl_s)


def parse_zalo_tokens(response: httpx.Response, *, now: datetime, refresh_ttl_s: float) -> TokenSet:
    """A :class:`TokenSet` from the OAuth v4 token response, or RefreshTokenInvalidError."""
    error = http_fallback_error(response, PLATFORM, now)
    if error is not None:
        raise error
    body = decode_json(response, PLATFORM)
    access, refresh = body.get("access_token"), body.get("refresh_token")
    if not isinstance(access, str) or not access:
        # No documented code for a reused/expired refresh token: any token response without
        # access_token is terminal (§6.3); retrying a consumed refresh token cannot succeed.
        raw = body.get("error")
        raise RefreshTokenInvalidError(
            f"zalo refresh failed (error {raw}, HTTP {response.status_code}); re-run OA consent",
            platform=PLATFORM,
            http_status=response.status_code,
            code=str(raw) if raw is not None else None,
        )
    expires_in = body.get("expires_in")
    if expires_in is None or not isinstance(refresh, str):
        raise UnexpectedResponseError(
            "token response lacks expires_in/refresh_token",
            platform=PLATFORM,
            http_status=response.status_code,
            field="expires_in" if expires_in is None else "refresh_token",
        )
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        # "90000": a string of REL seconds
        access_expires_at=rel_time(now, expires_in, platform=PLATFORM, field="expires_in"),
        refresh_expires_at=now + timedelta(seconds=refresh_ttl_s),
    )


class ZaloClient(PlatformClient):
    """Zalo OA client: ping, refresh, recent chats and per-user conversations."""

    auth: ZaloAuth

    platform = PLATFORM

    def __init__(
        self,
        *,
        access_token: str,
        oa_id: str | None = None,
        app_id: str | None = None,
        app_secret: str | None = None,
        send_proof: bool = True,
        refresh_token: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
        base_url: str = ZALO_BASE_URL,
        oauth_url: str = ZALO_OAUTH_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        timeout_s: float = 10.0,
        refresh_ttl_s: float = REFRESH_TTL_S,
    ) -> None:
        super().__init__(
            base_url=base_url, transport=transport, http=http, clock=clock, timeout_s=timeout_s
        )
        self.oa_id = oa_id
        self.auth = ZaloAuth(
            access_token=access_token,
            app_id=app_id,
            app_secret=app_secret,
            send_proof=send_proof,
            refresh_token=refresh_token,
            on_refresh=on_refresh,
            clock=clock,
            oauth_url=oauth_url,
            refresh_ttl_s=refresh_ttl_s,
        )

    async def ping(self) -> PingResult:
        """``GET /v2.0/oa/getoa``; the OA id may be ``oaid`` or ``oa_id`` (§6.4)."""
        body, response, latency = await self._call(
            "GET", self.base_url + "/v2.0/oa/getoa", auth=self.auth
        )
        problems: list[str] = []
        data = body.get("data")
        if not isinstance(data, dict):
            problems.append("missing data")
        else:
            if "name" not in data:
                problems.append("missing data.name")
            if "oaid" not in data and "oa_id" not in data:
                problems.append("missing data.oaid (or oa_id)")
        return self._ping_result(response, latency, problems)

    async def _offset_pages(
        self, path: str, query: dict[str, object], count: int
    ) -> AsyncIterator[JsonObject]:
        count = max(1, min(count, MAX_COUNT))
        offset = 0
        while True:
            data_param = json.dumps({**query, "offset": offset, "count": count})
            body, _, _ = await self._call(
                "GET", self.base_url + path, params={"data": data_param}, auth=self.auth
            )
            items = body.get("data")
            if items is None:
                items = []
            if not isinstance(items, list):
                raise UnexpectedResponseError(
                    f"{path}: 'data' is not an array", platform=PLATFORM, field="data"
                )
            for item in items:
                if isinstance(item, dict):
                    yield item
            # No end marker is documented: a short or empty page ends the list (§6.5, L).
            if len(items) < count:
                return
            offset += count

    def list_conversations(self, *, count: int = MAX_COUNT) -> AsyncIterator[JsonObject]:
        """Recent chats (``listrecentchat``), ≤10 per page, until a short page."""
        return self._offset_pages("/v2.0/oa/listrecentchat", {}, count)

    def list_messages(self, user_id: str, *, count: int = MAX_COUNT) -> AsyncIterator[JsonObject]:
        """Messages with one user (``conversation``), ≤10 per page, until a short page."""
        return self._offset_pages("/v2.0/oa/conversation", {"user_id": user_id}, count)
