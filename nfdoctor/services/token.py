"""``token status | refresh | import | export``: the tokens the CRM and nfdoctor use.

``status`` is the token check of every account in scope (its store, expiries judged against
each token's own lifetime, the last refresh and by whom, an interrupted refresh, Facebook's
``debug_token``). ``refresh`` runs the refresh protocol of :mod:`nfdoctor.tokens.refresh` on
each account, concurrently, each under its own lease. ``import`` and ``export`` move pairs
between a token file (0600, never an argument or stdout) and the configured store.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from nfdoctor import __version__
from nfdoctor.checks.platforms import PlatformTokenCheck
from nfdoctor.context import Environment
from nfdoctor.errors import StateError, UsageError
from nfdoctor.fsutil import FileRefusedError, os_reason, read_regular_file
from nfdoctor.hints import platform_hint
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account
from nfdoctor.results import CheckResult, Metric, Report, Status
from nfdoctor.services.checkrun import (
    PreparedConfig,
    Scope,
    call_timeout_s,
    open_tokens,
    prepare,
    run_in_session,
    scope_accounts,
)
from nfdoctor.services.observer import RunObserver, SilentObserver
from nfdoctor.session import PlatformSession
from nfdoctor.state.documents import decode_json, write_json
from nfdoctor.tokens.refresh import (
    Refresher,
    RefreshPolicy,
    RefreshResult,
    refresh_due,
    run_owner,
)
from nfdoctor.tokens.store import (
    FORMAT,
    MAX_TOKEN_FILE_BYTES,
    StoredToken,
    record_from_json,
    token_document,
)

__all__ = [
    "ExportRequest",
    "ImportRequest",
    "RefreshRequest",
    "StatusRequest",
    "export_tokens",
    "import_tokens",
    "refresh_tokens",
    "token_status",
]


@dataclass(frozen=True, kw_only=True)
class StatusRequest:
    """``token status [PLATFORM|all] [--shop ID]``."""

    platform: str = "all"
    config_path: Path | None = None
    shop: str | None = None


@dataclass(frozen=True, kw_only=True)
class RefreshRequest:
    """``token refresh [PLATFORM|all] [--shop ID] [--due] [--force] [--retry-unknown]``."""

    platform: str = "all"
    config_path: Path | None = None
    shop: str | None = None
    due: bool = False
    force: bool = False
    retry_unknown: bool = False
    #: how long to wait for another refresher's lease
    wait: timedelta = timedelta(seconds=60)


@dataclass(frozen=True, kw_only=True)
class ImportRequest:
    """``token import [--from FILE|-]``."""

    source: str = "-"
    config_path: Path | None = None


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """``token export --out FILE``."""

    out: Path
    config_path: Path | None = None
    platform: str = "all"


def _scope(prepared: PreparedConfig, platform: str, shop: str | None) -> dict[str, list[Account]]:
    name = platform.strip().lower()
    if not name:
        raise UsageError("PLATFORM: empty; expected a platform name or all")
    accounts = scope_accounts(
        prepared, Scope(platforms=() if name == "all" else (name,), shop=shop)
    )
    if not any(accounts.values()):
        raise UsageError(
            f"no account is configured in {prepared.loaded.path} for {name}; see nfdoctor "
            "config init"
        )
    return accounts


# --- status -------------------------------------------------------------------------------


def token_status(
    env: Environment, request: StatusRequest, *, observer: RunObserver | None = None
) -> Report:
    """The token check of every account in scope."""
    observer = observer or SilentObserver()
    prepared = prepare(env, request.config_path, observer)
    accounts = _scope(prepared, request.platform, request.shop)
    checks = [PlatformTokenCheck(platform_spec(name)) for name in accounts]
    return run_in_session(
        env,
        prepared,
        checks,
        accounts=accounts,
        command=f"token status {request.platform}",
        check_timeout=prepared.loaded.config.thresholds.check_timeout,
        observer=observer,
    )


# --- refresh ------------------------------------------------------------------------------


def refresh_tokens(
    env: Environment,
    request: RefreshRequest,
    *,
    observer: RunObserver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Refresh the accounts in scope, each under its lease; the report."""
    observer = observer or SilentObserver()
    if request.wait.total_seconds() < 0:
        raise UsageError("--wait: must not be negative")
    name = request.platform.strip().lower()
    if name != "all" and not platform_spec(name).capabilities.refresh_tokens:
        spec = platform_spec(name)
        raise UsageError(
            f"{spec.title} has no refresh token: {spec.capabilities.no_refresh_token}: "
            f"nfdoctor token authorize {name}"
        )
    prepared = prepare(env, request.config_path, observer)
    accounts = _scope(prepared, request.platform, request.shop)
    thresholds = prepared.loaded.config.thresholds
    policy = RefreshPolicy(
        force=request.force,
        due_only=request.due,
        retry_unknown=request.retry_unknown,
        due=lambda token, now: refresh_due(
            token,
            now,
            percent_left=thresholds.token_refresh_due_percent,
            at_least=thresholds.token_refresh_due_at_least,
        ),
        wait_s=request.wait.total_seconds(),
    )
    store = open_tokens(env, prepared)
    refresher = Refresher(
        store=store, state_dir=env.state_dir, owner=run_owner(), clock=env.clock, policy=policy
    )
    session = PlatformSession(
        config=prepared.loaded.config,
        secrets=prepared.secrets,
        token_store=store,
        redactor=env.redactor,
        clock=env.clock,
        accounts=accounts,
        call_timeout_s=call_timeout_s(thresholds.check_timeout),
        transport=transport,
    )
    started_at = env.clock()
    began = env.monotonic()

    async def run() -> list[RefreshResult | CheckResult]:
        async with session:
            jobs: list[Any] = []
            for platform, listed in accounts.items():
                for account in listed:
                    if not platform_spec(platform).capabilities.refresh_tokens:
                        jobs.append(_skipped(account))
                        continue

                    def client_for(token: str, account: Account = account) -> Any:
                        return session.client(account, access_token=token)

                    jobs.append(refresher.refresh(account, client_for))
            return list(await asyncio.gather(*jobs))

    outcomes = asyncio.run(run())
    for outcome in outcomes:
        if isinstance(outcome, RefreshResult) and outcome.token is not None:
            for value in outcome.token.secret_values():
                env.redactor.add(value)
    results = [o if isinstance(o, CheckResult) else _refresh_result(o, env) for o in outcomes]
    return Report(
        command=f"token refresh {request.platform}",
        results=tuple(results),
        started_at=started_at,
        duration_s=env.monotonic() - began,
        version=__version__,
    )


