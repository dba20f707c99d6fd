"""The options the commands share, their parsing, and where a report goes (stdout or FILE)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from nfdoctor.choices import FailOn, OutputFormat
from nfdoctor.cli.common import DebugOption, emit
from nfdoctor.context import Environment
from nfdoctor.durations import parse_span
from nfdoctor.errors import UsageError, WriteTargetError
from nfdoctor.fsutil import check_write_target as check_target
from nfdoctor.fsutil import write_atomically
from nfdoctor.results import Report

__all__ = [
    "ConfigOption",
    "DebugOption",
    "FailOnOption",
    "LangOption",
    "OutputOption",
    "ShopOption",
    "TimeoutOption",
    "WriteOption",
    "check_write_target",
    "parse_timeout",
    "write_report",
]

ConfigOption = Annotated[
    Optional[Path],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: discovery order in the README).",
        show_default=False,
    ),
]
LangOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--lang", help="Hint language: vi or en (default: from the locale).", show_default=False
    ),
]
OutputOption = Annotated[
    Optional[OutputFormat],  # noqa: UP045
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
    try:
        span = parse_span(timeout)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    if span.total_seconds() <= 0:
        raise UsageError("--timeout: must be more than zero")
    return span


def check_write_target(write: Path | None, option: str = "--write") -> None:
    """Refuse a target that is not a regular file or cannot be written, before any work."""
    if write is None:
        return
    try:
        check_target(write)
    except WriteTargetError as exc:
        raise UsageError(f"{option}: {exc.reason}") from None


def write_report(
    env: Environment,
    report: Report,
    *,
    output: OutputFormat | None,
    write: Path | None,
    fail_on: FailOn,
) -> int:
    """Render ``report`` to stdout or ``write``; the exit code it calls for."""
    from nfdoctor.render import default_format, render  # the seam that picks a renderer

    fmt = output or default_format(stdout_isatty=env.stdout.isatty(), environ=env.environ)
    text = render(
        report,
        fmt,
        width=max(80, shutil.get_terminal_size((100, 24)).columns),
        lang=env.lang,
        fail_on=fail_on,
        color=fmt is OutputFormat.TABLE and env.stdout.isatty(),
    )
    if write is not None:
        write_atomically(write, env.redactor.redact(text))
    else:
        emit(env, text)
    return report.exit_code(fail_on)
