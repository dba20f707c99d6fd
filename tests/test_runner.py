"""The runner: concurrency, timeouts, crashes as UNKNOWN, prerequisites, selection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from nfdoctor.checks.base import Check, CheckContext
from nfdoctor.checks.runner import select_checks
from nfdoctor.errors import UsageError
from nfdoctor.results import CheckResult, FailOn, Report, Status
from tests.checking import check_context, run_in_loop


class Fixed(Check):
    """A check that returns a given status after a delay."""

    title = "fixed"

    def __init__(
        self,
        id: str,
        status: Status = Status.OK,
        delay: float = 0.0,
        requires: tuple[str, ...] = (),
    ) -> None:
        self.id = id  # type: ignore[misc]
        self.status = status
        self.delay = delay
        self.requires = requires  # type: ignore[misc]
        self.ran = False

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        self.ran = True
        time.sleep(self.delay)
        return [self.result(self.status, f"{self.status.value} after {self.delay}")]


class AsyncFixed(Fixed):
    async def run(self, ctx: CheckContext) -> Sequence[CheckResult]:  # type: ignore[override]
        self.ran = True
        await asyncio.sleep(self.delay)
        return [self.result(self.status, "async")]


class Raising(Check):
    id = "boom.raise"
    title = "raises"

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        raise RuntimeError("disk on fire")


#: these checks touch no state: the directory is never created
CTX = check_context(state_dir=Path("/nonexistent/nfdoctor-state"))


def _run(checks: Sequence[Check], timeout: float = 5.0) -> list[CheckResult]:
    return run_in_loop(CTX, checks, timeout=timedelta(seconds=timeout))


def _report(checks: Sequence[Check]) -> Report:
    results = _run(checks)
    return Report(
        command="t", results=tuple(results), started_at=CTX.clock(), duration_s=0, version="t"
    )


def test_checks_run_concurrently() -> None:
    checks = [Fixed(f"c.{i}", delay=0.3) for i in range(4)] + [AsyncFixed("a.1", delay=0.3)]
    start = time.monotonic()
    results = _run(checks)
    elapsed = time.monotonic() - start
    assert [r.id for r in results] == ["c.0", "c.1", "c.2", "c.3", "a.1"]
    # Sequential would take 1.5 s; concurrent takes about 0.3 s.
    assert elapsed < 1.2


def test_exception_becomes_unknown_and_others_still_run() -> None:
    ok = Fixed("c.ok")
    results = _run([Raising(), ok])
    assert results[0].status is Status.UNKNOWN
    assert results[0].summary == "check failed: RuntimeError: disk on fire"
    assert results[1].status is Status.OK and ok.ran


def test_timeout_becomes_unknown_without_waiting_for_the_thread() -> None:
    start = time.monotonic()
    results = _run([Fixed("c.slow", delay=3.0), AsyncFixed("a.slow", delay=3.0)], timeout=0.2)
    assert time.monotonic() - start < 2.0
    assert [r.status for r in results] == [Status.UNKNOWN, Status.UNKNOWN]
    assert results[0].summary == "timed out after 0.2 s"


def test_failed_prerequisite_skips_dependent() -> None:
    base = Fixed("db.connect", Status.CRITICAL)
    dependent = Fixed("db.schema", requires=("db.connect",))
    results = _run([base, dependent])
    assert results[1].status is Status.SKIPPED
    assert results[1].summary == "skipped: db.connect is CRITICAL"
    assert not dependent.ran


def test_warning_prerequisite_lets_dependent_run() -> None:
    dependent = Fixed("db.schema", requires=("db.connect",))
    results = _run([Fixed("db.connect", Status.WARNING), dependent])
    assert results[1].status is Status.OK and dependent.ran


def test_exit_codes_and_fail_on() -> None:
    report = _report([Fixed("a.a", Status.WARNING), Fixed("b.b")])
    assert report.exit_code() == 1
    assert report.exit_code(FailOn.CRITICAL) == 0
    report = _report([Fixed("a.a", Status.UNKNOWN), Fixed("b.b", Status.CRITICAL)])
    assert report.exit_code() == 2
    assert report.exit_code(FailOn.CRITICAL) == 2


def test_selection_by_id_and_group() -> None:
    checks: list[Check] = [
        Fixed("database.connect"),
        Fixed("database.schema"),
        Fixed("system.disk"),
    ]
    assert [c.id for c in select_checks(checks, only=["database"])] == [
        "database.connect",
        "database.schema",
    ]
    assert [c.id for c in select_checks(checks, skip=["database.schema"])] == [
        "database.connect",
        "system.disk",
    ]
    with pytest.raises(UsageError, match=r"unknown check 'databse' \(did you mean 'database'\?\)"):
        select_checks(checks, only=["databse"])


def test_every_check_has_unique_dotted_id_and_title(tmp_path: Path) -> None:
    from nfdoctor.checks import all_checks

    ids = [c.id for c in all_checks()]
    assert len(ids) == len(set(ids))
    assert all("." in i and i == i.lower() for i in ids)
    assert all(c.title for c in all_checks())
