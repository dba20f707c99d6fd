"""``nfdoctor simulator``: serve the platform and CRM simulators on loopback until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.cli.common import DebugOption, guarded

if TYPE_CHECKING:
    from nfdoctor.context import Context


def simulator(
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 (0 picks a free one).")
    ] = 0,
    faults: Annotated[
        Optional[Path],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
        typer.Option(
            "--faults", help="Fault plan YAML (see examples/faults-demo.yaml).", show_default=False
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for ids, secrets, data and faults.")
    ] = 7,
    shops: Annotated[
        int,
        typer.Option(
            "--shops",
            help="Shops (sellers, pages, OAs) per platform, 1-50; each has its own tokens "
            "and data.",
        ),
    ] = 1,
    write_config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--write-config",
            help="Write an nfdoctor config pointing at the simulator (secrets as 0600 files).",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--db", help="Also build the seeded demo CRM database at this path.", show_default=False
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Serve simulators of Shopee, Lazada, TikTok Shop, Facebook, Zalo and the CRM on loopback.

    Example: nfdoctor simulator --write-config sim.yaml --faults examples/faults-demo.yaml

    Three shops per platform: nfdoctor simulator --shops 3 --write-config sim.yaml
    """

    def body(ctx: Context) -> int:
        from nfdoctor.cli.reporting import check_write_target
        from nfdoctor.errors import UsageError
        from nfdoctor.simulator.app import build_simulator
        from nfdoctor.simulator.server import SimulatorServer
        from nfdoctor.simulator.server import write_config as write
        from nfdoctor.simulator.state import MAX_ACCOUNTS_PER_PLATFORM

        if not 1 <= shops <= MAX_ACCOUNTS_PER_PLATFORM:
            raise UsageError(f"--shops: expected 1-{MAX_ACCOUNTS_PER_PLATFORM}, got {shops}")
        # Every file to write is checked before the simulator is built or anything written.
        check_write_target(write_config, "--write-config")
        check_write_target(db, "--db")
        if db is not None and db.exists():
            raise UsageError(f"--db: {db} already exists; refusing to overwrite it")
        app, state = build_simulator(seed, faults, ctx.clock, accounts_per_platform=shops)
        server = SimulatorServer(
            app, port=port, log_level="info" if debug else "warning", state=state
        )
        if db is not None:
            from nfdoctor.store.demo import build_demo_database

            summary = build_demo_database(db, seed=seed, now=ctx.clock())
            ctx.stderr.write(f"nfdoctor: demo CRM database written to {summary.path}\n")
        if write_config is not None:
            write(write_config, server.url, state, database_path=db)
            ctx.stderr.write(f"nfdoctor: config written to {write_config}\n")
        per = f"{shops} shops per platform" if shops > 1 else "1 shop per platform"
        ctx.stderr.write(f"nfdoctor simulator listening on {server.url}, {per} (Ctrl-C to stop)\n")
        ctx.stderr.flush()
        server.run()
        return 0

    guarded(body, config=None, debug=debug)
