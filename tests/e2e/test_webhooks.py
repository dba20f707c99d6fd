"""``nfdoctor webhook …`` end to end: the simulator as an operator starts it, the CLI as run.

The simulator is started the way ``nfdoctor simulator --tls --database … --faults …
--write-config …`` starts it (``start_simulator``): HTTPS receivers under
``<platform>.crm.nfdoctor.test`` with certificates from its own CA, the CRM storing accepted
message events in its SQLite database, and the platforms' own emitter when the plan asks.
Every run's stdout and stderr is searched for every secret.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from nfdoctor.context import Environment
from nfdoctor.services.simulator import SimulatorRequest, SimulatorStarted, start_simulator
from nfdoctor.services.webhook import SEND_TEXT
from tests.conftest import CliResult
from tests.e2e.conftest import assert_no_secrets, parse_report

PLATFORMS = ("shopee", "lazada", "tiktok", "facebook", "zalo")


@dataclass
class Sim:
    """A running simulator, its config and its CRM database."""

    started: SimulatorStarted
    config: Path
    database: Path

    @property
    def state(self) -> Any:
        return self.started.state

    def secrets(self) -> dict[str, str]:
        state = self.state
        found = {
            "shopee partner_key": state.shopee_partner_key,
            "lazada app_secret": state.lazada_app_secret,
            "tiktok app_secret": state.tiktok_app_secret,
            "facebook app_secret": state.facebook_app_secret,
            "facebook verify_token": state.facebook_verify_token,
            "zalo secret_key": state.zalo_secret_key,
            "crm api key": state.crm_api_key,
        }
        for account in state.accounts["zalo"]:
            found[f"zalo oa_secret {account.account_id}"] = account.extra["oa_secret"]
        for token in state.tokens.values():
            found[f"{token.platform} {token.kind} token"] = token.value
        return found

    def rows(self, platform: str, message_id: str) -> list[tuple[Any, ...]]:
        """``messages`` rows of that message id on that platform's shops."""
        with sqlite3.connect(self.database) as conn:
            return conn.execute(
                "SELECT m.id, m.body, m.received_at FROM messages m "
                "JOIN shops s ON s.id = m.shop_id "
                "WHERE s.channel = ? AND m.external_id = ? ORDER BY m.id",
                (platform, message_id),
            ).fetchall()

    def duplicated(self, platform: str) -> dict[str, int]:
        """Message ids stored more than once on one of the platform's shops."""
        with sqlite3.connect(self.database) as conn:
            found = conn.execute(
                "SELECT m.external_id, count(*) FROM messages m JOIN shops s ON s.id = m.shop_id "
                "WHERE s.channel = ? GROUP BY m.shop_id, m.external_id HAVING count(*) > 1",
                (platform,),
            ).fetchall()
        return {str(mid): int(n) for mid, n in found}

    def deliveries(self, platform: str) -> list[Any]:
        """What the CRM received from ``platform`` (the simulator's record)."""
        return [d for d in self.state.crm_deliveries if d.platform == platform]


