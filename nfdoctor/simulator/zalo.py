"""Simulated Zalo OA API (platforms.md §6).

OA API at ``/zalo`` (``openapi.zalo.me``: ``/zalo/v2.0/oa/getoa``); OAuth at ``/zalo-oauth``
(``oauth.zaloapp.com``: ``/zalo-oauth/v4/oa/access_token``). Failures are HTTP 200 with a
negative ``error``; every OA API response carries ``X-RateLimit-Limit``/``-Remain``.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nfdoctor.simulator.base import json_response, request_now, token_fault
from nfdoctor.simulator.state import Account, Message, SimulatorState
from nfdoctor.simulator.verify import appsecret_proof, verify_exact

__all__ = ["build_zalo_app", "build_zalo_oauth_app", "zalo_error_body"]

MAX_COUNT = 10


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

    def reply(
        self, body: dict[str, Any], now: datetime, account: Account | None = None
    ) -> Response:
        # The limit is per OA ("Your OA reached limit call api"); calls whose token names no
        # OA are counted on one shared bucket.
        bucket = f"zalo:{account.account_id}" if account is not None else "zalo"
        calls = self.state.record_call(bucket, now, timedelta(minutes=1))
        limit = self.state.zalo_limit_per_minute
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
        status, token = self.state.check("zalo", value, now=now)
        fault = token_fault(request)
        if fault is not None or status in ("expired", "revoked"):
            raise ZaloError(-220, "access_token is expired or removed")
        if status != "ok" or token is None:
            raise ZaloError(-216, "Access token is invalid")
        proof = request.headers.get("appsecret_proof")
        if (proof is None and self.state.require_appsecret_proof["zalo"]) or (
            proof is not None
            and not verify_exact(appsecret_proof(self.state.zalo_secret_key, value), proof)
        ):
            raise ZaloError(-242, "Invalid appsecret_proof provided in the API argument")
        account = self.state.account("zalo", token.owner)
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
        """POST /v4/oa/access_token (refresh grant): form body, ``secret_key`` header."""
        now = request_now(request, self.state)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))

        # Real codes for these OAuth failures are unconfirmed (§6.3): the values below are
        # the simulator's, in the documented OAuth-style shape with HTTP 200.
        def oauth_error(code: int, name: str, reason: str) -> Response:
            return json_response(
                {
                    "error": code,
                    "error_name": name,
                    "error_reason": reason,
                    "error_description": reason,
                }
            )

        if form.get("app_id") != self.state.zalo_app_id:
            return oauth_error(-14002, "Invalid appId", "app_id is invalid")
        if request.headers.get("secret_key") != self.state.zalo_secret_key:
            return oauth_error(-14001, "Invalid secret key", "secret_key header is invalid")
        if form.get("grant_type") != "refresh_token":
            return oauth_error(-14004, "Invalid grant type", "only refresh_token is simulated")
        status, old = self.state.check("zalo", form.get("refresh_token"), "refresh", now=now)
        if status != "ok" or old is None:
            return oauth_error(
                -14014, "Invalid refresh token", "refresh_token is invalid, expired or used"
            )
        access, refresh = self.state.rotate(old, now=now)
        assert access.expires_at is not None and refresh is not None
        return json_response(
            {
                "access_token": access.value,
                "refresh_token": refresh.value,
                # REL seconds as a STRING, as Zalo sends it (§6.3).
                "expires_in": str(int((access.expires_at - now).total_seconds())),
            }
        )


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
    return Starlette(routes=[Route("/v4/oa/access_token", app.access_token, methods=["POST"])])
