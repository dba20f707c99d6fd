"""``nfdoctor token status | refresh | authorize | import | export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nfdoctor.choices import FailOn
from nfdoctor.cli.options import (
    ConfigOption,
    DebugOption,
    FailOnOption,
    LangOption,
    OutputOption,
    ShopOption,
    WriteOption,
)
from nfdoctor.cli.token_authorize_cmd import authorize

if TYPE_CHECKING:
    from nfdoctor.context import Environment

token_app = typer.Typer(
    help="Tokens: their state, refreshing them safely, authorising a shop again.",
    no_args_is_help=True,
)

PlatformOrAll = Annotated[
    str,
    typer.Argument(help="shopee, lazada, tiktok, facebook, zalo, or all (every configured one)."),
]


@token_app.command("status")
def status(
    platform: PlatformOrAll = "all",
    shop: ShopOption = None,
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Each shop's tokens: expiries against their own lifetimes, last refresh and by whom.

    Which store is read (the CRM's channel_credentials, a file, the keyring), an interrupted
    refresh, and Facebook's debug_token (validity, scopes, data access).

    Example: nfdoctor token status zalo
    """
    from nfdoctor.cli.common import check_write_target, guarded, write_report
    from nfdoctor.services.token import StatusRequest, token_status

    def body(env: Environment) -> int:
        check_write_target(write)
        report = token_status(env, StatusRequest(platform=platform, config_path=config, shop=shop))
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)


@token_app.command("refresh")
def refresh(
    platform: PlatformOrAll = "all",
    shop: ShopOption = None,
    due: Annotated[
        bool,
        typer.Option(
            "--due",
            help="Only tokens inside their refresh margin (for cron); silent when all is well.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Refresh even a token another run has just refreshed."),
    ] = False,
    retry_unknown: Annotated[
        bool,
        typer.Option(
            "--retry-unknown",
            help="After a refresh whose outcome is unknown, try the stored refresh token once.",
        ),
    ] = False,
    wait: Annotated[
        str,
        typer.Option("--wait", help="How long to wait for another refresher's lease."),
    ] = "60s",
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Refresh tokens through each platform's endpoint, never losing a refresh token.

    Each shop under its lease (the CRM's, when tokens live in channel_credentials), the
    answer journaled before it is parsed, the new pair saved before it is used and verified
    with a call. Cron: nfdoctor token refresh all --due

    Example: nfdoctor token refresh zalo --shop 4318000000000000001
    """
    from nfdoctor.cli.common import check_write_target, guarded, write_report
    from nfdoctor.durations import parse_span
    from nfdoctor.errors import UsageError
    from nfdoctor.results import Status
    from nfdoctor.services.token import RefreshRequest, refresh_tokens

    def body(env: Environment) -> int:
        check_write_target(write)
        try:
            waiting = parse_span(wait)
        except ValueError as exc:
            raise UsageError(f"--wait: {exc}") from None
        report = refresh_tokens(
            env,
            RefreshRequest(
                platform=platform,
                config_path=config,
                shop=shop,
                due=due,
                force=force,
                retry_unknown=retry_unknown,
                wait=waiting,
            ),
        )
        quiet = due and output is None and write is None
        if quiet and report.worst in (Status.OK, Status.SKIPPED):
            return 0  # cron: silent on success, as cron jobs should be
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)


@token_app.command("import")
def import_(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="A token file (0600), or - for standard input (the default). Never an "
            "argument: tokens stay out of shell history and ps.",
        ),
    ] = "-",
    output: OutputOption = None,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Put the pairs of a token file into the configured store.

    The file format is the file store's (docs/tokens.md); each pair is written under the
    shop's lease, and only for shops the config lists.

    Example: nfdoctor token import --from /root/tokens.json
    """
    from nfdoctor.cli.common import guarded, write_report
    from nfdoctor.services.token import ImportRequest, import_tokens

    def body(env: Environment) -> int:
        report = import_tokens(env, ImportRequest(source=source, config_path=config))
        return write_report(env, report, output=output, write=None, fail_on=FailOn.WARNING)

    guarded(body, debug=debug, lang=lang)


@token_app.command("export")
def export(
    out: Annotated[
        Path,
        typer.Option("--out", help="The file to write (0600); never standard output."),
    ],
    platform: PlatformOrAll = "all",
    output: OutputOption = None,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Write the stored pairs to a token file (0600), e.g. to move to another store.

    Example: nfdoctor token export --out /root/tokens.json
    """
    from nfdoctor.cli.common import check_write_target, guarded, write_report
    from nfdoctor.services.token import ExportRequest, export_tokens

    def body(env: Environment) -> int:
        if str(out) != "-":
            check_write_target(out, "--out")
        report = export_tokens(env, ExportRequest(out=out, config_path=config, platform=platform))
        return write_report(env, report, output=output, write=None, fail_on=FailOn.WARNING)

    guarded(body, debug=debug, lang=lang)


# --- authorize (nfdoctor/cli/token_authorize_cmd.py) ---
token_app.command("authorize")(authorize)
