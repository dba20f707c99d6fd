"""Simulated Lazada Open Platform, Vietnam (platforms.md §3).

The API gateway is mounted at ``/lazada`` (``/lazada/rest/...`` = ``api.lazada.vn/rest/...``)
and the token host at ``/lazada-auth`` (``/lazada-auth/rest/auth/token/refresh`` =
``auth.lazada.com/rest/auth/token/refresh``). Errors come with HTTP 200 and a string ``code``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nfdoctor.simulator.base import json_response, platform_path, request_now, token_fault
from nfdoctor.simulator.state import Account, SimulatorState
from nfdoctor.simulator.verify import lazada_sign, lazada_timestamp, verify_exact

__all__ = ["build_lazada_app", "build_lazada_auth_app", "lazada_error_body"]

TIMESTAMP_TOLERANCE = 7200  # §3.2: within 7200 s of UTC
MAX_LIMIT = 100
MAX_OFFSET = 5000
_VN = timezone(timedelta(hours=7))  # the docs' sample times carry +07:00 / +08:00


class LazadaError(Exception):
    """A Lazada error envelope to answer with (HTTP 200, as the gateway does)."""

    def __init__(self, code: str, message: str, kind: str = "ISV") -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.kind = kind


def lazada_error_body(kind: str, status: int) -> tuple[int, dict[str, Any]]:
    """Lazada's envelope for injected rate-limit and server faults."""
    if kind == "rate_limit":
        return status, {
            "type": "SYSTEM",
            "code": "ApiCallLimit",
            "message": "Api access frequency exceeds the limit. this ban will last 1 seconds",
            "request_id": "fault",
        }
    return status, {
        "type": "ISP",
        "code": "ServiceTimeout",
        "message": "The request has failed due to service timeout",
        "request_id": "fault",
    }


def _api_path(request: Request) -> str:
    path = platform_path(request)
    # The signed api_path is the part after the gateway's /rest (§3.2).
    return path[len("/rest") :] if path.startswith("/rest/") else path


