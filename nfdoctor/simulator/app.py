"""The whole simulator as one ASGI app: every platform (and its token host) plus the CRM.

URL prefixes (each replaces the real host):

    /shopee        partner.shopeemobile.com (API and token endpoints)
    /lazada        api.lazada.vn            (/lazada/rest/seller/get …)
    /lazada-auth   auth.lazada.com          (/lazada-auth/rest/auth/token/refresh)
    /tiktok        open-api.tiktokglobalshop.com
    /tiktok-auth   auth.tiktok-shops.com    (/tiktok-auth/api/v2/token/refresh)
    /facebook      graph.facebook.com       (/facebook/v21.0/me …)
    /zalo          openapi.zalo.me          (/zalo/v2.0/oa/getoa …)
    /zalo-oauth    oauth.zaloapp.com        (/zalo-oauth/v4/oa/access_token)
    /crm           the NextFlow CRM         (/crm/api/status, /crm/webhooks/{platform} …)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from nfdoctor.simulator.crm import CrmSettings, build_crm_app, crm_error_body
from nfdoctor.simulator.facebook import build_facebook_app, facebook_error_body
from nfdoctor.simulator.faults import ErrorBody, FaultInjector, FaultPlan, Sleep, load_fault_plan
from nfdoctor.simulator.lazada import build_lazada_app, build_lazada_auth_app, lazada_error_body
from nfdoctor.simulator.shopee import build_shopee_app, shopee_error_body
from nfdoctor.simulator.state import Clock, SimulatorState
from nfdoctor.simulator.tiktok import build_tiktok_app, build_tiktok_auth_app, tiktok_error_body
from nfdoctor.simulator.zalo import build_zalo_app, build_zalo_oauth_app, zalo_error_body

__all__ = ["PREFIXES", "build_simulator"]

#: mount prefix -> platform name the fault plan matches on
PREFIXES: dict[str, str] = {
    "/shopee": "shopee",
    "/lazada": "lazada",
    "/lazada-auth": "lazada",
    "/tiktok": "tiktok",
    "/tiktok-auth": "tiktok",
    "/facebook": "facebook",
    "/zalo": "zalo",
    "/zalo-oauth": "zalo",
    "/crm": "crm",
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
) -> tuple[Starlette, SimulatorState]:
    """Build the ASGI app and the state it serves, from a seed, a fault plan and a clock.

    ``accounts_per_platform`` shops/sellers/pages/OAs per platform (1-50; see
    :class:`SimulatorState`). A fault rule naming an ``account`` that does not exist is a
    :class:`~nfdoctor.errors.UsageError`.
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
    )
    plan.resolve_shops(state)
    plan.check_accounts(state)
    plan.apply_token_settings(state)
    apps: dict[str, tuple[ASGIApp, ErrorBody]] = {
        "/shopee": (build_shopee_app(state), shopee_error_body),
        "/lazada": (build_lazada_app(state), lazada_error_body),
        "/lazada-auth": (build_lazada_auth_app(state), lazada_error_body),
        "/tiktok": (build_tiktok_app(state), tiktok_error_body),
        "/tiktok-auth": (build_tiktok_auth_app(state), tiktok_error_body),
        "/facebook": (build_facebook_app(state), facebook_error_body),
        "/zalo": (build_zalo_app(state), zalo_error_body),
        "/zalo-oauth": (build_zalo_oauth_app(state), zalo_error_body),
        "/crm": (build_crm_app(state, crm_settings), crm_error_body),
    }
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
