"""The CRM's side, at ``/crm``: status endpoint, webhook receivers, AI reply endpoint.

Each receiver verifies the signature the way platforms.md says that platform signs its
deliveries (§2.8, §3.8, §4.8, §5.8, §6.8), over the raw body bytes, with the verifier the
platform's module declares. With a database (``CrmSettings.database``), every accepted
*message event* becomes a ``messages`` row the way the real CRM writes one
(:mod:`nfdoctor.store.inbox`, in a worker thread, one transaction per delivery); other
events, and events for shops the CRM does not have, are acknowledged and dropped. Every
delivery is recorded (``state.crm_deliveries``: accepted, refused, stored, dropped, failed,
and why) so tests and the status endpoint can see it.

The receivers apply the fault plan's CRM receiver faults themselves
(:data:`RECEIVER_FAULTS`; the fault injector hands them over in the request's scope):
``slow_ack`` stores first, then waits, then answers, which is how a platform that times out
and retries leaves duplicate rows behind.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from nfdoctor.simulator.base import SCOPE_KEY, json_response, request_now
from nfdoctor.simulator.registry import sim_platform
from nfdoctor.simulator.spec import CRM_PREFIX, SimPlatform, WebhookDelivery
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.simulator.verify import verify_exact
from nfdoctor.store.database import DatabaseUrl
from nfdoctor.store.inbox import InboundMessage, StoredMessage, store_inbound
from nfdoctor.threads import in_daemon_thread

__all__ = [
    "CRM_NAME",
    "CRM_PREFIX",
    "RECEIVER_FAULTS",
    "RECEIVER_FAULTS_KEY",
    "WRONG_CHALLENGE_ANSWERS",
    "CrmSettings",
    "Delivery",
    "build_crm_app",
    "crm_error_body",
]

#: what the fault plan calls the CRM side (mounted at CRM_PREFIX)
CRM_NAME = "crm"

#: fault kinds the CRM's receivers apply themselves (rules with ``platform: crm``)
RECEIVER_FAULTS = (
    "slow_ack",  # store, then wait ``ms``, then answer
    "wrong_challenge",  # the GET handshake answers wrongly (see WRONG_CHALLENGE_ANSWERS)
    "http_status",  # answer ``status`` (e.g. 404) and do nothing else
    "ack_body",  # answer 200 with ``text`` as the body
    "redirect_http",  # 308 to the same path over http://
    "unsigned_ok",  # accept deliveries whatever their signature
)
#: key, in the fault injector's scope info, of ``{kind: params}`` for the receiver faults
RECEIVER_FAULTS_KEY = "receiver_faults"
#: ``wrong_challenge`` answers: "OK", the challenge in double quotes, the challenge in a JSON
#: object, or the challenge whatever the verify token
WRONG_CHALLENGE_ANSWERS = ("ok", "quoted", "json", "ignore_token")

#: accepted: verified, not stored (no database); stored; dropped (not a message event, or an
#: unknown shop); refused (bad signature, or a fault answered); failed (database error)
DeliveryOutcome = Literal["accepted", "stored", "dropped", "refused", "failed"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One webhook delivery the CRM received, and what it did with it."""

    platform: str
    #: whether the signature verified (or ``unsigned_ok`` let it in)
    accepted: bool
    received_at: datetime
    body: bytes
    outcome: DeliveryOutcome = "accepted"
    #: the HTTP status the CRM answered
    status: int = 200
    #: why it was refused, dropped or failed
    reason: str = ""
    #: the platform's message ids the delivery held
    message_ids: tuple[str, ...] = ()
    #: the ``messages`` rows it became
    rows: tuple[int, ...] = ()


@dataclass(kw_only=True)
class CrmSettings:
    """Knobs of the simulated CRM."""

    #: the CRM's public base URL as configured at Shopee (Shopee signs the URL, §2.8);
    #: None = the URL the request arrived at
    public_base_url: str | None = None
    ai_latency_ms: int = 300
    #: the CRM's database (``nfdoctor simulator --database``): message events are stored
    #: there; None: verified and acknowledged only
    database: DatabaseUrl | None = None
    #: bound on connecting to it and on waiting for its write lock
    database_timeout_s: float = 5.0


