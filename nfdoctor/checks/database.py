"""Database connectivity: connect and latency, schema against crm-schema.md, integrity."""

from __future__ import annotations

from collections.abc import Sequence

from nfdoctor.checks.base import Check, CheckContext, format_ms
from nfdoctor.config.loader import database_url
from nfdoctor.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnreachableError,
    NotADatabaseError,
)
from nfdoctor.hints import HINTS
from nfdoctor.results import CheckResult, Metric, Status
from nfdoctor.store.database import DatabaseProbe, DatabaseUrl, probe_database


def configured_database(ctx: CheckContext) -> DatabaseUrl | None:
    """The configured database URL (password resolved and attached), or None."""
    return database_url(ctx.loaded, ctx.secrets)


def _probe(
    ctx: CheckContext, *, integrity: bool
) -> tuple[DatabaseUrl | None, DatabaseProbe | None]:
    url = configured_database(ctx)
    section = ctx.config.database
    if url is None or section is None:
        return None, None
    return url, probe_database(url, timeout_s=section.timeout.total_seconds(), integrity=integrity)


_NO_DATABASE = "no database configured (database.url)"

# How a failure to reach the database is judged. A file that is not a database and a lock
# held past the timeout leave nfdoctor unable to judge the CRM's data (UNKNOWN, like a bad
# config); a database that cannot be reached at all is the outage itself (CRITICAL).
_FAILURES: tuple[tuple[type[DatabaseError], Status, str], ...] = (
    (NotADatabaseError, Status.UNKNOWN, "database.not_sqlite"),
    (DatabaseLockedError, Status.UNKNOWN, "database.locked"),
    (DatabaseUnreachableError, Status.CRITICAL, "database.unreachable"),
)


class DatabaseConnectCheck(Check):
    """Connect, run ``SELECT 1``, and time it."""

    id = "database.connect"
    title = "Database connectivity"

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """OK with the latency; CRITICAL when the database cannot be reached."""
        try:
            url, probe = _probe(ctx, integrity=False)
        except DatabaseError as exc:
            for kind, status, hint in _FAILURES:
                if isinstance(exc, kind):
                    return [
                        self.result(
                            status,
                            exc.message,
                            hint=HINTS[hint],
                            next_command="nfdoctor config show",
                        )
                    ]
            raise
        if url is None or probe is None:
            return [self.result(Status.SKIPPED, _NO_DATABASE)]
        limits = ctx.config.thresholds
        warn = limits.database_latency_warning.total_seconds()
        crit = limits.database_latency_critical.total_seconds()
        latency = probe.latency_s
        status = Status.OK
        if latency >= crit:
            status = Status.CRITICAL
        elif latency >= warn:
            status = Status.WARNING
        return [
            self.result(
                status,
                f"{probe.backend} {probe.server_version} answered in {format_ms(latency)}, "
                f"warn ≥ {format_ms(warn)}",
                details=[f"at {url.redacted()}"],
                hint=HINTS["database.slow"] if status is not Status.OK else None,
                metrics=[
                    Metric(name="latency", value=round(latency, 6), unit="s", warn=warn, crit=crit)
                ],
                subject=url.redacted(),
            )
        ]


class DatabaseSchemaCheck(Check):
    """Every table and column of CRM schema v1 is present."""

    id = "database.schema"
    title = "Database schema (CRM v1)"
    requires = ("database.connect",)

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """CRITICAL naming each missing table and column."""
        url, probe = _probe(ctx, integrity=False)
        if url is None or probe is None:
            return [self.result(Status.SKIPPED, _NO_DATABASE)]
        missing = [f"table {t}" for t in probe.missing_tables]
        missing += [f"column {c}" for c in probe.missing_columns]
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            return [
                self.result(
                    Status.CRITICAL,
                    f"schema drift: missing {shown}",
                    details=missing,
                    hint=HINTS["database.schema"],
                    subject=url.redacted(),
                    metrics=[Metric(name="missing_objects", value=float(len(missing)))],
                )
            ]
        return [
            self.result(
                Status.OK,
                "all tables and columns of CRM schema v1 are present",
                subject=url.redacted(),
                metrics=[Metric(name="missing_objects", value=0.0)],
            )
        ]


class DatabaseIntegrityCheck(Check):
    """SQLite's own page and index consistency check."""

    id = "database.integrity"
    title = "Database integrity"
    requires = ("database.connect",)

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """OK when ``PRAGMA integrity_check`` says ok; CRITICAL with its findings otherwise."""
        url, probe = _probe(ctx, integrity=True)
        if url is None or probe is None:
            return [self.result(Status.SKIPPED, _NO_DATABASE)]
        if probe.integrity is None:
            return [
                self.result(
                    Status.SKIPPED,
                    f"not applicable to {probe.backend} (it checks its own pages)",
                    subject=url.redacted(),
                )
            ]
        lines = probe.integrity.splitlines()
        if lines == ["ok"]:
            return [self.result(Status.OK, f"{probe.integrity_check}: ok", subject=url.redacted())]
        return [
            self.result(
                Status.CRITICAL,
                f"{probe.integrity_check} found {len(lines)} problem(s): {lines[0]}",
                details=lines[:20],
                hint=HINTS["database.integrity"],
                subject=url.redacted(),
            )
        ]
