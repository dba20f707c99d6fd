"""The check runner: every check concurrently, each under a timeout, none able to stop the run."""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import inspect
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from nfdoctor import __version__
from nfdoctor.checks.base import Check, CheckContext
from nfdoctor.errors import NfdoctorError, UsageError
from nfdoctor.results import CheckResult, Report, Status
from nfdoctor.threads import in_daemon_thread

log = logging.getLogger(__name__)

#: called with each check's results as they finish (progress, without the core printing)
Observer = Callable[[Check, Sequence[CheckResult]], None]


def select_checks(
    checks: Sequence[Check],
    *,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    known: Sequence[Check] | None = None,
) -> list[Check]:
    """Filter by ids or id prefixes (``database`` selects ``database.*``).

    An id matching none of ``known`` (default: ``checks``) is a usage error, so a pattern
    for a check that exists but is out of scope (an unconfigured platform) selects nothing.
    """
    universe = list(known if known is not None else checks)
    ids = [c.id for c in universe]
    groups = sorted({i.split(".")[0] for i in ids} | {i.rsplit(".", 1)[0] for i in ids})

    def matches(check: Check, pattern: str) -> bool:
        return check.id == pattern or check.id.startswith(pattern + ".")

    for option, patterns in (("--only", only), ("--skip", skip)):
        for pattern in patterns:
            if not any(matches(c, pattern) for c in universe):
                close = difflib.get_close_matches(pattern, ids + groups, n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise UsageError(
                    f"{option}: unknown check {pattern!r}{hint}; "
                    "list them with: nfdoctor diagnose --list"
                )
    selected = [c for c in checks if not only or any(matches(c, p) for p in only)]
    return [c for c in selected if not any(matches(c, p) for p in skip)]


async def run_checks(
    ctx: CheckContext,
    checks: Sequence[Check],
    *,
    command: str,
    timeout: timedelta,
    monotonic: Callable[[], float],
    observer: Observer | None = None,
) -> Report:
    """Run ``checks`` concurrently and return the report (results in declaration order)."""
    started_at = ctx.clock()
    start = monotonic()
    results = await _run_all(ctx, checks, timeout.total_seconds(), observer, monotonic)
    ordered = tuple(r for check in checks for r in results[check.id])
    return Report(
        command=command,
        results=ordered,
        started_at=started_at,
        duration_s=monotonic() - start,
        version=__version__,
    )


async def _run_all(
    ctx: CheckContext,
    checks: Sequence[Check],
    timeout_s: float,
    observer: Observer | None,
    monotonic: Callable[[], float],
) -> dict[str, list[CheckResult]]:
    tasks: dict[str, asyncio.Task[list[CheckResult]]] = {}
    by_id = {c.id: c for c in checks}

    async def run_after_prerequisites(check: Check) -> list[CheckResult]:
        for needed in check.requires:
            if needed not in by_id:
                continue  # not selected: the operator chose to run this check alone
            prior = await tasks[needed]
            blocking = [r for r in prior if r.status not in (Status.OK, Status.WARNING)]
            if blocking:
                worst = blocking[0]
                return [
                    check.result(
                        Status.SKIPPED,
                        f"skipped: {needed} is {worst.status.value}",
                        subject=worst.subject,
                    )
                ]
        results = await _run_one(ctx, check, timeout_s, monotonic)
        if observer is not None:
            observer(check, results)
        return results

    for check in checks:
        tasks[check.id] = asyncio.create_task(run_after_prerequisites(check))
    await asyncio.gather(*tasks.values())
    return {check_id: task.result() for check_id, task in tasks.items()}


async def _run_one(
    ctx: CheckContext, check: Check, timeout_s: float, monotonic: Callable[[], float]
) -> list[CheckResult]:
    start = monotonic()
    try:
        if inspect.iscoroutinefunction(check.run):
            outcome = await asyncio.wait_for(check.run(ctx), timeout_s)
        else:
            outcome = await asyncio.wait_for(
                in_daemon_thread(lambda: check.run(ctx), name="nfdoctor-check"), timeout_s
            )
        results = list(outcome)
        if not results:
            raise RuntimeError("the check returned no result")
    except asyncio.TimeoutError:
        results = [check.result(Status.UNKNOWN, f"timed out after {timeout_s:g} s")]
    except NfdoctorError as exc:
        results = [
            check.result(
                Status.UNKNOWN, ctx.redactor.redact(exc.message), next_command=exc.next_command
            )
        ]
    except Exception as exc:
        log.debug("check %s raised", check.id, exc_info=True)
        reason = ctx.redactor.redact(f"{type(exc).__name__}: {exc}")
        results = [check.result(Status.UNKNOWN, f"check failed: {reason}")]
    elapsed = monotonic() - start
    return [r if r.duration_s else dataclasses.replace(r, duration_s=elapsed) for r in results]