def crm_error_body(kind: str, status: int) -> tuple[int, dict[str, Any]]:
    """The CRM's own error body for injected faults."""
    return status, {"error": "rate_limited" if kind == "rate_limit" else "server_error"}


def _receiver_faults(request: Request) -> Mapping[str, Mapping[str, Any]]:
    info = request.scope.get(SCOPE_KEY)
    faults = info.get(RECEIVER_FAULTS_KEY) if isinstance(info, dict) else None
    return faults if isinstance(faults, dict) else {}


class CrmApp:
    """Handlers of the simulated CRM."""

    def __init__(
        self, state: SimulatorState, settings: CrmSettings, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.state = state
        self.settings = settings
        self.sleep = sleep
        # One delivery's transaction at a time: the real CRM's receivers queue too, and
        # two deliveries of the same new customer must not race to create it twice.
        self._write_lock = threading.Lock()

    @property
    def deliveries(self) -> Sequence[Delivery]:
        """Every delivery received (``state.crm_deliveries``), oldest first."""
        return self.state.crm_deliveries

    async def status(self, request: Request) -> Response:
        """GET /api/status: component statuses, as the CRM's dashboard reports them."""
        now = request_now(request, self.state)
        deliveries = list(self.state.crm_deliveries)
        recent = deliveries[-50:]
        rejected = sum(1 for d in recent if not d.accepted)
        failed = sum(1 for d in recent if d.outcome == "failed")
        attempts = list(self.state.webhook_attempts)
        degraded = rejected or failed
        database: dict[str, Any] = {"status": "degraded" if failed else "ok"}
        if failed:
            database["failed_recent"] = failed
        return json_response(
            {
                "status": "degraded" if degraded else "ok",
                "time": now.isoformat(),
                "components": {
                    "api": {"status": "ok"},
                    "database": database,
                    "queue": {"status": "ok", "pending": 0},
                    "webhooks": {
                        "status": "degraded" if degraded else "ok",
                        "received": len(deliveries),
                        "rejected_recent": rejected,
                        "stored": sum(len(d.rows) for d in deliveries),
                        "dropped": sum(1 for d in deliveries if d.outcome == "dropped"),
                        # What the platforms' side did (the simulator's emitter).
                        "platform_attempts": {
                            "total": len(attempts),
                            "answered": sum(1 for a in attempts if a.outcome == "answered"),
                            "retried": sum(1 for a in attempts if a.attempt > 1),
                            "gave_up": sum(1 for a in attempts if a.outcome == "gave_up"),
                            "not_sent": sum(1 for a in attempts if a.outcome == "not_sent"),
                        },
                    },
                    "ai": {"status": "ok", "latency_ms": self.settings.ai_latency_ms},
                },
            }
        )

    def _url(self, request: Request, platform: str) -> str:
        # Shopee signs the callback URL exactly as configured on its side, query included
        # (§2.8): the URL the request arrived at, or the configured public one.
        if self.settings.public_base_url is not None:
            url = self.settings.public_base_url.rstrip("/") + "/webhooks/" + platform
            query = request.url.query
            return f"{url}?{query}" if query else url
        return str(request.url)

    def _verify(self, platform: str, request: Request, body: bytes) -> bool:
        delivery = WebhookDelivery(self._url(request, platform), request.headers, body)
        return sim_platform(platform).verify_webhook(self.state, delivery)

    def _fault_answer(
        self, request: Request, faults: Mapping[str, Mapping[str, Any]]
    ) -> tuple[Response, str] | None:
        """The answer of a receiver that is not there as configured, and why."""
        if "redirect_http" in faults:
            location = str(request.url.replace(scheme="http"))
            return Response(status_code=308, headers={"Location": location}), "redirect_http"
        if "http_status" in faults:
            status = int(faults["http_status"]["status"])
            return Response(status_code=status), f"http_status {status}"
        return None

    def _record(self, platform: str, body: bytes, **fields: Any) -> None:
        self.state.crm_deliveries.append(
            Delivery(platform=platform, body=body, received_at=self.state.clock(), **fields)
        )

    async def webhook(self, request: Request) -> Response:
        """POST /webhooks/{platform}: 200 + empty body when the signature verifies (the
        message stored first, with a database), else 401; 500 when storing fails."""
        platform = request.path_params["platform"]
        if platform not in self.state.accounts:
            return Response(status_code=404)
        faults = _receiver_faults(request)
        body = await request.body()
        early = self._fault_answer(request, faults)
        if early is not None:
            response, why = early
            self._record(
                platform,
                body,
                accepted=False,
                outcome="refused",
                status=response.status_code,
                reason=f"fault {why}",
            )
            return response
        spec = sim_platform(platform)
        verified = self._verify(platform, request, body)
        if not verified and "unsigned_ok" not in faults:
            self._record(
                platform,
                body,
                accepted=False,
                outcome="refused",
                status=401,
                reason="the signature does not verify",
            )
            # TikTok counts 401 + empty body as "answered" (§4.8); the others see a non-2xx.
            return Response(status_code=401)
        outcome, reason, ids, rows = await self._store(spec, body)
        if not verified:
            reason = "; ".join(filter(None, ["not signed right, accepted (unsigned_ok)", reason]))
        status = 500 if outcome == "failed" else 200
        self._record(
            platform,
            body,
            accepted=True,
            outcome=outcome,
            status=status,
            reason=reason,
            message_ids=ids,
            rows=rows,
        )
        if status == 500:
            # What a CRM whose database is down answers: the platform retries later.
            return PlainTextResponse("Internal Server Error", status_code=500)
        if "slow_ack" in faults:
            # Stored already: a platform that gives up waiting retries, and the CRM stores
            # the message again. That is where duplicate rows come from.
            await self.sleep(int(faults["slow_ack"]["ms"]) / 1000)
        if "ack_body" in faults:
            return PlainTextResponse(str(faults["ack_body"]["text"]), status_code=200)
        return Response(status_code=200)

    async def _store(
        self, spec: SimPlatform[Any], body: bytes
    ) -> tuple[DeliveryOutcome, str, tuple[str, ...], tuple[int, ...]]:
        """Read the message events out of a delivery and store them: (outcome, why, the
        platform's message ids, the rows written)."""
        messages = spec.read_message_event(body) if spec.read_message_event else []
        if not messages:
            return "dropped", "not a message event", (), ()
        ids = tuple(m.external_id for m in messages)
        database = self.settings.database
        if database is None:
            return "accepted", "no database: not stored", ids, ()
        try:
            stored = await in_daemon_thread(
                lambda: self._write(database, messages), name="nfdoctor-simulator-crm-store"
            )
        except Exception as exc:  # any failure to store is the CRM's 500, as in production
            return "failed", f"storing failed: {exc}", ids, ()
        rows = tuple(s.message_id for s in stored if s is not None)
        if not rows:
            shops = ", ".join(sorted({m.shop_external_id for m in messages}))
            return "dropped", f"no shop {shops} in the CRM", ids, ()
        return "stored", "", ids, rows

    def _write(
        self, database: DatabaseUrl, messages: list[InboundMessage]
    ) -> list[StoredMessage | None]:
        with self._write_lock:
            return store_inbound(
                database,
                messages,
                clock=self.state.clock,
                timeout_s=self.settings.database_timeout_s,
            )

    async def handshake(self, request: Request) -> Response:
        """GET /webhooks/{platform}: the platform's subscription handshake (Facebook's
        ``hub.challenge``, §5.8); 405 for platforms that have none."""
        platform = request.path_params["platform"]
        if platform not in self.state.accounts:
            return Response(status_code=404)
        faults = _receiver_faults(request)
        early = self._fault_answer(request, faults)
        if early is not None:
            return early[0]
        answer = sim_platform(platform).webhook_handshake
        if answer is None:
            return Response(status_code=405, headers={"Allow": "POST"})
        wrong = faults.get("wrong_challenge", {}).get("answer")
        status, text = answer(self.state, request.query_params, wrong)
        if wrong == "json" and status == 200:
            return Response(text, status_code=status, media_type="application/json")
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


def build_crm_app(
    state: SimulatorState, settings: CrmSettings | None = None, *, sleep: Sleep = asyncio.sleep
) -> Starlette:
    """The CRM app; its :class:`CrmApp` is reachable as ``app.state.crm``. ``sleep`` is what
    ``slow_ack`` waits with (tests pass one that takes no time)."""
    crm = CrmApp(state, settings or CrmSettings(), sleep)
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
