"""The CRM's ``channel_credentials`` as a token store: reads, compare-and-set, the lease.

On SQLite and on the real PostgreSQL server (crm-schema.md v1.1's refresh protocol).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nfdoctor.errors import LeaseBusyError, StateError, VersionConflictError
from nfdoctor.store.database import DatabaseUrl
from nfdoctor.store.repository import (
    CredentialRow,
    CrmRows,
    PostgresCrmRepository,
    ShopRow,
    SqliteCrmRepository,
)
from nfdoctor.tokens.crm import CrmTokenStore, has_credentials_table
from nfdoctor.tokens.store import StoredToken

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc)
SHOPS = [
    ShopRow(id=1, channel="zalo", external_id="4318000000000000001", name="OA 1", created_at=NOW),
    ShopRow(id=2, channel="shopee", external_id="220001", name="Shop", created_at=NOW),
]
CREDENTIALS = [
    CredentialRow(
        shop_id=1,
        access_token="zalo-access-1",
        access_expires_at=NOW + timedelta(hours=25),
        refresh_token="zalo-refresh-1",
        refresh_expires_at=NOW + timedelta(days=90),
        updated_at=NOW,
        updated_by="crm",
    )
]


def _sqlite(tmp_path: Path, *, credentials: bool = True) -> DatabaseUrl:
    path = tmp_path / "crm.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    repository = SqliteCrmRepository(conn)
    repository.create_schema()
    repository.insert(CrmRows(shops=SHOPS, credentials=CREDENTIALS if credentials else ()))
    conn.execute("COMMIT")
    conn.close()
    return DatabaseUrl("sqlite", path=path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseUrl]:
    if request.param == "sqlite":
        yield _sqlite(tmp_path)
        return
    schema = request.getfixturevalue("pg_crm_schema")
    with schema.connect() as conn:
        conn.autocommit = False
        PostgresCrmRepository(conn).insert(CrmRows(shops=SHOPS, credentials=CREDENTIALS))
        conn.commit()
    yield DatabaseUrl("postgresql", dsn=schema.url)


def _store(url: DatabaseUrl, clock: Callable[[], datetime] = lambda: NOW) -> CrmTokenStore:
    return CrmTokenStore(url, clock=clock)


def test_reads_the_crms_pair_with_its_version(crm: DatabaseUrl) -> None:
    token = _store(crm).get("zalo", "4318000000000000001")
    assert token is not None
    assert token.access_token == "zalo-access-1" and token.refresh_token == "zalo-refresh-1"
    assert token.version == 1 and token.updated_by == "crm"
    assert token.access_expires_at == NOW + timedelta(hours=25)
    assert _store(crm).get("shopee", "220001") is None  # a shop without credentials


def _next(token: StoredToken, n: int) -> StoredToken:
    return replace(token, access_token=f"zalo-access-{n}", refresh_token=f"zalo-refresh-{n}")


def test_save_is_compare_and_set_on_the_version(crm: DatabaseUrl) -> None:
    store = _store(crm)
    first = store.get("zalo", "4318000000000000001")
    assert first is not None
    saved = store.save(_next(first, 2), expected_version=1, owner="nfdoctor@a")
    assert saved.version == 2
    again = store.get("zalo", "4318000000000000001")
    assert again is not None and again.refresh_token == "zalo-refresh-2"
    assert (again.version, again.updated_by) == (2, "nfdoctor@a")
    # A second writer that read version 1 finds the row moved on: nothing written.
    with pytest.raises(VersionConflictError, match="version 2"):
        store.save(_next(first, 3), expected_version=1, owner="nfdoctor@b")
    assert store.get("zalo", "4318000000000000001") == again


def test_save_inserts_for_a_shop_without_credentials(crm: DatabaseUrl) -> None:
    store = _store(crm)
    token = StoredToken(
        platform="shopee",
        account_id="220001",
        access_token="shopee-access",
        access_expires_at=NOW + timedelta(hours=4),
        refresh_token="shopee-refresh",
        refresh_expires_at=NOW + timedelta(days=30),
        updated_at=NOW,
    )
    assert store.save(token, expected_version=0, owner="nfdoctor@a").version == 1
    with pytest.raises(VersionConflictError):
        store.save(token, expected_version=0, owner="nfdoctor@b")


def test_the_lease_makes_a_second_refresher_wait_and_give_up(crm: DatabaseUrl) -> None:
    first, second = _store(crm), _store(crm)
    with first.hold("zalo", "4318000000000000001", owner="A", lease_s=60, wait_s=1):
        started = time.monotonic()
        with (
            pytest.raises(LeaseBusyError, match="held by A until"),
            second.hold("zalo", "4318000000000000001", owner="B", lease_s=60, wait_s=0.5),
        ):
            pass
        assert time.monotonic() - started >= 0.5
    # Released: B gets it at once.
    with second.hold("zalo", "4318000000000000001", owner="B", lease_s=60, wait_s=0):
        pass


def test_a_waiting_refresher_gets_the_lease_when_it_is_released(crm: DatabaseUrl) -> None:
    store = _store(crm)
    entered = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with store.hold("zalo", "4318000000000000001", owner="A", lease_s=60, wait_s=1):
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    entered.wait(5)
    threading.Timer(0.4, release.set).start()
    started = time.monotonic()
    with _store(crm).hold("zalo", "4318000000000000001", owner="B", lease_s=60, wait_s=5):
        waited = time.monotonic() - started
    thread.join(5)
    assert 0.3 <= waited < 3


def test_an_expired_lease_of_a_dead_refresher_is_taken_over(crm: DatabaseUrl) -> None:
    clock = [NOW]
    store = _store(crm, lambda: clock[0])
    hold = store.hold("zalo", "4318000000000000001", owner="dead", lease_s=30, wait_s=0)
    hold.__enter__()  # and never released: the process died
    with (
        pytest.raises(LeaseBusyError),
        store.hold("zalo", "4318000000000000001", owner="B", lease_s=30, wait_s=0),
    ):
        pass
    clock[0] = NOW + timedelta(seconds=31)
    with store.hold("zalo", "4318000000000000001", owner="B", lease_s=30, wait_s=0):
        token = store.get("zalo", "4318000000000000001")
        assert token is not None
        saved = store.save(_next(token, 2), expected_version=1, owner="B")
    assert saved.version == 2


def test_a_save_by_someone_whose_lease_was_taken_over_is_refused(crm: DatabaseUrl) -> None:
    clock = [NOW]
    store = _store(crm, lambda: clock[0])
    slow = store.hold("zalo", "4318000000000000001", owner="slow", lease_s=30, wait_s=0)
    slow.__enter__()
    token = store.get("zalo", "4318000000000000001")
    assert token is not None
    clock[0] = NOW + timedelta(seconds=31)
    # The slow refresher comes back with its pair: the lease is no longer its own.
    with (
        store.hold("zalo", "4318000000000000001", owner="fast", lease_s=30, wait_s=0),
        pytest.raises(VersionConflictError, match="lease held by fast"),
    ):
        store.save(_next(token, 9), expected_version=1, owner="slow")


def test_a_missing_shop_table_and_a_drifted_one_are_clear_errors(tmp_path: Path) -> None:
    url = _sqlite(tmp_path, credentials=False)
    assert has_credentials_table(url)
    conn = sqlite3.connect(url.path)  # type: ignore[arg-type]
    conn.execute("ALTER TABLE channel_credentials DROP COLUMN lease_until")
    conn.commit()
    with pytest.raises(StateError, match=r"lacks lease_until .* drifted"):
        _store(url).get("zalo", "4318000000000000001")
    conn.execute("DROP TABLE channel_credentials")
    conn.commit()
    conn.close()
    assert not has_credentials_table(url)
    with pytest.raises(StateError, match="has no channel_credentials table"):
        _store(url).get("zalo", "4318000000000000001")


def test_a_shop_the_crm_does_not_have_is_a_clear_error(crm: DatabaseUrl) -> None:
    token = StoredToken(
        platform="lazada",
        account_id="VN1",
        access_token="a",
        access_expires_at=None,
        refresh_token=None,
        refresh_expires_at=None,
        updated_at=NOW,
    )
    with pytest.raises(StateError, match="has no lazada shop VN1"):
        _store(crm).save(token, expected_version=0, owner="x")


def test_no_token_in_a_repr_or_an_error(crm: DatabaseUrl) -> None:
    store = _store(crm)
    token = store.get("zalo", "4318000000000000001")
    assert "zalo-access-1" not in repr(token) and "zalo-refresh-1" not in repr(token)
    assert "zalo-refresh-1" not in repr(CREDENTIALS[0])
    try:
        store.save(_next(token, 5), expected_version=7, owner="x")  # type: ignore[arg-type]
    except VersionConflictError as exc:
        assert "zalo-access-5" not in str(exc) and "zalo-refresh" not in str(exc)
