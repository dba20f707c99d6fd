"""Run one check the way a service would, on an in-memory config and a clock the test sets.

repo-review's ``compute_check``: no YAML file on disk, no CLI. ``check_context`` validates a
config given as a mapping (or YAML text) through the real loader, resolves its secrets from
the mapping the test gives, and builds the frozen :class:`CheckContext` a run would;
``compute_check`` runs one check under the real runner (its timeout, its error handling) and
returns its results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from nfdoctor.checks.base import Check, CheckContext
from nfdoctor.checks.runner import run_checks
from nfdoctor.config.loader import LoadedConfig, validate
from nfdoctor.results import CheckResult
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.secrets.resolver import ResolvedSecrets
from nfdoctor.session import PlatformSession
from nfdoctor.tokens.store import TokenStore, open_token_store

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)  # 09:00 in Ho Chi Minh City


def loaded_config(config: Mapping[str, Any] | str, *, path: Path) -> LoadedConfig:
    """``config`` (a mapping, or YAML text) validated as if it were the file at ``path``."""
    raw = yaml.safe_load(config) if isinstance(config, str) else dict(config)
    return validate(raw or {}, {}, path)


def check_context(
    config: Mapping[str, Any] | str = "{}",
    *,
    state_dir: Path,
    clock: datetime | Callable[[], datetime] = NOW,
    secrets: Mapping[str, str] | None = None,
    token_store: TokenStore | None = None,
    platforms: PlatformSession | None = None,
    redactor: Redactor | None = None,
    config_path: Path | None = None,
) -> CheckContext:
    """The context one run of checks would get, for ``config``."""
    path = config_path or state_dir.parent / "nfdoctor.yaml"
    loaded = loaded_config(config, path=path)
    values = dict(secrets or {})
    redactor = redactor or Redactor()
    for value in values.values():
        redactor.add(value)
    now = clock if callable(clock) else (lambda: clock)
    return CheckContext(
        loaded=loaded,
        secrets=ResolvedSecrets(values, source=str(path)),
        clock=now,  # type: ignore[arg-type]
        redactor=redactor,
        state_dir=state_dir,
        token_store=token_store
        or open_token_store(loaded.config.tokens, base_dir=loaded.base_dir, state_dir=state_dir),
        platforms=platforms,
    )


def run_in_loop(
    ctx: CheckContext, checks: Sequence[Check], *, timeout: timedelta = timedelta(seconds=15)
) -> list[CheckResult]:
    """Run ``checks`` concurrently under the real runner; every result, in order."""
    report = asyncio.run(
        run_checks(ctx, checks, command="test", timeout=timeout, monotonic=time.monotonic)
    )
    return list(report.results)


def compute_check(
    check: Check,
    config: Mapping[str, Any] | str = "{}",
    *,
    state_dir: Path,
    clock: datetime | Callable[[], datetime] = NOW,
    secrets: Mapping[str, str] | None = None,
    timeout: timedelta = timedelta(seconds=15),
) -> list[CheckResult]:
    """One check's results on an in-memory config and a fixed clock."""
    ctx = check_context(config, state_dir=state_dir, clock=clock, secrets=secrets)
    return run_in_loop(ctx, [check], timeout=timeout)


def context_from_file(
    path: Path,
    *,
    state_dir: Path,
    clock: datetime | Callable[[], datetime] = NOW,
    environ: Mapping[str, str] | None = None,
) -> CheckContext:
    """The context for the config file at ``path``, loaded and its secrets resolved for real
    (``file:`` references are read, ``env:`` ones looked up in ``environ``)."""
    from nfdoctor.config.loader import load_config, resolve_secrets

    loaded = load_config(path)
    redactor = Redactor()
    secrets = resolve_secrets(loaded, redactor=redactor, environ=environ or {})
    now = clock if callable(clock) else (lambda: clock)
    return CheckContext(
        loaded=loaded,
        secrets=secrets,
        clock=now,  # type: ignore[arg-type]
        redactor=redactor,
        state_dir=state_dir,
        token_store=open_token_store(
            loaded.config.tokens, base_dir=loaded.base_dir, state_dir=state_dir
        ),
    )
