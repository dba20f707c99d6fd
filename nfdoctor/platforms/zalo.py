"""Zalo Official Account API and OAuth v4: auth, error classification, client (§6)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field, field_validator

from nfdoctor.config_fields import DigitsId, PositiveSpan, Section, Url, unique_accounts
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
    appsecret_proof,
    decode_json,
    read_response,
    rebuild,
    rel_time,
    seconds_of,
    status_only_error,
    unknown_code_category,
    unreadable_body_error,
    utc_now,
)
from nfdoctor.platforms.errors import (
    Category,
    RateLimitedError,
    RefreshTokenInvalidError,
    TaxonomyError,
    TransientError,
    UnexpectedResponseError,
    scrub,
)
from nfdoctor.platforms.spec import Capabilities, ClientInputs, PlatformSection, PlatformSpec
from nfdoctor.platforms.sync import Buyer, Page, StreamSpec, SyncedMessage, SyncSpec, Window
from nfdoctor.platforms.webhook import (
    DeliveryInputs,
    EventInputs,
    EventType,
    SignatureScheme,
    WebhookKeys,
    WebhookSpec,
    digits_id,
    require_secret,
    utf8_json,
)
from nfdoctor.secrets.reference import SecretRef

__all__ = [
    "SPEC",
    "SYNC",
    "ZALO_BASE_URL",
    "ZALO_OAUTH_URL",
    "ZaloAuth",
    "ZaloClient",
    "ZaloConfig",
    "ZaloOA",
    "classify_zalo",
    "exchange_zalo_code",
    "zalo_consent_url",
]

PLATFORM = "zalo"
ZALO_BASE_URL = "https://openapi.zalo.me"
ZALO_OAUTH_URL = "https://oauth.zaloapp.com/v4"
TOKEN_PATH = "/oa/access_token"
PERMISSION_PATH = "/oa/permission"
GETOA_PATH = "/v2.0/oa/getoa"
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


def zalo_envelope(body: JsonObject, response: httpx.Response) -> Envelope | None:
    """Zalo's envelope: ``error`` (0 on success), usually inside HTTP 200, and a message in
    ``message``, ``error_description`` or ``error_name``."""
    raw = body.get("error")
    code = _int_code(raw)
    if raw is None or code == 0:
        return None
    category = _CODES.get(code) if code is not None else None
    message = body.get("message") or body.get("error_description") or body.get("error_name")
    return Envelope(
        code=str(raw),
        category=category or unknown_code_category(response),
        message=str(message) if message else None,
    )


def classify_zalo(
    response: httpx.Response,
    *,
    now: datetime | None = None,
    secrets: tuple[str, ...] = (),
) -> TaxonomyError | None:
    """Classify a Zalo response by ``error`` (success: ``error == 0``), usually inside HTTP 200."""
    return read_response(
        response, platform=PLATFORM, envelope=zalo_envelope, now=now or utc_now(), secrets=secrets
    )[1]


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

    def envelope(self, body: JsonObject, response: httpx.Response) -> Envelope | None:
        """See :func:`zalo_envelope`."""
        return zalo_envelope(body, response)

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
    try:
        body = decode_json(response, PLATFORM)
    except UnexpectedResponseError as exc:
        raise unreadable_body_error(response, exc, PLATFORM, now) from None
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

    def __init__(self, auth: ZaloAuth, session: ApiSession, *, oa_id: str | None = None) -> None:
        super().__init__(auth, session)
        self.oa_id = oa_id

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


# --- the platform's declaration -----------------------------------------------------------


class ZaloOA(Section):
    """One Zalo Official Account."""

    oa_id: DigitsId
    name: str | None = None
    oa_secret: SecretRef | None = None


class ZaloConfig(PlatformSection):
    """Zalo app with its Official Accounts."""

    app_id: str
    secret_key: SecretRef
    oauth_url: Url | None = None  # token host (default https://oauth.zaloapp.com/v4)
    # `token authorize`: the OA's Callback URL in the app's settings (Zalo refuses any other,
    # -14003). Unset: a loopback URL.
    redirect_uri: Url | None = None
    # Low confidence (platforms.md §6.2): whether the OA API wants appsecret_proof.
    appsecret_proof: bool = True
    # The "3 months" refresh-token lifetime is not in the response (platforms.md §6.3).
    refresh_token_lifetime: PositiveSpan = timedelta(seconds=REFRESH_TTL_S)
    # Low confidence (platforms.md §6.8): which secret signs webhook deliveries (most sources:
    # the OA Secret Key of the app's Webhook page; one: the App Secret) and whether the mac
    # starts with the app_id (the SDK) or the OA id (some production code).
    webhook_secret: Literal["oa_secret", "secret_key"] = "oa_secret"
    webhook_mac_id: Literal["app_id", "oa_id"] = "app_id"
    oas: list[ZaloOA] = Field(default_factory=list)

    @field_validator("oas")
    @classmethod
    def _unique(cls, value: list[ZaloOA]) -> list[ZaloOA]:
        return unique_accounts(value, "oa_id")


def _build(inputs: ClientInputs[ZaloConfig]) -> ZaloClient:
    section = inputs.section
    auth = ZaloAuth(
        access_token=inputs.access_token,
        app_id=section.app_id,
        app_secret=inputs.secret("secret_key"),
        send_proof=section.appsecret_proof,
        refresh_token=inputs.refresh_token,
        on_refresh=inputs.on_refresh,
        clock=inputs.clock,
        oauth_url=inputs.token_url or ZALO_OAUTH_URL,
        refresh_ttl_s=section.refresh_token_lifetime.total_seconds(),
    )
    return ZaloClient(auth, inputs.session, oa_id=inputs.account_id)


# --- authorization (§6.3) -----------------------------------------------------------------


def zalo_consent_url(
    *, oauth_url: str, app_id: str, redirect_uri: str, code_challenge: str, state: str
) -> str:
    """``{oauth}/v4/oa/permission?app_id&redirect_uri&code_challenge&state``: S256 implied,
    no ``code_challenge_method``, ``scope`` or ``response_type`` (§6.3)."""
    query = urlencode(
        [
            ("app_id", app_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", code_challenge),
            ("state", state),
        ]
    )
    return f"{oauth_url.rstrip('/')}{PERMISSION_PATH}?{query}"


def _oauth_url(section: ZaloConfig) -> str:
    return str(section.oauth_url).rstrip("/") if section.oauth_url else ZALO_OAUTH_URL


def _consent_url(inputs: ConsentInputs[ZaloConfig]) -> str:
    assert inputs.code_challenge is not None  # AUTHORIZATION.pkce: the service makes one
    return zalo_consent_url(
        oauth_url=_oauth_url(inputs.section),
        app_id=inputs.section.app_id,
        redirect_uri=inputs.redirect_uri,
        code_challenge=inputs.code_challenge,
        state=inputs.state,
    )


def parse_zalo_code_tokens(
    response: httpx.Response, *, now: datetime, refresh_ttl_s: float, secrets: tuple[str, ...]
) -> TokenSet:
    """The tokens a code bought, or why not: Zalo answers a refused code with HTTP 200 and
    ``error``/``error_name``/``error_description`` instead of ``access_token`` (§6.3)."""
    try:
        body = decode_json(response, PLATFORM)
    except UnexpectedResponseError as exc:
        raise unreadable_body_error(response, exc, PLATFORM, now) from None
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        status = status_only_error(response, PLATFORM, now)
        if isinstance(status, (TransientError, RateLimitedError)):
            raise status
        raw = body.get("error")
        said = body.get("error_description") or body.get("error_name") or body.get("message")
        raise RefreshTokenInvalidError(
            f"zalo error {raw}: no access_token for the code (HTTP {response.status_code})",
            platform=PLATFORM,
            http_status=response.status_code,
            code=str(raw) if raw is not None else None,
            platform_message=scrub(str(said), secrets) if said else None,
        )
    return parse_zalo_tokens(response, now=now, refresh_ttl_s=refresh_ttl_s)


async def exchange_zalo_code(
    client: ZaloClient,
    code: str,
    *,
    code_verifier: str,
    oa_id: str | None = None,
    secret_found: Callable[[str], None] = lambda _: None,
) -> Grant:
    """``POST /v4/oa/access_token`` (form: ``code``, ``app_id``, ``grant_type=
    authorization_code``, ``code_verifier``; header ``secret_key``). The response does not
    name the OA: without ``oa_id`` (the redirect's), the new token's ``getoa`` says it."""
    auth = client.auth
    request = httpx.Request(
        "POST",
        auth.oauth_url + TOKEN_PATH,
        data={
            "code": code,
            "app_id": auth.app_id or "",
            "grant_type": "authorization_code",
            "code_verifier": code_verifier,
        },
        headers={"secret_key": auth.signing_secret or ""},
    )
    request.extensions["timeout"] = httpx.Timeout(client.timeout_s).as_dict()
    response, _ = await client._send(request)
    tokens = parse_zalo_code_tokens(
        response,
        now=client.clock(),
        refresh_ttl_s=auth.refresh_ttl_s,
        secrets=(*auth.secrets(), code, code_verifier),
    )
    secret_found(tokens.access_token)
    secret_found(tokens.refresh_token)
    if oa_id is not None:
        return Grant(tokens=tokens, account_ids=(oa_id,))
    auth.access_token = tokens.access_token
    body, _, _ = await client._call("GET", client.base_url + GETOA_PATH, auth=auth)
    data = body.get("data")
    found = (data.get("oaid") or data.get("oa_id")) if isinstance(data, dict) else None
    named = (str(found),) if isinstance(found, (str, int)) and not isinstance(found, bool) else ()
    return Grant(tokens=tokens, account_ids=named)


async def _exchange(inputs: ExchangeInputs[ZaloConfig]) -> Grant:
    assert isinstance(inputs.client, ZaloClient)
    assert inputs.code_verifier is not None
    return await exchange_zalo_code(
        inputs.client,
        inputs.code,
        code_verifier=inputs.code_verifier,
        oa_id=inputs.account_id,
        secret_found=inputs.secret_found,
    )


AUTHORIZATION: AuthorizationSpec[ZaloConfig] = AuthorizationSpec(
    consent_url=_consent_url,
    exchange=_exchange,
    redirect_uri=lambda section: str(section.redirect_uri) if section.redirect_uri else None,
    # Whether Zalo echoes state is disputed (§6.3): a different state is refused, a missing
    # one accepted, since the PKCE verifier (which never leaves this process) already binds
    # the code to this run.
    state="if_echoed",
    pkce=True,
    account_source="callback",
    account_param="oa_id",
    code_lifetime=timedelta(minutes=10),
    console="the OA's Callback URL in the Zalo app's settings (Official Account → Callback)",
)


# --- webhooks (§6.8) -----------------------------------------------------------------------


def _mac(keys: WebhookKeys, delivery: DeliveryInputs) -> str:
    # Plain SHA-256 over the concatenation, not an HMAC (§6.8, High for the order).
    message = (
        (keys.app_key or "").encode("utf-8")
        + delivery.body
        + (delivery.timestamp or "").encode("utf-8")
        + keys.secret.encode("utf-8")
    )
    return hashlib.sha256(message).hexdigest()


def _body_timestamp(body: bytes) -> str | None:
    """The body's ``timestamp`` field, the signed timestamp (§6.8, Medium-High)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    value = payload.get("timestamp") if isinstance(payload, dict) else None
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _milliseconds(inputs: EventInputs) -> str:
    # Ids and the timestamp travel as strings (§6.8): ids exceed 2**53.
    return str(int(inputs.now.timestamp() * 1000))


def _user_send_text(inputs: EventInputs) -> dict[str, Any]:
    return {
        "app_id": inputs.app_id or "",
        "sender": {"id": inputs.sender_id},
        "recipient": {"id": inputs.account_id},
        "user_id_by_app": digits_id(inputs.sender_id.encode() + b"by-app", 18),
        "event_name": "user_send_text",
        "message": {"text": inputs.text, "msg_id": inputs.message_id},
        "timestamp": _milliseconds(inputs),
    }


def _follow(inputs: EventInputs) -> dict[str, Any]:
    return {
        "app_id": inputs.app_id or "",
        "oa_id": inputs.account_id,
        "follower": {"id": inputs.sender_id},
        "user_id_by_app": digits_id(inputs.sender_id.encode() + b"by-app", 18),
        "event_name": "follow",
        "source": "oa_profile",
        "timestamp": _milliseconds(inputs),
    }


def _user_received_message(inputs: EventInputs) -> dict[str, Any]:
    # A ZNS delivery receipt: the user's phone received a notification. Nothing is stored.
    return {
        "app_id": inputs.app_id or "",
        "sender": {"id": inputs.account_id},
        "recipient": {"id": inputs.sender_id},
        "event_name": "user_received_message",
        "message": {"delivery_time": _milliseconds(inputs), "msg_id": inputs.message_id},
        "timestamp": _milliseconds(inputs),
    }


def _message_ids(payload: Any) -> list[tuple[str, str]]:
    if not isinstance(payload, dict) or not str(payload.get("event_name", "")).startswith(
        "user_send_"
    ):
        return []
    message = payload.get("message")
    recipient = payload.get("recipient")
    if not isinstance(message, dict) or not isinstance(recipient, dict):
        return []
    if "msg_id" not in message or "id" not in recipient:
        return []
    return [(str(recipient["id"]), str(message["msg_id"]))]


def _keys(
    section: ZaloConfig, account_id: str, secret: Callable[[str], str | None], path: str
) -> WebhookKeys:
    first = section.app_id if section.webhook_mac_id == "app_id" else account_id
    if section.webhook_secret == "secret_key":
        return WebhookKeys(
            secret=require_secret(secret, f"{path}.secret_key"),
            secret_path=f"{path}.secret_key",
            app_key=first,
        )
    index = next(i for i, oa in enumerate(section.oas) if str(oa.oa_id) == account_id)
    key_path = f"{path}.oas[{index}].oa_secret"
    return WebhookKeys(secret=require_secret(secret, key_path), secret_path=key_path, app_key=first)


WEBHOOK = WebhookSpec(
    signature=SignatureScheme(
        header="X-ZEvent-Signature",
        prefix="mac=",
        digest=_mac,
        describe="X-ZEvent-Signature: mac=SHA256(app_id + raw body + timestamp + OA Secret Key)",
        timestamp=_body_timestamp,
    ),
    encode=utf8_json,
    deadline_s=2.0,
    retries="30 s, 5 min, 15 min, 30 min, 1 h with a num_retry header, or re-sends for 12 h "
    "and then disables the webhook: sources conflict (§6.8, Low-Medium)",
    port_allowed=False,
    events={
        "message": EventType(
            name="message", describe="user_send_text", stored=True, build=_user_send_text
        ),
        "follow": EventType(name="follow", describe="follow", stored=False, build=_follow),
        "probe": EventType(
            name="probe",
            describe="user_received_message (a ZNS delivery receipt the CRM does not store)",
            stored=False,
            build=_user_received_message,
            headers={"X-ZEvent-Server": "ZNS"},
        ),
    },
    message_ids=_message_ids,
    new_message_id=lambda seed: hashlib.sha256(seed).hexdigest()[:19],
    trace_sender="1000000000000000001",
    keys=_keys,
)


# --- sync (§6.5) ---------------------------------------------------------------------------

RECENT_CHATS_PATH = "/v2.0/oa/listrecentchat"
CONVERSATION_PATH = "/v2.0/oa/conversation"


async def _data_array(client: ZaloClient, path: str, query: dict[str, object]) -> list[JsonObject]:
    """A GET whose one ``data`` query parameter is JSON, answered by a bare array (§6.5)."""
    body, _, _ = await client._fetch(
        "GET", client.base_url + path, params={"data": json.dumps(query)}
    )
    items = body.get("data")
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnexpectedResponseError(
            f"{path}: 'data' is not an array of objects", platform=PLATFORM, field="data"
        )
    return items


def _id(item: Mapping[str, Any], field: str) -> str | None:
    value = item.get(field)
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value):
        return str(value)  # ids exceed 2**53: kept as the exact text (or Python int)
    return None


