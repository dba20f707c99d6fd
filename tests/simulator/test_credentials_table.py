"""``channel_credentials`` in the demo CRM: one row per shop holding the tokens the simulator
issued for it (what ``tokens.json`` says), as the CRM stored them; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.simulator.crm_data import build_demo_database, write_demo_crm
from nfdoctor.simulator.server import tokens_document, write_config
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl, parse_database_url
from tests.simulator import NOW

QUERY = (
    "SELECT s.channel, s.external_id, c.access_token, c.access_expires_at, c.refresh_token,"
    " c.refresh_expires_at, c.updated_at, c.updated_by, c.version, c.lease_owner, c.lease_until"
    " FROM channel_credentials c JOIN shops s ON s.id = c.shop_id ORDER BY c.shop_id"
)


def small_state() -> SimulatorState:
    state = SimulatorState(
        13, lambda: NOW, accounts_per_platform=2, orders_per_shop=3, conversations_per_account=3
    )
    # An aged token and an expired refresh token must be stored as they are, not as issued.
    state.age_token("lazada", state.accounts["lazada"][1].account_id, expires_in=timedelta(hours=2))
    state.expire_refresh("zalo", state.accounts["zalo"][0].account_id)
    return state


def when(value: Any) -> datetime | None:
    """A stored time (SQLite text or PostgreSQL timestamptz) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert value.tzinfo is not None
    return value.astimezone(timezone.utc)


def iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def expected_rows(state: SimulatorState) -> list[tuple[Any, ...]]:
    """What tokens.json says about every shop, in shop order, as credential rows."""
    document = tokens_document(state)
    assert document["format"] == "nfdoctor.tokens/v1"
    rows = []
    for platform, accounts in state.accounts.items():
        for account in accounts:
            entry = document["tokens"][platform][account.account_id]
            rows.append(
                (
                    platform,
                    account.account_id,
                    entry["access_token"],
                    iso(entry["access_expires_at"]),
                    entry["refresh_token"],
                    iso(entry["refresh_expires_at"]),
                )
            )
    return rows


def check_rows(stored: list[tuple[Any, ...]], state: SimulatorState) -> None:
    got = [(r[0], r[1], r[2], when(r[3]), r[4], when(r[5])) for r in stored]
    assert got == expected_rows(state)
    assert len(got) == 10  # one per shop, five platforms, two accounts each
    for row in stored:
        updated_at, updated_by, version, lease_owner, lease_until = row[6:]
        assert updated_by == "crm" and version == 1
        assert lease_owner is None and lease_until is None
        assert when(updated_at) == NOW  # when the simulator issued them (its clock)
    facebook = [r for r in got if r[0] == "facebook"]
    assert facebook and all(r[3] is None and r[4] is None and r[5] is None for r in facebook)
    lazada = [r for r in got if r[0] == "lazada"]
    assert lazada[1][3] == NOW + timedelta(hours=2)
    zalo = [r for r in got if r[0] == "zalo"]
    assert zalo[0][5] == NOW


def test_sqlite_rows_are_the_issued_tokens(tmp_path: Path) -> None:
    state = small_state()
    path = tmp_path / "crm.db"
    summary = write_demo_crm(DatabaseUrl("sqlite", path=path), state)
    assert summary.credentials == 10
    with sqlite3.connect(path) as conn:
        check_rows(conn.execute(QUERY).fetchall(), state)


def test_the_rows_match_the_written_tokens_json(tmp_path: Path) -> None:
    state = small_state()
    write_config(tmp_path / "sim.yaml", "http://127.0.0.1:40000", state)
    written = json.loads((tmp_path / "sim-secrets" / "tokens.json").read_text())
    path = tmp_path / "crm.db"
    write_demo_crm(DatabaseUrl("sqlite", path=path), state)
    with sqlite3.connect(path) as conn:
        stored = {(r[0], r[1]): (r[2], r[4]) for r in conn.execute(QUERY).fetchall()}
    in_file = {
        (platform, account): (entry["access_token"], entry["refresh_token"])
        for platform, accounts in written["tokens"].items()
        for account, entry in accounts.items()
    }
    assert stored == in_file


def test_a_revoked_account_gets_no_row(tmp_path: Path) -> None:
    state = small_state()
    shop = state.accounts["shopee"][1].account_id
    state.revoke_all("shopee", shop)
    path = tmp_path / "crm.db"
    assert write_demo_crm(DatabaseUrl("sqlite", path=path), state).credentials == 9
    with sqlite3.connect(path) as conn:
        assert ("shopee", shop) not in {(r[0], r[1]) for r in conn.execute(QUERY).fetchall()}


def test_the_demo_database_has_them(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    summary = build_demo_database(path, now=NOW)
    state = SimulatorState(
        7,
        lambda: NOW,
        accounts_per_platform=2,
        orders_per_shop=100,
        conversations_per_account=100,
        shared_message_ids=1,
    )
    assert summary.credentials == summary.shops == 10
    with sqlite3.connect(path) as conn:
        tokens = [r[2] for r in conn.execute(QUERY).fetchall()]
    assert tokens == [r[2] for r in expected_rows(state)]


@pytest.mark.postgres
def test_postgres_rows_are_the_issued_tokens(pg_schema: Any) -> None:
    state = small_state()
    summary = write_demo_crm(parse_database_url(pg_schema.url), state)
    assert summary.credentials == 10
    with pg_schema.connect() as conn:
        check_rows(conn.execute(QUERY).fetchall(), state)
