"""``check PLATFORM|all``: each shop's connectivity, API call and stored tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from nfdoctor.checks.platforms import platform_checks
from nfdoctor.context import Environment
from nfdoctor.results import Report
from nfdoctor.services.checkrun import run_platform_checks
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
    return run_platform_checks(
        env,
        platform=request.platform,
        config_path=request.config_path,
        make_checks=platform_checks,
        command="check",
        shop=request.shop,
        timeout=request.timeout,
        observer=observer or SilentObserver(),
        transport=transport,
    )