def _sent_at(item: Mapping[str, Any]) -> datetime:
    """``time``: Unix milliseconds."""
    millis = seconds_of(item.get("time"), platform=PLATFORM, field="time")
    return abs_time(millis / 1000, platform=PLATFORM, field="time")


def _from_user(item: Mapping[str, Any], oa_id: str | None) -> bool:
    """Whether the user (not the OA) sent this message: ``from_id``/``to_id`` against the OA's
    id, else ``src`` (1: the user, 0: the OA)."""
    sender, recipient = _id(item, "from_id"), _id(item, "to_id")
    if oa_id is not None and sender == oa_id:
        return False
    if oa_id is not None and recipient == oa_id:
        return True
    src = item.get("src")
    if src in (0, 1, "0", "1"):
        return str(src) == "1"
    raise UnexpectedResponseError(
        "a message that names neither the OA nor its src", platform=PLATFORM, field="src"
    )


def _user(item: Mapping[str, Any], oa_id: str | None) -> Buyer:
    """The user a message was exchanged with, and the name Zalo shows for them."""
    side = "from" if _from_user(item, oa_id) else "to"
    user_id = _id(item, f"{side}_id")
    if user_id is None:
        raise UnexpectedResponseError(
            f"a message without {side}_id", platform=PLATFORM, field=f"{side}_id"
        )
    name = item.get(f"{side}_display_name")
    return Buyer(external_user_id=user_id, display_name=name if isinstance(name, str) else None)


