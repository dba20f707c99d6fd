"""A simulator with its CRM for the sync tests, and the CRM compared with the ground truth."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from nfdoctor.context import Environment
from nfdoctor.results import Report
from nfdoctor.services.simulator import SimulatorRequest, SimulatorStarted, start_simulator
from nfdoctor.services.sync import SyncRequest, sync
from tests.conftest import CliResult

MARKETPLACES = ("shopee", "lazada", "tiktok")


@dataclass
class SyncSim:
    """The simulator (on loopback), its config and its SQLite CRM."""

    started: SimulatorStarted
    config: Path
    database: Path
    home: Path

    @property
    def state(self) -> Any:
        return self.started.state

    def accounts(self, platform: str) -> list[str]:
        return [str(a.account_id) for a in self.state.accounts[platform]]

    def crm(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database) as conn:
            return [tuple(r) for r in conn.execute(statement, params).fetchall()]

    def run(self, *, state_home: Path | None = None, **options: Any) -> Report:
        """``nfdoctor sync`` in this process (the service the command calls)."""
        home = state_home or self.home
        env = Environment(environ={**os.environ, "XDG_STATE_HOME": str(home)})
        return sync(env, SyncRequest(config_path=self.config, **options))

    def cli(self, *args: str, state_home: Path | None = None, timeout: float = 300) -> CliResult:
        """``nfdoctor sync ARGS`` as a process."""
        home = state_home or self.home
        done = subprocess.run(
            [sys.executable, "-m", "nfdoctor", "sync", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "XDG_STATE_HOME": str(home)},
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def configure(self, **sections: Any) -> None:
        """Merge ``sections`` into the config the simulator wrote."""
        document = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        for name, values in sections.items():
            document.setdefault(name, {}).update(values)
        self.config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")

    def orders(self, platform: str, account: str) -> dict[str, tuple[str, str, Decimal, str]]:
        """The CRM's orders of a shop: id -> (platform status, status, amount, currency)."""
        rows = self.crm(
            "SELECT o.external_id, o.platform_status, o.status, o.total_amount, o.currency "
            "FROM orders o JOIN shops s ON s.id = o.shop_id "
            "WHERE s.channel = ? AND s.external_id = ?",
            (platform, account),
        )
        return {str(r[0]): (str(r[1]), str(r[2]), Decimal(str(r[3])), str(r[4])) for r in rows}

    def truth(
        self, platform: str, account: str, since: datetime, until: datetime
    ) -> dict[str, tuple[str, str, Decimal, str]]:
        """The platform's orders of a shop updated in ``[since, until)``, as the CRM should
        hold them."""
        (entry,) = self.state.ground_truth(platform, account)["accounts"]
        held = {}
        for order in entry["orders"]:
            updated = datetime.fromisoformat(order["update_time"].replace("Z", "+00:00"))
            if since <= updated < until:
                held[order["order_id"]] = (
                    order["platform_status"],
                    order["crm_status"],
                    Decimal(str(order["amount"])),
                    order["currency"],
                )
        return held


def start(
    tmp_path: Path,
    *,
    shops: int = 1,
    orders: int = 60,
    rate_limits: tuple[str, ...] = (),
    faults: list[dict[str, Any]] | None = None,
    empty_crm: bool = True,
) -> SyncSim:
    """The simulator with a SQLite CRM; ``empty_crm``: its orders and messages removed (what
    sync must bring back)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    plan = None
    if faults is not None:
        plan = tmp_path / "plan.yaml"
        plan.write_text(yaml.safe_dump({"rules": faults}), encoding="utf-8")
    config = tmp_path / "sim.yaml"
    database = tmp_path / "crm.db"
    started = start_simulator(
        Environment(),
        SimulatorRequest(
            write_config=config,
            database=f"sqlite:///{database}",
            shops=shops,
            orders=orders,
            rate_limits=rate_limits,
            faults=plan,
        ),
    )
    started.start_in_thread()
    if empty_crm:
        with sqlite3.connect(database) as conn:
            conn.execute("DELETE FROM message_attachments")
            conn.execute("UPDATE messages SET reply_to_id = NULL")
            conn.execute("DELETE FROM messages")
            conn.execute("DELETE FROM orders")
    return SyncSim(started=started, config=config, database=database, home=tmp_path / "state")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
