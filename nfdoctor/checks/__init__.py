"""The checks of ``nfdoctor diagnose``; ids are stable (scripts and CI select them)."""

from __future__ import annotations

from collections.abc import Sequence

from nfdoctor.checks.base import Check, CheckContext
from nfdoctor.checks.config_changes import ConfigChangesCheck
from nfdoctor.checks.database import (
    DatabaseConnectCheck,
    DatabaseIntegrityCheck,
    DatabaseSchemaCheck,
)
from nfdoctor.checks.platforms import platform_checks
from nfdoctor.checks.sync_health import sync_health_checks
from nfdoctor.checks.system import DiskCheck, LoadCheck, MemoryCheck
from nfdoctor.checks.webhooks import webhook_checks
from nfdoctor.platforms.registry import SPECS


def all_checks(platforms: Sequence[str] | None = None) -> list[Check]:
    """Every check, in the order reports list them (runbook's quick-diagnosis order).

    Platform checks are included for ``platforms`` (the platforms in a run's scope); without
    them (listing ids), for every platform nfdoctor knows.
    """
    return [
        *platform_checks(platforms),
        *sync_health_checks([s for s in SPECS if platforms is None or s.name in platforms]),
        *webhook_checks(platforms),
        DatabaseConnectCheck(),
        DatabaseSchemaCheck(),
        DatabaseIntegrityCheck(),
        LoadCheck(),
        MemoryCheck(),
        DiskCheck(),
        ConfigChangesCheck(),
    ]


__all__ = ["Check", "CheckContext", "all_checks"]
