"""``nfdoctor token refresh`` as real processes against the simulator, on the CRM's tokens.

The CRM database is the real PostgreSQL server (or SQLite for the kill test); the tokens are
the CRM's own (``tokens.store: crm``, ``channel_credentials``), leased as the CRM leases them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from nfdoctor.context import Environment
from nfdoctor.results import Status
from nfdoctor.services.simulator import SimulatorRequest, SimulatorStarted, start_simulator
from nfdoctor.services.token import RefreshRequest, StatusRequest, refresh_tokens, token_status
from nfdoctor.services.token_authorize import AuthorizeRequest, authorize
from nfdoctor.store.database import DatabaseUrl, parse_database_url
from nfdoctor.tokens.crm import CrmTokenStore
from nfdoctor.tokens.journal import RefreshJournal
from tests.conftest import CliResult
from tests.tokens.test_authorize import consent as approve_on_consent_page


@dataclass
class CrmSim:
    started: SimulatorStarted
    config: Path
    database: DatabaseUrl

    @property
    def state(self) -> Any:
        return self.started.state

    def oa(self, index: int = 0) -> str:
        return str(self.state.accounts["zalo"][index].account_id)

    def store(self) -> CrmTokenStore:
        return CrmTokenStore(self.database)

    def refreshes(self, platform: str, account_id: str) -> int:
        """Refresh tokens the simulator issued for the account after the first one."""
        issued = [
            t
            for t in list(self.state.tokens.values())
            if t.platform == platform and t.owner == account_id and t.kind == "refresh"
        ]
        return len(issued) - 1

    def accepts_stored(self, platform: str, account_id: str) -> bool:
        stored = self.store().get(platform, account_id)
        assert stored is not None
        access, _ = self.state.check(platform, stored.access_token, "access", owner=account_id)
        refresh, _ = self.state.check(platform, stored.refresh_token, "refresh", owner=account_id)
        return access == "ok" and refresh == "ok"

    def secrets(self) -> list[str]:
        return [str(v) for v in self.state.secret_values()]


def _nfdoctor(*args: str, state_home: Path, timeout: float = 120) -> CliResult:
    env = {**os.environ, "XDG_STATE_HOME": str(state_home)}
    completed = subprocess.run(
        [sys.executable, "-m", "nfdoctor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def _start(tmp_path: Path, database: str, rules: list[dict[str, Any]] | None = None) -> CrmSim:
    faults = None
    if rules is not None:
        faults = tmp_path / "plan.yaml"
        faults.write_text(yaml.safe_dump({"rules": rules}), encoding="utf-8")
    config = tmp_path / "sim.yaml"
    started = start_simulator(
        Environment(),
        SimulatorRequest(write_config=config, database=database, shops=2, faults=faults),
    )
    started.start_in_thread()
    # The CRM's tokens: the config names the CRM store, and channel_credentials holds the
    # pairs the simulator issued (imported from the file it wrote, as an operator would).
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["tokens"] = {"store": "crm"}
    config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    tokens = config.parent / f"{config.stem}-secrets" / "tokens.json"
    imported = _nfdoctor(
        "token",
        "import",
        "--from",
        str(tokens),
        "--config",
        str(config),
        state_home=tmp_path / "import-state",
    )
    assert imported.code == 0, imported.stderr
    loaded = parse_database_url(document["database"]["url"], base_dir=config.parent)
    password = document["database"].get("password")
    if password:
        secret = (config.parent / password.removeprefix("file:")).read_text().strip()
        loaded = loaded.with_password(secret)
    return CrmSim(started=started, config=config, database=loaded)


@pytest.fixture
def pg_sim(tmp_path: Path, pg_schema: Any) -> Iterator[CrmSim]:
    sim = _start(tmp_path, pg_schema.url)
    try:
        yield sim
    finally:
        sim.started.stop()


@pytest.mark.postgres
@pytest.mark.slow
def test_twenty_processes_on_two_hosts_refresh_a_zalo_oa_once(
    pg_sim: CrmSim, tmp_path: Path
) -> None:
    """Twenty refreshes of one OA at once, in two groups that share only the database
    (state directories and lock files apart, as on two hosts)."""
    oa = pg_sim.oa()
    before = pg_sim.store().get("zalo", oa)
    assert before is not None
    command = [
        sys.executable,
        "-m",
        "nfdoctor",
        "token",
        "refresh",
        "zalo",
        "--shop",
        oa,
        "--config",
        str(pg_sim.config),
        "-o",
        "json",
    ]
    processes = []
    for number in range(20):
        host = "host-a" if number % 2 else "host-b"
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / host)}
        processes.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = [process.communicate(timeout=180) for process in processes]
    codes = [process.returncode for process in processes]
    assert codes == [0] * 20, [err[-500:] for _, err in outputs]
    summaries = [json.loads(out)["results"][0]["summary"] for out, _ in outputs]
    refreshed = [s for s in summaries if s.startswith("refreshed")]
    assert len(refreshed) == 1, summaries
    assert all(s.startswith("already refreshed") for s in summaries if s not in refreshed)
    assert pg_sim.refreshes("zalo", oa) == 1
    after = pg_sim.store().get("zalo", oa)
    assert after is not None and after.version == before.version + 1
    assert pg_sim.accepts_stored("zalo", oa)
    secrets = pg_sim.secrets()
    for out, err in outputs:
        assert not [s for s in secrets if s and (s in out or s in err)]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_refresh_killed_at_random_points_never_loses_a_token(tmp_path: Path) -> None:
    """SIGKILL ``token refresh`` at 50 random moments between taking the lease and saving.

    After each kill, the next run either recovers the pair the killed one received, or (the
    kill fell while the request was on the wire) reports "refresh outcome unknown" — and
    then never stores or reports as valid a token the simulator no longer accepts; a kill
    before the request went leaves a lease of a dead process, which the next run takes over.
    The request's time on the wire is stretched (Zalo's token endpoint waits 150 ms, rotates
    the pair, and holds its answer 150 ms) so the kills fall everywhere. The killed runs are
    processes; the runs after them are the same services in this process (same code).
    """
    # On the wire: 150 ms before Zalo rotates the pair, 150 ms after (the answer held).
    endpoint = {"platform": "zalo", "endpoint": "/v4/oa/access_token"}
    slow = [
        {**endpoint, "fault": "latency", "ms": 150},
        {**endpoint, "fault": "slow_answer", "ms": 150},
    ]
    sim = _start(tmp_path, f"sqlite:///{tmp_path / 'crm.db'}", slow)
    state_home = tmp_path / "state"
    env = Environment(environ={"XDG_STATE_HOME": str(state_home)})
    oa = sim.oa()
    rng = random.Random(90210)
    counts = {
        "recovered": 0,
        "unknown": 0,
        "before sending": 0,
        "dead lease taken over": 0,
        "after saving": 0,
        "unknown, then retried": 0,
        "unknown, then re-authorised": 0,
    }
    journal = RefreshJournal(state_home / "nfdoctor" / "token-journal", "zalo", oa)
    command = [
        sys.executable,
        "-m",
        "nfdoctor",
        "token",
        "refresh",
        "zalo",
        "--shop",
        oa,
        "--force",
        "--config",
        str(sim.config),
        "-o",
        "json",
    ]

    def refresh(**options: Any) -> Any:
        request = RefreshRequest(platform="zalo", shop=oa, config_path=sim.config, **options)
        return refresh_tokens(env, request).results[0]

    try:
        for number in range(50):
            version = sim.store().get("zalo", oa).version  # type: ignore[union-attr]
            killed = subprocess.Popen(
                command,
                env={**os.environ, "XDG_STATE_HOME": str(state_home)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # Kill at a random moment from the lease to the save: a third just after the
            # lease is taken (re-reading, journaling "sending"), a third while the request
            # is on the wire, a third just after the answer arrived (journaling it,
            # parsing, saving, clearing the journal).
            window = number % 3
            if window == 0:
                _wait_for_lease(sim, oa, killed)
                # The re-read and the journal's fsync take a few milliseconds.
                time.sleep(rng.uniform(0.0, 0.002))
            elif window == 1:
                _wait_for(journal, "sending", killed)
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                _wait_for(journal, "answered", killed)
                time.sleep(rng.uniform(0.0, 0.01))
            if killed.poll() is None:
                killed.send_signal(signal.SIGKILL)
            killed.wait(30)
            entry = journal.read()
            if entry is None:
                saved = sim.store().get("zalo", oa).version > version  # type: ignore[union-attr]
                counts["after saving" if saved else "before sending"] += 1
                if not saved and _lease_owner(sim, oa) is not None:
                    counts["dead lease taken over"] += 1
                began = time.monotonic()
                after = refresh(force=True)
                assert after.status is Status.OK, after.summary
                # A dead process's lease on this host is taken over, not waited out (120 s).
                assert time.monotonic() - began < 30
                assert _lease_owner(sim, oa) is None
            elif entry.state == "answered":
                counts["recovered"] += 1
                after = refresh(force=True)
                assert after.status is Status.OK, after.summary
                assert after.summary.startswith("recovered the pair"), after.summary
            else:
                counts["unknown"] += 1
                after = refresh(force=True)
                assert after.status is Status.CRITICAL
                assert after.summary.startswith("refresh outcome unknown"), after.summary
                # The operator's way out: try once; the platform takes it, or refuses it.
                retried = refresh(retry_unknown=True)
                counts[
                    "unknown, then retried"
                    if retried.status is Status.OK
                    else "unknown, then re-authorised"
                ] += 1
                if retried.status is not Status.OK:
                    # Spent on the wire by the killed run: the shop must authorise the app
                    # again (the simulator's consent, as `token authorize` gets it).
                    assert "refused the refresh token" in retried.summary, retried.summary
                    _reauthorize(sim, oa, env)
            status = token_status(
                env, StatusRequest(platform="zalo", shop=oa, config_path=sim.config)
            )
            if status.worst is Status.OK:
                assert sim.accepts_stored("zalo", oa), "status OK for a token the platform refuses"
            assert sim.accepts_stored("zalo", oa)
    finally:
        sim.started.stop()
    print(f"\nkills: {counts}")
    assert counts["recovered"] >= 1 and counts["unknown"] >= 1, counts
    assert counts["dead lease taken over"] >= 1, counts
    # Killed after Zalo rotated and before its answer arrived: the one window that costs a
    # re-authorisation; killed before it rotated: the retry works.
    assert counts["unknown, then retried"] >= 1, counts
    assert counts["unknown, then re-authorised"] >= 1, counts


def _wait_for(journal: RefreshJournal, state: str, process: subprocess.Popen[bytes]) -> None:
    """Until the journal is in ``state`` (or gone, or the process ended)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            entry = journal.read()
        except Exception:
            entry = None
        if entry is not None and (entry.state == state or state == "sending"):
            return
        time.sleep(0.001)


