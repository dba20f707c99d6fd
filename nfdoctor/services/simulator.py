"""``simulator``: build the simulated platforms and CRM, write what they need, and serve.

Every file and database to write is checked before anything is built or written; the
result holds the server ready to run and what the operator should be told.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nfdoctor.context import Environment
from nfdoctor.errors import UsageError, WriteTargetError
from nfdoctor.fsutil import check_write_target
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.certs import SimulatorPki
from nfdoctor.simulator.crm import CrmSettings
from nfdoctor.simulator.crm_data import write_demo_crm
from nfdoctor.simulator.emitter import WebhookEmitter
from nfdoctor.simulator.faults import FaultPlan, load_fault_plan
from nfdoctor.simulator.ratelimit import parse_rate_limit
from nfdoctor.simulator.registry import NAMES
from nfdoctor.simulator.server import (
    CRM_TLS_DOMAIN,
    CrmTlsSites,
    SimulatorServer,
    platform_emitter,
    webhook_urls,
    write_config,
)
from nfdoctor.simulator.state import (
    DEFAULT_ORDERS_PER_SHOP,
    MAX_ACCOUNTS_PER_PLATFORM,
    MAX_ORDERS_PER_SHOP,
    SimulatorState,
)
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
    #: orders per marketplace shop (``--orders``, 0-100000)
    orders: int = DEFAULT_ORDERS_PER_SHOP
    #: ``PLATFORM=RPS`` ceilings (``--rate-limit``), over the fault plan's ``rate_limits:``
    rate_limits: tuple[str, ...] = ()
    write_config: Path | None = None
    #: ``sqlite:///PATH``, a plain path or ``postgresql://…``; or a SQLite path (``--db``)
    database: str | None = None
    db: Path | None = None
    debug: bool = False
    #: also serve the CRM's webhook receivers over HTTPS (``--tls``)
    tls: bool = False
    #: platform -> certificate kind, over the fault plan's ``tls:`` section (needs ``tls``)
    tls_kinds: Mapping[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class SimulatorStarted:
    """The simulator, ready to serve, and what was written for it."""

    server: SimulatorServer
    state: SimulatorState
    #: the platforms' webhook emitter (the fault plan's ``emitter:``); None when off
    emitter: WebhookEmitter | None = None
    #: one line per thing done (demo CRM written, config written), for the operator
    notes: tuple[str, ...] = field(default_factory=tuple)

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM, the platforms' emitter beside the server."""
        if self.emitter is not None:
            self.emitter.start()
        try:
            self.server.run()
        finally:
            if self.emitter is not None:
                self.emitter.stop()

    def start_in_thread(self) -> None:
        """Serve from background threads (tests, scripts); :meth:`stop` ends it."""
        self.server.start_in_thread()
        if self.emitter is not None:
            self.emitter.start()

    def stop(self) -> None:
        """Stop the emitter, then the server."""
        if self.emitter is not None:
            self.emitter.stop()
        self.server.stop()


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


def _rate_limits(options: tuple[str, ...]) -> dict[str, int]:
    """``--rate-limit PLATFORM=RPS`` options as platform -> ceiling (the last one wins)."""
    limits: dict[str, int] = {}
    for option in options:
        try:
            name, limit = parse_rate_limit(option, NAMES)
        except ValueError as exc:
            raise UsageError(f"--rate-limit {option}: {exc}") from None
        limits[name] = limit
    return limits


