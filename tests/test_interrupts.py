"""Ctrl-C and SIGTERM end nfdoctor promptly, whatever it is waiting for.

- ``diagnose`` interrupted while a platform holds its request for 10 s exits 130 within 1 s:
  nothing in flight (an HTTP call, a connectivity probe, a token read) is waited for.
- ``nfdoctor simulator`` stopped while a fault holds a request exits within 2 s: 0 on
  SIGTERM (a normal stop), 130 on SIGINT; the held request is cancelled.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.faults import FaultPlan, FaultRule
from nfdoctor.simulator.server import SimulatorServer, write_config

HOLD_S = 10.0


@pytest.fixture
def held_simulator(tmp_path: Path) -> Iterator[tuple[Path, threading.Event]]:
    """A simulator whose Shopee API holds every call for 10 s (the event is set once one is
    being held), and Lazada pointed at a silent host: a loopback port that accepts
    connections and never answers, so its connectivity probe and API call both wait."""
    held = threading.Event()

    async def sleep(seconds: float) -> None:
        if seconds >= HOLD_S:
            held.set()
        await asyncio.sleep(seconds)

    plan = FaultPlan(
        [FaultRule(platform="shopee", kind="timeout", params={"seconds": HOLD_S})], seed=1
    )
    app, state = build_simulator(
        seed=5, faults=plan, sleep=sleep, orders_per_shop=0, conversations_per_account=0
    )
    server = SimulatorServer(app, port=0)
    server.start_in_thread()
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # never accepted: the kernel completes the handshake, nobody answers
    try:
        config = tmp_path / "sim.yaml"
        write_config(config, server.url, state)
        document = yaml.safe_load(config.read_text(encoding="utf-8"))
        document["platforms"]["lazada"]["base_url"] = (
            f"http://127.0.0.1:{silent.getsockname()[1]}/lazada/rest"
        )
        config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        yield config, held
    finally:
        silent.close()
        server.stop(timeout=HOLD_S + 5)


def test_ctrl_c_ends_diagnose_within_a_second(
    held_simulator: tuple[Path, threading.Event], tmp_path: Path
) -> None:
    config, held = held_simulator
    process = subprocess.Popen(
        [sys.executable, "-m", "nfdoctor", "diagnose", "--config", str(config), "-o", "plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path / "work",
        env=dict(os.environ),
    )
    try:
        assert held.wait(30), "diagnose never reached the held Shopee call"
        time.sleep(0.3)  # the other checks are running too: probes, token reads
        assert process.poll() is None, "diagnose ended before the interrupt"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=HOLD_S + 5)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    text = err.decode()
    assert process.returncode == 130, text
    assert elapsed < 1.0, f"took {elapsed:.2f} s after SIGINT"
    assert "nfdoctor: interrupted" in text
    assert "Traceback" not in text + out.decode()


def _start_simulator(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    plan = tmp_path / "hold.yaml"
    plan.write_text(
        f"rules:\n  - platform: shopee\n    fault: timeout\n    seconds: {HOLD_S * 6}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "nfdoctor", "simulator", "--port", "0", "--faults", str(plan)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path / "work",
        env=dict(os.environ),
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
            # The line comes just before the server starts accepting: wait for that.
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return process, f"http://127.0.0.1:{port}"
                except OSError:
                    time.sleep(0.05)
        if not line and process.poll() is not None:
            break
    process.kill()
    process.wait()
    raise AssertionError("the simulator did not start")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_simulator_stops_within_two_seconds_with_a_request_held(
    tmp_path: Path, signum: int, code: int
) -> None:
    process, url = _start_simulator(tmp_path)
    answered: list[str] = []

    def call() -> None:
        try:
            urllib.request.urlopen(f"{url}/shopee/api/v2/shop/get_shop_info", timeout=120).read()
            answered.append("answered")
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            answered.append(type(exc).__name__)

    client = threading.Thread(target=call, daemon=True)
    try:
        client.start()
        time.sleep(1.0)  # the request is inside the fault's sleep
        assert client.is_alive(), answered
        started = time.monotonic()
        process.send_signal(signum)
        process.wait(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    with process.stderr:
        err = process.stderr.read().decode()
    assert elapsed < 2.0, f"took {elapsed:.2f} s after {signal.Signals(signum).name}"
    assert process.returncode == code, err
    assert "Traceback" not in err
    client.join(5)
    assert answered and answered != ["answered"], "the held request was served, not cancelled"
