"""The CRM's side, at ``/crm``: status endpoint, webhook receivers, AI reply endpoint.

Each receiver verifies the signature the way platforms.md says that platform signs its
deliveries (§2.8, §3.8, §4.8, §5.8, §6.8), over the raw body bytes, with the verifier the
platform's module declares, and records what it accepted so tests can see it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from nfdoctor.simulator.base import json_response, request_now
from nfdoctor.simulator.registry import sim_platform
from nfdoctor.simulator.spec import WebhookDelivery
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.simulator.verify import verify_exact

__all__ = ["CRM_NAME", "CRM_PREFIX", "CrmSettings", "Delivery", "build_crm_app", "crm_error_body"]

#: what the fault plan calls the CRM side, and where it is mounted
CRM_NAME = "crm"
CRM_PREFIX = "/crm"


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One webhook delivery the CRM received."""

    platform: str
    accepted: bool
    received_at: datetime
    body: bytes


@dataclass(kw_only=True)
class CrmSettings:
    """Knobs of the simulated CRM."""

    #: the CRM's public base URL as configured at Shopee (Shopee signs the URL, §2.8);
    #: None = the URL the request arrived at
    public_base_url: str | None = None
    ai_latency_ms: int = 300


def crm_error_body(kind: str, status: int) -> tuple[int, dict[str, Any]]:
    """The CRM's own error body for injected faults."""
    return status, {"error": "rate_limited" if kind == "rate_limit" else "server_error"}


class CrmApp:
    """Handlers of the simulated CRM."""

    def __init__(self, state: SimulatorState, settings: CrmSettings) -> None:
        self.state = state
        self.settings = settings
        self.deliveries: list[Delivery] = []

    async def status(self, request: Request) -> Response:
        """GET /api/status: component statuses, as the CRM's dashboard reports them."""
        now = request_now(request, self.state)
        recent = self.deliveries[-50:]
        rejected = sum(1 for d in recent if not d.accepted)
        return json_response(
            {
                "status": "degraded" if rejected else "ok",
                "time": now.isoformat(),
                "components": {
                    "api": {"status": "ok"},
                    "database": {"status": "ok"},
                    "queue": {"status": "ok", "pending": 0},
                    "webhooks": {
                        "status": "degraded" if rejected else "ok",
                        "received": len(self.deliveries),
                        "rejected_recent": rejected,
                    },
                    "ai": {"status": "ok", "latency_ms": self.settings.ai_latency_ms},
                },
            }
        )

    def _url(self, request: Request, platform: str) -> str:
        # Platforms that sign the URL (Shopee) sign the one configured on their side.
        if self.settings.public_base_url is not None:
            return self.settings.public_base_url.rstrip("/") + "/webhooks/" + platform
        return str(request.url.replace(query=""))

    def _verify(self, platform: str, request: Request, body: bytes) -> bool:
        delivery = WebhookDelivery(self._url(request, platform), request.headers, body)
        return sim_platform(platform).verify_webhook(self.state, delivery)

    async def webhook(self, request: Request) -> Response:
        """POST /webhooks/{platform}: 200 + empty body when the signature verifies, else 401."""
        platform = request.path_params["platform"]
        if platform not in self.state.accounts:
            return Response(status_code=404)
        body = await request.body()
        accepted = self._verify(platform, request, body)
        self.deliveries.append(
            Delivery(
                platform=platform,
                accepted=accepted,
                received_at=request_now(request, self.state),
                body=body,
            )
        )
        # TikTok counts 401 + empty body as "answered" (§4.8); the others see a non-2xx.
        return Response(status_code=200 if accepted else 401)

    async def handshake(self, request: Request) -> Response:
        """GET /webhooks/{platform}: the platform's subscription handshake (Facebook's
        ``hub.challenge``, §5.8); 405 for platforms that have none."""
        platform = request.path_params["platform"]
        if platform not in self.state.accounts:
            return Response(status_code=404)
        answer = sim_platform(platform).webhook_handshake
        if answer is None:
            return Response(status_code=405, headers={"Allow": "POST"})
        status, text = answer(self.state, request.query_params)
        return PlainTextResponse(text, status_code=status)

    async def ai_reply(self, request: Request) -> Response:
        """POST /api/ai/reply: the chatbot, with configurable latency; needs the CRM API key."""
        auth = request.headers.get("authorization", "")
        key = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
        if not verify_exact(self.state.crm_api_key, key):
            return json_response({"error": "unauthorized"}, 401)
        try:
            payload = json.loads(await request.body() or b"{}")
        except ValueError:
            return json_response({"error": "invalid json"}, 400)
        question = str(payload.get("message", "")) if isinstance(payload, dict) else ""
        await asyncio.sleep(self.settings.ai_latency_ms / 1000)
        return json_response(
            {
                "reply": "Dạ, shop đã nhận được câu hỏi của bạn và sẽ phản hồi ngay ạ.",
                "question": question,
                "model": "nextflow-sim",
                "latency_ms": self.settings.ai_latency_ms,
            }
        )


def build_crm_app(state: SimulatorState, settings: CrmSettings | None = None) -> Starlette:
    """The CRM app; its :class:`CrmApp` is reachable as ``app.state.crm``."""
    crm = CrmApp(state, settings or CrmSettings())
    app = Starlette(
        routes=[
            Route("/api/status", crm.status, methods=["GET"]),
            Route("/api/ai/reply", crm.ai_reply, methods=["POST"]),
            Route("/webhooks/{platform}", crm.handshake, methods=["GET"]),
            Route("/webhooks/{platform}", crm.webhook, methods=["POST"]),
        ]
    )
    app.state.crm = crm
    return app
