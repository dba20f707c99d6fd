"""The result model: what a check found, as data.

A :class:`CheckResult` is frozen and keyword-only; renderers read it, nothing mutates it.
A :class:`Report` is the outcome of one run and decides the exit code.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from nfdoctor.choices import FailOn

__all__ = ["CheckResult", "FailOn", "Hint", "Metric", "Report", "Status", "worst_of"]


class Status(enum.Enum):
    """A check's verdict, with the monitoring-plugins exit code of each."""

    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"
    SKIPPED = "SKIPPED"

    @property
    def exit_code(self) -> int:
        """Exit code of a run whose worst result is this one."""
        return _EXIT_CODE[self]

    @property
    def severity(self) -> int:
        """Rank used to pick the worst result: CRITICAL > UNKNOWN > WARNING > OK > SKIPPED.

        CRITICAL outranks UNKNOWN because a run that proved something broken should page
        as broken even if another check could not judge.
        """
        return _SEVERITY[self]


_EXIT_CODE = {
    Status.OK: 0,
    Status.SKIPPED: 0,
    Status.WARNING: 1,
    Status.CRITICAL: 2,
    Status.UNKNOWN: 3,
}
_SEVERITY = {
    Status.SKIPPED: 0,
    Status.OK: 1,
    Status.WARNING: 2,
    Status.UNKNOWN: 3,
    Status.CRITICAL: 4,
}


@dataclass(frozen=True, kw_only=True)
class Hint:
    """Advice in both languages the runbook speaks."""

    en: str
    vi: str

    def text(self, lang: str) -> str:
        """The hint in ``lang`` (``vi`` or ``en``)."""
        return self.vi if lang == "vi" else self.en


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One measured number, for perfdata and Prometheus."""

    name: str  # snake_case, unique within a check: "latency", "disk_free"
    value: float
    unit: str = ""  # "s", "B", "%", "" (a count or ratio)
    warn: float | None = None
    crit: float | None = None


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """What one check found about one subject (a database, a disk, a shop)."""

    id: str  # stable: "database.connect", "system.disk"
    title: str
    status: Status
    summary: str  # one line, measured value next to the expected one
    details: tuple[str, ...] = ()
    hint: Hint | None = None
    next_command: str | None = None
    metrics: tuple[Metric, ...] = ()
    duration_s: float = 0.0
    subject: str | None = None  # the shop, page or path a per-subject result is about


@dataclass(frozen=True, kw_only=True)
class Report:
    """The results of one run, in the order the checks were declared."""

    command: str
    results: tuple[CheckResult, ...]
    started_at: datetime
    duration_s: float
    version: str
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def worst(self) -> Status:
        """The worst status in the report (OK for an empty report)."""
        if not self.results:
            return Status.OK
        return max((r.status for r in self.results), key=lambda s: s.severity)

    def counts(self) -> dict[Status, int]:
        """How many results have each status (every status present, zeros included)."""
        counts = dict.fromkeys(Status, 0)
        for result in self.results:
            counts[result.status] += 1
        return counts

    def exit_code(self, fail_on: FailOn = FailOn.WARNING) -> int:
        """Exit code per design.md; ``--fail-on critical`` turns warnings into 0."""
        code = self.worst.exit_code
        if fail_on is FailOn.CRITICAL and code == 1:
            return 0
        return code


def worst_of(statuses: Sequence[Status]) -> Status:
    """The most severe of ``statuses`` (OK when empty)."""
    return max(statuses, key=lambda s: s.severity, default=Status.OK)
