"""What ``diagnose`` and ``check`` share: their report options, the run, the rendering."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.choices import FailOn, OutputFormat
from nfdoctor.cli.common import emit, progress_observer

if TYPE_CHECKING:
    from nfdoctor.checks.base import Check
    from nfdoctor.checks.platforms import PlatformRun
    from nfdoctor.context import Context

OutputOption = Annotated[
    Optional[OutputFormat],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
    typer.Option(
        "--output",
        "-o",
        help="table (terminal default), plain (pipe default), json, junit, nagios, prometheus.",
        show_default=False,
    ),
]
WriteOption = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--write",
        help="Write the output to FILE atomically instead of stdout "
        "(for node_exporter's textfile collector).",
        show_default=False,
    ),
]
FailOnOption = Annotated[
    FailOn, typer.Option("--fail-on", help="Lowest status that makes the exit code non-zero.")
]
TimeoutOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--timeout",
        help="Per-check timeout, e.g. 10s (default: thresholds.check_timeout, 15s).",
        show_default=False,
    ),
]
ShopOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--shop",
        help="Only this shop id, Lazada seller id, Facebook page id or Zalo OA id.",
        show_default=False,
    ),
]


def parse_timeout(timeout: str | None) -> timedelta | None:
    """``--timeout`` as a positive span, or None when not given."""
    if timeout is None:
        return None
    from nfdoctor.durations import parse_span
    from nfdoctor.errors import UsageError

    try:
        span = parse_span(timeout)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    if span.total_seconds() <= 0:
        raise UsageError("--timeout: must be more than zero")
    return span


def check_write_target(write: Path | None, option: str = "--write") -> None:
    """Refuse a target that is not a regular file or cannot be written, before any work."""
    from nfdoctor.errors import UsageError, WriteTargetError
    from nfdoctor.fsutil import check_write_target as check

    if write is None:
        return
    try:
        check(write)
    except WriteTargetError as exc:
        raise UsageError(f"{option}: {exc.reason}") from None


def platform_run(
    ctx: Context, *, platforms: list[str], shop: str | None, check_timeout: timedelta
) -> PlatformRun:
    """The platform checks' shared state for the accounts in scope (UsageError if none match)."""
    from nfdoctor.checks.platforms import PlatformRun
    from nfdoctor.platforms.factory import select_accounts

    if shop is not None and not shop.strip():
        from nfdoctor.errors import UsageError

        raise UsageError("--shop: empty id")
    accounts = select_accounts(
        ctx.load_config().config,
        platforms=platforms,
        account_id=shop.strip() if shop else None,
    )
    # Each HTTP call gets most of the check's time, so a hung shop is that shop's failure.
    call_timeout_s = min(10.0, check_timeout.total_seconds() * 0.8)
    run = PlatformRun(accounts=accounts, call_timeout_s=call_timeout_s)
    if accounts:
        run.prepare()
    return run


def run_and_render(
    ctx: Context,
    checks: list[Check],
    *,
    command: str,
    timeout: timedelta,
    output: OutputFormat | None,
    write: Path | None,
    fail_on: FailOn,
) -> int:
    """Run ``checks``, render the report to stdout or ``write``; the exit code."""
    import shutil

    from nfdoctor.render import default_format, render
    from nfdoctor.runner import run_checks

    with progress_observer(ctx, total=len(checks)) as observer:
        report = run_checks(ctx, checks, command=command, timeout=timeout, observer=observer)
    fmt = output or default_format(stdout_isatty=ctx.stdout.isatty(), environ=ctx.environ)
    text = render(
        report,
        fmt,
        width=max(80, shutil.get_terminal_size((100, 24)).columns),
        lang=ctx.language,
        fail_on=fail_on,
        color=fmt is OutputFormat.TABLE and ctx.stdout.isatty(),
    )
    if write is not None:
        from nfdoctor.fsutil import write_atomically

        write_atomically(write, ctx.redactor.redact(text))
    else:
        emit(ctx, text)
    return report.exit_code(fail_on)
