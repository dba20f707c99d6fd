"""Simulated Facebook Graph API for Pages and Messenger (platforms.md §5), at ``/facebook``.

Paths carry the version as Graph does: ``/facebook/v21.0/me`` = ``graph.facebook.com/v21.0/me``.
The login dialog is at ``/facebook-www`` (``www.facebook.com/v21.0/dialog/oauth``): a code,
exchanged for a short-lived User token, made long-lived, from which Page tokens are made.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

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
from nfdoctor.simulator.base import json_response, request_now, token_fault
from nfdoctor.simulator.events import (
    MALFORMED,
    escaped_json,
    facebook_message,
    facebook_read,
    from_milliseconds,
    json_object,
    stable_digits,
)
from nfdoctor.simulator.model import (
    Account,
    Conversation,
    Message,
    Token,
    TokenEventKind,
    TokenKind,
    alnum,
    digits,
    hex_string,
)
from nfdoctor.simulator.spec import (
    ChatEventSource,
    ChatSpec,
    ConfigContext,
    EmittedEvent,
    Host,
    InboundMessage,
    RequestView,
    SimPlatform,
    WebhookDelivery,
    WebhookSpec,
)
from nfdoctor.simulator.verify import (
    appsecret_proof,
    facebook_webhook_sha1,
    facebook_webhook_sha256,
    verify_exact,
)

if TYPE_CHECKING:
    from nfdoctor.simulator.state import SimulatorState

__all__ = [
    "FACEBOOK",
    "FacebookSettings",
    "admin_user_id",
    "build_facebook_app",
    "build_facebook_www_app",
    "facebook_error_body",
]

NAME = "facebook"

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
#: §5.5: only the 20 most recent messages of a conversation can be read in detail
READABLE_MESSAGES = 20
#: the name the CRM's Meta app goes by (debug_token's ``application``, subscribed_apps)
APP_NAME = "NextFlow CRM"
#: the Page subscription field chat messages need (§5.8)
MESSAGES_FIELD = "messages"
#: what a CRM subscribes its app to on each Page
DEFAULT_SUBSCRIBED_FIELDS = (
    MESSAGES_FIELD,
    "messaging_postbacks",
    "message_echoes",
    "message_reads",
)
#: the Login dialog (www.facebook.com/{version}/dialog/oauth) and its consent links
DIALOG_PATH = "/{version}/dialog/oauth"
APPROVE_PATH = DIALOG_PATH + "/approve"
#: §5.3: a short-lived User token lives about an hour; a long-lived one about 60 days
SHORT_LIVED_USER = timedelta(hours=1)
LONG_LIVED_USER = timedelta(days=60)
#: the person who manages every Page of the simulator and logs in through the dialog
ADMIN_NAME = "Trần Minh Khoa"
#: what the simulated admin grants (the Page permissions a CRM asks for)
USER_SCOPES = (
    "pages_show_list",
    "pages_messaging",
    "pages_manage_metadata",
    "pages_read_engagement",
)


@dataclass(kw_only=True)
class FacebookSettings:
    """The simulated Meta app's credentials, Graph version and usage knobs."""

    app_id: str
    app_secret: str
    verify_token: str
    version: str = "v21.0"
    # Graph sends usage headers only above a threshold; these make it reachable in tests.
    hourly_allowance: int = 200
    usage_threshold_pct: int = 5


class GraphError(Exception):
    """A Graph API error object (HTTP 400 unless stated)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        kind: str = "OAuthException",
        status: int = 400,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.kind = kind
        self.status = status

    def body(self, trace: str) -> dict[str, Any]:
        """The ``{"error": {...}}`` envelope."""
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = trace
        return {"error": error}


def facebook_error_body(kind: str, status: int) -> tuple[int, dict[str, Any]]:
    """Graph's envelope for injected rate-limit and server faults."""
    if kind == "rate_limit":
        error = GraphError(
            80006,
            "(#80006) There have been too many messages sent to this Messenger account. "
            "Please wait a bit and try again.",
        )
        return status, error.body("AFaultTrace01")
    body = GraphError(2, "An unexpected error has occurred. Please retry your request later.")
    payload = body.body("AFaultTrace02")
    payload["error"]["is_transient"] = True
    return status, payload


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _person(person_id: str, name: str) -> dict[str, str]:
    """A participant as Graph names one: ``{name, email, id}`` (the email is Graph's proxy)."""
    return {"name": name, "email": f"{person_id}@facebook.com", "id": person_id}


