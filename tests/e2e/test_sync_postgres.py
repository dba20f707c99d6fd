"""``nfdoctor sync`` into a CRM on the real PostgreSQL server (the SQLite tests' twin)."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.context import Environment
from nfdoctor.results import Status
from nfdoctor.services.simulator import SimulatorRequest, start_simulator
from nfdoctor.services.sync import SyncRequest, sync


@pytest.mark.postgres
def test_orders_and_messages_sync_into_postgres_and_a_rerun_changes_nothing(
    tmp_path: Path, pg_schema: Any
) -> None:
    config = tmp_path / "sim.yaml"
    started = start_simulator(
        Environment(),
        SimulatorRequest(write_config=config, database=pg_schema.url, shops=2, orders=80),
    )
    started.start_in_thread()
    state = started.state
    try:
        with pg_schema.connect() as conn:
            conn.execute("DELETE FROM message_attachments")
            conn.execute("UPDATE messages SET reply_to_id = NULL")
            conn.execute("DELETE FROM messages")
            conn.execute("DELETE FROM orders")
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text + "sync:\n  message_settle: 0s\n  rate_limits: {tiktok: 300, zalo: 300}\n",
            encoding="utf-8",
        )
        env = Environment(environ={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})

        def run() -> Any:
            return sync(env, SyncRequest(platform="tiktok,zalo", since="40d", config_path=config))

        now = state.clock()
        report = run()
        assert report.worst is Status.OK, [(r.id, r.summary, r.details) for r in report.results]
        with pg_schema.connect() as conn:
            held = {
                (str(r[0]), str(r[1])): (str(r[2]), Decimal(r[3]))
                for r in conn.execute(
                    "SELECT s.external_id, o.external_id, o.platform_status, o.total_amount "
                    "FROM orders o JOIN shops s ON s.id = o.shop_id WHERE s.channel = 'tiktok'"
                )
            }
            messages = {
                (str(r[0]), str(r[1])): int(r[2])
                for r in conn.execute(
                    "SELECT s.external_id, m.external_id, COUNT(*) FROM messages m "
                    "JOIN shops s ON s.id = m.shop_id WHERE s.channel = 'zalo' GROUP BY 1, 2"
                )
            }
        truth = {
            (a.account_id, o["order_id"]): (o["platform_status"], Decimal(o["amount"]))
            for a in state.accounts["tiktok"]
            for o in state.ground_truth("tiktok", a.account_id)["accounts"][0]["orders"]
            if o["update_time"] >= (now - timedelta(days=40)).isoformat()
        }
        assert held == truth
        zalo = {
            (a.account_id, m["message_id"])
            for a in state.accounts["zalo"]
            for m in state.ground_truth("zalo", a.account_id)["accounts"][0]["messages"]
        }
        assert set(messages) == zalo and set(messages.values()) == {1}
        again = run()
        for result in again.results:
            counts = {m.name: m.value for m in result.metrics}
            if "inserted" in counts:
                assert (counts["inserted"], counts["updated"]) == (0, 0), result.summary
    finally:
        started.stop()