async def _skipped(account: Account) -> CheckResult:
    spec = platform_spec(account.platform)
    return CheckResult(
        id="token.refresh",
        title=f"{spec.title}: token refresh",
        status=Status.SKIPPED,
        summary=f"no refresh token on this platform: {spec.capabilities.no_refresh_token}: "
        f"nfdoctor token authorize {account.platform} --shop {account.account_id}",
        subject=account.label,
    )


def _refresh_result(outcome: RefreshResult, env: Environment) -> CheckResult:
    account = outcome.account
    title = platform_spec(account.platform).title
    shop = f"{account.platform} --shop {account.account_id}"
    details = list(outcome.details)
    metrics: list[Metric] = []
    token = outcome.token
    if token is not None:
        if token.access_expires_at is not None:
            left = (token.access_expires_at - env.clock()).total_seconds()
            metrics.append(Metric(name="access_token_expires_in", value=left, unit="s"))
            details.append(f"access token valid until {token.access_expires_at:%Y-%m-%d %H:%M} UTC")
        if token.refresh_expires_at is not None:
            details.append(
                f"refresh token valid until {token.refresh_expires_at:%Y-%m-%d %H:%M} UTC"
            )
        if token.version:
            details.append(f"stored version {token.version}, by {token.updated_by or '?'}")
    if outcome.error is not None and outcome.error.platform_message:
        details.append(f"platform says: {outcome.error.platform_message}")
    if outcome.recovery_file is not None:
        details.append(f"pair kept in {outcome.recovery_file}")
    status = {
        "refreshed": Status.OK,
        "fresh": Status.OK,
        "recovered": Status.OK,
        "adopted": Status.OK,
        "unknown": Status.CRITICAL,
        "spent": Status.CRITICAL,
        "failed": Status.CRITICAL,
        "busy": Status.CRITICAL,
        "not_saved": Status.CRITICAL,
        "no_token": Status.CRITICAL,
        "no_refresh_token": Status.SKIPPED,
    }[outcome.outcome]
    summary = outcome.message
    hint_key: str | None = None
    next_command: str | None = None
    if outcome.verified is False:
        status = Status.CRITICAL
        why = outcome.verify_error.message if outcome.verify_error else "?"
        summary += f"; but the new access token does not work ({why})"
        next_command = f"nfdoctor check {account.platform} --shop {account.account_id}"
    elif outcome.verified:
        summary += "; the new access token answers"
    if outcome.outcome in ("spent", "no_token"):
        hint_key = "token.reauthorize" if outcome.outcome == "spent" else "token.missing"
        next_command = f"nfdoctor token authorize {shop}"
    elif outcome.outcome == "unknown":
        hint_key = "token.outcome_unknown"
        next_command = f"nfdoctor token refresh {shop} --retry-unknown"
    elif outcome.outcome == "not_saved" and outcome.recovery_file is not None:
        hint_key = "token.not_saved"
        next_command = f"nfdoctor token import --from {outcome.recovery_file}"
    elif outcome.outcome == "failed":
        next_command = f"nfdoctor check {shop}"
    elif outcome.outcome == "busy":
        next_command = f"nfdoctor token status {shop}"
    return CheckResult(
        id="token.refresh",
        title=f"{title}: token refresh",
        status=status,
        summary=summary,
        details=tuple(details),
        hint=platform_hint(hint_key, title) if hint_key and status is not Status.OK else None,
        next_command=next_command if status is not Status.OK else None,
        metrics=tuple(metrics),
        subject=account.label,
    )


