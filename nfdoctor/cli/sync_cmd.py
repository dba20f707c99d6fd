"""``nfdoctor sync``: re-read orders or messages from the platforms into the CRM."""

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
    WriteOption,
)

if TYPE_CHECKING:
    from nfdoctor.context import Environment


def sync(
    platform: Annotated[
        str,
        typer.Option(
            "--platform",
            "-p",
            help="shopee, lazada, tiktok, facebook, zalo, or all (every configured one).",
        ),
    ] = "all",
    shop: ShopOption = None,
    since: Annotated[
        Optional[str],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
        typer.Option(
            "--since",
            help="Start of the range: 3d, 12h, 2026-11-20, 2026-11-20T08:00 (config's time "
            "zone). Without it: incremental, from where the last run stopped.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        Optional[str],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
        typer.Option("--until", help="End of the range (default: now).", show_default=False),
    ] = None,
    stream: Annotated[
        Optional[str],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
        typer.Option(
            "--stream",
            help="orders, messages or customers (default: orders on marketplaces, messages "
            "on Facebook and Zalo; customers links buyers only).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Fetch and report what would change; write nothing.")
    ] = False,
    update_state: Annotated[
        bool,
        typer.Option(
            "--update-state",
            help="Let a --since/--until backfill move the incremental bookmark.",
        ),
    ] = False,
    shard: Annotated[
        Optional[str],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
        typer.Option(
            "--shard",
            help="i/n: sync only this process's share of the shops (n processes, one "
            "shared rate limit).",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Re-sync orders or messages from the platforms into the CRM: exact, resumable, paced.

    Example: nfdoctor sync --platform lazada --since 3d
    """
    from nfdoctor.cli.common import check_write_target, guarded, write_report
    from nfdoctor.services.sync import SyncRequest
    from nfdoctor.services.sync import sync as run_sync

    def body(env: Environment) -> int:
        check_write_target(write)
        request = SyncRequest(
            platform=platform,
            shop=shop,
            since=since,
            until=until,
            stream=stream,
            dry_run=dry_run,
            update_state=update_state,
            shard=shard,
            config_path=config,
        )
        report = run_sync(env, request)
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)
