"""Facebook Graph API / Messenger (Pages): proof, error classification, client (§5)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta, timezone
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
    TokenInfo,
    TokenSet,
    abs_time,
    appsecret_proof,
    read_response,
    rebuild,
    rel_time,
    seconds_of,
    unknown_code_category,
    utc_now,
)
from nfdoctor.platforms.errors import (
    BadCredentialsError,
    BadParametersError,
    Category,
    PermissionDeniedError,
    TaxonomyError,
    UnexpectedResponseError,
)
from nfdoctor.platforms.spec import Capabilities, ClientInputs, PlatformSection, PlatformSpec
from nfdoctor.platforms.sync import Buyer, Page, StreamSpec, SyncedMessage, SyncSpec, Window
from nfdoctor.platforms.webhook import (
    DeliveryInputs,
    EventInputs,
    EventType,
    Handshake,
    SignatureScheme,
    WebhookKeys,
    WebhookRegistration,
    WebhookSpec,
    alnum_id,
    ascii_json,
    hmac_sha256_hex,
    require_secret,
)
from nfdoctor.secrets.reference import SecretRef

__all__ = [
    "DEFAULT_GRAPH_VERSION",
    "FACEBOOK_BASE_URL",
    "SPEC",
    "SYNC",
    "FacebookAuth",
    "FacebookClient",
    "FacebookConfig",
    "FacebookPage",
    "appsecret_proof",
    "classify_facebook",
    "exchange_facebook_code",
    "facebook_consent_url",
]

PLATFORM = "facebook"
GRAPH_HOST = "https://graph.facebook.com"
#: Graph API version when the config names none (§5.1: each version lives about two years;
#: the config's ``graph_version`` overrides it)
DEFAULT_GRAPH_VERSION = "v25.0"
FACEBOOK_BASE_URL = f"{GRAPH_HOST}/{DEFAULT_GRAPH_VERSION}"
#: the host of the OAuth dialog (``{www}/{version}/dialog/oauth``, §5.3)
FACEBOOK_WWW_URL = "https://www.facebook.com"
#: what a Page token needs for Messenger (a User token with these gives Page tokens that
#: read conversations, send, and manage the Page's webhook subscription):
#: pages_show_list to find the Page, pages_messaging for Messenger, pages_manage_metadata
#: for subscribed_apps, pages_read_engagement to read the Page's content
MESSENGER_SCOPES = (
    "pages_show_list",
    "pages_messaging",
    "pages_manage_metadata",
    "pages_read_engagement",
)
#: 1/1357046: the Send API failed *after* recording the message; resending duplicates it.
#: (code, subcode) of an error answered although the message WAS sent (§5.4)
_SENT_DESPITE_ERROR = (1, 1357046)

_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 341, 80001, 80002, 80003, 80004, 80005, 80006})
_RATE_LIMIT_CODES |= frozenset(range(80007, 80010))
_PERMISSION_CODES = frozenset(
    {3, 10, 230, 551, 10900, 10903, 10904, 2022, 368} | set(range(200, 300))
)


def _category(code: int, subcode: int | None) -> Category:
    if code == 190:
        if subcode == 463:
            return Category.TOKEN_EXPIRED
        if subcode in (459, 464):  # checkpointed / unconfirmed user: needs a human
            return Category.BAD_CREDENTIALS
        if subcode == 492:  # wrong Page role
            return Category.PERMISSION_DENIED
        return Category.TOKEN_INVALID  # 460 password changed, 467 invalid, 458 not installed
    if code == 102:
        return Category.TOKEN_INVALID
    if code in _RATE_LIMIT_CODES:
        return Category.RATE_LIMITED
    if code == 2 and subcode == 2018344:
        return Category.PERMISSION_DENIED
    if code in (1, 2):
        return Category.TRANSIENT
    if code in _PERMISSION_CODES:
        return Category.PERMISSION_DENIED
    if code in (100, 506):
        return Category.BAD_PARAMETERS
    return Category.UNEXPECTED_RESPONSE


def facebook_envelope(
    body: JsonObject,
    response: httpx.Response,
    code_100_category: Category = Category.BAD_PARAMETERS,
) -> Envelope | None:
    """Graph's envelope: ``error`` with ``code``, ``error_subcode``, ``fbtrace_id``."""
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    try:
        code = int(error.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        code = -1
    raw_sub = error.get("error_subcode")
    subcode = int(raw_sub) if isinstance(raw_sub, (int, str)) and str(raw_sub).isdigit() else None
    category = _category(code, subcode)
    if code == 100 and subcode is None:
        # Bare 100 also means a wrong/missing appsecret_proof (§5.2, M); configurable.
        category = code_100_category
    if (code, subcode) == _SENT_DESPITE_ERROR:
        # The message WAS sent: report it as unexpected, never as retryable.
        category = Category.UNEXPECTED_RESPONSE
    elif category is Category.UNEXPECTED_RESPONSE:
        category = (
            Category.TRANSIENT if error.get("is_transient") else unknown_code_category(response)
        )
    trace = error.get("fbtrace_id")
    message = error.get("message")
    return Envelope(
        code=f"{code}/{subcode}" if subcode is not None else str(code),
        category=category,
        request_id=str(trace) if trace else None,
        message=str(message) if message else None,
    )


def classify_facebook(
    response: httpx.Response,
    *,
    now: datetime | None = None,
    secrets: tuple[str, ...] = (),
    code_100_category: Category = Category.BAD_PARAMETERS,
) -> TaxonomyError | None:
    """Classify a Graph response by ``error.code`` + ``error_subcode`` (success: no ``error``)."""
    return read_response(
        response,
        platform=PLATFORM,
        envelope=lambda body, r: facebook_envelope(body, r, code_100_category),
        now=now or utc_now(),
        secrets=secrets,
    )[1]


class FacebookAuth(PlatformAuth):
    """Graph auth: ``access_token`` query parameter plus ``appsecret_proof`` when configured."""

    platform = PLATFORM

    def __init__(
        self,
        *,
        access_token: str,
        app_secret: str | None = None,
        send_proof: bool = True,
        code_100_category: Category = Category.BAD_PARAMETERS,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(access_token=access_token, clock=clock)
        self.signing_secret = app_secret
        self.send_proof = send_proof
        self.code_100_category = code_100_category

    def envelope(self, body: JsonObject, response: httpx.Response) -> Envelope | None:
        """See :func:`facebook_envelope`, with this auth's reading of a bare code 100."""
        return facebook_envelope(body, response, self.code_100_category)

    def sign(self, request: httpx.Request) -> httpx.Request:
        """Set ``access_token`` and, with an app secret, the proof over that exact token."""
        token = self.access_token or ""
        # Typed as httpx.QueryParams takes it (list is invariant).
        params: list[tuple[str, str | int | float | bool | None]] = [
            (k, v)
            for k, v in request.url.params.multi_items()
            if k not in ("access_token", "appsecret_proof")
        ]
        params.append(("access_token", token))
        if self.signing_secret and self.send_proof:
            params.append(("appsecret_proof", appsecret_proof(self.signing_secret, token)))
        return rebuild(request, url=request.url.copy_with(params=httpx.QueryParams(params)))


class FacebookClient(PlatformClient):
    """Graph client for one Page: ping, token exchange, debug_token, conversations."""

    auth: FacebookAuth

    platform = PLATFORM

    def __init__(
        self,
        auth: FacebookAuth,
        session: ApiSession,
        *,
        page_id: str,
        app_id: str | None = None,
        zero_expiry_means_never: bool = True,
    ) -> None:
        super().__init__(auth, session)
        self.page_id = page_id
        self.app_id = app_id
        self.zero_expiry_means_never = zero_expiry_means_never

    async def ping(self) -> PingResult:
        """``GET /me?fields=id,name`` with the Page token."""
        body, response, latency = await self._call(
            "GET", self.base_url + "/me", params={"fields": "id,name"}, auth=self.auth
        )
        problems = tuple(f"missing {f}" for f in ("id", "name") if f not in body)
        return self._ping_result(response, latency, problems)

    async def subscribed_apps(self) -> list[JsonObject]:
        """``GET /{page-id}/subscribed_apps`` with the Page token: the apps subscribed to the
        Page's webhooks and their ``subscribed_fields`` (§5.8)."""
        body, _, _ = await self._call(
            "GET", self.base_url + f"/{self.page_id}/subscribed_apps", auth=self.auth
        )
        apps = body.get("data")
        if not isinstance(apps, list):
            raise UnexpectedResponseError(
                "subscribed_apps without data", platform=PLATFORM, field="data"
            )
        return [app for app in apps if isinstance(app, dict)]

    def _app_credentials(self) -> tuple[str, str]:
        if not self.app_id or not self.auth.signing_secret:
            raise BadCredentialsError(
                "app_id and app_secret are needed for this Facebook call", platform=PLATFORM
            )
        return self.app_id, self.auth.signing_secret

    def _app_auth(self) -> FacebookAuth:
        app_id, app_secret = self._app_credentials()
        return FacebookAuth(
            access_token=f"{app_id}|{app_secret}",
            app_secret=app_secret,
            send_proof=self.auth.send_proof,
            code_100_category=self.auth.code_100_category,
            clock=self.clock,
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        """Facebook has no refresh tokens: exchange a User token for a long-lived one (§5.3)."""
        app_id, app_secret = self._app_credentials()
        body, _, _ = await self._call(
            "GET",
            self.base_url + "/oauth/access_token",
            params={
                "grant_type": "fb_exchange_token",
                "client_id": app_id,
                "client_secret": app_secret,
                "fb_exchange_token": refresh_token,
            },
        )
        access = body.get("access_token")
        if not isinstance(access, str):
            raise UnexpectedResponseError(
                "token exchange without access_token", platform=PLATFORM, field="access_token"
            )
        now = self.clock()
        expires_in = body.get("expires_in")
        return TokenSet(
            access_token=access,
            refresh_token="",
            # REL seconds (~60 days); absent means no expiry, kept far in the future.
            access_expires_at=rel_time(now, expires_in, platform=PLATFORM, field="expires_in")
            if expires_in is not None
            else datetime.max.replace(tzinfo=now.tzinfo),
            refresh_expires_at=None,
        )

    async def introspect(self) -> TokenInfo | None:
        """``GET /debug_token?input_token=<page token>`` with the app token ``ID|SECRET``."""
        body, _, _ = await self._call(
            "GET",
            self.base_url + "/debug_token",
            params={"input_token": self.auth.access_token or ""},
            auth=self._app_auth(),
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise UnexpectedResponseError(
                "debug_token without 'data'", platform=PLATFORM, field="data"
            )

        def when(name: str) -> datetime | None:
            value = data.get(name)
            if value is None:
                return None
            where = {"platform": PLATFORM, "field": f"data.{name}"}
            if seconds_of(value, **where) == 0 and self.zero_expiry_means_never:
                return None
            return abs_time(value, **where)

        scopes = data.get("scopes")
        # A renamed field must not read as "invalid" or "never expires": say it is missing.
        problems = tuple(
            f"missing data.{name}" for name in ("is_valid", "expires_at") if name not in data
        )
        return TokenInfo(
            is_valid=bool(data["is_valid"]) if "is_valid" in data else None,
            shape_problems=problems,
            token_type=str(data["type"]) if "type" in data else None,
            app_id=str(data["app_id"]) if "app_id" in data else None,
            expires_at=when("expires_at"),
            data_access_expires_at=when("data_access_expires_at"),
            issued_at=when("issued_at"),
            scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else (),
        )

    async def _paged(self, path: str, params: dict[str, str]) -> AsyncIterator[JsonObject]:
        # Follow paging.cursors.after ourselves rather than paging.next: `next` embeds the
        # token and the production host, and must not be stored (§5.5).
        after: str | None = None
        while True:
            query = dict(params)
            if after:
                query["after"] = after
            body, _, _ = await self._call("GET", self.base_url + path, params=query, auth=self.auth)
            items = body.get("data")
            if not isinstance(items, list):
                raise UnexpectedResponseError(
                    f"{path} without a 'data' list", platform=PLATFORM, field="data"
                )
            for item in items:
                if isinstance(item, dict):
                    yield item
            paging = body.get("paging")
            if not isinstance(paging, dict) or not paging.get("next"):
                return  # a short or empty page is not the end; a missing `next` is
            cursors = paging.get("cursors")
            cursor = cursors.get("after") if isinstance(cursors, dict) else None
            if not isinstance(cursor, str) or not cursor or cursor == after:
                return
            after = cursor

    def list_conversations(self, *, limit: int = 25) -> AsyncIterator[JsonObject]:
        """The Page's Messenger conversations (``id``, ``updated_time``), all pages."""
        return self._paged(
            f"/{self.page_id}/conversations",
            {"platform": "messenger", "fields": "id,updated_time", "limit": str(limit)},
        )

    def list_messages(self, conversation_id: str, *, limit: int = 25) -> AsyncIterator[JsonObject]:
        """Message ids and times of one conversation, newest first (details: last 20 only)."""
        return self._paged(
            f"/{conversation_id}/messages", {"fields": "id,created_time", "limit": str(limit)}
        )


# --- the platform's declaration -----------------------------------------------------------


class FacebookPage(Section):
    """One Facebook page connected to Messenger."""

    page_id: DigitsId
    name: str | None = None


class FacebookConfig(PlatformSection):
    """Meta app for the Graph API and Messenger Platform."""

    app_id: str
    app_secret: SecretRef
    verify_token: SecretRef | None = None
    # It becomes part of every Graph URL: a "/" or ".." would send calls elsewhere.
    graph_version: str = DEFAULT_GRAPH_VERSION
    appsecret_proof: bool = True
    # Low confidence (platforms.md §5.3): debug_token's expires_at 0 means "never expires".
    zero_expiry_means_never: bool = True
    # Bare code 100 is also a wrong appsecret_proof (platforms.md §5.2).
    code_100_means: ErrorCategoryName = "bad_parameters"
    # `token authorize`: a Valid OAuth Redirect URI of the app (Facebook Login settings;
    # unset: a loopback URL), the dialog's host, and the permissions asked for.
    redirect_uri: Url | None = None
    www_url: Url | None = None  # default https://www.facebook.com
    oauth_scopes: list[str] = Field(default_factory=lambda: list(MESSENGER_SCOPES))
    pages: list[FacebookPage] = Field(default_factory=list)

    @field_validator("graph_version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        if not re.fullmatch(r"v[0-9]{1,3}\.[0-9]{1,2}", value):
            raise ValueError(f"expected a Graph API version such as v25.0, got {value!r}")
        return value

    @field_validator("pages")
    @classmethod
    def _unique(cls, value: list[FacebookPage]) -> list[FacebookPage]:
        return unique_accounts(value, "page_id")


def _api_base(section: FacebookConfig) -> str:
    """The Graph host with the configured version: ``https://graph.facebook.com/v25.0``."""
    host = str(section.base_url).rstrip("/") if section.base_url else GRAPH_HOST
    return f"{host}/{section.graph_version}"


def _build(inputs: ClientInputs[FacebookConfig]) -> FacebookClient:
    section = inputs.section
    auth = FacebookAuth(
        access_token=inputs.access_token,
        app_secret=inputs.secret("app_secret"),
        send_proof=section.appsecret_proof,
        code_100_category=Category(section.code_100_means),
        clock=inputs.clock,
    )
    return FacebookClient(
        auth,
        inputs.session,
        page_id=inputs.account_id,
        app_id=section.app_id,
        zero_expiry_means_never=section.zero_expiry_means_never,
    )


# --- authorization (§5.3) -----------------------------------------------------------------


def facebook_consent_url(
    *,
    www_url: str,
    graph_version: str,
    app_id: str,
    redirect_uri: str,
    state: str,
    scopes: list[str] | tuple[str, ...],
) -> str:
    """The OAuth dialog: ``{www}/{v}/dialog/oauth?client_id&redirect_uri&state&scope``."""
    query = urlencode(
        [
            ("client_id", app_id),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("scope", ",".join(scopes)),
        ]
    )
    return f"{www_url.rstrip('/')}/{graph_version}/dialog/oauth?{query}"


def _consent_url(inputs: ConsentInputs[FacebookConfig]) -> str:
    section = inputs.section
    return facebook_consent_url(
        www_url=str(section.www_url) if section.www_url else FACEBOOK_WWW_URL,
        graph_version=section.graph_version,
        app_id=section.app_id,
        redirect_uri=inputs.redirect_uri,
        state=inputs.state,
        scopes=section.oauth_scopes,
    )


async def exchange_facebook_code(
    client: FacebookClient,
    code: str,
    *,
    redirect_uri: str,
    secret_found: Callable[[str], None] = lambda _: None,
) -> Grant:
    """Code → short-lived User token (``/oauth/access_token?client_id&redirect_uri&
    client_secret&code``) → long-lived User token (``fb_exchange_token``) → the client's
    Page token (``GET /{page-id}?fields=access_token``), which then has no expiry (§5.3)."""
    app_id, app_secret = client._app_credentials()
    body, _, _ = await client._call(
        "GET",
        client.base_url + "/oauth/access_token",
        params={
            "client_id": app_id,
            "redirect_uri": redirect_uri,
            "client_secret": app_secret,
            "code": code,
        },
    )
    short_lived = body.get("access_token")
    if not isinstance(short_lived, str) or not short_lived:
        raise UnexpectedResponseError(
            "code exchange without access_token", platform=PLATFORM, field="access_token"
        )
    secret_found(short_lived)
    long_lived = await client.refresh(short_lived)
    secret_found(long_lived.access_token)
    as_user = FacebookAuth(
        access_token=long_lived.access_token,
        app_secret=app_secret,
        send_proof=client.auth.send_proof,
        code_100_category=client.auth.code_100_category,
        clock=client.clock,
    )
    no_token = (
        f"no Page token for page {client.page_id}: whoever approved does not manage it, or "
        "did not select it in the dialog"
    )
    try:
        page, response, _ = await client._call(
            "GET",
            f"{client.base_url}/{client.page_id}",
            params={"fields": "access_token"},
            auth=as_user,
        )
    except (BadParametersError, PermissionDeniedError) as exc:
        # Graph's code 100 "cannot be loaded due to missing permissions", or a 200/10.
        raise PermissionDeniedError(
            no_token,
            platform=PLATFORM,
            http_status=exc.http_status,
            code=exc.code,
            request_id=exc.request_id,
            platform_message=exc.platform_message,
        ) from None
    page_token = page.get("access_token")
    if not isinstance(page_token, str) or not page_token:
        # Graph answers a Page's public fields to anyone: no access_token means the person
        # who approved has no task on the Page, or did not grant the Page to the app.
        raise PermissionDeniedError(no_token, platform=PLATFORM, http_status=response.status_code)
    secret_found(page_token)
    tokens = TokenSet(
        access_token=page_token,
        refresh_token="",
        # Never expires; the store keeps it as null (the Grant says so).
        access_expires_at=datetime.max.replace(tzinfo=timezone.utc),
        refresh_expires_at=None,
    )
    page_id = page.get("id")
    return Grant(
        tokens=tokens,
        account_ids=(str(page_id) if isinstance(page_id, (str, int)) else client.page_id,),
        never_expires=True,
    )


async def _exchange(inputs: ExchangeInputs[FacebookConfig]) -> Grant:
    assert isinstance(inputs.client, FacebookClient)
    return await exchange_facebook_code(
        inputs.client,
        inputs.code,
        redirect_uri=inputs.redirect_uri,
        secret_found=inputs.secret_found,
    )


AUTHORIZATION: AuthorizationSpec[FacebookConfig] = AuthorizationSpec(
    consent_url=_consent_url,
    exchange=_exchange,
    redirect_uri=lambda section: str(section.redirect_uri) if section.redirect_uri else None,
    state="echoed",
    # The redirect names the person, not a Page: the Page is asked for, and its token is
    # fetched for that Page.
    account_source="asked",
    # Meta does not publish it; codes are single use and short-lived (about 10 minutes).
    code_lifetime=timedelta(minutes=10),
    console="the app's Valid OAuth Redirect URIs (Facebook Login → Settings)",
)


# --- webhooks (§5.8) -----------------------------------------------------------------------


def _hub_digest(keys: WebhookKeys, delivery: DeliveryInputs) -> str:
    # Over the raw body as delivered: Meta signs the text with non-ASCII escaped (§5.8).
    return hmac_sha256_hex(keys.secret, delivery.body)


def _page_event(inputs: EventInputs, item: dict[str, Any]) -> dict[str, Any]:
    ms = int(inputs.now.timestamp() * 1000)
    return {
        "object": "page",
        "entry": [
            {
                "id": inputs.account_id,
                "time": ms,
                "messaging": [
                    {
                        "sender": {"id": inputs.sender_id},
                        "recipient": {"id": inputs.account_id},
                        "timestamp": ms,
                        **item,
                    }
                ],
            }
        ],
    }


def _message(inputs: EventInputs) -> dict[str, Any]:
    return _page_event(inputs, {"message": {"mid": inputs.message_id, "text": inputs.text}})


def _postback(inputs: EventInputs) -> dict[str, Any]:
    return _page_event(
        inputs,
        {"postback": {"mid": inputs.message_id, "title": inputs.text, "payload": "NFDOCTOR"}},
    )


def _read(inputs: EventInputs) -> dict[str, Any]:
    # A read receipt: the customer read the Page's messages up to the watermark. Nothing is
    # stored; a CRM at most marks its own replies read.
    return _page_event(inputs, {"read": {"watermark": int(inputs.now.timestamp() * 1000)}})


def _message_ids(payload: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if not isinstance(payload, dict):
        return found
    for entry in payload.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        for item in entry.get("messaging") or []:
            message = item.get("message") if isinstance(item, dict) else None
            if not isinstance(message, dict) or message.get("is_echo") or "mid" not in message:
                continue
            page = (item.get("recipient") or {}).get("id") or entry.get("id")
            found.append((str(page), str(message["mid"])))
    return found


def _keys(
    section: FacebookConfig, account_id: str, secret: Callable[[str], str | None], path: str
) -> WebhookKeys:
    return WebhookKeys(
        secret=require_secret(secret, f"{path}.app_secret"), secret_path=f"{path}.app_secret"
    )


async def _registration(client: FacebookClient) -> WebhookRegistration:
    apps = await client.subscribed_apps()
    ours = [app for app in apps if client.app_id is None or str(app.get("id")) == client.app_id]
    details = [
        f"app {app.get('id')} ({app.get('name', '?')}): "
        + (", ".join(str(f) for f in app.get("subscribed_fields") or []) or "no fields")
        for app in apps
    ]
    fields = {str(f) for app in ours for f in app.get("subscribed_fields") or []}
    return WebhookRegistration(
        # The callback URL is the app's, set in the App Dashboard; this call does not give it.
        urls=(),
        messages_subscribed="messages" in fields,
        details=tuple(details) or ("no app is subscribed to this Page",),
    )


WEBHOOK = WebhookSpec(
    signature=SignatureScheme(
        header="X-Hub-Signature-256",
        prefix="sha256=",
        digest=_hub_digest,
        describe="X-Hub-Signature-256: sha256=HMAC-SHA256(app_secret, raw body as sent, "
        "non-ASCII escaped as \\uXXXX)",
    ),
    encode=ascii_json,
    deadline_s=5.0,
    retries="a few immediate retries; after 1 h of failures the app is unsubscribed from the "
    "Page and must subscribe again (§5.8)",
    events={
        "message": EventType(name="message", describe="messages", stored=True, build=_message),
        "postback": EventType(
            name="postback", describe="messaging_postbacks", stored=False, build=_postback
        ),
        "probe": EventType(
            name="probe",
            describe="message_reads (a read receipt the CRM does not store)",
            stored=False,
            build=_read,
        ),
    },
    message_ids=_message_ids,
    new_message_id=lambda seed: "m_" + alnum_id(seed, 30),
    trace_sender="1000000000000001",
    keys=_keys,
    handshake=Handshake(
        token_key="verify_token",
        params=lambda token, challenge: {
            "hub.mode": "subscribe",
            "hub.verify_token": token,
            "hub.challenge": challenge,
        },
    ),
    registration_api="GET /{page-id}/subscribed_apps",
    registration=_registration,
)


# --- sync (§5.5) ---------------------------------------------------------------------------

#: conversations per page: each costs a listing of its newest messages and up to
#: :data:`READABLE_MESSAGES` detail reads, so a page stays a few hundred requests at most
CONVERSATIONS_PER_PAGE = 10
#: only a conversation's 20 most recent messages can be read in detail; older ones answer
#: with an error saying the message was deleted (§5.5)
READABLE_MESSAGES = 20
MESSAGE_FIELDS = "id,created_time,from,to,message"


def _graph_time(value: object, *, field: str) -> datetime:
    """A Graph time (``2026-11-20T07:00:00+0000``) as an aware UTC datetime."""
    moment: datetime | None = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
        if moment is None:
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment is None or moment.tzinfo is None:
        raise UnexpectedResponseError(
            f"{field} is not a time with an offset", platform=PLATFORM, field=field
        )
    return moment.astimezone(timezone.utc)


def _refused(exc: TaxonomyError) -> bool:
    """Whether Graph refused the request with code 100 (a bad parameter, or an object that
    does not exist or cannot be read), whichever category the config files that under."""
    return (exc.code or "").split("/")[0] == "100"


def _objects(body: JsonObject, what: str) -> list[JsonObject]:
    items = body.get("data")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnexpectedResponseError(
            f"{what} without a 'data' list of objects", platform=PLATFORM, field="data"
        )
    return items


def _node_id(value: object, *, field: str) -> str:
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value):
        return str(value)
    raise UnexpectedResponseError(f"{field} is not an id", platform=PLATFORM, field=field)


def _person(value: object) -> Buyer | None:
    """A Graph person (``{"id", "name", "email"}``) as a Buyer; None when it has no id."""
    if not isinstance(value, dict) or not isinstance(value.get("id"), (int, str)):
        return None
    name = value.get("name")
    return Buyer(
        external_user_id=str(value["id"]),
        display_name=name if isinstance(name, str) and name else None,
    )


def _customer(conversation: Mapping[str, Any], page_id: str) -> Buyer | None:
    """The participant of a conversation who is not the Page, where Graph lists them."""
    participants = conversation.get("participants")
    people = participants.get("data") if isinstance(participants, dict) else None
    for person in people if isinstance(people, list) else []:
        buyer = _person(person)
        if buyer is not None and buyer.external_user_id != page_id:
            return buyer
    return None


def synced_message(
    message: Mapping[str, Any], *, thread_id: str, page_id: str, customer: Buyer | None
) -> SyncedMessage:
    """One message read in detail (``id, created_time, from, to, message``), normalised for
    the CRM's ``messages``: "out" when the Page sent it; the customer is the conversation's
    participant who is not the Page (else the other party of the message)."""
    message_id = _node_id(message.get("id"), field="id")
    sender = _person(message.get("from"))
    if sender is None:
        raise UnexpectedResponseError(
            f"message {message_id} without from.id", platform=PLATFORM, field="from"
        )
    direction: Literal["in", "out"] = "out" if sender.external_user_id == page_id else "in"
    if customer is None:
        if direction == "in":
            customer = sender
        else:
            to = message.get("to")
            recipients = to.get("data") if isinstance(to, dict) else None
            people = [_person(p) for p in (recipients if isinstance(recipients, list) else [])]
            customer = next(
                (p for p in people if p is not None and p.external_user_id != page_id), None
            )
        if customer is None:
            raise UnexpectedResponseError(
                f"message {message_id}: no participant other than the Page",
                platform=PLATFORM,
                field="to",
            )
    text = message.get("message")
    return SyncedMessage(
        external_id=message_id,
        thread_id=thread_id,
        customer=customer,
        direction=direction,
        sender_external_id=sender.external_user_id,
        # "" for a message that is only attachments
        body=text if isinstance(text, str) and text else None,
        sent_at=_graph_time(message.get("created_time"), field="created_time"),
        raw=dict(message),
    )


async def _conversation_messages(
    client: FacebookClient, conversation: Mapping[str, Any], window: Window
) -> tuple[list[SyncedMessage], int]:
    """The messages of one conversation sent in the window, among its 20 most recent (the
    only ones Graph reads in detail); older ones are skipped, as is any that Graph says it
    cannot read; the second number counts those Graph refused."""
    thread_id = _node_id(conversation.get("id"), field="id")
    body, _, _ = await client._fetch(
        "GET",
        client.base_url + f"/{thread_id}/messages",
        params={"fields": "id,created_time", "limit": str(READABLE_MESSAGES)},
    )
    customer = _customer(conversation, client.page_id)
    wanted: list[str] = []
    # Newest first (§5.5): past the window's start, every other message is older still.
    for listed in _objects(body, f"/{thread_id}/messages")[:READABLE_MESSAGES]:
        message_id = _node_id(listed.get("id"), field="id")
        sent_at = _graph_time(listed.get("created_time"), field="created_time")
        if sent_at >= window.end:
            continue
        if sent_at < window.start:
            break
        wanted.append(message_id)

    async def detail(message_id: str) -> JsonObject | None:
        try:
            found, _, _ = await client._fetch(
                "GET", client.base_url + f"/{message_id}", params={"fields": MESSAGE_FIELDS}
            )
        except TaxonomyError as exc:
            if _refused(exc):
                return None  # "deleted" to Graph: beyond what it reads in detail
            raise
        return found

    # The detail reads go out together (the session paces and caps them).
    details = await asyncio.gather(*(detail(m) for m in wanted))
    messages = [
        synced_message(d, thread_id=thread_id, page_id=client.page_id, customer=customer)
        for d in details
        if d is not None
    ]
    return messages, sum(1 for d in details if d is None)


async def message_page(
    client: PlatformClient, window: Window, cursor: str | None
) -> Page[SyncedMessage]:
    """One page of the Page's Messenger conversations (newest first by ``updated_time``; the
    edge has no time-based paging) and their messages sent in the window. The cursor is
    Graph's ``after`` cursor; paging stops at the first conversation last updated before the
    window's start, since none after it has a message in the window."""
    if not isinstance(client, FacebookClient):
        raise TypeError(f"a Facebook page needs a FacebookClient, not {type(client).__name__}")
    params = {
        "platform": "messenger",
        "fields": "id,updated_time,participants",
        "limit": str(CONVERSATIONS_PER_PAGE),
    }
    path = client.base_url + f"/{client.page_id}/conversations"
    try:
        body, _, _ = await client._fetch(
            "GET", path, params={**params, "after": cursor} if cursor else params
        )
    except TaxonomyError as exc:
        if cursor is None or not _refused(exc):
            raise
        # Graph cursors are not meant to be stored (§5.5): a refused one restarts the window
        # from the newest conversation, which is safe, as messages are inserted only where
        # absent.
        cursor = None
        body, _, _ = await client._fetch("GET", path, params=params)
    current: list[Mapping[str, Any]] = []
    past_the_window = False
    for conversation in _objects(body, f"/{client.page_id}/conversations"):
        updated = _graph_time(conversation.get("updated_time"), field="updated_time")
        if updated < window.start:
            past_the_window = True
            break
        current.append(conversation)
    # The page's conversations are read together (the session paces and caps the requests).
    read = await asyncio.gather(*(_conversation_messages(client, c, window) for c in current))
    records = [message for listed, _ in read for message in listed]
    skipped = sum(refused for _, refused in read)
    if past_the_window:
        return Page(records=tuple(records), next_cursor=None, skipped=skipped)
    paging = body.get("paging")
    # A short or empty page is not the end; a missing `next` is (§5.5).
    if not isinstance(paging, dict) or not paging.get("next"):
        return Page(records=tuple(records), next_cursor=None, skipped=skipped)
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    if not isinstance(after, str) or not after or after == cursor:
        raise UnexpectedResponseError(
            "conversations: paging.next without a new after cursor",
            platform=PLATFORM,
            field="paging.cursors.after",
        )
    return Page(records=tuple(records), next_cursor=after, skipped=skipped)


SYNC = SyncSpec(
    messages=StreamSpec(
        name="messages",
        max_window=None,
        page=message_page,
        grid=False,
        source="platforms.md §5.5 (Page conversations, their messages, message details)",
    ),
    default_rate_per_s=10.0,
    rate_confidence="M",
    rate_source=(
        "platforms.md §5.7: X-Business-Use-Case-Usage (Page tokens, Messenger) gives integer"
        " percentages of a rolling allowance, not requests per second: Pages 4800 × engaged"
        " users per hour, Messenger 200 × engaged users per 24 h [F-RL · H]; Retry-After only"
        " in community sources [L]"
    ),
)


SPEC = PlatformSpec(
    name=PLATFORM,
    title="Facebook",
    accounts_key="pages",
    account_id_key="page_id",
    account_noun="page",
    api_url=FACEBOOK_BASE_URL,
    # Graph requests carry no timestamp to be refused for
    clock_tolerance_s=None,
    config_model=FacebookConfig,
    capabilities=Capabilities(
        refresh_tokens=False,
        single_use_refresh=False,
        orders=False,
        messages=True,
        introspection=True,
        webhook_signature="X-Hub-Signature-256: sha256=HMAC-SHA256(app_secret, raw body)",
        no_refresh_token=(
            "a Page token made from a long-lived User token does not expire, and one that "
            "died (password change, role removed, app inactive) comes back only by "
            "authorising the Page again"
        ),
    ),
    build_client=_build,
    api_base=_api_base,
    webhook=WEBHOOK,
    authorization=AUTHORIZATION,
    sync=SYNC,
)