def synced_message(item: Mapping[str, Any], *, oa_id: str | None) -> SyncedMessage:
    """One ``conversation`` message normalised for the CRM's ``messages``."""
    message_id = _id(item, "message_id")
    if message_id is None:
        raise UnexpectedResponseError(
            "a message without message_id", platform=PLATFORM, field="message_id"
        )
    inbound = _from_user(item, oa_id)
    sender = _id(item, "from_id")
    if sender is None:
        raise UnexpectedResponseError(
            f"message {message_id} without from_id", platform=PLATFORM, field="from_id"
        )
    text = item.get("message")
    return SyncedMessage(
        external_id=message_id,
        thread_id=None,  # Zalo has no conversation id: a chat is the OA and one user
        customer=_user(item, oa_id),
        direction="in" if inbound else "out",
        sender_external_id=sender,
        body=text if isinstance(text, str) and text else None,
        sent_at=_sent_at(item),
        raw=dict(item),
    )


async def _user_messages(client: ZaloClient, user_id: str, window: Window) -> list[SyncedMessage]:
    """The messages with one user sent in the window, ``conversation`` page by page (10 at
    most each), until a short page or one reaching back before the window."""
    messages = []
    listed: set[str] = set()
    offset = 0
    while True:
        items = await _data_array(
            client, CONVERSATION_PATH, {"user_id": user_id, "offset": offset, "count": MAX_COUNT}
        )
        ids = {_id(item, "message_id") or "" for item in items}
        if items and ids <= listed:
            # The same messages again: the offset is not honoured, and paging would not end.
            raise UnexpectedResponseError(
                f"{CONVERSATION_PATH}: offset {offset} lists the same messages again",
                platform=PLATFORM,
                field="offset",
            )
        listed |= ids
        older = False
        for item in items:
            sent_at = _sent_at(item)
            if sent_at < window.start:
                older = True
            elif sent_at < window.end:
                messages.append(synced_message(item, oa_id=client.oa_id))
        # Newest first (an inference, L): once a message precedes the window, the rest do.
        # No end marker is documented: a short or empty page ends the list (§6.5, L).
        if older or len(items) < MAX_COUNT:
            return messages
        offset += MAX_COUNT


