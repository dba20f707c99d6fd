"""``check PLATFORM|all``: each shop's connectivity, API call and stored tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from nfdoctor.checks.platforms import platform_checks
from nfdoctor.context import Environment
from nfdoctor.errors import UsageError
from nfdoctor.results import Report
from nfdoctor.services.checkrun import Scope, prepare, run_in_session, scope_accounts
from nfdoctor.services.observer import RunObserver, SilentObserver

__all__ = ["CheckRequest", "check_platforms"]


@dataclass(frozen=True, kw_only=True)
class CheckRequest:
    """Which platform (or ``all``), which shop, under which config."""

    platform: str
    config_path: Path | None = None
    shop: str | None = None
    timeout: timedelta | None = None


def check_platforms(
    env: Environment,
    request: CheckRequest,
    *,
    observer: RunObserver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Run the platform checks of the platform(s) asked for; the report."""
    observer = observer or SilentObserver()
    name = request.platform.strip().lower()
    if not name:
        raise UsageError("PLATFORM: empty; expected a platform name or all")
    prepared = prepare(env, request.config_path, observer)
    scope = Scope(platforms=() if name == "all" else (name,), shop=request.shop)
    accounts = scope_accounts(prepared, scope)
    checks = platform_checks(list(accounts))
    if not checks:
        raise UsageError(
            f"no platform is configured in {prepared.loaded.path}; add a platforms: section "
            "(see nfdoctor config init)"
        )
    check_timeout = request.timeout or prepared.loaded.config.thresholds.check_timeout
    return run_in_session(
        env,
        prepared,
        checks,
        accounts=accounts,
        command=f"check {name}",
        check_timeout=check_timeout,
        observer=observer,
        transport=transport,
    )
