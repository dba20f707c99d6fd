"""``nfdoctor diagnose``: run the checks, render the report, exit with its code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.choices import FailOn
from nfdoctor.cli.options import (
    ConfigOption,
    DebugOption,
    FailOnOption,
    LangOption,
    OutputOption,
    ShopOption,
    TimeoutOption,
    WriteOption,
)

if TYPE_CHECKING:
    from nfdoctor.context import Environment


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

    # The command body is the seam: `nfdoctor --version` imports this module, not these.
    from nfdoctor.cli.common import (
        check_write_target,
        emit,
        guarded,
        parse_csv,
        parse_timeout,
        progress,
        write_report,
    )
    from nfdoctor.errors import UsageError
    from nfdoctor.services import diagnose as service

    def body(env: Environment) -> int:

        if list_checks:
            emit(env, "".join(f"{c.id:<30} {c.title}\n" for c in service.every_check()))
            return 0
        if only is not None and not parse_csv(only):
            raise UsageError("--only: no check id given; see nfdoctor diagnose --list")
        platforms = tuple(p.lower() for p in parse_csv(platform))
        if platform is not None and not platforms:
            raise UsageError("--platform: no platform given")
        request = service.DiagnoseRequest(
            config_path=config,
            only=parse_csv(only),
            skip=parse_csv(skip),
            scope=service.Scope(platforms=() if platforms == ("all",) else platforms, shop=shop),
            timeout=parse_timeout(timeout),
        )
        check_write_target(write)
        with progress(env) as observer:
            report = service.diagnose(env, request, observer=observer)
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)
