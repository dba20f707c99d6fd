"""``nfdoctor diagnose``: run the checks, render the report, exit with its code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.choices import FailOn, OutputFormat
from nfdoctor.cli.common import (
    ConfigOption,
    DebugOption,
    LangOption,
    emit,
    guarded,
    progress_observer,
    warn_config,
)

if TYPE_CHECKING:
    from nfdoctor.context import Context


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def diagnose(
    only: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--only", help="Run only these check ids or groups (comma-separated)."),
    ] = None,
    skip: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--skip", help="Skip these check ids or groups (comma-separated)."),
    ] = None,
    list_checks: Annotated[
        bool, typer.Option("--list", help="List every check id with its title, and exit.")
    ] = False,
    output: Annotated[
        Optional[OutputFormat],  # noqa: UP045
        typer.Option(
            "--output",
            "-o",
            help="table (terminal default), plain (pipe default), json, junit, nagios, prometheus.",
            show_default=False,
        ),
    ] = None,
    write: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--write",
            help="Write the output to FILE atomically instead of stdout "
            "(for node_exporter's textfile collector).",
            show_default=False,
        ),
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Lowest status that makes the exit code non-zero.")
    ] = FailOn.WARNING,
    timeout: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--timeout",
            help="Per-check timeout, e.g. 10s (default: thresholds.check_timeout, 15s).",
            show_default=False,
        ),
    ] = None,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Run the runbook's quick-diagnosis checks and report what is broken and what to run next.

    Example: nfdoctor diagnose --only database,system --output json
    """

    def body(ctx: Context) -> int:
        from nfdoctor.checks import all_checks
        from nfdoctor.durations import parse_span
        from nfdoctor.errors import UsageError
        from nfdoctor.render import default_format, render
        from nfdoctor.runner import run_checks, select_checks

        checks = all_checks()
        if list_checks:
            emit(ctx, "".join(f"{c.id:<24} {c.title}\n" for c in checks))
            return 0
        if only is not None and not _split(only):
            raise UsageError("--only: no check id given; see nfdoctor diagnose --list")
        selected = select_checks(checks, only=_split(only), skip=_split(skip))
        if not selected:
            raise UsageError("--only/--skip left no check to run; see nfdoctor diagnose --list")
        per_check_timeout = None
        if timeout is not None:
            try:
                per_check_timeout = parse_span(timeout)
            except ValueError as exc:
                raise UsageError(f"--timeout: {exc}") from None
            if per_check_timeout.total_seconds() <= 0:
                raise UsageError("--timeout: must be more than zero")
        if write is not None:
            if str(write) in ("", ".") or write.is_dir():
                raise UsageError(f"--write: {write} is a directory; name a file")
            if not write.parent.is_dir():
                raise UsageError(f"--write: directory {write.parent} does not exist")
        loaded = ctx.load_config()
        warn_config(ctx)
        ctx.resolve_all_secrets()
        with progress_observer(ctx, total=len(selected)) as observer:
            report = run_checks(
                ctx,
                selected,
                command="diagnose",
                timeout=per_check_timeout or loaded.config.thresholds.check_timeout,
                observer=observer,
            )
        fmt = output or default_format(stdout_isatty=ctx.stdout.isatty(), environ=ctx.environ)
        import shutil

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

    guarded(body, config=config, debug=debug, lang=lang)