async def message_page(
    client: PlatformClient, window: Window, cursor: str | None
) -> Page[SyncedMessage]:
    """Ten recent chats (``listrecentchat`` from the offset the cursor holds) and, for each
    whose latest message is not older than the window, its messages sent in the window."""
    if not isinstance(client, ZaloClient):
        raise TypeError(f"a Zalo page needs a ZaloClient, not {type(client).__name__}")
    if cursor is not None and not cursor.isdigit():
        raise ValueError(f"zalo: not a sync cursor of nfdoctor's: {cursor!r}")
    offset = int(cursor) if cursor else 0
    chats = await _data_array(client, RECENT_CHATS_PATH, {"offset": offset, "count": MAX_COUNT})
    records: list[SyncedMessage] = []
    users: set[str] = set()
    for chat in chats:
        # Each chat is listed by its latest message; one older than the window has nothing
        # in it. The list's order is not documented, so every chat is looked at.
        user = _user(chat, client.oa_id).external_user_id
        if user in users or _sent_at(chat) < window.start:
            continue
        users.add(user)
        records += await _user_messages(client, user, window)
    # No end marker is documented: a short or empty page ends the list (§6.5, L).
    next_cursor = str(offset + MAX_COUNT) if len(chats) >= MAX_COUNT else None
    return Page(records=tuple(records), next_cursor=next_cursor)


