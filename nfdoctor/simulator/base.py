"""What every simulated platform app shares: per-request time, paths and JSON responses."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    # Only for annotations: the platform modules import this one, and the state imports them.
    from nfdoctor.simulator.state import SimulatorState

__all__ = ["SCOPE_KEY", "json_response", "platform_path", "request_now", "token_fault"]

#: key in the ASGI scope where the fault injector leaves its per-request decisions
SCOPE_KEY = "nfdoctor.simulator"


def _info(request: Request) -> dict[str, Any]:
    info = request.scope.get(SCOPE_KEY)
    return info if isinstance(info, dict) else {}


def request_now(request: Request, state: SimulatorState) -> datetime:
    """The server's idea of now for this request (the injected clock, shifted by clock_skew)."""
    now = _info(request).get("now")
    return now if isinstance(now, datetime) else state.clock()


def token_fault(request: Request) -> str | None:
    """``"expired"`` or ``"revoked"`` when the fault plan says this request's token is."""
    value = _info(request).get("token_fault")
    return value if isinstance(value, str) else None


def platform_path(request: Request) -> str:
    """The path as the platform sees it: without the simulator's mount prefix."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    # Starlette keeps the full path and records the mount in root_path.
    return path[len(root) :] if root and path.startswith(root) else path


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A compact JSON response, non-ASCII kept as UTF-8 (as the platforms send it)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code, headers=headers, media_type="application/json")
