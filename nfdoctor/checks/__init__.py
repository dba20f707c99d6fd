"""The checks of ``nfdoctor diagnose``; ids are stable (scripts and CI select them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nfdoctor.checks.base import Check

if TYPE_CHECKING:
    from nfdoctor.checks.platforms import PlatformRun


def all_checks(platform_run: PlatformRun | None = None) -> list[Check]:
    """Every check, in the order reports list them (runbook's quick-diagnosis order).

    Platform checks are included for the platforms in ``platform_run``'s scope; without a
    run (listing ids), for all five.
    """
    from nfdoctor.checks.config_changes import ConfigChangesCheck
    from nfdoctor.checks.database import (
        DatabaseConnectCheck,
        DatabaseIntegrityCheck,
        DatabaseSchemaCheck,
    )
    from nfdoctor.checks.platforms import platform_checks
    from nfdoctor.checks.system import DiskCheck, LoadCheck, MemoryCheck

    return [
        *platform_checks(platform_run),
        DatabaseConnectCheck(),
        DatabaseSchemaCheck(),
        DatabaseIntegrityCheck(),
        LoadCheck(),
        MemoryCheck(),
        DiskCheck(),
        ConfigChangesCheck(),
    ]


__all__ = ["Check", "all_checks"]
