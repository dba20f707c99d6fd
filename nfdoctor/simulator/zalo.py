"""Simulated Zalo OA API (platforms.md §6).

OA API at ``/zalo`` (``openapi.zalo.me``: ``/zalo/v2.0/oa/getoa``); OAuth at ``/zalo-oauth``
(``oauth.zaloapp.com``: ``/zalo-oauth/v4/oa/permission``, the consent page, and
``/zalo-oauth/v4/oa/access_token``, the code exchange with PKCE and the refresh). Failures are
HTTP 200 with a negative ``error``; every OA API response carries
``X-RateLimit-Limit``/``-Remain``.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

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
    from_milliseconds,
    json_object,
    stable_digits,
    utf8_json,
    zalo_received_message,
    zalo_user_send_text,
)
from nfdoctor.simulator.model import (
    Account,
    Message,
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
from nfdoctor.simulator.verify import appsecret_proof, verify_exact, zalo_webhook_mac

if TYPE_CHECKING:
    from nfdoctor.simulator.state import SimulatorState

__all__ = [
    "ZALO",
    "ZALO_OA_PROFILES",
    "ZaloSettings",
    "build_zalo_app",
    "build_zalo_oauth_app",
    "zalo_error_body",
]

NAME = "zalo"
MAX_COUNT = 10
#: §6.3: the OA permission (consent) page on the OAuth host, and its links
PERMISSION_PATH = "/v4/oa/permission"
APPROVE_PATH = PERMISSION_PATH + "/approve"
#: an S256 challenge: base64url without padding of a 32-byte digest (RFC 7636 §4.2)
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")

# The OAuth errors' codes are unconfirmed (§6.3, §8.15) beside -14002 and -14003: the others
# are the simulator's, in the documented shape (HTTP 200).
BAD_SECRET_KEY = -14001
BAD_APP_ID = -14002
BAD_REDIRECT_URI = -14003
BAD_GRANT_TYPE = -14004
BAD_CODE = -14005
BAD_CODE_VERIFIER = -14006
BAD_CODE_CHALLENGE = -14007
BAD_REFRESH_TOKEN = -14014

# OA profile fields (getoa) by the category an OA's name starts with: (cate_name, description).
ZALO_OA_PROFILES: dict[str, tuple[str, str]] = {
    "Nhà Thuốc": ("Y tế", "Nhà thuốc uy tín tại TP.HCM"),
    "Nha Khoa": ("Y tế", "Nha khoa thẩm mỹ, đặt lịch khám qua Zalo"),
    "Phòng Khám": ("Y tế", "Phòng khám đa khoa, tư vấn sức khỏe miễn phí"),
    "Anh Ngữ": ("Giáo dục", "Trung tâm tiếng Anh cho trẻ em và người đi làm"),
    "Spa": ("Làm đẹp", "Spa chăm sóc da và thư giãn"),
    "Thẩm Mỹ Viện": ("Làm đẹp", "Thẩm mỹ viện, tư vấn liệu trình miễn phí"),
    "Gara Ô Tô": ("Ô tô - Xe máy", "Sửa chữa, bảo dưỡng ô tô các hãng"),
    "Nhà Sách": ("Sách - Văn phòng phẩm", "Sách, truyện và văn phòng phẩm chính hãng"),
}


@dataclass(kw_only=True)
class ZaloSettings:
    """The simulated app's credentials and the OA API's per-minute limit."""

    app_id: str
    secret_key: str
    limit_per_minute: int = 4000


class ZaloError(Exception):
    """A Zalo ``{error, message}`` failure (HTTP 200)."""

    def __init__(self, error: int, message: str) -> None:
        super().__init__(error)
        self.error = error
        self.message = message


def zalo_error_body(kind: str, status: int) -> tuple[int, dict[str, Any]]:
    """Zalo's envelope for injected rate-limit and server faults."""
    if kind == "rate_limit":
        return status, {"error": -32, "message": "Your application reached limit call api"}
    # Zalo documents no server-error code (§6.6); a bare HTTP 5xx with a generic body.
    return status, {"error": -1, "message": "Internal server error"}