def _message_object(
    account: Account, conversation: Conversation, message: Message
) -> dict[str, Any]:
    """Every field of a message node / messages edge item the simulator has (§5.5)."""
    names = {conversation.user_id: conversation.user_name, account.account_id: account.name}
    return {
        "id": message.message_id,
        "created_time": _iso(message.time),
        "from": _person(message.sender_id, names.get(message.sender_id, "")),
        "to": {"data": [_person(message.recipient_id, names.get(message.recipient_id, ""))]},
        "message": message.text,
    }


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"i": index}).encode()).decode().rstrip("=")


def _uncursor(text: str) -> int | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return int(value["i"])
    except (ValueError, KeyError, TypeError):
        return None


class FacebookApp:
    """Graph handlers sharing one state."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    @property
    def settings(self) -> FacebookSettings:
        """The app's credentials and knobs (read per request: tests change them)."""
        return FACEBOOK.settings(self.state)

    def trace(self) -> str:
        return "A" + self.state.new_request_id()[-10:]

    def error(self, exc: GraphError) -> Response:
        return json_response(exc.body(self.trace()), exc.status)

    def version(self, request: Request) -> None:
        version = request.path_params["version"]
        if not (version.startswith("v") and version[1:].replace(".", "").isdigit()):
            raise GraphError(2500, f"Unknown path components: /{version}", status=400)

    def presented_token(self, request: Request) -> str | None:
        token = request.query_params.get("access_token")
        auth = request.headers.get("authorization", "")
        if token is None and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        return token

    def presents_user_token(self, request: Request) -> bool:
        """Whether the request's token is a User token this simulator issued."""
        token = self.state.tokens.get(self.presented_token(request) or "")
        return token is not None and token.platform == NAME and token.kind == "user"

    def page_token(self, request: Request) -> tuple[Token, Account, datetime]:
        """Validate a Page token and its optional (or required) ``appsecret_proof``."""
        token, now = self.graph_token(request, "access")
        account = self.state.account(NAME, token.owner)
        assert account is not None
        return token, account, now

    def user_token(self, request: Request) -> tuple[Token, datetime]:
        """Validate a User token (the dialog's) and its ``appsecret_proof``."""
        return self.graph_token(request, "user")

    def graph_token(self, request: Request, kind: TokenKind) -> tuple[Token, datetime]:
        """Validate the presented token of ``kind`` and its optional (or required) proof."""
        self.version(request)
        now = request_now(request, self.state)
        value = self.presented_token(request)
        if not value:
            raise GraphError(
                2500,
                "An active access token must be used to query information about the current user.",
            )
        status, token = self.state.check(NAME, value, kind, now=now)
        fault = token_fault(request)
        if fault == "revoked" or status == "revoked":
            raise GraphError(
                190,
                "Error validating access token: The session has been invalidated because the "
                "user changed their password or Facebook has changed the session for security "
                "reasons.",
                subcode=460,
            )
        if fault == "expired" or status == "expired":
            raise GraphError(
                190,
                f"Error validating access token: Session has expired on {_iso(now)}.",
                subcode=463,
            )
        if status != "ok" or token is None:
            raise GraphError(
                190, "Error validating access token: The access token is invalid.", subcode=467
            )
        proof = request.query_params.get("appsecret_proof")
        if proof is None and self.state.require_appsecret_proof[NAME]:
            raise GraphError(100, "API calls from the server require an appsecret_proof argument")
        if proof is not None and not verify_exact(
            appsecret_proof(self.settings.app_secret, value), proof
        ):
            raise GraphError(
                100,
                "Invalid appsecret_proof provided in the API argument",
                kind="GraphMethodException",
            )
        return token, now

    def usage_headers(self, account: Account | None, now: datetime, *, app: bool) -> dict[str, str]:
        """Usage headers, sent only once usage crosses the threshold (§5.7).

        One hourly counter per app: every Page's calls count towards it.
        """
        calls = self.state.record_call(NAME, now, timedelta(hours=1))
        pct = min(100, calls * 100 // max(1, self.settings.hourly_allowance))
        if pct < self.settings.usage_threshold_pct:
            return {}
        if app or account is None:
            return {
                "X-App-Usage": json.dumps(
                    {"call_count": pct, "total_time": pct // 2, "total_cputime": pct // 2}
                )
            }
        usage = {
            account.account_id: [
                {
                    "type": "pages",
                    "call_count": pct,
                    "total_cputime": pct // 2,
                    "total_time": pct // 2,
                    "estimated_time_to_regain_access": 0,
                }
            ]
        }
        return {"X-Business-Use-Case-Usage": json.dumps(usage)}

    async def me(self, request: Request) -> Response:
        """GET /{v}/me?fields=id,name with a Page token → the Page (a User token: the user)."""
        fields = request.query_params.get("fields", "id,name").split(",")
        try:
            if self.presents_user_token(request):
                token, now = self.user_token(request)
                data = {"id": token.owner, "name": ADMIN_NAME}
                headers = self.usage_headers(None, now, app=True)
            else:
                _, account, now = self.page_token(request)
                data = {"id": account.account_id, "name": account.name}
                headers = self.usage_headers(account, now, app=False)
        except GraphError as exc:
            return self.error(exc)
        body = {k: v for k, v in data.items() if k in fields} or {"id": data["id"]}
        return json_response(body, headers=headers)

    async def debug_token(self, request: Request) -> Response:
        """GET /{v}/debug_token: needs the app token ``APPID|SECRET``."""
        try:
            self.version(request)
        except GraphError as exc:
            return self.error(exc)
        now = request_now(request, self.state)
        app_token = f"{self.settings.app_id}|{self.settings.app_secret}"
        if self.presented_token(request) != app_token:
            return self.error(
                GraphError(
                    100,
                    "(#100) You must provide an app access token, or a user access token that "
                    "is an owner or developer of the app",
                )
            )
        value = request.query_params.get("input_token", "")
        known = self.state.tokens.get(value)
        kind: TokenKind = "user" if known is not None and known.kind == "user" else "access"
        status, token = self.state.check(NAME, value, kind, now=now)
        fault = token_fault(request)
        base: dict[str, Any] = {
            "app_id": self.settings.app_id,
            "type": "USER" if kind == "user" else "PAGE",
            "application": APP_NAME,
        }
        if status != "ok" or token is None or fault is not None:
            subcode = 460 if (status == "revoked" or fault == "revoked") else 467
            if status == "expired" or fault == "expired":
                subcode = 463
            data = {
                **base,
                "is_valid": False,
                "error": {
                    "code": 190,
                    "message": "Error validating access token.",
                    "subcode": subcode,
                },
                "scopes": [],
            }
        elif kind == "user":
            data = {
                **base,
                "is_valid": True,
                "issued_at": int(token.issued_at.timestamp()),  # ABS
                "expires_at": int(token.expires_at.timestamp()) if token.expires_at else 0,
                "data_access_expires_at": int((now + timedelta(days=90)).timestamp()),
                "scopes": list(USER_SCOPES),
                "granular_scopes": [
                    {"scope": "pages_messaging", "target_ids": list(token.grants)},
                ],
                "user_id": token.owner,
            }
        else:
            data = {
                **base,
                "is_valid": True,
                "issued_at": int(token.issued_at.timestamp()),  # ABS
                # 0 = never (a Page token from a long-lived user token), unless a demo aged it
                "expires_at": int(token.expires_at.timestamp()) if token.expires_at else 0,
                "data_access_expires_at": int((now + timedelta(days=90)).timestamp()),
                "profile_id": token.owner,
                "scopes": ["pages_messaging", "pages_manage_metadata", "pages_read_engagement"],
                "granular_scopes": [
                    {"scope": "pages_messaging", "target_ids": [token.owner]},
                ],
                "user_id": "10" + token.owner[-13:],
            }
        return json_response({"data": data}, headers=self.usage_headers(None, now, app=True))

    def page(
        self, request: Request, items: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One page of ``items`` with Graph's cursor ``paging`` object."""
        q = request.query_params
        try:
            limit = max(1, min(MAX_LIMIT, int(q.get("limit", DEFAULT_LIMIT))))
        except ValueError:
            raise GraphError(100, "(#100) Param limit must be a number") from None
        start = 0
        if "after" in q:
            after = _uncursor(q["after"])
            if after is None:
                raise GraphError(100, "(#100) The after cursor is invalid")
            start = after + 1
        chunk = items[start : start + limit]
        paging: dict[str, Any] = {}
        if chunk:
            paging["cursors"] = {"before": _cursor(start), "after": _cursor(start + len(chunk) - 1)}
            if start + limit < len(items):
                params = {k: v for k, v in q.items() if k != "after"}
                params["after"] = paging["cursors"]["after"]
                paging["next"] = f"{request.url.replace(query='')}?{urlencode(params)}"
        return chunk, paging

    async def edge(self, request: Request) -> Response:
        """GET /{v}/{page-id}/conversations, /{v}/{page-id}/subscribed_apps and
        /{v}/{conversation-id}/messages."""
        try:
            _, account, now = self.page_token(request)
            node, edge = request.path_params["node"], request.path_params["edge"]
            items: list[dict[str, Any]]
            if edge == "subscribed_apps" and node in (account.account_id, "me"):
                # The apps subscribed to the Page's webhooks: ours, unless the fault plan's
                # registrations say it is not (subscribed_fields: null) or not to messages.
                fields = subscribed_fields(self.state)
                apps = []
                if fields is not None:
                    name = self.state.registrations.get(NAME, {}).get("name", APP_NAME)
                    apps.append(
                        {"id": self.settings.app_id, "name": name, "subscribed_fields": fields}
                    )
                return json_response(
                    {"data": apps}, headers=self.usage_headers(account, now, app=False)
                )
            if edge == "conversations" and node in (account.account_id, "me"):
                fields = request.query_params.get("fields", "id,updated_time").split(",")
                items = []
                for c in account.conversations:
                    item: dict[str, Any] = {
                        "id": c.conversation_id,
                        "updated_time": _iso(c.updated_time),
                    }
                    if "participants" in fields:
                        item["participants"] = {
                            "data": [
                                _person(c.user_id, c.user_name),
                                _person(account.account_id, account.name),
                            ]
                        }
                    items.append(item)
            elif edge == "messages":
                conv = next((c for c in account.conversations if c.conversation_id == node), None)
                if conv is None:
                    raise GraphError(
                        100,
                        f"Unsupported get request. Object with ID '{node}' does not exist, "
                        "cannot be loaded due to missing permissions, or does not support "
                        "this operation.",
                        kind="GraphMethodException",
                    )
                fields = request.query_params.get("fields", "id,created_time").split(",")
                items = []
                for m in reversed(conv.messages):  # newest first
                    full = _message_object(account, conv, m)
                    items.append({k: v for k, v in full.items() if k in fields or k == "id"})
            else:
                raise GraphError(
                    100,
                    f"Unsupported get request. Object with ID '{node}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation.",
                    kind="GraphMethodException",
                )
            chunk, paging = self.page(request, items)
        except GraphError as exc:
            return self.error(exc)
        body: dict[str, Any] = {"data": chunk}
        if paging:
            body["paging"] = paging
        return json_response(body, headers=self.usage_headers(account, now, app=False))

    # ---- Login: the dialog, the code exchange, User and Page tokens (§5.3) ---------------

    async def dialog(self, request: Request) -> Response:
        """GET /{v}/dialog/oauth?client_id=&redirect_uri=&state=&scope= (www.facebook.com):
        the consent page, one link per Page and one for every Page."""
        q = request.query_params
        now = request_now(request, self.state)
        redirect = q.get("redirect_uri")
        try:
            self.version(request)
            if q.get("client_id") != self.settings.app_id:
                raise GraphError(101, "Error validating application. Invalid application ID.")
            if redirect is None or not redirect_allowed(redirect):
                raise GraphError(
                    191,
                    "Can't load URL: The domain of this URL isn't included in the app's domains.",
                )
        except GraphError as exc:
            return self.error(exc)
        consent = self.state.new_consent(
            NAME, redirect_uri=redirect, state=q.get("state"), now=now, lifetime=CONSENT_LIFETIME
        )
        approve = host_url(request, APPROVE_PATH.format(version=request.path_params["version"]))
        pages = self.state.accounts[NAME]
        links = [
            ConsentLink(
                href=with_query(approve, {"consent": consent.consent_id, "page_id": a.account_id}),
                text=f"Continue with {a.name} (Page {a.account_id})",
                account=a.account_id,
            )
            for a in pages
        ]
        links.append(
            ConsentLink(
                href=with_query(approve, {"consent": consent.consent_id}),
                text=f"Continue as {ADMIN_NAME} with every Page",
            )
        )
        intro = f"{APP_NAME} asks to manage and message as your Pages."
        return consent_page("Facebook Login", intro, links)

    async def approve(self, request: Request) -> Response:
        """A consent link: 302 to ``<redirect_uri>?code=…&state=…``; the code is the admin's,
        granting the Page the link names (or every Page)."""
        q = request.query_params
        now = request_now(request, self.state)
        consent = self.state.live_consent(NAME, q.get("consent"), now=now)
        page_id = q.get("page_id")
        pages = self.state.accounts[NAME]
        granted = tuple(a.account_id for a in pages if page_id is None or a.account_id == page_id)
        if consent is None or not granted:
            return self.error(GraphError(100, "This login link is invalid or has expired."))
        code = self.state.issue_code(consent, admin_user_id(self.state), now=now, grants=granted)
        params = {"code": code.value}
        if consent.state is not None:
            params["state"] = consent.state
        return redirect_to(with_query(consent.redirect_uri, params))

    async def oauth_access_token(self, request: Request) -> Response:
        """GET /{v}/oauth/access_token: a code for a short-lived User token (``client_id``,
        ``redirect_uri``, ``client_secret``, ``code``), or ``grant_type=fb_exchange_token``:
        a User token for a long-lived one."""
        q = request.query_params
        now = request_now(request, self.state)
        exchange = q.get("grant_type") == "fb_exchange_token"
        kind: TokenEventKind = "refresh" if exchange else "exchange"
        owner: str | None = None
        try:
            self.version(request)
            if q.get("client_id") != self.settings.app_id:
                raise GraphError(101, "Error validating application. Invalid application ID.")
            if not verify_exact(self.settings.app_secret, q.get("client_secret")):
                raise GraphError(1, "Error validating client secret.")
            if exchange:
                lifetime = LONG_LIVED_USER
                status, old = self.state.check(NAME, q.get("fb_exchange_token"), "user", now=now)
                owner = old.owner if old is not None else None
                if status == "expired":
                    # §5.3: an expired token cannot be exchanged
                    raise GraphError(
                        190,
                        f"Error validating access token: Session has expired on {_iso(now)}.",
                        subcode=463,
                    )
                if status != "ok" or old is None:
                    raise GraphError(
                        190,
                        "Error validating access token: The access token is invalid.",
                        subcode=467,
                    )
                user, grants, spent = old.owner, old.grants, None
            else:
                lifetime = SHORT_LIVED_USER
                if "code" not in q:
                    raise GraphError(100, "Missing authorization code")
                if "redirect_uri" not in q:
                    raise GraphError(100, "Missing redirect_uri parameter.")
                status_code, code = self.state.redeem_code(
                    NAME, q["code"], now=now, redirect_uri=q["redirect_uri"]
                )
                owner = code.account if code is not None else None
                if code is None or status_code != "ok":
                    raise _code_error(status_code)
                user, grants, spent = code.account, code.grants, code.value
        except GraphError as exc:
            error = f"{exc.code}/{exc.subcode}" if exc.subcode is not None else str(exc.code)
            token_refused(request, self.state, platform=NAME, kind=kind, account=owner, error=error)
            return self.error(exc)
        token = self.state.issue_token(
            NAME, user, "user", expires_at=now + lifetime, now=now, grants=grants
        )
        token_issued(
            request, self.state, platform=NAME, kind=kind, account=user, access=token, spent=spent
        )
        return json_response(
            {
                "access_token": token.value,
                "token_type": "bearer",
                "expires_in": int(lifetime.total_seconds()),  # REL
            },
            headers=self.usage_headers(None, now, app=True),
        )

    def new_page_token(self, request: Request, user: Token, page: str, now: datetime) -> Token:
        """A Page token made from a User token: none expires when the User token is
        long-lived; one from a short-lived User token ends with it (§5.3)."""
        assert user.expires_at is not None
        long_lived = user.expires_at - user.issued_at > SHORT_LIVED_USER
        token = self.state.issue_token(
            NAME, page, "access", expires_at=None if long_lived else user.expires_at, now=now
        )
        token_issued(
            request, self.state, platform=NAME, kind="page_token", account=page, access=token
        )
        return token

    async def node(self, request: Request) -> Response:
        """GET /{v}/{page-id}?fields=id,name,access_token with a User token that was granted
        the Page: ``access_token`` is a new Page token. With the Page's own token: id, name."""
        node = request.path_params["node"]
        fields = request.query_params.get("fields", "id,name").split(",")
        user: Token | None = None
        try:
            if self.presents_user_token(request):
                user, now = self.user_token(request)
                account = self.state.account(NAME, node) if node in user.grants else None
                headers = self.usage_headers(None, now, app=True)
            else:
                _, own, now = self.page_token(request)
                if node not in (own.account_id, "me"):
                    found = _find_message(own, node)
                    if found is not None:
                        wanted = request.query_params.get("fields", "id,created_time").split(",")
                        detail = self.message_detail(own, *found)
                        shown = {k: v for k, v in detail.items() if k in wanted or k == "id"}
                        return json_response(shown, headers=self.usage_headers(own, now, app=False))
                account = own if node in (own.account_id, "me") else None
                if account is not None and "access_token" in fields:
                    # The simulator's choice: Page tokens come from a User token only.
                    raise GraphError(
                        100, "(#100) A User access token is required to request access_token"
                    )
                headers = self.usage_headers(own, now, app=False)
            if account is None:
                raise GraphError(
                    100,
                    f"Unsupported get request. Object with ID '{node}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation.",
                    kind="GraphMethodException",
                )
        except GraphError as exc:
            return self.error(exc)
        body: dict[str, Any] = {"id": account.account_id}
        if "name" in fields:
            body["name"] = account.name
        if "access_token" in fields:
            assert user is not None  # a Page token asking for access_token was refused above
            body["access_token"] = self.new_page_token(request, user, account.account_id, now).value
        return json_response(body, headers=headers)

    def message_detail(
        self, account: Account, conversation: Conversation, message: Message
    ) -> dict[str, Any]:
        """``GET /{v}/{message-id}`` (§5.5): only the conversation's 20 most recent messages
        are read in detail; an older one is refused as deleted (code 100; the exact code is
        an open question, §8.21)."""
        position = len(conversation.messages) - conversation.messages.index(message)
        if position > READABLE_MESSAGES:
            raise GraphError(100, "(#100) This message has been deleted.")
        return _message_object(account, conversation, message)

    async def accounts(self, request: Request) -> Response:
        """GET /{v}/me/accounts with a User token: every Page it was granted, each with a new
        Page token (Graph's cursor paging)."""
        try:
            user, now = self.user_token(request)
            granted = [
                {"id": a.account_id, "name": a.name}
                for a in self.state.accounts[NAME]
                if a.account_id in user.grants
            ]
            chunk, paging = self.page(request, granted)
        except GraphError as exc:
            return self.error(exc)
        for item in chunk:
            item["access_token"] = self.new_page_token(request, user, item["id"], now).value
            item["tasks"] = ["MANAGE", "MESSAGING", "MODERATE"]
        body: dict[str, Any] = {"data": chunk}
        if paging:
            body["paging"] = paging
        return json_response(body, headers=self.usage_headers(None, now, app=True))


def _find_message(account: Account, message_id: str) -> tuple[Conversation, Message] | None:
    """The Page's message with that id, and its conversation."""
    for conversation in account.conversations:  # a list the state swaps, never changes
        for message in conversation.messages:
            if message.message_id == message_id:
                return conversation, message
    return None


def _code_error(status: str) -> GraphError:
    """Graph's answer to a code it will not exchange (code 100, an OAuthException)."""
    # Subcodes as Graph sends them in public reports (Low); branch on code 100.
    if status == "used":
        return GraphError(100, "This authorization code has been used.", subcode=36009)
    if status == "expired":
        return GraphError(100, "This authorization code has expired.", subcode=36007)
    if status == "wrong_redirect":
        return GraphError(
            100,
            "Error validating verification code. Please make sure your redirect_uri is "
            "identical to the one you used in the OAuth dialog request",
            subcode=36008,
        )
    return GraphError(100, "Invalid verification code format.")


def admin_user_id(state: SimulatorState) -> str:
    """The app-scoped user id of the person who manages every Page (no draw: derived)."""
    return "10" + stable_digits(f"{NAME}/admin/{FACEBOOK.settings(state).app_id}", 13)


def subscribed_fields(state: SimulatorState) -> list[str] | None:
    """The fields the CRM's app is subscribed to on the Pages; None: not subscribed."""
    registration = state.registrations.get(NAME, {})
    if "subscribed_fields" in registration:
        fields = registration["subscribed_fields"]
        return None if fields is None else list(fields)
    return list(DEFAULT_SUBSCRIBED_FIELDS)


def build_facebook_app(state: SimulatorState) -> Starlette:
    """The Graph API host."""
    app = FacebookApp(state)
    return Starlette(
        routes=[
            Route("/{version}/me", app.me, methods=["GET"]),
            Route("/{version}/debug_token", app.debug_token, methods=["GET"]),
            Route("/{version}/oauth/access_token", app.oauth_access_token, methods=["GET"]),
            Route("/{version}/me/accounts", app.accounts, methods=["GET"]),
            Route("/{version}/{node}", app.node, methods=["GET"]),
            Route("/{version}/{node}/{edge}", app.edge, methods=["GET"]),
        ]
    )


def build_facebook_www_app(state: SimulatorState) -> Starlette:
    """The Login dialog's host (``www.facebook.com``)."""
    app = FacebookApp(state)
    return Starlette(
        routes=[
            Route(DIALOG_PATH, app.dialog, methods=["GET"]),
            Route(APPROVE_PATH, app.approve, methods=["GET"]),
        ]
    )


# ---- the declaration ---------------------------------------------------------------------


def _new_settings(rng: random.Random) -> FacebookSettings:
    app_id = str(10**14 + rng.randrange(10**14))
    app_secret = hex_string(rng, 32)
    verify_token = "verify-" + alnum(rng, 16)
    return FacebookSettings(app_id=app_id, app_secret=app_secret, verify_token=verify_token)


def _new_account(rng: random.Random, name: str) -> Account:
    return Account(NAME, "1000" + digits(rng, 11), name)


def _new_token(rng: random.Random, kind: TokenKind) -> str:
    return "EAA" + alnum(rng, 120)


def _new_code(rng: random.Random) -> str:
    return "AQ" + alnum(rng, 150)


def _attachment_url(rng: random.Random, kind: str) -> str:
    extension = {"image": "jpg", "video": "mp4"}.get(kind, "pdf")
    a, b, c = (rng.choice("123456789") + digits(rng, n - 1) for n in (9, 15, 19))
    return f"https://scontent.xx.fbcdn.net/v/t1.15752-9/{a}_{b}_{c}_n.{extension}"


def _secrets(state: SimulatorState) -> list[str]:
    settings = FACEBOOK.settings(state)
    # The app token, ID|SECRET, is sent whole (debug_token).
    app_token = f"{settings.app_id}|{settings.app_secret}"
    return [settings.app_secret, settings.verify_token, app_token]


def _config_section(state: SimulatorState, ctx: ConfigContext) -> dict[str, Any]:
    settings = FACEBOOK.settings(state)
    return {
        # The client appends graph_version: {base}/facebook/v21.0/...
        "base_url": ctx.url(_GRAPH.prefix),
        # the Login dialog's host (the client adds graph_version: {www}/v21.0/dialog/oauth)
        "www_url": ctx.url(_WWW.prefix),
        "webhook_url": ctx.webhook_url,
        "app_id": settings.app_id,
        "app_secret": ctx.secret("facebook-app-secret", settings.app_secret),
        "verify_token": ctx.secret("facebook-verify-token", settings.verify_token),
        "graph_version": settings.version,
        "pages": [{"page_id": a.account_id, "name": a.name} for a in state.accounts[NAME]],
    }


def _verify_webhook(state: SimulatorState, delivery: WebhookDelivery) -> bool:
    # §5.8: X-Hub-Signature-256 = "sha256=" HMAC(app_secret, raw body)
    expected = facebook_webhook_sha256(FACEBOOK.settings(state).app_secret, delivery.body)
    return verify_exact(expected, delivery.headers.get("x-hub-signature-256"))


def _webhook_handshake(
    state: SimulatorState, query: Mapping[str, str], wrong: str | None = None
) -> tuple[int, str]:
    # §5.8: echo hub.challenge when hub.verify_token is the one configured. `wrong` is the
    # fault plan's wrong_challenge: the mistakes CRMs make here.
    token = FACEBOOK.settings(state).verify_token
    challenge = query.get("hub.challenge", "")
    if wrong == "ignore_token":
        return 200, challenge
    if query.get("hub.mode") != "subscribe" or not verify_exact(
        token, query.get("hub.verify_token")
    ):
        return 403, "Forbidden"
    if wrong == "ok":
        return 200, "OK"
    if wrong == "quoted":
        return 200, f'"{challenge}"'
    if wrong == "json":
        return 200, json.dumps({"hub.challenge": challenge})
    return 200, challenge


def _message_event(
    state: SimulatorState, source: ChatEventSource, rng: random.Random
) -> EmittedEvent:
    chat = FACEBOOK.chat
    assert chat is not None
    mid = chat.new_message_id(rng)
    payload = facebook_message(
        page_id=source.account.account_id,
        psid=source.user_id,
        mid=mid,
        text=source.text,
        at=source.sent_at,
    )
    # Meta sends (and signs) the body with non-ASCII escaped as \uXXXX (§5.8).
    return EmittedEvent(mid, escaped_json(payload))


def _probe_event(state: SimulatorState, account: Account, at: datetime) -> bytes:
    # A read receipt (message_reads) from the Page's first customer, or a made-up PSID.
    psid = account.conversations[0].user_id if account.conversations else "0" * 16
    return escaped_json(facebook_read(page_id=account.account_id, psid=psid, watermark=at, at=at))


def _sign(state: SimulatorState, account: Account, url: str, body: bytes) -> dict[str, str]:
    # §9: POSTs carry both X-Hub-Signature-256 and the legacy SHA-1 X-Hub-Signature.
    secret = FACEBOOK.settings(state).app_secret
    return {
        "X-Hub-Signature-256": facebook_webhook_sha256(secret, body),
        "X-Hub-Signature": facebook_webhook_sha1(secret, body),
    }


def _delivery_url(state: SimulatorState, account: Account) -> str | None:
    # Message events only reach a callback when the app is subscribed to "messages".
    fields = subscribed_fields(state)
    if fields is None or MESSAGES_FIELD not in fields:
        return None
    return state.webhook_urls.get(NAME)


def _read_message_event(body: bytes) -> list[InboundMessage]:
    # Every messaging item with a message that is not an echo of the Page's own.
    payload = json_object(body)
    if payload is None or payload.get("object") != "page":
        return []
    found = []
    try:
        for entry in payload.get("entry") or []:
            for item in entry.get("messaging") or []:
                message = item.get("message")
                if not isinstance(message, dict) or message.get("is_echo"):
                    continue
                recipient = (item.get("recipient") or {}).get("id", entry.get("id"))
                text = message.get("text")
                found.append(
                    InboundMessage(
                        channel=NAME,
                        shop_external_id=str(recipient),
                        external_id=str(message["mid"]),
                        sender_external_id=str(item["sender"]["id"]),
                        body=text if isinstance(text, str) else None,
                        sent_at=from_milliseconds(item.get("timestamp", entry.get("time"))),
                    )
                )
    except MALFORMED:
        return []
    return found


#: the edges of the Messenger Platform (whose throttling is 80006, Messenger BUC)
_MESSENGER_EDGES = ("conversations", "messages")


def _rate_limited(state: SimulatorState, request: RequestView) -> tuple[int, dict[str, Any]]:
    """§5.6: the code of the limit the token hits: an app's (4: app token, or the token
    endpoints' client secret), a user's (17), a Page's through a User token (32), or a
    Page token's business-use-case limits (80006 Messenger edges, 80001 the rest). HTTP 429
    (throttling may come as 400 too; clients branch on the code)."""
    value = request.query.get("access_token")
    auth = request.headers.get("authorization", "")
    if value is None and auth.lower().startswith("bearer "):
        value = auth[7:].strip()
    token = state.tokens.get(value or "")
    parts = request.path.strip("/").split("/")
    on_page = len(parts) >= 2 and state.account(NAME, parts[1]) is not None
    if token is None or token.platform != NAME:
        error = GraphError(4, "(#4) Application request limit reached")
    elif token.kind == "user":
        error = (
            GraphError(32, "(#32) Page request limit reached")
            if on_page
            else GraphError(17, "(#17) User request limit reached")
        )
    elif parts[-1] in _MESSENGER_EDGES:
        error = GraphError(
            80006,
            "(#80006) There have been too many messages sent to this Messenger account. "
            "Please wait a bit and try again.",
        )
    else:
        error = GraphError(
            80001,
            "(#80001) There have been too many calls to this Page account. "
            "Wait a bit and try again.",
        )
    return 429, error.body("A" + state.new_request_id()[-10:])


def _request_accounts(state: SimulatorState, request: RequestView) -> set[str]:
    # the Page id as the node of /{version}/{page-id}/{edge}; conversation ids are known
    # through the token only
    # (and /{version}/{page-id}, where a User token asks for a Page token)
    parts = request.path.strip("/").split("/")
    if len(parts) in (2, 3) and state.account(NAME, parts[1]) is not None:
        return {parts[1]}
    return set()


_GRAPH = Host(prefix="/facebook", real_host="graph.facebook.com", build=build_facebook_app)
_WWW = Host(
    prefix="/facebook-www",
    real_host="www.facebook.com",
    build=build_facebook_www_app,
    # the Login dialog and its links: a browser's, not the API's
    browser_paths=("*",),
)

FACEBOOK: SimPlatform[FacebookSettings] = SimPlatform(
    name=NAME,
    label="Facebook",
    hosts=(_GRAPH, _WWW),
    error_body=facebook_error_body,
    # A Page token made from a long-lived user token: no expiry, no refresh token.
    access_lifetime=None,
    refresh_lifetime=None,
    # Meta's codes are single use and expire after 10 minutes
    code_lifetime=timedelta(minutes=10),
    new_code=_new_code,
    appsecret_proof=True,
    first_account_name="Bánh Ngọt Sài Gòn",
    shop_categories=(
        "Bánh Ngọt",
        "Tiệm Hoa",
        "Cà Phê",
        "Trà Sữa",
        "Bánh Mì",
        "Tiệm Nail",
        "Quán Chay",
        "Hải Sản",
    ),
    settings_type=FacebookSettings,
    new_settings=_new_settings,
    new_account=_new_account,
    new_token=_new_token,
    chat=ChatSpec(
        new_user_id=lambda rng: digits(rng, 16),  # page-scoped id (PSID)
        new_conversation_id=lambda rng, user_id: "t_" + digits(rng, 15),
        new_message_id=lambda rng: "m_" + alnum(rng, 30),
        crm_thread_ids=True,
        # Messenger redelivers unacknowledged webhooks within seconds.
        webhook_retry_gap=(timedelta(seconds=1), timedelta(seconds=20)),
        attachment_url=_attachment_url,
    ),
    secrets=_secrets,
    config_section=_config_section,
    verify_webhook=_verify_webhook,
    webhook_handshake=_webhook_handshake,
    request_accounts=_request_accounts,
    read_message_event=_read_message_event,
    webhooks=WebhookSpec(
        # §5.8: 200 within 5 s. "A few immediate retries" (Low): simulated 5 s, 30 s, 2 min,
        # and the fault plan may replace it.
        ack_deadline=timedelta(seconds=5),
        retry_schedule=(timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2)),
        message_event=_message_event,
        probe_event=_probe_event,
        sign=_sign,
        delivery_url=_delivery_url,
        registration_fields={"subscribed_fields": "strings", "name": "text"},
    ),
    rate_limit_answer=_rate_limited,
)
