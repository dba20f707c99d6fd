"""The whole simulator as one ASGI app: every platform (and its token host) plus the CRM.

Each platform module declares the real hosts it replaces and the prefix each is mounted at
(``SimPlatform.hosts``); the CRM is at ``/crm`` (``/crm/api/status``,
``/crm/webhooks/{platform}`` …). :data:`PREFIXES` maps every prefix to the name the fault
plan matches on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from nfdoctor.simulator.crm import (
    CRM_NAME,
    CRM_PREFIX,
    CrmSettings,
    build_crm_app,
    crm_error_body,
)
from nfdoctor.simulator.emitter import seed_lost_pushes
from nfdoctor.simulator.faults import FaultInjector, FaultPlan, Sleep, load_fault_plan
from nfdoctor.simulator.registry import SIM_PLATFORMS
from nfdoctor.simulator.spec import ErrorBody
from nfdoctor.simulator.state import Clock, SimulatorState

__all__ = ["PREFIXES", "build_simulator"]

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
    orders_per_shop: int = 250,
    conversations_per_account: int = 40,
    shared_message_ids: int = 0,
) -> tuple[Starlette, SimulatorState]:
    """Build the ASGI app and the state it serves, from a seed, a fault plan and a clock.

    ``accounts_per_platform`` shops/sellers/pages/OAs per platform (1-50; see
    :class:`SimulatorState`, also for ``shared_message_ids``). A fault rule naming an
    ``account`` that does not exist is a :class:`~nfdoctor.errors.UsageError`.

    The plan's webhook sections land in the state: ``state.fault_plan`` (its ``tls`` and
    ``emitter``, for the server start; see :func:`~nfdoctor.simulator.emitter.emitter_for`),
    ``state.registrations``, and the lost pushes it asks for. ``sleep`` is what faults wait
    with (``latency``, ``timeout``, ``slow_ack``).
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
    state.fault_plan = plan
    state.registrations = {name: dict(values) for name, values in plan.registrations.items()}
    for name, count in plan.lost_pushes.items():
        seed_lost_pushes(state, name, count)
    apps: dict[str, tuple[ASGIApp, ErrorBody]] = {
        host.prefix: (host.build(state), spec.error_body)
        for spec in SIM_PLATFORMS
        for host in spec.hosts
    }
    apps[CRM_PREFIX] = (build_crm_app(state, crm_settings, sleep=sleep), crm_error_body)
    # Longer prefixes first, so /lazada-auth is not swallowed by /lazada.
    routes = [
        Mount(
            prefix,
            app=FaultInjector(
                inner,
                platform=PREFIXES[prefix],
                plan=plan,
                state=state,
                error_body=error_body,
                sleep=sleep,
            ),
        )
        for prefix, (inner, error_body) in sorted(apps.items(), key=lambda kv: -len(kv[0]))
    ]
    return Starlette(routes=routes), state