def _item(message: Message, account: Account, user_name: str) -> dict[str, Any]:
    return {
        "src": 1 if message.from_customer else 0,
        "time": int(message.time.timestamp() * 1000),  # ms
        "type": "text",
        "message": message.text,
        "message_id": message.message_id,
        "from_id": message.sender_id,
        "to_id": message.recipient_id,
        "from_display_name": user_name if message.from_customer else account.name,
        "to_display_name": account.name if message.from_customer else user_name,
    }


def _alias(name: str) -> str:
    """The OA's alias: its name without diacritics or spaces ("Nhà Thuốc An Khang" ->
    "nhathuocankhang")."""
    plain = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in plain if c.isascii() and c.isalnum()).lower()


class ZaloApp:
    """Handlers for both Zalo hosts."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    @property
    def settings(self) -> ZaloSettings:
        """The app's credentials and limit (read per request: tests change them)."""
        return ZALO.settings(self.state)

    def reply(
        self, body: dict[str, Any], now: datetime, account: Account | None = None
    ) -> Response:
        # The limit is per OA ("Your OA reached limit call api"); calls whose token names no
        # OA are counted on one shared bucket.
        bucket = f"{NAME}:{account.account_id}" if account is not None else NAME
        calls = self.state.record_call(bucket, now, timedelta(minutes=1))
        limit = self.settings.limit_per_minute
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remain": str(max(0, limit - calls)),
        }
        if calls > limit:
            body = {"error": -32, "message": "Your OA reached limit call api"}
        return json_response(body, headers=headers)

    def check(self, request: Request, now: datetime) -> Account:
        """The ``access_token`` header (not Bearer) and the optional ``appsecret_proof``."""
        value = request.headers.get("access_token")
        if value is None:
            # `Authorization: Bearer` is not how Zalo takes the token (§6.2): -216.
            raise ZaloError(-216, "Access token is invalid")
        status, token = self.state.check(NAME, value, now=now)
        fault = token_fault(request)
        if fault is not None or status in ("expired", "revoked"):
            raise ZaloError(-220, "access_token is expired or removed")
        if status != "ok" or token is None:
            raise ZaloError(-216, "Access token is invalid")
        proof = request.headers.get("appsecret_proof")
        if (proof is None and self.state.require_appsecret_proof[NAME]) or (
            proof is not None
            and not verify_exact(appsecret_proof(self.settings.secret_key, value), proof)
        ):
            raise ZaloError(-242, "Invalid appsecret_proof provided in the API argument")
        account = self.state.account(NAME, token.owner)
        assert account is not None
        return account

    def data_param(self, request: Request) -> dict[str, Any]:
        raw = request.query_params.get("data", "{}")
        try:
            data = json.loads(raw)
        except ValueError:
            raise ZaloError(-201, "data is invalid!") from None
        if not isinstance(data, dict):
            raise ZaloError(-201, "data is invalid!")
        return data

    def window(self, data: dict[str, Any]) -> tuple[int, int]:
        offset, count = data.get("offset", 0), data.get("count", 5)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ZaloError(-201, "offset is invalid!")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
            raise ZaloError(-201, "count is invalid!")
        return offset, count

    async def getoa(self, request: Request) -> Response:
        """GET /v2.0/oa/getoa: the ping call."""
        now = request_now(request, self.state)
        try:
            account = self.check(request, now)
        except ZaloError as exc:
            return self.reply({"error": exc.error, "message": exc.message}, now)
        return self.reply(
            {
                "data": {
                    "oa_id": account.account_id,
                    "name": account.name,
                    "description": account.extra.get("description", ""),
                    "oa_alias": _alias(account.name),
                    "is_verified": True,
                    "oa_type": 2,
                    "cate_name": account.extra.get("cate_name", ""),
                    "num_follower": 1284,
                    "avatar": "https://example.invalid/avatar.png",
                    "cover": "https://example.invalid/cover.png",
                    "package_name": "Gói Nâng cao",
                    "package_valid_through_date": (now + timedelta(days=200)).strftime("%d/%m/%Y"),
                },
                "error": 0,
                "message": "Success",
            },
            now,
            account,
        )

    async def listrecentchat(self, request: Request) -> Response:
        """GET /v2.0/oa/listrecentchat?data={"offset":0,"count":10}: a bare array."""
        now = request_now(request, self.state)
        try:
            account = self.check(request, now)
            offset, count = self.window(self.data_param(request))
        except ZaloError as exc:
            return self.reply({"error": exc.error, "message": exc.message}, now)
        latest = [
            _item(c.messages[-1], account, c.user_name)
            for c in account.conversations[offset : offset + count]
        ]
        return self.reply({"data": latest, "error": 0, "message": "Success"}, now, account)

    async def conversation(self, request: Request) -> Response:
        """GET /v2.0/oa/conversation?data={"user_id":…,"offset":0,"count":10}."""
        now = request_now(request, self.state)
        try:
            account = self.check(request, now)
            data = self.data_param(request)
            offset, count = self.window(data)
            user_id = str(data.get("user_id", ""))
            conv = next((c for c in account.conversations if c.user_id == user_id), None)
            if conv is None:
                raise ZaloError(-201, "user_id is invalid!")
        except ZaloError as exc:
            return self.reply({"error": exc.error, "message": exc.message}, now)
        newest_first = list(reversed(conv.messages))[offset : offset + count]
        items = [_item(m, account, conv.user_name) for m in newest_first]
        return self.reply({"data": items, "error": 0, "message": "Success"}, now, account)

    async def access_token(self, request: Request) -> Response:
        """POST /v4/oa/access_token: form body, ``secret_key`` header; the refresh grant
        (single use, rotating) and the code exchange with PKCE (§6.3)."""
        now = request_now(request, self.state)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        grant = form.get("grant_type")
        kind: TokenEventKind = "exchange" if grant == "authorization_code" else "refresh"
        owner: str | None = None
        try:
            if form.get("app_id") != self.settings.app_id:
                raise OAuthError(BAD_APP_ID, "Invalid appId", "app_id is invalid")
            if request.headers.get("secret_key") != self.settings.secret_key:
                raise OAuthError(
                    BAD_SECRET_KEY, "Invalid secret key", "secret_key header is invalid"
                )
            if grant == "refresh_token":
                status, old = self.state.check(NAME, form.get("refresh_token"), "refresh", now=now)
                owner = old.owner if old is not None else None
                if status != "ok" or old is None:
                    raise OAuthError(
                        BAD_REFRESH_TOKEN,
                        "Invalid refresh token",
                        "refresh_token is invalid, expired or used",
                    )
                access, refresh = self.state.rotate(old, now=now)
                spent = old.value
            elif grant == "authorization_code":
                code_status, code = self.state.redeem_code(
                    NAME, form.get("code"), now=now, code_verifier=form.get("code_verifier")
                )
                owner = code.account if code is not None else None
                if code_status == "wrong_verifier":
                    raise OAuthError(
                        BAD_CODE_VERIFIER,
                        "Invalid code verifier",
                        "code_verifier does not match the code_challenge",
                    )
                if code_status != "ok" or code is None:
                    reason = {"used": "code was used", "expired": "code has expired"}
                    raise OAuthError(
                        BAD_CODE, "Invalid code", reason.get(code_status, "code is invalid")
                    )
                access, refresh = self.state.authorize(code, now=now)
                spent = code.value
            else:
                raise OAuthError(
                    BAD_GRANT_TYPE,
                    "Invalid grant type",
                    "grant_type must be authorization_code or refresh_token",
                )
        except OAuthError as exc:
            token_refused(
                request, self.state, platform=NAME, kind=kind, account=owner, error=str(exc.error)
            )
            return json_response(exc.body())
        assert access.expires_at is not None and refresh is not None
        token_issued(
            request,
            self.state,
            platform=NAME,
            kind=kind,
            account=access.owner,
            access=access,
            refresh=refresh,
            spent=spent,
        )
        return json_response(
            {
                "access_token": access.value,
                "refresh_token": refresh.value,
                # REL seconds as a STRING, as Zalo sends it (§6.3).
                "expires_in": str(int((access.expires_at - now).total_seconds())),
            }
        )

    async def permission(self, request: Request) -> Response:
        """GET /v4/oa/permission?app_id=&redirect_uri=&code_challenge=&state=: the consent
        page, one link per OA (§6.3)."""
        q = request.query_params
        now = request_now(request, self.state)
        redirect, challenge = q.get("redirect_uri"), q.get("code_challenge")
        try:
            if q.get("app_id") != self.settings.app_id:
                raise OAuthError(BAD_APP_ID, "Invalid appId", "app_id is invalid")
            if redirect is None or not redirect_allowed(redirect):
                raise OAuthError(
                    BAD_REDIRECT_URI, "Invalid redirect uri", "redirect_uri is not allowed"
                )
            # PKCE is optional (the SDK's URL works without it); a challenge sent is S256.
            if challenge is not None and not _CHALLENGE.fullmatch(challenge):
                raise OAuthError(
                    BAD_CODE_CHALLENGE,
                    "Invalid code challenge",
                    "code_challenge must be a base64url S256 digest",
                )
        except OAuthError as exc:
            # A browser page: the OAuth shape, with a 400 (the simulator's choice).
            return json_response(exc.body(), 400)
        consent = self.state.new_consent(
            NAME,
            redirect_uri=redirect,
            state=q.get("state"),
            code_challenge=challenge,
            now=now,
            lifetime=CONSENT_LIFETIME,
        )
        approve = host_url(request, APPROVE_PATH)
        links = [
            ConsentLink(
                href=with_query(approve, {"consent": consent.consent_id, "oa_id": a.account_id}),
                text=f"Cho phép {a.name} (OA {a.account_id})",
                account=a.account_id,
            )
            for a in self.state.accounts[NAME]
        ]
        intro = f"Ứng dụng {self.settings.app_id} xin quyền quản lý Official Account của bạn."
        return consent_page("Zalo: cấp quyền cho ứng dụng", intro, links)

    async def approve(self, request: Request) -> Response:
        """The consent page's link: 302 to ``<redirect_uri>?code=…&oa_id=…&state=…``."""
        q = request.query_params
        now = request_now(request, self.state)
        consent = self.state.live_consent(NAME, q.get("consent"), now=now)
        account = self.state.account(NAME, q.get("oa_id") or "")
        if consent is None or account is None:
            error = OAuthError(BAD_CODE, "Invalid request", "the permission link expired")
            return json_response(error.body(), 400)
        code = self.state.issue_code(consent, account.account_id, now=now)
        params = {"code": code.value, "oa_id": account.account_id}
        if consent.state is not None:
            params["state"] = consent.state
        return redirect_to(with_query(consent.redirect_uri, params))


