"""The quick-start demo shows what it promises: each incident of the scenario is found,
on the right shop, with the right status, and the healthy shops and the demo CRM database
are OK."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.crm_data import write_demo_crm
from nfdoctor.simulator.server import SimulatorServer, write_config
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl
from tests.conftest import CliResult

SCENARIO = Path(__file__).resolve().parent.parent / "examples" / "demo-scenario.yaml"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Path, SimulatorState]]:
    # What scripts/demo.py starts: `nfdoctor simulator --shops 2 --faults SCENARIO
    # --database sqlite:///demo/crm.db --write-config demo/nfdoctor.yaml` (less data).
    app, state = build_simulator(
        7,
        SCENARIO,
        accounts_per_platform=2,
        orders_per_shop=5,
        conversations_per_account=3,
        shared_message_ids=1,
    )
    server = SimulatorServer(app)
    server.start_in_thread()
    try:
        database = DatabaseUrl("sqlite", path=tmp_path / "crm.db")
        write_demo_crm(database, state)
        config = tmp_path / "sim.yaml"
        write_config(config, server.url, state, database=database)
        yield config, state
    finally:
        server.stop()


def test_diagnose_finds_each_incident_of_the_demo(
    demo: tuple[Path, SimulatorState], cli: Callable[..., CliResult]
) -> None:
    config, state = demo
    result = cli("diagnose", "--config", str(config), "--only", "platforms", "--output", "json")
    report = json.loads(result.stdout)
    found = {(r["id"], r.get("subject") or ""): r for r in report["results"]}

    def result_for(check: str, platform: str, shop: int) -> dict[str, object]:
        account = state.accounts[platform][shop - 1].account_id
        matches = [r for (i, s), r in found.items() if i == check and f" {account}" in s]
        assert len(matches) == 1, (check, account)
        return matches[0]

    expected = {
        ("platforms.zalo.api", "zalo", 2): ("CRITICAL", "category: token_expired"),
        ("platforms.zalo.token", "zalo", 2): ("WARNING", None),
        ("platforms.lazada.api", "lazada", 2): ("CRITICAL", "category: transient"),
        # The same seller's listing drops too: its order sync health cannot be measured.
        ("platforms.lazada.order_sync", "lazada", 2): ("CRITICAL", "category: transient"),
        ("platforms.lazada.api", "lazada", 1): ("WARNING", None),
        ("platforms.facebook.api", "facebook", 2): ("WARNING", "category: rate_limited"),
        ("platforms.shopee.token", "shopee", 2): ("WARNING", None),
        ("platforms.tiktok.api", "tiktok", 1): ("WARNING", None),
        ("platforms.tiktok.api", "tiktok", 2): ("WARNING", None),
    }
    seen = set()
    for (check, platform, shop), (status, detail) in expected.items():
        outcome = result_for(check, platform, shop)
        seen.add(id(outcome))
        assert outcome["status"] == status, outcome
        if detail is not None:
            assert detail in outcome["details"], outcome
    assert "missing shops[].cipher" in str(result_for("platforms.tiktok.api", "tiktok", 1))
    assert "slower than the 1 s API target" in str(result_for("platforms.lazada.api", "lazada", 1))
    # Facebook's second page is throttled on every call, debug_token included.
    assert result_for("platforms.facebook.token", "facebook", 2)["status"] == "WARNING"
    seen.add(id(result_for("platforms.facebook.token", "facebook", 2)))
    others = [r for r in report["results"] if id(r) not in seen]
    assert others and all(r["status"] == "OK" for r in others), [
        (r["id"], r.get("subject"), r["status"], r["summary"])
        for r in others
        if r["status"] != "OK"
    ]
    assert result.code == 2


def test_the_demo_crm_database_is_healthy(
    demo: tuple[Path, SimulatorState], cli: Callable[..., CliResult]
) -> None:
    # The demo's incidents are the platforms'; its CRM database (planted duplicates and
    # all) passes the database checks.
    config, _ = demo
    result = cli("diagnose", "--config", str(config), "--only", "database", "--output", "json")
    report = json.loads(result.stdout)
    checks = {r["id"]: r["status"] for r in report["results"]}
    assert checks == {
        "database.connect": "OK",
        "database.schema": "OK",
        "database.integrity": "OK",
    }, report
    assert result.code == 0