# --- import and export --------------------------------------------------------------------


def _read_token_document(source: str, stdin: BinaryIO | None) -> tuple[bytes, str]:
    """The bytes of a token file and where they came from; a file must be 0600 or stricter."""
    if source == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        data = stream.read(MAX_TOKEN_FILE_BYTES + 1)
        if len(data) > MAX_TOKEN_FILE_BYTES:
            raise UsageError("--from -: more than 16 MiB on standard input; not a token file")
        return data, "standard input"
    path = Path(source)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"--from {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--from {path}: {os_reason(exc)}") from None
    if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
        raise UsageError(
            f"--from {path}: mode {stat.S_IMODE(info.st_mode):04o}: readable or writable by "
            f"others; a file of tokens must be private (chmod 600 {path}) — nothing imported"
        )
    try:
        return read_regular_file(path, limit=MAX_TOKEN_FILE_BYTES), str(path)
    except FileRefusedError as exc:
        raise UsageError(f"--from {path}: {exc.reason}") from None
    except OSError as exc:
        raise UsageError(f"--from {path}: {os_reason(exc)}") from None


def _parse_tokens(data: bytes, where: str) -> list[StoredToken]:
    document = decode_json(data, where, recover="Fix it there and import again.", kind="token file")
    if not isinstance(document, dict):
        raise StateError(f"{where}: expected a JSON object (a token file); nothing was imported")
    if "format" in document and document["format"] != FORMAT:
        raise StateError(f"{where}: not a token file in format {FORMAT!r}; nothing was imported")
    tokens = document.get("tokens", document) if "format" in document else document
    if not isinstance(tokens, dict):
        raise StateError(f"{where}: tokens: expected an object of platforms; nothing imported")
    found: list[StoredToken] = []
    for platform, accounts in tokens.items():
        if not isinstance(accounts, dict):
            raise StateError(f"{where}: tokens.{platform}: expected an object of accounts")
        for account_id, raw in accounts.items():
            found.append(
                record_from_json(
                    str(platform), str(account_id), raw, f"{where}: tokens.{platform}.{account_id}"
                )
            )
    if not found:
        raise StateError(f"{where}: no token in it; nothing was imported")
    return found


