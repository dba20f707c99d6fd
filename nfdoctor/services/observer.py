"""How a service tells its caller what is happening, without printing anything itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from nfdoctor.errors import ConfigProblem
from nfdoctor.results import CheckResult

__all__ = ["RunObserver", "SilentObserver"]


class RunObserver(Protocol):
    """Receives a run's events as they happen (the CLI shows them; tests record them)."""

    def config_warnings(self, problems: Sequence[ConfigProblem]) -> None:
        """The loaded config's warnings (unknown keys, inline secrets), before any work."""

    def started(self, total: int) -> None:
        """``total`` checks (or steps) are about to run."""

    def finished(self, check_id: str, results: Sequence[CheckResult]) -> None:
        """One check (or step) finished with these results."""


class SilentObserver:
    """An observer that ignores everything (cron, tests that do not care)."""

    def config_warnings(self, problems: Sequence[ConfigProblem]) -> None:
        """Ignored."""

    def started(self, total: int) -> None:
        """Ignored."""

    def finished(self, check_id: str, results: Sequence[CheckResult]) -> None:
        """Ignored."""