SYNC = SyncSpec(
    messages=StreamSpec(
        name="messages",
        max_window=None,
        page=message_page,
        source="platforms.md §6.5 (listrecentchat, conversation)",
    ),
    default_rate_per_s=60.0,
    rate_confidence="M",
    rate_source=(
        "platforms.md §6.7: OA API limit 4,000 requests/minute, over it error -32;"
        " X-RateLimit-Limit and X-RateLimit-Remain on every call [Z-DOCS · M]"
    ),
)


SPEC = PlatformSpec(
    name=PLATFORM,
    title="Zalo OA",
    accounts_key="oas",
    account_id_key="oa_id",
    account_noun="OA",
    api_url=ZALO_BASE_URL,
    token_url=ZALO_OAUTH_URL,
    token_url_key="oauth_url",
    # OA API requests carry no timestamp to be refused for
    clock_tolerance_s=None,
    config_model=ZaloConfig,
    capabilities=Capabilities(
        refresh_tokens=True,
        single_use_refresh=True,
        orders=False,
        messages=True,
        introspection=False,
        webhook_signature="X-ZEvent-Signature: mac=SHA256(app_id + raw body + timestamp + OA "
        "secret)",
    ),
    build_client=_build,
    webhook=WEBHOOK,
    authorization=AUTHORIZATION,
    sync=SYNC,
)