def start_simulator(env: Environment, request: SimulatorRequest) -> SimulatorStarted:
    """Check every target, build the simulator, write its demo CRM and config; ready to serve."""
    if not 1 <= request.shops <= MAX_ACCOUNTS_PER_PLATFORM:
        raise UsageError(f"--shops: expected 1-{MAX_ACCOUNTS_PER_PLATFORM}, got {request.shops}")
    if not 0 <= request.orders <= MAX_ORDERS_PER_SHOP:
        raise UsageError(f"--orders: expected 0-{MAX_ORDERS_PER_SHOP}, got {request.orders}")
    rate_limits = _rate_limits(request.rate_limits)
    if request.write_config is not None:
        try:
            check_write_target(request.write_config)
        except WriteTargetError as exc:
            raise UsageError(f"--write-config: {exc.reason}") from None
    if request.tls_kinds is not None and not request.tls:
        raise ValueError("tls_kinds needs tls")
    target = _database_target(request)
    if target is not None:
        check_seed_target(target[0], option=target[1])
    plan = None
    if request.faults is not None:
        plan = load_fault_plan(request.faults, default_seed=request.seed)
    # One message id shared by two pages when there are two: the demo CRM's case of the same
    # id on another shop, which a dedupe must not merge.
    app, state = build_simulator(
        request.seed,
        plan,
        env.clock,
        accounts_per_platform=request.shops,
        orders_per_shop=request.orders,
        rate_limits=rate_limits,
        shared_message_ids=1 if target is not None else 0,
        # The CRM stores the message events it accepts in the demo CRM, as the real one does.
        crm_settings=CrmSettings(database=target[0] if target is not None else None),
    )
    notes: list[str] = []
    kinds = _planned_cert_kinds(plan)
    tls: CrmTlsSites | None = None
    pki: SimulatorPki | None = None
    if request.tls:
        pki = SimulatorPki(state.clock())
        tls = CrmTlsSites(pki, {**kinds, **(request.tls_kinds or {})})
    elif kinds:
        notes.append("nfdoctor: the fault plan's tls: section has no effect without --tls")
    server = SimulatorServer(
        app,
        port=request.port,
        log_level="info" if request.debug else "warning",
        state=state,
        tls=tls,
    )
    # What the platforms deliver to: the URLs the written config names.
    state.webhook_urls = webhook_urls(server.url, https=tls is not None)
    if target is not None:
        summary = write_demo_crm(target[0], state, option=target[1])
        notes.append(
            f"nfdoctor: demo CRM written to {summary.location} ({summary.shops} shops, "
            f"{summary.messages} messages, {summary.duplicate_groups} duplicated)"
        )
    ca_path: Path | None = None
    if request.write_config is not None:
        written = write_config(
            request.write_config,
            server.url,
            state,
            database=target[0] if target else None,
            tls_port=server.tls_port,
            ca_pem=pki.root_pem() if pki is not None else None,
            # The demo CRM holds the tokens it uses (channel_credentials): point at them.
            crm_tokens=target is not None,
        )
        ca_path = written[-1] if pki is not None else None
        notes.append(f"nfdoctor: config written to {request.write_config}")
    if tls is not None:
        notes.append(_https_note(server, tls, ca_path))
    per = f"{request.shops} shops per platform" if request.shops > 1 else "1 shop per platform"
    if request.orders != DEFAULT_ORDERS_PER_SHOP:
        per += f", {request.orders} orders per marketplace shop"
    if state.rate_limits:
        ceilings = ", ".join(f"{name} {rps}/s" for name, rps in state.rate_limits.items())
        per += f", rate limits {ceilings}"
    notes.append(f"nfdoctor simulator listening on {server.url}, {per} (Ctrl-C to stop)")
    emitter = platform_emitter(state, server, pki.root_pem() if pki is not None else None)
    if emitter is not None:
        every = emitter.plan.every.total_seconds()
        notes.append(
            f"nfdoctor simulator: {', '.join(emitter.plan.platforms)} deliver a chat message "
            f"event every {every:g} s; retries on each platform's schedule ÷ "
            f"{emitter.plan.compress:g}"
        )
    return SimulatorStarted(server=server, state=state, emitter=emitter, notes=tuple(notes))


def _planned_cert_kinds(plan: FaultPlan | None) -> dict[str, str]:
    """The fault plan's ``tls:`` section (platform -> certificate kind), if it has one."""
    # Read defensively: the section came with the webhooks work and a plan built by hand
    # (tests, scripts) may predate it.
    kinds = getattr(plan, "tls", None)
    if not isinstance(kinds, Mapping):
        return {}
    return {str(platform): str(kind) for platform, kind in kinds.items()}


def _https_note(server: SimulatorServer, tls: CrmTlsSites, ca_path: Path | None) -> str:
    """One line: where HTTPS is served, which kinds are not valid, and the CA bundle."""
    odd = ", ".join(f"{p} {k}" for p, k in tls.kinds.items() if k != "valid")
    kinds = f"; certificates: {odd}" if odd else ""
    bundle = (
        f"CA bundle {ca_path}"
        if ca_path is not None
        else "no CA bundle written (use --write-config)"
    )
    return (
        f"nfdoctor simulator: CRM webhook receivers over HTTPS on {server.tls_url} as "
        f"<platform>.{CRM_TLS_DOMAIN} (by SNI){kinds}; {bundle}"
    )
