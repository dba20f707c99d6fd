"""A real simulator on loopback per test, and one way to run ``nfdoctor check`` against it.

``simulator(faults=[...], accounts=2, prepare=...)`` builds the simulator (small data, so it
starts fast), applies ``prepare(state)`` (ageing tokens…), serves it on 127.0.0.1 in a
thread and writes the nfdoctor config that points at it (secrets as 0600 files, tokens in
``<config>-secrets/tokens.json``). ``check(sim, ARGS...)`` runs ``nfdoctor check ARGS
--output json --config …`` in-process (or as a real process with ``process=True``), and for
every run asserts that no secret the simulator issued appears on stdout or stderr, that the
JSON validates against the published schema, and that the report's exit code is the
process's.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.server import SimulatorServer, write_config
from nfdoctor.simulator.state import SimulatorState
from tests.conftest import ROOT, CliResult, run_process

PLATFORMS = ("shopee", "lazada", "tiktok", "facebook", "zalo")
TITLES = {
    "shopee": "Shopee",
    "lazada": "Lazada",
    "tiktok": "TikTok Shop",
    "facebook": "Facebook",
    "zalo": "Zalo OA",
}
#: each platform's ping call as a fault-plan ``endpoint`` (the path after the simulator's
#: prefix), so a fault hits the API check and leaves the connectivity probe and the token
#: check (Facebook's debug_token) alone
PING_ENDPOINT = {
    "shopee": "/api/v2/shop/get_shop_info",
    "lazada": "/rest/seller/get",
    "tiktok": "/authorization/202309/shops",
    "facebook": "/v21.0/me",
    "zalo": "/v2.0/oa/getoa",
}
#: the secret files write_config makes for the key each platform signs with
SIGNING_SECRET_FILE = {
    "shopee": "shopee-partner-key",
    "lazada": "lazada-app-secret",
    "tiktok": "tiktok-app-secret",
    "facebook": "facebook-app-secret",
    "zalo": "zalo-secret-key",
}
EXIT_FOR = {"OK": 0, "WARNING": 1, "CRITICAL": 2}


@dataclass
class Simulated:
    """One running simulator and the nfdoctor config written for it."""

    state: SimulatorState
    url: str
    config: Path

    @property
    def secrets_dir(self) -> Path:
        """Where write_config put the secret files and tokens.json."""
        return self.config.parent / f"{self.config.stem}-secrets"

    @property
    def tokens_path(self) -> Path:
        """The file token store the config names."""
        return self.secrets_dir / "tokens.json"

    def account_ids(self, platform: str) -> list[str]:
        """The platform's account ids, in the order the config lists them."""
        return [a.account_id for a in self.state.accounts[platform]]

    def label(self, platform: str, index: int = 0) -> str:
        """How a report names that account: ``shopee 36192056 (Thời Trang Hà My)``."""
        account = self.state.accounts[platform][index]
        return f"{platform} {account.account_id} ({account.name})"

    def rewrite_secret(self, name: str, value: str) -> None:
        """Replace one secret file's value (its 0600 mode is kept)."""
        (self.secrets_dir / name).write_text(value + "\n", encoding="utf-8")

    def edit_tokens(self, edit: Callable[[dict[str, Any]], None]) -> None:
        """Change the stored tokens in place (``edit`` gets the ``tokens`` mapping)."""
        document = json.loads(self.tokens_path.read_text(encoding="utf-8"))
        edit(document["tokens"])
        self.tokens_path.write_text(json.dumps(document, indent=2), encoding="utf-8")

    def secret_values(self) -> dict[str, str]:
        """Every secret this simulator issued or the config holds, by a printable name."""
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
            found[f"{token.platform} {token.kind} token of {token.owner}"] = token.value
        # What the files say now: a test may have rewritten a secret or a token.
        for path in sorted(self.secrets_dir.iterdir()):
            if path.name == "tokens.json":
                stored = json.loads(path.read_text(encoding="utf-8"))["tokens"]
                for platform, accounts in stored.items():
                    for owner, entry in accounts.items():
                        for kind in ("access_token", "refresh_token"):
                            if entry.get(kind):
                                found[f"tokens.json {platform} {owner} {kind}"] = entry[kind]
            elif path.is_file():
                found[f"secret file {path.name}"] = path.read_text(encoding="utf-8").strip()
        return found


def account_ids(platform: str, *, accounts: int, seed: int = 7) -> list[str]:
    """The ids a simulator with that seed and number of accounts will have (for ``account:``
    rules, which must name an existing account before the simulator is built)."""
    state = SimulatorState(
        seed, accounts_per_platform=accounts, orders_per_shop=0, conversations_per_account=0
    )
    return [a.account_id for a in state.accounts[platform]]


