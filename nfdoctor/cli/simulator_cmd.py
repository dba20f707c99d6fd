"""``nfdoctor simulator``: serve the platform and CRM simulators on loopback until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.cli.options import DebugOption

if TYPE_CHECKING:
    from nfdoctor.context import Environment


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
            help="Shops (sellers, pages, OAs) per platform, 1-100; each has its own tokens "
            "and data.",
        ),
    ] = 1,
    orders: Annotated[
        int,
        typer.Option(
            "--orders",
            help="Orders per marketplace shop (Shopee, Lazada, TikTok Shop), 0-100000, spread "
            "over the last 30 days.",
        ),
    ] = 250,
    rate_limit: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--rate-limit",
            metavar="PLATFORM=RPS",
            help="Cap a platform's API requests per second, all its shops together: "
            "PLATFORM=RPS (e.g. lazada=40); repeatable. Requests over it get the "
            "platform's own rate-limit error and Retry-After: 1.",
            show_default=False,
        ),
    ] = None,
    write_config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--write-config",
            help="Write an nfdoctor config pointing at the simulator (secrets as 0600 files).",
            show_default=False,
        ),
    ] = None,
    database: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--database",
            help="Also write the demo CRM of these shops into a new database: sqlite:///PATH, "
            "a plain path, or postgresql://… (an empty database or schema; the CRM tables are "
            "created when absent).",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--db", help="Same as --database, for a SQLite file at this path.", show_default=False
        ),
    ] = None,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="Also serve the CRM's webhook receivers over HTTPS on a second loopback "
            "port, as <platform>.crm.nfdoctor.test with the certificate kind the fault "
            "plan's tls: section names (with --write-config: the CA bundle and connect_to "
            "rules).",
        ),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Serve simulators of Shopee, Lazada, TikTok Shop, Facebook, Zalo and the CRM on loopback.

    Example: nfdoctor simulator --write-config sim.yaml --faults examples/faults-demo.yaml

    Three shops per platform: nfdoctor simulator --shops 3 --write-config sim.yaml

    A big shop behind a rate limit: nfdoctor simulator --orders 20000 --rate-limit lazada=40

    With their CRM: nfdoctor simulator --database sqlite:///crm.db --write-config sim.yaml

    Webhooks over HTTPS: nfdoctor simulator --tls --write-config sim.yaml
    """

    # The command body is the seam: `nfdoctor --version` imports this module, not these.
    from nfdoctor.cli.common import guarded
    from nfdoctor.services.simulator import SimulatorRequest, start_simulator

    def body(env: Environment) -> int:
        started = start_simulator(
            env,
            SimulatorRequest(
                port=port,
                faults=faults,
                seed=seed,
                shops=shops,
                orders=orders,
                rate_limits=tuple(rate_limit or ()),
                write_config=write_config,
                database=database,
                db=db,
                debug=debug,
                tls=tls,
            ),
        )
        for note in started.notes:
            env.stderr.write(note + "\n")
        env.stderr.flush()
        started.run()
        return 0

    guarded(body, debug=debug)
