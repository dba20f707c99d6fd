"""``token refresh``: the protocol against the simulator, in this process.

Every case reads the simulator's own record of what it issued: a refresh either reached it
or did not, and the stored pair is either the one it holds valid or the run says why not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from nfdoctor.context import Environment
from nfdoctor.errors import StateError
from nfdoctor.platforms.errors import RefreshTokenInvalidError
from nfdoctor.platforms.spec import Account
from nfdoctor.results import Report, Status
from nfdoctor.services.token import RefreshRequest, refresh_tokens
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.tokens.journal import RefreshJournal
from nfdoctor.tokens.refresh import Refresher, RefreshPolicy
from nfdoctor.tokens.store import FileTokenStore, StoredToken
from tests.served import serve

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc)


@dataclass
class Sim:
    state: SimulatorState
    config: Path
    state_dir: Path

    @property
    def tokens(self) -> FileTokenStore:
        return FileTokenStore(self.config.parent / "sim-secrets" / "tokens.json")

    def env(self) -> Environment:
        return Environment(environ={"XDG_STATE_HOME": str(self.state_dir.parent)})

    def refresh(self, platform: str = "zalo", **options: Any) -> Report:
        request = RefreshRequest(platform=platform, config_path=self.config, **options)
        return refresh_tokens(self.env(), request)

    def accepts(self, platform: str, account_id: str) -> bool:
        """Whether the simulator takes the stored access and refresh tokens as valid."""
        stored = self.tokens.get(platform, account_id)
        assert stored is not None
        access, _ = self.state.check(platform, stored.access_token, "access", owner=account_id)
        refresh, _ = self.state.check(platform, stored.refresh_token, "refresh", owner=account_id)
        return access == "ok" and refresh == "ok"


@contextmanager
def _start(tmp_path: Path, rules: list[dict[str, Any]] | None = None) -> Iterator[Sim]:
    """The simulator on loopback (a dropped connection must be a real one), its config."""
    plan = None
    if rules is not None:
        plan = tmp_path / "plan.yaml"
        plan.write_text(yaml.safe_dump({"rules": rules}), encoding="utf-8")
    app, state = build_simulator(
        7, plan, accounts_per_platform=1, orders_per_shop=0, conversations_per_account=0
    )
    config = tmp_path / "sim.yaml"
    with serve(app, state, config, tls=False):
        yield Sim(state, config, tmp_path / "xdg" / "nfdoctor")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    with _start(tmp_path) as started:
        yield started


def _oa(sim: Sim) -> str:
    return sim.state.accounts["zalo"][0].account_id


def test_a_refresh_reaches_the_platform_once_and_is_saved_before_use(sim: Sim) -> None:
    oa = _oa(sim)
    before = sim.tokens.get("zalo", oa)
    report = sim.refresh()
    (result,) = report.results
    assert result.status is Status.OK, result
    assert result.summary == "refreshed; the new access token answers"
    after = sim.tokens.get("zalo", oa)
    assert after is not None and before is not None
    assert after.refresh_token != before.refresh_token
    assert after.version == before.version + 1 and (after.updated_by or "").startswith("nfdoctor@")
    assert sim.accepts("zalo", oa)
    # Zalo's refresh token is single use: the one presented is spent.
    status, _ = sim.state.check("zalo", before.refresh_token, "refresh", owner=oa)
    assert status != "ok"
    # The journal is gone once the pair is saved (its lock file stays, empty).
    assert list((sim.state_dir / "token-journal").glob("*.json")) == []


def test_due_refreshes_only_inside_the_margin(sim: Sim) -> None:
    oa = _oa(sim)
    before = sim.tokens.get("zalo", oa)
    (result,) = sim.refresh(due=True).results
    assert result.status is Status.OK
    assert result.summary.startswith("not due: the access token has")
    assert sim.tokens.get("zalo", oa) == before
    # 20 minutes left of a 25-hour token: inside the margin (25 % or 1 h).
    assert before is not None and before.access_expires_at is not None
    sim.state.age_token("zalo", oa, expires_in=timedelta(minutes=20))
    sim.tokens.put(
        type(before)(
            **{**before.__dict__, "access_expires_at": sim.state.clock() + timedelta(minutes=20)}
        )
    )
    (due,) = sim.refresh(due=True).results
    assert due.summary.startswith("refreshed"), due
    assert sim.accepts("zalo", oa)


def test_facebook_refresh_is_refused_with_the_way_out(sim: Sim) -> None:
    with pytest.raises(Exception, match="Facebook has no refresh token") as caught:
        sim.refresh("facebook")
    assert type(caught.value).__name__ == "UsageError"
    all_platforms = sim.refresh("all")
    skipped = [r for r in all_platforms.results if r.status is Status.SKIPPED]
    assert [r.subject.split()[0] for r in skipped if r.subject] == ["facebook"]


def test_a_save_that_fails_keeps_the_pair_and_the_next_run_recovers_it(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    oa = _oa(sim)
    before = sim.tokens.get("zalo", oa)
    original = FileTokenStore.save

    def broken(self: FileTokenStore, *args: Any, **kwargs: Any) -> Any:
        raise StateError("disk full (simulated)")

    monkeypatch.setattr(FileTokenStore, "save", broken)
    (failed,) = sim.refresh().results
    assert failed.status is Status.CRITICAL
    assert "issued a new pair but it could not be saved: disk full" in failed.summary
    assert failed.next_command is not None and failed.next_command.startswith(
        "nfdoctor token import --from "
    )
    recovery = Path(failed.next_command.split("--from ", 1)[1])
    assert stat.S_IMODE(recovery.stat().st_mode) == 0o600
    kept = json.loads(recovery.read_text())["tokens"]["zalo"][oa]
    assert sim.tokens.get("zalo", oa) == before  # nothing half-written
    # The platform holds the recovered pair valid, the stored one is spent.
    assert sim.state.check("zalo", kept["refresh_token"], "refresh", owner=oa)[0] == "ok"

    monkeypatch.setattr(FileTokenStore, "save", original)
    (recovered,) = sim.refresh().results
    assert recovered.status is Status.OK, recovered
    assert recovered.summary.startswith("recovered the pair an interrupted refresh had received")
    after = sim.tokens.get("zalo", oa)
    assert after is not None and after.refresh_token == kept["refresh_token"]
    assert sim.accepts("zalo", oa)


def test_no_answer_is_an_unknown_outcome_never_a_blind_retry(tmp_path: Path) -> None:
    reset = {
        "platform": "zalo",
        "endpoint": "/v4/oa/access_token",
        "fault": "connection_reset",
        "times": 1,
    }
    with _start(tmp_path, [reset]) as sim:
        _unknown_then_retried(sim)


def _unknown_then_retried(sim: Sim) -> None:
    oa = _oa(sim)
    before = sim.tokens.get("zalo", oa)
    (unknown,) = sim.refresh().results
    assert unknown.status is Status.CRITICAL
    assert unknown.summary.startswith("refresh outcome unknown")
    assert unknown.next_command == f"nfdoctor token refresh zalo --shop {oa} --retry-unknown"
    assert any("authorise the shop again" in line for line in unknown.details)
    journal = RefreshJournal(sim.state_dir / "token-journal", "zalo", oa).read()
    assert journal is not None and journal.state == "sending"
    # The next run does not refresh on top of it, even forced.
    (again,) = sim.refresh(force=True).results
    assert again.summary.startswith("refresh outcome unknown")
    assert sim.tokens.get("zalo", oa) == before
    # The operator decides: the reset came before the simulator issued anything, so the
    # stored refresh token still works and the retry refreshes.
    (retried,) = sim.refresh(retry_unknown=True).results
    assert retried.status is Status.OK and retried.summary.startswith("refreshed"), retried
    assert sim.accepts("zalo", oa)


def test_an_error_inside_http_200_is_never_stored(sim: Sim) -> None:
    oa = _oa(sim)
    before = sim.tokens.get("zalo", oa)
    sim.state.expire_refresh("zalo", oa)  # Zalo answers its OAuth error shape with HTTP 200
    (spent,) = sim.refresh().results
    assert spent.status is Status.CRITICAL
    assert "refused the refresh token" in spent.summary
    assert spent.next_command == f"nfdoctor token authorize zalo --shop {oa}"
    assert sim.tokens.get("zalo", oa) == before


def test_a_newer_pair_in_the_store_is_adopted_not_wiped(tmp_path: Path) -> None:
    """The platform refuses the refresh token because another refresher (a CRM job that does
    not take the lease) spent it and saved its pair meanwhile: that pair is kept."""
    store = FileTokenStore(tmp_path / "tokens.json")
    stale = StoredToken(
        platform="zalo",
        account_id="1",
        access_token="access-1",
        access_expires_at=NOW + timedelta(hours=1),
        refresh_token="refresh-1",
        refresh_expires_at=NOW + timedelta(days=90),
        updated_at=NOW,
    )
    store.save(stale, expected_version=0, owner="crm")
    newer = dataclasses.replace(stale, access_token="access-2", refresh_token="refresh-2")

    class SpentElsewhere:
        on_refresh_response: Any = None

        async def refresh(self, refresh_token: str) -> Any:
            store.save(newer, expected_version=1, owner="crm-job")
            raise RefreshTokenInvalidError("refresh token already used", platform="zalo")

    refresher = Refresher(
        store=store,
        state_dir=tmp_path / "state",
        owner="nfdoctor@test",
        clock=lambda: NOW,
        policy=RefreshPolicy(force=True),
    )
    account = Account(platform="zalo", account_id="1")
    result = asyncio.run(refresher.refresh(account, lambda token: SpentElsewhere()))  # type: ignore[arg-type, return-value]
    assert result.outcome == "adopted"
    assert "another refresher won; using its pair" in result.message
    kept = store.get("zalo", "1")
    assert kept is not None and kept.refresh_token == "refresh-2" and kept.updated_by == "crm-job"