class OAuthError(Exception):
    """A failure of the OAuth host, in its own shape (``error``, ``error_name`` …)."""

    def __init__(self, error: int, name: str, reason: str) -> None:
        super().__init__(error)
        self.error = error
        self.name = name
        self.reason = reason

    def body(self) -> dict[str, Any]:
        """``{"error", "error_name", "error_reason", "error_description"}``."""
        return {
            "error": self.error,
            "error_name": self.name,
            "error_reason": self.reason,
            "error_description": self.reason,
        }


def build_zalo_app(state: SimulatorState) -> Starlette:
    """The OA API host."""
    app = ZaloApp(state)
    return Starlette(
        routes=[
            Route("/v2.0/oa/getoa", app.getoa, methods=["GET"]),
            Route("/v2.0/oa/listrecentchat", app.listrecentchat, methods=["GET"]),
            Route("/v2.0/oa/conversation", app.conversation, methods=["GET"]),
        ]
    )


def build_zalo_oauth_app(state: SimulatorState) -> Starlette:
    """The OAuth v4 host."""
    app = ZaloApp(state)
    return Starlette(
        routes=[
            Route("/v4/oa/access_token", app.access_token, methods=["POST"]),
            Route(PERMISSION_PATH, app.permission, methods=["GET"]),
            Route(APPROVE_PATH, app.approve, methods=["GET"]),
        ]
    )


