"""What a check is: an id, a title, what it needs, and a function that measures.

A check gets a :class:`CheckContext`: built once by the service before the run, frozen, with
the config already loaded and validated and its secrets resolved. A check never reloads the
config or resolves a secret itself.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from nfdoctor.config.loader import LoadedConfig
from nfdoctor.config.model import NfdoctorConfig
from nfdoctor.results import CheckResult, Hint, Metric, Status
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.secrets.resolver import ResolvedSecrets
from nfdoctor.session import PlatformSession
from nfdoctor.tokens.store import TokenStore


@dataclass(frozen=True, kw_only=True)
class CheckContext:
    """What every check of one run shares; built before the run, never changed during it."""

    loaded: LoadedConfig
    secrets: ResolvedSecrets
    clock: Callable[[], datetime]
    redactor: Redactor
    #: nfdoctor's own state directory (``$XDG_STATE_HOME/nfdoctor``)
    state_dir: Path
    token_store: TokenStore
    #: the run's platform session; None when no platform is in scope
    platforms: PlatformSession | None = None

    @property
    def config(self) -> NfdoctorConfig:
        """The validated config."""
        return self.loaded.config

    def session(self) -> PlatformSession:
        """The platform session (a platform check without one is a wiring bug)."""
        if self.platforms is None:
            raise RuntimeError("platform checks need a PlatformSession")
        return self.platforms


def higher_is_worse(value: float, warn: float, crit: float) -> Status:
    """CRITICAL from ``crit`` up, WARNING from ``warn`` up (load, latency, usage)."""
    if value >= crit:
        return Status.CRITICAL
    return Status.WARNING if value >= warn else Status.OK


def lower_is_worse(value: float, warn: float, crit: float) -> Status:
    """CRITICAL at or below ``crit``, WARNING at or below ``warn`` (free space, time left)."""
    if value <= crit:
        return Status.CRITICAL
    return Status.WARNING if value <= warn else Status.OK


def format_ms(seconds: float | None) -> str:
    """Milliseconds, with a decimal below 10 ms so a fast local answer does not read 0;
    ``—`` for a phase that was not reached."""
    if seconds is None:
        return "—"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


class Check(abc.ABC):
    """A check measures one thing and returns one result per subject it looked at.

    ``run`` may be a plain method (it then runs in a worker thread, so blocking I/O is fine)
    or a coroutine. It may raise: the runner turns any exception into an UNKNOWN result.
    """

    id: str  # a class attribute, or set per instance (platforms.<name>.api)
    title: str
    #: ids of checks that must be OK or WARNING for this one to mean anything
    requires: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def run(self, ctx: CheckContext) -> Sequence[CheckResult] | Any:
        """Measure; return results (or a coroutine returning them)."""

    def result(
        self,
        status: Status,
        summary: str,
        *,
        details: Sequence[str] = (),
        hint: Hint | None = None,
        next_command: str | None = None,
        metrics: Sequence[Metric] = (),
        subject: str | None = None,
    ) -> CheckResult:
        """A result of this check (id and title filled in)."""
        return CheckResult(
            id=self.id,
            title=self.title,
            status=status,
            summary=summary,
            details=tuple(details),
            hint=hint,
            next_command=next_command,
            metrics=tuple(metrics),
            subject=subject,
        )
