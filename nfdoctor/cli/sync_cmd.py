"""``nfdoctor sync``: re-read orders or messages from the platforms into the CRM."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Optional

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
    from nfdoctor.sync.engine import JobOutcome


@contextlib.contextmanager
def sync_progress(env: Environment) -> Iterator[Callable[[JobOutcome], None]]:
    """A Rich progress bar per (shop, stream) on stderr when it is a terminal: windows done,
    records fetched, their rate and the time left; nothing otherwise (cron, CI, pipes)."""
    if not env.stderr.isatty() or "NO_COLOR" in env.environ:
        yield lambda _: None
        return
    from rich.console import Console  # only on a terminal: Rich is heavy to import
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("windows · {task.fields[fetched]} records · {task.fields[rate]}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=env.stderr), transient=True) as bar:
        tasks: dict[tuple[str, str, str], Any] = {}

        def update(outcome: JobOutcome) -> None:
            key = (outcome.account.platform, outcome.account.account_id, outcome.stream)
            if key not in tasks:
                tasks[key] = bar.add_task(
                    f"{outcome.account.label} {outcome.stream}",
                    total=outcome.windows,
                    fetched=0,
                    rate="0",
                )
            elapsed = max(outcome_elapsed(bar, tasks[key]), 1e-6)
            bar.update(
                tasks[key],
                completed=outcome.windows_done_before + outcome.windows_finished,
                fetched=outcome.fetched,
                rate=f"{outcome.fetched / elapsed:.0f}",
            )

        yield update


def outcome_elapsed(bar: Any, task: Any) -> float:
    """Seconds since the task's bar appeared."""
    elapsed = next((t.elapsed for t in bar.tasks if t.id == task), None)
    return float(elapsed or 0.0)


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
        with sync_progress(env) as progress:
            report = run_sync(env, request, progress=progress)
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)