# ---- the declaration ---------------------------------------------------------------------


def _new_settings(rng: random.Random) -> ZaloSettings:
    app_id = str(10**18 + rng.randrange(10**18))
    return ZaloSettings(app_id=app_id, secret_key=alnum(rng, 20))


def _new_account(rng: random.Random, name: str) -> Account:
    category = next((c for c in ZALO_OA_PROFILES if name.startswith(c + " ")), "Nhà Thuốc")
    cate_name, description = ZALO_OA_PROFILES[category]
    oa_id = "43" + digits(rng, 17)
    extra = {"oa_secret": alnum(rng, 20), "cate_name": cate_name, "description": description}
    return Account(NAME, oa_id, name, extra=extra)


def _new_token(rng: random.Random, kind: TokenKind) -> str:
    return alnum(rng, 80 if kind == "access" else 100)


def _new_code(rng: random.Random) -> str:
    return alnum(rng, 64)


def _attachment_url(rng: random.Random, kind: str) -> str:
    extension = {"image": "jpg", "video": "mp4"}.get(kind, "pdf")
    folder = rng.choice("123456789") + digits(rng, 18)
    return f"https://f20-zpc.zdn.vn/{extension}/{folder}/{hex_string(rng, 32)}.{extension}"


def _secrets(state: SimulatorState) -> list[str]:
    oa_secrets = [a.extra["oa_secret"] for a in state.accounts[NAME] if "oa_secret" in a.extra]
    return [ZALO.settings(state).secret_key, *oa_secrets]


