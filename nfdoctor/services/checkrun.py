"""What ``diagnose`` and ``check`` share: the config made ready, the accounts in scope, and
checks run inside one platform session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from nfdoctor.checks.base import Check, CheckContext
from nfdoctor.checks.runner import run_checks
from nfdoctor.config.loader import LoadedConfig, database_url, load, resolve_secrets
from nfdoctor.context import Environment
from nfdoctor.errors import UsageError
from nfdoctor.platforms.registry import select_accounts
from nfdoctor.platforms.spec import Account
from nfdoctor.results import Report
from nfdoctor.secrets.resolver import ResolvedSecrets
from nfdoctor.services.observer import RunObserver
from nfdoctor.session import PlatformSession
from nfdoctor.tokens.store import TokenStore, open_token_store

__all__ = [
    "PreparedConfig",
    "Scope",
    "call_timeout_s",
    "open_tokens",
    "prepare",
    "run_in_session",
    "run_platform_checks",
    "scope_accounts",
]

#: the most any one HTTP call may take, whatever the check timeout
MAX_CALL_TIMEOUT_S = 10.0


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Which platforms and which shop a run looks at."""

    #: platform names; empty: every enabled platform
    platforms: tuple[str, ...] = ()
    #: one shop, seller, page or OA id; None: all of them
    shop: str | None = None


@dataclass(frozen=True, kw_only=True)
class PreparedConfig:
    """A loaded, validated config with every secret resolved."""

    loaded: LoadedConfig
    secrets: ResolvedSecrets


def prepare(env: Environment, config_path: Path | None, observer: RunObserver) -> PreparedConfig:
    """Find, load and validate the config, report its warnings, resolve every secret.

    A missing secret stops the command here, before anything is measured or written.
    """
    loaded = load(explicit=config_path, environ=env.environ, cwd=env.cwd)
    observer.config_warnings(loaded.warnings)
    secrets = resolve_secrets(loaded, redactor=env.redactor, environ=env.environ)
    return PreparedConfig(loaded=loaded, secrets=secrets)


def scope_accounts(prepared: PreparedConfig, scope: Scope) -> dict[str, list[Account]]:
    """The accounts in scope per platform (UsageError for an unknown platform or shop)."""
    if scope.shop is not None and not scope.shop.strip():
        raise UsageError("--shop: empty id")
    return select_accounts(
        prepared.loaded.config.platforms,
        only=scope.platforms,
        account_id=scope.shop.strip() if scope.shop else None,
    )


def run_platform_checks(
    env: Environment,
    *,
    platform: str,
    config_path: Path | None,
    make_checks: Callable[[list[str]], Sequence[Check]],
    command: str,
    shop: str | None = None,
    timeout: timedelta | None = None,
    observer: RunObserver,
    transport: httpx.AsyncBaseTransport | None = None,
    before: Callable[[PreparedConfig], None] | None = None,
) -> Report:
    """``COMMAND PLATFORM|all``: the checks ``make_checks`` gives for the platforms in scope,
    run in one session. ``before`` sees the prepared config first (to refuse it early)."""
    name = platform.strip().lower()
    if not name:
        raise UsageError("PLATFORM: empty; expected a platform name or all")
    prepared = prepare(env, config_path, observer)
    if before is not None:
        before(prepared)
    scope = Scope(platforms=() if name == "all" else (name,), shop=shop)
    accounts = scope_accounts(prepared, scope)
    checks = make_checks(list(accounts))
    if not checks:
        raise UsageError(
            f"no platform is configured in {prepared.loaded.path}; add a platforms: section "
            "(see nfdoctor config init)"
        )
    return run_in_session(
        env,
        prepared,
        checks,
        accounts=accounts,
        command=f"{command} {name}",
        check_timeout=timeout or prepared.loaded.config.thresholds.check_timeout,
        observer=observer,
        transport=transport,
    )


def open_tokens(env: Environment, prepared: PreparedConfig) -> TokenStore:
    """The token store the config names (``auto``: the CRM's ``channel_credentials`` when the
    configured database has it)."""
    loaded = prepared.loaded
    return open_token_store(
        loaded.config.tokens,
        base_dir=loaded.base_dir,
        state_dir=env.state_dir,
        database=database_url(loaded, prepared.secrets),
        clock=env.clock,
    )


def call_timeout_s(check_timeout: timedelta) -> float:
    """Each HTTP call gets most of its check's time, so a hung shop is that shop's failure
    and not the whole check's; never more than :data:`MAX_CALL_TIMEOUT_S`."""
    return min(MAX_CALL_TIMEOUT_S, check_timeout.total_seconds() * 0.8)


def run_in_session(
    env: Environment,
    prepared: PreparedConfig,
    checks: Sequence[Check],
    *,
    accounts: Mapping[str, list[Account]],
    command: str,
    check_timeout: timedelta,
    observer: RunObserver,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Run ``checks`` concurrently inside one platform session; the report."""
    loaded = prepared.loaded
    token_store = open_tokens(env, prepared)
    session = PlatformSession(
        config=loaded.config,
        secrets=prepared.secrets,
        token_store=token_store,
        redactor=env.redactor,
        clock=env.clock,
        accounts=accounts,
        call_timeout_s=call_timeout_s(check_timeout),
        transport=transport,
    )

    async def run() -> Report:
        async with session:
            ctx = CheckContext(
                loaded=loaded,
                secrets=prepared.secrets,
                clock=env.clock,
                redactor=env.redactor,
                state_dir=env.state_dir,
                token_store=token_store,
                platforms=session if accounts else None,
            )
            observer.started(len(checks))
            return await run_checks(
                ctx,
                checks,
                command=command,
                timeout=check_timeout,
                monotonic=env.monotonic,
                observer=lambda check, results: observer.finished(check.id, results),
            )

    return asyncio.run(run())