@pytest.fixture
def webhook_sim(tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    """Start ``nfdoctor simulator --tls --database … [--faults PLAN]`` in this process."""
    running: list[SimulatorStarted] = []

    def start(plan: Mapping[str, Any] | None = None, *, shops: int = 1) -> Sim:
        number = len(running) + 1
        faults = None
        if plan is not None:
            faults = tmp_path / f"plan-{number}.yaml"
            faults.write_text(yaml.safe_dump(dict(plan)), encoding="utf-8")
        config = tmp_path / f"sim-{number}.yaml"
        database = tmp_path / f"crm-{number}.db"
        started = start_simulator(
            Environment(),
            SimulatorRequest(
                tls=True,
                shops=shops,
                faults=faults,
                write_config=config,
                database=f"sqlite:///{database}",
            ),
        )
        started.start_in_thread()
        running.append(started)
        return Sim(started=started, config=config, database=database)

    yield start
    for started in running:
        started.stop()


def run(cli: Callable[..., CliResult], sim: Sim, *args: str) -> CliResult:
    """``nfdoctor ARGS --config SIM``; no secret in what it printed."""
    result = cli(*args, "--config", str(sim.config))
    assert_no_secrets({"stdout": result.stdout, "stderr": result.stderr}, sim.secrets())
    return result


def report(cli: Callable[..., CliResult], sim: Sim, *args: str) -> Any:
    """Run with ``-o json``; the parsed report (exit code checked against it)."""
    result = run(cli, sim, *args, "-o", "json")
    parsed = parse_report(result)
    assert parsed.data["exit_code"] == result.code, result.stderr
    return parsed


# --- healthy receivers ------------------------------------------------------------------------


def test_webhook_check_of_healthy_receivers_is_ok(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim()
    checked = report(cli, sim, "webhook", "check", "all")
    statuses = {(r["id"], r["status"]) for r in checked.results}
    assert checked.status == "OK", statuses
    for platform in PLATFORMS:
        assert (f"webhooks.{platform}.tls", "OK") in statuses
        assert (f"webhooks.{platform}.delivery", "OK") in statuses
    # Lazada and Zalo have no API that says where they deliver.
    assert ("webhooks.lazada.subscription", "SKIPPED") in statuses
    delivery = checked.one("webhooks.lazada.delivery")
    assert "deadline 500 ms" in delivery["summary"]
    assert {m["name"] for m in delivery["metrics"]} == {"ack_p50", "ack_p95"}
    assert "a wrongly signed probe is refused (HTTP 401)" in "\n".join(delivery["details"])
    facebook = checked.one("webhooks.facebook.delivery")
    assert "OK: GET verification answers the challenge" in facebook["details"]
    # The probes are acknowledged and dropped: nothing in any inbox.
    stored = [d for d in sim.state.crm_deliveries if d.outcome == "stored"]
    assert stored == []
    assert len(sim.state.crm_deliveries) == 5 * 6  # 5 probes + 1 wrongly signed each


@pytest.mark.parametrize("platform", PLATFORMS)
def test_send_is_verified_by_the_simulator_and_stored_with_its_diacritics(
    platform: str, webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim()
    sent = report(cli, sim, "webhook", "send", platform)
    (result,) = sent.of("webhook.send")
    assert result["status"] == "OK", result
    assert result["summary"].startswith("HTTP 200 in ")
    (delivery,) = sim.deliveries(platform)
    assert delivery.accepted and delivery.outcome == "stored", delivery
    (message_id,) = delivery.message_ids
    assert f"message id: {message_id}" in "\n".join(result["details"])
    ((_, body, _),) = sim.rows(platform, message_id)
    assert body == SEND_TEXT


def test_debug_shows_the_signed_request_without_a_secret(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim()
    result = run(cli, sim, "webhook", "send", "facebook", "--debug", "-o", "plain")
    assert result.code == 0, result.stderr
    assert "debug: POST https://facebook.crm.nfdoctor.test/crm/webhooks/facebook" in result.stderr
    assert "debug: X-Hub-Signature-256: sha256=" in result.stderr
    # Meta's escaping: "Chào" travels as "Ch\u00e0o".
    assert "Ch\\u00e0o shop" in result.stderr


def test_duplicate_sends_show_a_receiver_that_does_not_deduplicate(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim()
    sent = report(cli, sim, "webhook", "send", "zalo", "--duplicate", "3")
    assert [r["status"] for r in sent.of("webhook.send")] == ["OK"] * 3
    (dedupe,) = sent.of("webhook.send.dedupe")
    assert dedupe["status"] == "CRITICAL"
    assert "stored 3 rows for one message id" in dedupe["summary"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_trace_of_a_healthy_receiver_finds_one_row_and_cleans_it_up(
    platform: str, webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim()
    traced = report(cli, sim, "webhook", "trace", platform, "--cleanup")
    assert traced.status == "OK", traced.results
    inbox = traced.one("webhook.trace.inbox")
    assert inbox["summary"].startswith("arrived once, in the CRM inbox")
    assert "(target < 5 s)" in inbox["summary"]
    metrics = {m["name"]: m["value"] for m in inbox["metrics"]}
    assert metrics["rows"] == 1 and 0 < metrics["delivery_to_inbox"] < 5
    (delivery,) = sim.deliveries(platform)
    (message_id,) = delivery.message_ids
    assert "--cleanup deleted 1 row(s)" in inbox["details"]
    assert sim.rows(platform, message_id) == []


# --- a slow acknowledgement: retries, duplicates -------------------------------------------------

SLOW_LAZADA = {
    "emitter": {"every": "300ms", "platforms": ["lazada"], "compress": 3000},
    "rules": [{"platform": "crm", "endpoint": "/webhooks/lazada", "fault": "slow_ack", "ms": 800}],
}


def test_a_slow_ack_beyond_lazadas_deadline_duplicates_messages(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim(SLOW_LAZADA)

    def duplicated_by_retries() -> dict[str, int]:
        # The demo CRM has duplicates of its own: only the emitter's retried messages count.
        retried = {
            a.message_id
            for a in list(sim.state.webhook_attempts)
            if a.platform == "lazada" and a.attempt > 1
        }
        copies = {mid: len(sim.rows("lazada", mid)) for mid in retried}
        return {mid: n for mid, n in copies.items() if n >= 2}

    # Lazada's own deliveries: every ack is late, so it delivers again (30 min ÷ 3000).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not duplicated_by_retries():
        time.sleep(0.1)
    duplicated = duplicated_by_retries()
    assert duplicated, "no duplicate rows after a slow ack"
    for message_id in duplicated:
        late = [
            a
            for a in list(sim.state.webhook_attempts)
            if a.message_id == message_id and a.attempt == 1
        ]
        assert late and late[0].outcome == "retry" and late[0].error is not None

    checked = report(cli, sim, "webhook", "check", "lazada")
    delivery = checked.one("webhooks.lazada.delivery")
    assert delivery["status"] == "CRITICAL"
    assert "(deadline 500 ms, 5 probes)" in delivery["summary"]
    assert "Lazada gives up at 500 ms and delivers again" in delivery["summary"]

    traced = report(cli, sim, "webhook", "trace", "lazada")
    inbox = traced.one("webhook.trace.inbox")
    assert inbox["status"] == "CRITICAL"
    assert inbox["summary"].startswith("arrived 2 times")
    assert "duplicates, one per delivery Lazada made" in inbox["summary"]
    rows = [line for line in inbox["details"] if line.startswith("messages.id ")]
    assert len(rows) == 2
    first = traced.one("webhook.trace.delivery")
    assert "later than Lazada's deadline" in first["summary"]


def test_the_same_trace_on_a_healthy_receiver_is_one_row_with_a_latency(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim(SLOW_LAZADA)  # Lazada is slow; Shopee's receiver is not
    traced = report(cli, sim, "webhook", "trace", "shopee")
    assert traced.one("webhook.trace.inbox")["summary"].startswith("arrived once")
    assert traced.one("webhook.trace.delivery")["status"] == "OK"


# --- the findings the simulator's faults make ---------------------------------------------


def test_certificate_and_receiver_faults_are_named(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim(
        {
            "tls": {"lazada": "dv", "shopee": "expired", "tiktok": "incomplete_chain"},
            "registrations": {
                "facebook": {"subscribed_fields": ["feed"]},
            },
            "rules": [
                {
                    "platform": "crm",
                    "endpoint": "/webhooks/facebook",
                    "fault": "wrong_challenge",
                    "answer": "json",
                },
                {
                    "platform": "crm",
                    "endpoint": "/webhooks/zalo",
                    "fault": "ack_body",
                    "text": "ok",
                },
            ],
        }
    )
    checked = report(cli, sim, "webhook", "check", "all")
    lazada = checked.one("webhooks.lazada.tls")
    assert lazada["status"] == "CRITICAL"
    assert "Lazada requires an EV or OV certificate; this one is DV-validated" in lazada["summary"]
    shopee = checked.one("webhooks.shopee.tls")
    assert shopee["status"] == "CRITICAL" and "expired" in shopee["summary"]
    tiktok = checked.one("webhooks.tiktok.tls")
    assert tiktok["status"] == "CRITICAL" and "intermediate missing" in tiktok["summary"]
    handshake = checked.one("webhooks.facebook.delivery")
    assert "challenge wrapped in JSON" in handshake["summary"]
    for subscription in checked.of("webhooks.facebook.subscription"):
        assert subscription["status"] == "CRITICAL"
        assert "chat messages are not among the subscribed events" in subscription["summary"]
    zalo = checked.one("webhooks.zalo.delivery")
    assert zalo["status"] == "WARNING" and "Zalo OA expects an empty body" in zalo["summary"]


def test_a_registration_elsewhere_names_both_urls(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    old = "https://old-crm.example.vn/webhooks/shopee"
    sim = webhook_sim({"registrations": {"shopee": {"callback_url": old}}})
    checked = report(cli, sim, "webhook", "check", "shopee")
    (result,) = checked.of("webhooks.shopee.subscription")
    assert result["status"] == "CRITICAL"
    assert old in result["summary"]
    assert "https://shopee.crm.nfdoctor.test/crm/webhooks/shopee" in result["summary"]


def test_diagnose_runs_the_webhook_checks(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim({"tls": {"zalo": "expiring_soon"}})
    diagnosed = report(cli, sim, "diagnose", "--only", "webhooks")
    ids = {r["id"] for r in diagnosed.results}
    assert ids == {
        f"webhooks.{p}.{kind}" for p in PLATFORMS for kind in ("tls", "delivery", "subscription")
    }
    zalo = diagnosed.one("webhooks.zalo.tls")
    assert zalo["status"] == "CRITICAL" and zalo["next_command"] == "nfdoctor webhook check zalo"


# --- Shopee's lost pushes -----------------------------------------------------------------------


def _lost_ids(sim: Sim) -> list[str]:
    """The message ids of the chat messages among Shopee's lost pushes."""
    ids = []
    for push in sim.state.lost_pushes("shopee"):
        data = push.event.get("data")
        content = data.get("content") if isinstance(data, dict) else None
        if push.event.get("code") == 10 and isinstance(content, dict):
            ids.append(str(content["message_id"]))
    return ids


def test_lost_replay_confirm_delivers_each_push_once_and_then_finds_nothing(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim({"lost_pushes": {"shopee": 130}}, shops=2)
    pushes = len(sim.state.lost_pushes("shopee"))
    message_ids = _lost_ids(sim)
    assert pushes == 130 and len(message_ids) > 100

    listed = report(cli, sim, "webhook", "lost", "shopee")
    (result,) = listed.results
    assert result["status"] == "WARNING" and result["summary"].startswith("100+ pushes")
    assert sim.deliveries("shopee") == []  # listing sends nothing

    replayed = report(cli, sim, "webhook", "lost", "shopee", "--replay", "--confirm")
    assert replayed.status == "OK", replayed.results
    assert [r["id"] for r in replayed.results] == [
        "webhook.lost.replay",
        "webhook.lost.confirm",
        "webhook.lost.replay",
        "webhook.lost.confirm",
    ]
    assert len(sim.deliveries("shopee")) == pushes
    for message_id in message_ids:
        assert len(sim.rows("shopee", message_id)) == 1, message_id

    again = report(cli, sim, "webhook", "lost", "shopee", "--replay", "--confirm")
    (nothing,) = again.results
    assert nothing["summary"] == "Shopee has no undelivered push from the last 3 days"
    assert len(sim.deliveries("shopee")) == pushes


def test_lost_confirms_only_what_the_crm_acknowledged(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim(
        {
            "lost_pushes": {"shopee": 9},
            "rules": [
                {
                    "platform": "crm",
                    "endpoint": "/webhooks/shopee",
                    "fault": "http_5xx",
                    "status": 500,
                    "times": 2,
                }
            ],
        }
    )
    first = report(cli, sim, "webhook", "lost", "shopee", "--replay", "--confirm")
    replay = first.one("webhook.lost.replay")
    assert replay["status"] == "CRITICAL"
    assert "re-delivered 9, the CRM acknowledged 7" in replay["summary"]
    confirm = first.one("webhook.lost.confirm")
    assert confirm["status"] == "CRITICAL"
    assert "not confirmed: 2 push(es) on it were not acknowledged" in confirm["summary"]
    assert len(sim.state.lost_pushes("shopee")) == 9  # Shopee forgot nothing

    second = report(cli, sim, "webhook", "lost", "shopee", "--replay", "--confirm")
    assert second.status == "OK", second.results
    assert "re-delivered 2, the CRM acknowledged 2" in second.one("webhook.lost.replay")["summary"]
    assert (
        "7 acknowledged by an earlier run, not sent again"
        in second.one("webhook.lost.replay")["summary"]
    )
    assert sim.state.lost_pushes("shopee") == []
    for message_id in _lost_ids_of_deliveries(sim):
        assert len(sim.rows("shopee", message_id)) == 1, message_id


def _lost_ids_of_deliveries(sim: Sim) -> set[str]:
    return {mid for d in sim.deliveries("shopee") for mid in d.message_ids}


@pytest.mark.slow
def test_lost_replay_killed_at_random_points_loses_nothing(
    webhook_sim: Callable[..., Sim], tmp_path: Path
) -> None:
    """SIGKILL the replay at random moments, run it again until done: every lost push ends
    up in the CRM, Shopee forgets only what was delivered, and a push is delivered twice only
    when the kill fell between the CRM's acknowledgement and the journal entry."""
    sim = webhook_sim({"lost_pushes": {"shopee": 160}})
    message_ids = _lost_ids(sim)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    command = [
        sys.executable,
        "-m",
        "nfdoctor",
        "webhook",
        "lost",
        "shopee",
        "--replay",
        "--confirm",
        "--config",
        str(sim.config),
        "-o",
        "json",
    ]
    rng = random.Random(20261202)
    kills = 0
    for _ in range(4):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 1.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(30)
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stdout + final.stderr
    assert sim.state.lost_pushes("shopee") == []
    assert kills >= 1
    extra = 0
    for message_id in message_ids:
        stored = len(sim.rows("shopee", message_id))
        assert stored >= 1, f"lost push {message_id} never reached the CRM"
        extra += stored - 1
    assert extra <= kills, f"{extra} pushes delivered twice after {kills} kills"


# --- bad input: exit 3, one line, nothing sent ---------------------------------------------


def _one_line(result: CliResult) -> str:
    assert result.code == 3, (result.code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2, result.stderr  # the message, and at most a tip
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("webhook", "send", "lazada", "--url", "http://lazada.crm.nfdoctor.test/x"),
            "--url: Lazada delivers only to https:// URLs, not http://",
        ),
        (
            ("webhook", "send", "tiktok", "--url", "https://tiktok.crm.nfdoctor.test:8443/x"),
            "--url: TikTok Shop accepts a domain without a port (got :8443)",
        ),
        (
            ("webhook", "trace", "zalo", "--url", "https://zalo.crm.nfdoctor.test:443/x"),
            "--url: Zalo OA accepts a domain without a port (got :443)",
        ),
        (
            ("webhook", "send", "shopee", "--type", "refund"),
            "--type: Shopee has no event type 'refund'; expected one of message",
        ),
        (("webhook", "send", "wechat"), "unknown platform 'wechat'"),
        (("webhook", "lost", "lazada"), "only Shopee keeps undelivered pushes"),
        (("webhook", "lost", "shopee", "--confirm"), "--confirm needs --replay"),
        (("webhook", "send", "zalo", "--duplicate", "0"), "--duplicate: expected 1-20, got 0"),
    ],
)
def test_bad_arguments(
    args: tuple[str, ...], says: str, webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim()
    line = _one_line(run(cli, sim, *args))
    assert says in line, line
    assert list(sim.state.crm_deliveries) == []


def test_bad_event_files(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    sim = webhook_sim()
    not_json = tmp_path / "event.txt"
    not_json.write_text('{"shop_id": 1,\n  "code": }\n', encoding="utf-8")
    a_list = tmp_path / "list.json"
    a_list.write_text("[1, 2]", encoding="utf-8")
    cases = {
        tmp_path / "missing.json": "no such file",
        tmp_path: "is a directory",
        not_json: f"--event {not_json}:2:11: not JSON: Expecting value",
        a_list: "expected a JSON object (an event), got list",
    }
    for path, says in cases.items():
        line = _one_line(run(cli, sim, "webhook", "send", "shopee", "--event", str(path)))
        assert says in line, line
    assert list(sim.state.crm_deliveries) == []


def test_a_missing_webhook_url_and_a_ca_bundle_that_is_not_pem(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    sim = webhook_sim()
    text = sim.config.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    del document["platforms"]["lazada"]["webhook_url"]
    sim.config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    line = _one_line(run(cli, sim, "webhook", "send", "lazada"))
    assert "platforms.lazada.webhook_url is not set" in line

    bundle = Path(document["webhooks"]["ca_bundle"])
    bundle = bundle if bundle.is_absolute() else sim.config.parent / bundle
    bundle.write_text("this is not a certificate\n", encoding="utf-8")
    line = _one_line(run(cli, sim, "webhook", "send", "shopee"))
    assert f"{sim.config}:" in line and "webhooks.ca_bundle:" in line
    assert "is not a PEM certificate bundle" in line
    line = _one_line(run(cli, sim, "webhook", "check", "shopee"))
    assert "webhooks.ca_bundle:" in line
    assert list(sim.state.crm_deliveries) == []


def test_debug_logs_of_every_webhook_command_mask_every_secret(
    webhook_sim: Callable[..., Sim], cli: Callable[..., CliResult]
) -> None:
    """Facebook's GET handshake carries the verify token in its query string, and httpx logs
    every URL at --debug: the token must be masked there too."""
    sim = webhook_sim({"lost_pushes": {"shopee": 3}})
    runs = [
        ("webhook", "check", "all", "--debug"),
        ("webhook", "send", "zalo", "--debug"),
        ("webhook", "trace", "facebook", "--debug", "--cleanup"),
        ("webhook", "lost", "shopee", "--replay", "--confirm", "--debug"),
    ]
    for args in runs:
        result = run(cli, sim, *args, "-o", "json")  # run() greps stdout and stderr
        assert result.code in (0, 1), (args, result.stderr[-2000:])
    handshake = run(cli, sim, "webhook", "check", "facebook", "--debug")
    assert "hub.verify_token=" in handshake.stderr  # the request is logged, its token masked