def _config_section(state: SimulatorState, ctx: ConfigContext) -> dict[str, Any]:
    settings = ZALO.settings(state)
    return {
        "base_url": ctx.url(_API.prefix),
        "oauth_url": ctx.url(_OAUTH.prefix) + "/v4",
        "webhook_url": ctx.webhook_url,
        "app_id": settings.app_id,
        "secret_key": ctx.secret("zalo-secret-key", settings.secret_key),
        "oas": [
            {
                "oa_id": a.account_id,
                "name": a.name,
                "oa_secret": ctx.secret(f"zalo-oa-secret-{a.account_id}", a.extra["oa_secret"]),
            }
            for a in state.accounts[NAME]
        ],
    }


def _verify_webhook(state: SimulatorState, delivery: WebhookDelivery) -> bool:
    # §6.8: X-ZEvent-Signature "mac=" SHA256(app_id ‖ body ‖ timestamp ‖ oa_secret), with
    # the body's own timestamp; any of the OAs may have sent it.
    given = delivery.headers.get("x-zevent-signature", "")
    if not given.startswith("mac="):
        return False
    try:
        timestamp = str(json.loads(delivery.body)["timestamp"])
    except (ValueError, KeyError, TypeError):
        return False
    app_id = ZALO.settings(state).app_id
    return any(
        verify_exact(
            zalo_webhook_mac(app_id, delivery.body, timestamp, oa.extra["oa_secret"]), given[4:]
        )
        for oa in state.accounts[NAME]
    )


#: every event whose name starts so is a user's message to the OA (§6.8)
USER_MESSAGE_PREFIX = "user_send_"


def _message_event(
    state: SimulatorState, source: ChatEventSource, rng: random.Random
) -> EmittedEvent:
    chat = ZALO.chat
    assert chat is not None
    msg_id = chat.new_message_id(rng)
    payload = zalo_user_send_text(
        app_id=ZALO.settings(state).app_id,
        oa_id=source.account.account_id,
        user_id=source.user_id,
        # The user's id for this app: another id than the OA-scoped one, stable per user.
        user_id_by_app=stable_digits(f"{NAME}/app-user/{source.user_id}", 18),
        msg_id=msg_id,
        text=source.text,
        at=source.sent_at,
    )
    return EmittedEvent(msg_id, utf8_json(payload))


def _probe_event(state: SimulatorState, account: Account, at: datetime) -> bytes:
    # A ZNS delivery receipt: the OA's message reached a user; nothing a CRM stores.
    user = account.conversations[0].user_id if account.conversations else "5" + "0" * 17
    payload = zalo_received_message(
        app_id=ZALO.settings(state).app_id,
        oa_id=account.account_id,
        user_id=user,
        msg_id=stable_digits(f"{NAME}/probe/{int(at.timestamp())}", 19),
        at=at,
    )
    return utf8_json(payload)