def _lease_owner(sim: CrmSim, oa: str) -> str | None:
    """Who holds the OA's lease in channel_credentials (SQLite), read as the CRM would."""
    with sqlite3.connect(sim.database.location) as conn:
        row = conn.execute(
            "SELECT c.lease_owner FROM channel_credentials c JOIN shops s ON s.id = c.shop_id "
            "WHERE s.channel = 'zalo' AND s.external_id = ?",
            (oa,),
        ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _wait_for_lease(sim: CrmSim, oa: str, process: subprocess.Popen[bytes]) -> None:
    """Until a process holds the OA's lease (or the process ended)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if _lease_owner(sim, oa) is not None:
                return
        except sqlite3.OperationalError:
            pass  # the database is locked by the writer for a moment
        time.sleep(0.001)


def _reauthorize(sim: CrmSim, oa: str, env: Environment) -> None:
    """The operator's way back: `token authorize zalo --no-browser`, approved on the
    simulator's consent page, the redirect's address pasted."""

    class Operator:
        link = ""

        def tell(self, text: str) -> None:
            pass

        def show_link(self, url: str) -> None:
            self.link = url

        def open_browser(self, url: str) -> bool:
            raise AssertionError("--no-browser opens no browser")

        def read_line(self) -> str | None:
            return approve_on_consent_page(self.link, oa) + "\n"

    request = AuthorizeRequest(platform="zalo", shop=oa, config_path=sim.config, no_browser=True)
    report = authorize(env, request, consent=Operator())
    assert report.worst is Status.OK, report.results[0].summary
