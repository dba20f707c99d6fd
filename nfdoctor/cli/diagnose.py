"""``nfdoctor diagnose``: run the checks, render the report, exit with its code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.choices import FailOn
from nfdoctor.cli.common import (
    ConfigOption,
    DebugOption,
    LangOption,
    emit,
    guarded,
    warn_config,
)
from nfdoctor.cli.reporting import (
    FailOnOption,
    OutputOption,
    ShopOption,
    TimeoutOption,
    WriteOption,
    check_write_target,
    parse_timeout,
    platform_run,
    run_and_render,
)

if TYPE_CHECKING:
    from nfdoctor.context import Context


def split_csv(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated option values as one list."""
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
    platform: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--platform",
            help="Platform checks for these platforms only (comma-separated); "
            "other checks still run.",
        ),
    ] = None,
    shop: ShopOption = None,
    list_checks: Annotated[
        bool, typer.Option("--list", help="List every check id with its title, and exit.")
    ] = False,
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    timeout: TimeoutOption = None,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Run the runbook's quick-diagnosis checks and report what is broken and what to run next.

    Example: nfdoctor diagnose --only database,system --output json
    """

    def body(ctx: Context) -> int:
        from nfdoctor.checks import all_checks
        from nfdoctor.errors import UsageError
        from nfdoctor.runner import select_checks

        every_check = all_checks()
        if list_checks:
            emit(ctx, "".join(f"{c.id:<30} {c.title}\n" for c in every_check))
            return 0
        if only is not None and not split_csv(only):
            raise UsageError("--only: no check id given; see nfdoctor diagnose --list")
        if platform is not None and not split_csv(platform):
            raise UsageError("--platform: no platform given")
        # Typos are errors against every check there is, configured or not.
        select_checks(every_check, only=split_csv(only), skip=split_csv(skip))
        per_check_timeout = parse_timeout(timeout)
        check_write_target(write)
        loaded = ctx.load_config()
        warn_config(ctx)
        ctx.resolve_all_secrets()
        check_timeout = per_check_timeout or loaded.config.thresholds.check_timeout
        platforms = [p.lower() for p in split_csv(platform)]
        run = platform_run(
            ctx,
            platforms=[] if platforms == ["all"] else platforms,
            shop=shop,
            check_timeout=check_timeout,
        )
        in_scope = all_checks(run)
        selected = select_checks(
            in_scope, only=split_csv(only), skip=split_csv(skip), known=every_check
        )
        if not selected:
            raise UsageError(
                "--only/--skip left no check to run (platform checks run only for configured "
                "platforms); see nfdoctor diagnose --list"
            )
        return run_and_render(
            ctx,
            selected,
            command="diagnose",
            timeout=check_timeout,
            output=output,
            write=write,
            fail_on=fail_on,
        )

    guarded(body, config=config, debug=debug, lang=lang)