def _sign(state: SimulatorState, account: Account, url: str, body: bytes) -> dict[str, str]:
    # §6.8: mac = SHA256(app_id ‖ raw body ‖ the body's timestamp ‖ the OA's secret key)
    timestamp = str(json.loads(body)["timestamp"])
    mac = zalo_webhook_mac(ZALO.settings(state).app_id, body, timestamp, account.extra["oa_secret"])
    return {"X-ZEvent-Signature": f"mac={mac}"}


def _retry_headers(retry: int) -> dict[str, str]:
    # §6.8 (Low-M): each retry carries how many retries it is
    return {"num_retry": str(retry)}


def _read_message_event(body: bytes) -> list[InboundMessage]:
    # Every user_send_* event is a user's message (text, image, sticker …).
    payload = json_object(body)
    name = payload.get("event_name") if payload is not None else None
    if payload is None or not isinstance(name, str) or not name.startswith(USER_MESSAGE_PREFIX):
        return []
    try:
        message = payload["message"]
        text = message.get("text")
        return [
            InboundMessage(
                channel=NAME,
                shop_external_id=str(payload["recipient"]["id"]),
                external_id=str(message["msg_id"]),
                sender_external_id=str(payload["sender"]["id"]),
                body=text if isinstance(text, str) else None,
                sent_at=from_milliseconds(payload["timestamp"]),
            )
        ]
    except MALFORMED:
        return []


def _rate_limited(state: SimulatorState, request: RequestView) -> tuple[int, dict[str, Any]]:
    # §6.6/§6.7: -32 with HTTP 200; the ceiling is the app's (every OA together)
    return 200, {"error": -32, "message": "Your application reached limit call api"}


_API = Host(prefix="/zalo", real_host="openapi.zalo.me", build=build_zalo_app)
_OAUTH = Host(
    prefix="/zalo-oauth",
    real_host="oauth.zaloapp.com",
    build=build_zalo_oauth_app,
    # the OA permission page and its links (the token endpoint is an API call)
    browser_paths=(PERMISSION_PATH, APPROVE_PATH),
)

ZALO: SimPlatform[ZaloSettings] = SimPlatform(
    name=NAME,
    label="Zalo OA",
    hosts=(_API, _OAUTH),
    error_body=zalo_error_body,
    # 25 h access (expires_in "90000"), 3-month single-use refresh
    access_lifetime=timedelta(hours=25),
    refresh_lifetime=timedelta(days=90),
    single_use_refresh=True,
    # §6.3: the code is single use and lives 10 minutes
    code_lifetime=timedelta(minutes=10),
    new_code=_new_code,
    appsecret_proof=True,
    first_account_name="Nhà Thuốc An Khang",
    shop_categories=tuple(ZALO_OA_PROFILES),
    settings_type=ZaloSettings,
    new_settings=_new_settings,
    new_account=_new_account,
    new_token=_new_token,
    chat=ChatSpec(
        new_user_id=lambda rng: "5" + digits(rng, 17),
        # A Zalo conversation is the follower itself: its id is the user id.
        new_conversation_id=lambda rng, user_id: user_id,
        new_message_id=lambda rng: hex_string(rng, 20),
        # The OA API has no thread id, so the CRM stores none.
        crm_thread_ids=False,
        webhook_retry_gap=(timedelta(seconds=30), timedelta(minutes=5)),
        attachment_url=_attachment_url,
    ),
    secrets=_secrets,
    config_section=_config_section,
    verify_webhook=_verify_webhook,
    read_message_event=_read_message_event,
    webhooks=WebhookSpec(
        # §6.8: 200 within 2 s. Retries conflict (Low-M): the five steps with num_retry are
        # simulated, and the fault plan may replace them (e.g. "for 12 hours").
        ack_deadline=timedelta(seconds=2),
        retry_schedule=(
            timedelta(seconds=30),
            timedelta(minutes=5),
            timedelta(minutes=15),
            timedelta(minutes=30),
            timedelta(hours=1),
        ),
        message_event=_message_event,
        probe_event=_probe_event,
        sign=_sign,
        retry_headers=_retry_headers,
    ),
    rate_limit_answer=_rate_limited,
)