def import_tokens(
    env: Environment,
    request: ImportRequest,
    *,
    observer: RunObserver | None = None,
    stdin: BinaryIO | None = None,
) -> Report:
    """Put every pair of a token file into the configured store, each under its lease."""
    observer = observer or SilentObserver()
    prepared = prepare(env, request.config_path, observer)
    data, where = _read_token_document(request.source, stdin)
    tokens = _parse_tokens(data, where)
    known = scope_accounts(prepared, Scope())
    labels = {(a.platform, a.account_id): a for listed in known.values() for a in listed}
    unknown = [
        f"{t.platform} {t.account_id}" for t in tokens if (t.platform, t.account_id) not in labels
    ]
    if unknown:
        raise UsageError(
            f"{where}: {', '.join(unknown[:3])}{' …' if len(unknown) > 3 else ''} not in "
            f"{prepared.loaded.path}: nothing was imported (add the accounts to the config "
            "first)"
        )
    for token in tokens:
        for value in token.secret_values():
            env.redactor.add(value)
    store = open_tokens(env, prepared)
    owner = run_owner("import")
    started_at = env.clock()
    began = env.monotonic()
    results: list[CheckResult] = []
    for token in tokens:
        account = labels[(token.platform, token.account_id)]
        with store.hold(token.platform, token.account_id, owner=owner, lease_s=60, wait_s=30):
            current = store.get(token.platform, token.account_id)
            stored = store.save(
                token, expected_version=current.version if current else 0, owner=owner
            )
        results.append(
            CheckResult(
                id="token.import",
                title=f"{platform_spec(token.platform).title}: token import",
                status=Status.OK,
                summary=f"imported into {store.describe()} (version {stored.version})",
                subject=account.label,
            )
        )
    return Report(
        command="token import",
        results=tuple(results),
        started_at=started_at,
        duration_s=env.monotonic() - began,
        version=__version__,
    )


def export_tokens(
    env: Environment, request: ExportRequest, *, observer: RunObserver | None = None
) -> Report:
    """Write every stored pair of the accounts in scope to a 0600 token file."""
    observer = observer or SilentObserver()
    if str(request.out) == "-":
        raise UsageError("--out -: tokens are never written to standard output; name a file")
    prepared = prepare(env, request.config_path, observer)
    accounts = _scope(prepared, request.platform, None)
    store = open_tokens(env, prepared)
    started_at = env.clock()
    began = env.monotonic()
    exported: list[StoredToken] = []
    results: list[CheckResult] = []
    for platform, listed in accounts.items():
        for account in listed:
            token = store.get(platform, account.account_id)
            title = platform_spec(platform).title
            if token is None:
                results.append(
                    CheckResult(
                        id="token.export",
                        title=f"{title}: token export",
                        status=Status.WARNING,
                        summary=f"no token stored ({store.describe()}): not exported",
                        subject=account.label,
                    )
                )
                continue
            exported.append(token)
            results.append(
                CheckResult(
                    id="token.export",
                    title=f"{title}: token export",
                    status=Status.OK,
                    summary=f"exported to {request.out}",
                    subject=account.label,
                )
            )
    write_json(request.out, token_document(exported), mode=0o600)
    os.chmod(request.out, 0o600)
    return Report(
        command="token export",
        results=tuple(results),
        started_at=started_at,
        duration_s=env.monotonic() - began,
        version=__version__,
    )
