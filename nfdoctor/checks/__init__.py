"""The checks of ``nfdoctor diagnose``; ids are stable (scripts and CI select them)."""

from __future__ import annotations

from nfdoctor.checks.base import Check


def all_checks() -> list[Check]:
    """Every check, in the order reports list them (runbook's quick-diagnosis order)."""
    from nfdoctor.checks.config_changes import ConfigChangesCheck
    from nfdoctor.checks.database import (
        DatabaseConnectCheck,
        DatabaseIntegrityCheck,
        DatabaseSchemaCheck,
    )
    from nfdoctor.checks.system import DiskCheck, LoadCheck, MemoryCheck

    return [
        DatabaseConnectCheck(),
        DatabaseSchemaCheck(),
        DatabaseIntegrityCheck(),
        LoadCheck(),
        MemoryCheck(),
        DiskCheck(),
        ConfigChangesCheck(),
    ]


__all__ = ["Check", "all_checks"]
