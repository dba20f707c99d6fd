"""``diagnose``: the runbook's quick-diagnosis checks, concurrently, each under a timeout."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from nfdoctor.checks import all_checks
from nfdoctor.checks.base import Check
from nfdoctor.checks.runner import select_checks
from nfdoctor.context import Environment
from nfdoctor.errors import UsageError
from nfdoctor.results import Report
from nfdoctor.services.checkrun import Scope, prepare, run_in_session, scope_accounts
from nfdoctor.services.observer import RunObserver, SilentObserver

__all__ = ["DiagnoseRequest", "Scope", "diagnose", "every_check"]


@dataclass(frozen=True, kw_only=True)
class DiagnoseRequest:
    """What to diagnose: which checks, which platforms and shop, under which config."""

    config_path: Path | None = None
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    scope: Scope = field(default_factory=Scope)
    #: per-check timeout; None: the config's ``thresholds.check_timeout``
    timeout: timedelta | None = None


def every_check() -> list[Check]:
    """Every check there is, for every platform (``diagnose --list``)."""
    return all_checks()


def diagnose(
    env: Environment,
    request: DiagnoseRequest,
    *,
    observer: RunObserver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Run the selected checks and return the report (UsageError for a bad selection)."""
    observer = observer or SilentObserver()
    every = every_check()
    # Typos are errors against every check there is, configured or not, before any work.
    select_checks(every, only=request.only, skip=request.skip)
    prepared = prepare(env, request.config_path, observer)
    accounts = scope_accounts(prepared, request.scope)
    in_scope = all_checks(list(accounts))
    selected = select_checks(in_scope, only=request.only, skip=request.skip, known=every)
    if not selected:
        raise UsageError(
            "--only/--skip left no check to run (platform checks run only for configured "
            "platforms); see nfdoctor diagnose --list"
        )
    check_timeout = request.timeout or prepared.loaded.config.thresholds.check_timeout
    return run_in_session(
        env,
        prepared,
        selected,
        accounts=accounts,
        command="diagnose",
        check_timeout=check_timeout,
        observer=observer,
        transport=transport,
    )