def assert_no_secrets(outputs: Mapping[str, str], secrets: Mapping[str, str]) -> None:
    """No secret value appears in any of ``outputs`` (named where, then text)."""
    leaked = [
        f"{name} in {where}"
        for where, text in outputs.items()
        for name, value in secrets.items()
        if value and value in text
    ]
    assert not leaked, "secrets leaked: " + "; ".join(leaked)


@cache
def _report_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "nfdoctor/render/report.schema.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema)


@dataclass
class Report:
    """A parsed ``--output json`` report."""

    data: dict[str, Any]

    @property
    def status(self) -> str:
        """The worst status of the run."""
        return str(self.data["status"])

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every result, in report order."""
        return list(self.data["results"])

    def of(self, check_id: str) -> list[dict[str, Any]]:
        """The results of one check id."""
        return [r for r in self.results if r["id"] == check_id]

    def one(self, check_id: str, subject: str | None = None) -> dict[str, Any]:
        """The single result of that check (for that subject)."""
        found = [r for r in self.of(check_id) if subject is None or r["subject"] == subject]
        assert len(found) == 1, f"expected one {check_id} result for {subject}: {found}"
        return found[0]

    def others(self, *keep: dict[str, Any]) -> list[dict[str, Any]]:
        """Every result except ``keep``."""
        return [r for r in self.results if not any(r is k for k in keep)]


@dataclass
class CheckRun:
    """One ``nfdoctor check`` invocation and its report."""

    result: CliResult
    report: Report

    @property
    def code(self) -> int:
        """The process exit code."""
        return self.result.code


def parse_report(result: CliResult) -> Report:
    """The JSON report on stdout, validated against report.schema.json."""
    try:
        data = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"stdout is not JSON (exit {result.code}): {result.stdout!r} {result.stderr!r}")
    _report_validator().validate(data)
    return Report(data)


def details_text(result: Mapping[str, Any]) -> str:
    """A result's details as one searchable string."""
    return "\n".join(result["details"])


@pytest.fixture(scope="session")
def _stopping() -> Iterator[list[threading.Thread]]:
    """Servers stop in the background (uvicorn takes a tick or two), all joined at the end."""
    stopping: list[threading.Thread] = []
    yield stopping
    for thread in stopping:
        thread.join(15)
        assert not thread.is_alive(), "a simulator server did not stop"


@pytest.fixture
def simulator(
    tmp_path: Path, _stopping: list[threading.Thread]
) -> Iterator[Callable[..., Simulated]]:
    """Start simulators on loopback for this test; each is stopped after it."""
    running: list[tuple[SimulatorServer, threading.Event]] = []

    def start(
        faults: Iterable[Mapping[str, Any]] | None = None,
        *,
        accounts: int = 1,
        prepare: Callable[[SimulatorState], None] | None = None,
        seed: int = 7,
    ) -> Simulated:
        number = len(running) + 1
        waking = threading.Event()

        async def sleep(seconds: float) -> None:
            # A `timeout` fault really holds the response for its seconds, unless the test
            # is over: then the server need not wait for it to stop.
            deadline = time.monotonic() + seconds
            while not waking.is_set() and (left := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(left, 0.05))

        plan: Path | None = None
        if faults is not None:
            plan = tmp_path / f"faults-{number}.yaml"
            plan.write_text(yaml.safe_dump({"seed": seed, "rules": list(faults)}), "utf-8")
        app, state = build_simulator(
            seed,
            plan,
            sleep=sleep,
            accounts_per_platform=accounts,
            orders_per_shop=3,
            conversations_per_account=2,
        )
        if prepare is not None:
            prepare(state)
        server = SimulatorServer(app)
        server.start_in_thread()
        running.append((server, waking))
        config = tmp_path / f"nfdoctor-{number}.yaml"
        write_config(config, server.url, state)
        return Simulated(state=state, url=server.url, config=config)

    yield start
    for server, waking in running:
        waking.set()
        stopper = threading.Thread(target=server.stop, name="stop-simulator", daemon=True)
        stopper.start()
        _stopping.append(stopper)


@pytest.fixture
def check(cli: Callable[..., CliResult]) -> Callable[..., CheckRun]:
    """Run ``nfdoctor check ARGS --output json --config SIM`` and check what every run must."""

    def run(sim: Simulated, *args: str, process: bool = False) -> CheckRun:
        argv = ["check", *args, "--output", "json", "--config", str(sim.config)]
        result = run_process(*argv) if process else cli(*argv)
        assert_no_secrets({"stdout": result.stdout, "stderr": result.stderr}, sim.secret_values())
        report = parse_report(result)
        assert report.data["exit_code"] == result.code, (result.code, result.stderr)
        return CheckRun(result, report)

    return run
