"""The whole simulator as one ASGI app: every platform (and its token host) plus the CRM.

Each platform module declares the real hosts it replaces and the prefix each is mounted at
(``SimPlatform.hosts``); the CRM is at ``/crm`` (``/crm/api/status``,
``/crm/webhooks/{platform}`` …). :data:`PREFIXES` maps every prefix to the name the fault
plan matches on.

The simulator's own endpoints sit at the root, outside every platform (no fault, no rate
limit): ``GET /_sim/ground-truth?platform=P[&account=ID]`` (what the platform holds, see
:meth:`SimulatorState.ground_truth`) and ``GET /_sim/rate-limits[?platform=P]`` (each
platform's ceiling and what its limiter counted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from nfdoctor.simulator.base import json_response
from nfdoctor.simulator.crm import (
    CRM_NAME,
    CRM_PREFIX,
    CrmSettings,
    build_crm_app,
    crm_error_body,
)
from nfdoctor.simulator.emitter import seed_lost_pushes
from nfdoctor.simulator.faults import FaultInjector, FaultPlan, Sleep, load_fault_plan
from nfdoctor.simulator.registry import NAMES, SIM_PLATFORMS
from nfdoctor.simulator.spec import ErrorBody
from nfdoctor.simulator.state import DEFAULT_ORDERS_PER_SHOP, Clock, SimulatorState

__all__ = ["GROUND_TRUTH_PATH", "PREFIXES", "RATE_LIMITS_PATH", "build_simulator"]

#: the simulator's own endpoints (not any platform's)
GROUND_TRUTH_PATH = "/_sim/ground-truth"
RATE_LIMITS_PATH = "/_sim/rate-limits"

Endpoint = Callable[[Request], Awaitable[Response]]

#: mount prefix -> platform name the fault plan matches on
PREFIXES: dict[str, str] = {
    **{host.prefix: spec.name for spec in SIM_PLATFORMS for host in spec.hosts},
    CRM_PREFIX: CRM_NAME,
}


def build_simulator(
    seed: int = 7,
    faults: FaultPlan | Path | None = None,
    clock: Clock | None = None,
    *,
    sleep: Sleep = asyncio.sleep,
    crm_settings: CrmSettings | None = None,
    accounts_per_platform: int = 1,
    orders_per_shop: int = DEFAULT_ORDERS_PER_SHOP,
    conversations_per_account: int = 40,
    shared_message_ids: int = 0,
    rate_limits: Mapping[str, int] | None = None,
) -> tuple[Starlette, SimulatorState]:
    """Build the ASGI app and the state it serves, from a seed, a fault plan and a clock.

    ``accounts_per_platform`` shops/sellers/pages/OAs per platform (1-50; see
    :class:`SimulatorState`, also for ``shared_message_ids``). A fault rule naming an
    ``account`` that does not exist is a :class:`~nfdoctor.errors.UsageError`.

    The plan's webhook sections land in the state: ``state.fault_plan`` (its ``tls`` and
    ``emitter``, for the server start; see :func:`~nfdoctor.simulator.emitter.emitter_for`),
    ``state.registrations``, and the lost pushes it asks for. ``sleep`` is what faults wait
    with (``latency``, ``timeout``, ``slow_ack``).

    ``rate_limits`` (platform -> requests per second) caps platforms' API requests, over
    the plan's ``rate_limits:`` section (``--rate-limit``).
    """
    if isinstance(faults, Path):
        plan = load_fault_plan(faults, default_seed=seed)
    else:
        plan = faults if faults is not None else FaultPlan(seed=seed)
    state = SimulatorState(
        seed,
        clock,
        accounts_per_platform=accounts_per_platform,
        orders_per_shop=orders_per_shop,
        conversations_per_account=conversations_per_account,
        shared_message_ids=shared_message_ids,
    )
    plan.resolve_shops(state)
    plan.check_accounts(state)
    plan.apply_token_settings(state)
    plan.apply_limits(state)
    plan.apply_rate_limits(state)
    for name, limit in (rate_limits or {}).items():
        state.set_rate_limit(name, limit)
    state.fault_plan = plan
    state.registrations = {name: dict(values) for name, values in plan.registrations.items()}
    for name, count in plan.lost_pushes.items():
        seed_lost_pushes(state, name, count)
    # prefix -> (app, error envelope, counted by the rate limiter, its browser paths)
    apps: dict[str, tuple[ASGIApp, ErrorBody, bool, tuple[str, ...]]] = {
        host.prefix: (host.build(state), spec.error_body, True, host.browser_paths)
        for spec in SIM_PLATFORMS
        for host in spec.hosts
    }
    crm = build_crm_app(state, crm_settings, sleep=sleep)
    apps[CRM_PREFIX] = (crm, crm_error_body, False, ())
    routes: list[BaseRoute] = [
        Route(GROUND_TRUTH_PATH, _ground_truth_endpoint(state), methods=["GET"]),
        Route(RATE_LIMITS_PATH, _rate_limits_endpoint(state), methods=["GET"]),
    ]
    # Longer prefixes first, so /lazada-auth is not swallowed by /lazada.
    routes += [
        Mount(
            prefix,
            app=FaultInjector(
                inner,
                platform=PREFIXES[prefix],
                plan=plan,
                state=state,
                error_body=error_body,
                sleep=sleep,
                rate_limited=limited,
                browser_paths=browser_paths,
            ),
        )
        for prefix, (inner, error_body, limited, browser_paths) in sorted(
            apps.items(), key=lambda kv: -len(kv[0])
        )
    ]
    return Starlette(routes=routes), state


def _ground_truth_endpoint(state: SimulatorState) -> Endpoint:
    async def ground_truth(request: Request) -> Response:
        """GET /_sim/ground-truth?platform=P[&account=ID]: what the platform holds."""
        platform = request.query_params.get("platform")
        if platform not in NAMES:
            return json_response(
                {"error": f"name a platform: ?platform= one of {', '.join(NAMES)}"}, 400
            )
        try:
            data = state.ground_truth(platform, request.query_params.get("account"))
        except KeyError as exc:
            return json_response({"error": str(exc.args[0])}, 404)
        return json_response(data)

    return ground_truth


def _rate_limits_endpoint(state: SimulatorState) -> Endpoint:
    async def rate_limits(request: Request) -> Response:
        """GET /_sim/rate-limits[?platform=P]: each platform's ceiling (null: none), the
        requests its limiter accepted and refused, and the most accepted in one second."""
        wanted = request.query_params.get("platform")
        if wanted is not None and wanted not in NAMES:
            return json_response(
                {"error": f"no platform {wanted!r}: one of {', '.join(NAMES)}"}, 400
            )
        platforms = {}
        for name in NAMES if wanted is None else (wanted,):
            accepted, refused = state.rate_counts(name)
            platforms[name] = {
                "limit": state.rates[name].limit,
                "accepted": accepted,
                "refused": refused,
                "max_in_1s": state.max_requests_in_window(name, 1.0),
            }
        return json_response({"platforms": platforms})

    return rate_limits
