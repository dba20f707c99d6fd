"""``simulator``: build the simulated platforms and CRM, write what they need, and serve.

Every file and database to write is checked before anything is built or written; the
result holds the server ready to run and what the operator should be told.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nfdoctor.context import Environment
from nfdoctor.errors import UsageError, WriteTargetError
from nfdoctor.fsutil import check_write_target
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.crm_data import write_demo_crm
from nfdoctor.simulator.server import SimulatorServer, write_config
from nfdoctor.simulator.state import MAX_ACCOUNTS_PER_PLATFORM, SimulatorState
from nfdoctor.store.database import DatabaseUrl
from nfdoctor.store.seeding import check_seed_target, database_target

__all__ = ["SimulatorRequest", "SimulatorStarted", "start_simulator"]


@dataclass(frozen=True, kw_only=True)
class SimulatorRequest:
    """What to simulate and what to write for it."""

    port: int = 0
    faults: Path | None = None
    seed: int = 7
    shops: int = 1
    write_config: Path | None = None
    #: ``sqlite:///PATH``, a plain path or ``postgresql://…``; or a SQLite path (``--db``)
    database: str | None = None
    db: Path | None = None
    debug: bool = False


@dataclass(frozen=True, kw_only=True)
class SimulatorStarted:
    """The simulator, ready to serve, and what was written for it."""

    server: SimulatorServer
    state: SimulatorState
    #: one line per thing done (demo CRM written, config written), for the operator
    notes: tuple[str, ...] = field(default_factory=tuple)


def _database_target(request: SimulatorRequest) -> tuple[DatabaseUrl, str] | None:
    """The demo CRM's database and the option that named it (UsageError for a bad value)."""
    if request.database is not None and request.db is not None:
        raise UsageError("--db is the same as --database: give one of them")
    if request.db is not None:
        return DatabaseUrl("sqlite", path=request.db), "--db"
    if request.database is None:
        return None
    try:
        return database_target(request.database), "--database"
    except ValueError as exc:
        raise UsageError(f"--database: {exc}") from None


def start_simulator(env: Environment, request: SimulatorRequest) -> SimulatorStarted:
    """Check every target, build the simulator, write its demo CRM and config; ready to serve."""
    if not 1 <= request.shops <= MAX_ACCOUNTS_PER_PLATFORM:
        raise UsageError(f"--shops: expected 1-{MAX_ACCOUNTS_PER_PLATFORM}, got {request.shops}")
    if request.write_config is not None:
        try:
            check_write_target(request.write_config)
        except WriteTargetError as exc:
            raise UsageError(f"--write-config: {exc.reason}") from None
    target = _database_target(request)
    if target is not None:
        check_seed_target(target[0], option=target[1])
    # One message id shared by two pages when there are two: the demo CRM's case of the same
    # id on another shop, which a dedupe must not merge.
    app, state = build_simulator(
        request.seed,
        request.faults,
        env.clock,
        accounts_per_platform=request.shops,
        shared_message_ids=1 if target is not None else 0,
    )
    server = SimulatorServer(
        app, port=request.port, log_level="info" if request.debug else "warning", state=state
    )
    notes: list[str] = []
    if target is not None:
        summary = write_demo_crm(target[0], state, option=target[1])
        notes.append(
            f"nfdoctor: demo CRM written to {summary.location} ({summary.shops} shops, "
            f"{summary.messages} messages, {summary.duplicate_groups} duplicated)"
        )
    if request.write_config is not None:
        write_config(
            request.write_config, server.url, state, database=target[0] if target else None
        )
        notes.append(f"nfdoctor: config written to {request.write_config}")
    per = f"{request.shops} shops per platform" if request.shops > 1 else "1 shop per platform"
    notes.append(f"nfdoctor simulator listening on {server.url}, {per} (Ctrl-C to stop)")
    return SimulatorStarted(server=server, state=state, notes=tuple(notes))