class LazadaApp:
    """Handlers for both Lazada hosts, sharing one state."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def error(self, rid: str, exc: LazadaError) -> Response:
        return json_response(
            {"type": exc.kind, "code": exc.code, "message": exc.message, "request_id": rid}
        )

    async def params(self, request: Request) -> dict[str, str]:
        """Query plus form-encoded body: Lazada signs both (§3.2)."""
        params = dict(request.query_params)
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", "replace")
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    def check(
        self, request: Request, params: dict[str, str], *, seller: bool
    ) -> tuple[datetime, Account | None]:
        """Verify app_key, sign, timestamp and (for seller APIs) the access token."""
        now = request_now(request, self.state)
        for name in ("app_key", "sign", "sign_method", "timestamp"):
            if name not in params:
                raise LazadaError("MissingParameter", f"Missing required parameter: {name}")
        bad_sign = LazadaError(
            "IncompleteSignature",
            "The request signature does not conform to lazada standards",
            "SYSTEM",
        )
        # An unknown app_key has no secret to sign with: the gateway's documented answer for
        # it is not known (§3.6), so it is reported as a signature that cannot conform.
        if params["app_key"] != self.state.lazada_app_key or params["sign_method"] != "sha256":
            raise bad_sign
        expected = lazada_sign(self.state.lazada_app_secret, _api_path(request), params)
        if not verify_exact(expected, params["sign"]):
            raise bad_sign
        moment = lazada_timestamp(params["timestamp"])
        # No documented code for a bad timestamp (§3.6): InvalidParameter is our choice.
        if moment is None or abs((moment - now).total_seconds()) > TIMESTAMP_TOLERANCE:
            raise LazadaError("InvalidParameter", "The specified parameter timestamp is not valid")
        if not seller:
            return now, None
        if "access_token" not in params:
            raise LazadaError("MissingParameter", "Missing required parameter: access_token")
        status, token = self.state.check("lazada", params["access_token"], now=now)
        if status != "ok" or token is None or token_fault(request) is not None:
            raise LazadaError(
                "IllegalAccessToken",
                "The specified access token is invalid or expired",
                "SYSTEM",
            )
        return now, self.state.account("lazada", token.owner)

    async def refresh(self, request: Request) -> Response:
        """/auth/token/refresh on the auth host: both tokens rotate, deadline kept."""
        rid = self.state.new_request_id()
        try:
            params = await self.params(request)
            now, _ = self.check(request, params, seller=False)
            if "refresh_token" not in params:
                raise LazadaError("MissingParameter", "Missing required parameter: refresh_token")
            status, old = self.state.check("lazada", params["refresh_token"], "refresh", now=now)
            if status != "ok" or old is None:
                raise LazadaError(
                    "IllegalRefreshToken", "The specified refresh token is invalid or expired"
                )
            access, refresh = self.state.rotate(old, now=now)
            assert access.expires_at is not None and refresh is not None
            assert refresh.expires_at is not None
            return json_response(
                {
                    "access_token": access.value,
                    "refresh_token": refresh.value,
                    "expires_in": int((access.expires_at - now).total_seconds()),
                    "refresh_expires_in": int((refresh.expires_at - now).total_seconds()),
                    "country": "vn",
                    "account_platform": "seller_center",
                    "account": "seller@example.vn",
                    "country_user_info_list": [
                        {
                            "country": "vn",
                            "seller_id": old.owner,
                            "user_id": int(old.owner) + 1,
                            "short_code": "VN" + old.owner[-6:],
                        }
                    ],
                    "code": "0",
                    "request_id": rid,
                }
            )
        except LazadaError as exc:
            return self.error(rid, exc)

    async def seller_get(self, request: Request) -> Response:
        """GET /seller/get: the ping call."""
        rid = self.state.new_request_id()
        try:
            _, account = self.check(request, await self.params(request), seller=True)
        except LazadaError as exc:
            return self.error(rid, exc)
        assert account is not None
        return json_response(
            {
                "code": "0",
                "data": {
                    "name": account.name,
                    "seller_id": int(account.account_id),
                    "short_code": "VN" + account.account_id[-6:],
                    "email": "seller@example.vn",
                    "cb": False,
                    "status": "ACTIVE",
                    "verified": True,
                    "location": "Hồ Chí Minh",
                    "name_company": account.name,
                    "logo_url": "",
                },
                "request_id": rid,
            }
        )

    async def orders_get(self, request: Request) -> Response:
        """GET /orders/get: offset/limit paging, limit ≤ 100, offset ≤ 5000."""
        rid = self.state.new_request_id()
        try:
            params = await self.params(request)
            _, account = self.check(request, params, seller=True)
            assert account is not None
            bounds: dict[str, datetime] = {}
            for name in ("created_after", "created_before", "update_after", "update_before"):
                if name in params:
                    try:
                        parsed = datetime.fromisoformat(params[name].replace("Z", "+00:00"))
                    except ValueError:
                        raise LazadaError("17", "E017: Invalid Date Format") from None
                    if parsed.tzinfo is None:
                        raise LazadaError("17", "E017: Invalid Date Format")
                    bounds[name] = parsed
            if "created_after" not in bounds and "update_after" not in bounds:
                raise LazadaError(
                    "MissingParameter", "Missing required parameter: created_after or update_after"
                )
            try:
                limit = int(params.get("limit", "10"))
            except ValueError:
                raise LazadaError("19", "E019: Invalid Limit") from None
            if not 1 <= limit <= MAX_LIMIT:
                raise LazadaError("19", "E019: Invalid Limit")
            try:
                offset = int(params.get("offset", "0"))
            except ValueError:
                raise LazadaError("14", "E014: Invalid Offset") from None
            if not 0 <= offset <= MAX_OFFSET:
                raise LazadaError("14", "E014: Invalid Offset")
            status = params.get("status", "all")
            sort_by = params.get("sort_by", "created_at")
            if sort_by not in ("created_at", "updated_at"):
                raise LazadaError("74", "E074: Invalid sort field")
            direction = params.get("sort_direction", "DESC")
            if direction not in ("ASC", "DESC"):
                raise LazadaError("75", "E075: Invalid sort direction")
            orders = [
                o
                for o in account.orders
                if ("created_after" not in bounds or o.create_time >= bounds["created_after"])
                and ("created_before" not in bounds or o.create_time <= bounds["created_before"])
                and ("update_after" not in bounds or o.update_time >= bounds["update_after"])
                and ("update_before" not in bounds or o.update_time <= bounds["update_before"])
                and (status == "all" or o.status == status)
            ]
            key = "create_time" if sort_by == "created_at" else "update_time"
            orders.sort(key=lambda o: getattr(o, key), reverse=direction == "DESC")
            page = orders[offset : offset + limit]
            return json_response(
                {
                    "code": "0",
                    "request_id": rid,
                    "data": {
                        "count": str(len(page)),
                        "countTotal": str(len(orders)),
                        "orders": [
                            {
                                "order_id": o.order_id,
                                "order_number": o.order_id,
                                "created_at": _vn_time(o.create_time),
                                "updated_at": _vn_time(o.update_time),
                                "statuses": [o.status],
                                "price": f"{o.amount:.2f}",
                                "items_count": "1",
                            }
                            for o in page
                        ],
                    },
                }
            )
        except LazadaError as exc:
            return self.error(rid, exc)


def _vn_time(moment: datetime) -> str:
    return moment.astimezone(_VN).isoformat(timespec="seconds")


def build_lazada_app(state: SimulatorState) -> Starlette:
    """The Lazada API gateway (``api.lazada.vn``)."""
    app = LazadaApp(state)
    return Starlette(
        routes=[
            Route("/rest/seller/get", app.seller_get, methods=["GET", "POST"]),
            Route("/rest/orders/get", app.orders_get, methods=["GET", "POST"]),
        ]
    )


def build_lazada_auth_app(state: SimulatorState) -> Starlette:
    """The Lazada token host (``auth.lazada.com``)."""
    app = LazadaApp(state)
    return Starlette(
        routes=[Route("/rest/auth/token/refresh", app.refresh, methods=["GET", "POST"])]
    )
