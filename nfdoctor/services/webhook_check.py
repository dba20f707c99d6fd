"""``webhook check [PLATFORM|all]``: each receiver's TLS, delivery and subscription."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from nfdoctor.checks.webhooks import webhook_checks
from nfdoctor.context import Environment
from nfdoctor.results import Report
from nfdoctor.services.checkrun import PreparedConfig, run_platform_checks
from nfdoctor.services.observer import RunObserver, SilentObserver
from nfdoctor.webhooks.delivery import load_ca_bundle

__all__ = ["WebhookCheckRequest", "check_webhooks"]


@dataclass(frozen=True, kw_only=True)
class WebhookCheckRequest:
    """Which platform's receiver (or ``all``), under which config."""

    platform: str = "all"
    config_path: Path | None = None
    timeout: timedelta | None = None


def check_webhooks(
    env: Environment,
    request: WebhookCheckRequest,
    *,
    observer: RunObserver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Run the webhook checks of the platform(s) asked for; the report."""
    return run_platform_checks(
        env,
        platform=request.platform,
        config_path=request.config_path,
        make_checks=webhook_checks,
        command="webhook check",
        timeout=request.timeout,
        observer=observer or SilentObserver(),
        transport=transport,
        # A CA bundle that cannot be used stops the command here (exit 3, one located
        # line), not as one UNKNOWN per receiver.
        before=_usable_ca_bundle,
    )


def _usable_ca_bundle(prepared: PreparedConfig) -> None:
    load_ca_bundle(prepared.loaded)
