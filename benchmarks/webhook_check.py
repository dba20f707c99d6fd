"""Concurrency of the webhook checks: 50 receivers on loopback, one of them 2 s slow.

Serves 50 webhook receivers over HTTPS on 127.0.0.1 (one listener, certificates from the
simulator's own CA, reached through ``connect_to`` as ``bench.crm.nfdoctor.test``).
Receiver 0 answers every delivery after 2 s, the others after 100 ms (a CRM doing a little
work). Each receiver is checked the way ``webhook check`` and ``diagnose`` check one: its
TLS inspected (``inspect_tls`` + ``tls_findings``) and, beside it, ``--probes`` signed probe
deliveries and a wrongly signed one sent one after another on a loop of their own
(``probe_receiver``), then judged.

Measured in the same run: the slow receiver checked alone (the baseline), a fast one alone,
and all 50 at once. Target (issue): all 50 ÷ the slow one alone ≤ 1.3, which holds only while
receivers are checked concurrently (one after another they would take the sum, also shown).

    python benchmarks/webhook_check.py [--runs N] [--receivers N] [--probes N] [--slow-s S]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nfdoctor.checks.webhooks import WebhookDeliveryCheck, judge_delivery  # noqa: E402
from nfdoctor.net.tls import inspect_tls, tls_findings  # noqa: E402
from nfdoctor.platforms.registry import spec as platform_spec  # noqa: E402
from nfdoctor.platforms.spec import Account  # noqa: E402
from nfdoctor.platforms.webhook import WebhookKeys  # noqa: E402
from nfdoctor.results import Status  # noqa: E402
from nfdoctor.simulator.certs import SimulatorPki  # noqa: E402
from nfdoctor.threads import in_daemon_thread  # noqa: E402
from nfdoctor.webhooks.delivery import WebhookSender  # noqa: E402
from nfdoctor.webhooks.probe import probe_receiver  # noqa: E402
from nfdoctor.webhooks.target import Receiver  # noqa: E402

TARGET_RATIO = 1.3
HOST = "bench.crm.nfdoctor.test"


class Receivers:
    """The receivers: one HTTPS listener; ``/hook/0`` answers after ``slow_s``."""

    def __init__(self, pki: SimulatorPki, slow_s: float, base_s: float) -> None:
        self.context = pki.server_context("valid", HOST)
        self.slow_s = slow_s
        self.base_s = base_s
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = next(
                (
                    int(v)
                    for k, _, v in (h.partition(":") for h in lines[1:])
                    if k.lower() == "content-length"
                ),
                0,
            )
            await reader.readexactly(length)
            await asyncio.sleep(self.slow_s if path.startswith("/hook/0/") else self.base_s)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(
            self._answer, "127.0.0.1", 0, ssl=self.context, backlog=512
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    def __enter__(self) -> Receivers:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


def receivers(count: int) -> list[Receiver]:
    """``count`` Shopee receivers (3 s deadline, so the slow one is judged, not failed)."""
    spec = platform_spec("shopee")
    assert spec.webhook is not None
    return [
        Receiver(
            platform=spec,
            webhook=spec.webhook,
            section=None,  # type: ignore[arg-type] - probing reads only the webhook spec
            account=Account(platform="shopee", account_id=str(100000 + i)),
            keys=WebhookKeys(secret="bench-partner-key", secret_path="platforms.shopee"),
            url=f"https://{HOST}/hook/{i}/",
            url_source="benchmark",
        )
        for i in range(count)
    ]


async def check_one(
    receiver: Receiver, *, port: int, bundle: Path, probes: int
) -> tuple[float, Status]:
    """One receiver checked as the TLS and delivery checks do it; its wall time and status."""
    started = time.perf_counter()
    rules = [f"{HOST}:443:127.0.0.1:{port}"]

    async def tls() -> Status:
        inspection = await inspect_tls(
            "127.0.0.1", port, server_name=HOST, ca_bundle=bundle, timeout_s=10
        )
        findings = tls_findings(inspection, now=datetime.now(timezone.utc))
        return max((f.status for f in findings), key=lambda s: s.severity)

    async def delivery() -> Status:
        async def measure():  # type: ignore[no-untyped-def]
            async with WebhookSender(connect_to=rules, ca_bundle=bundle, timeout_s=10) as sender:
                return await probe_receiver(
                    sender,
                    receiver,
                    probes=probes,
                    now=lambda: datetime.now(timezone.utc),
                    timeout_s=10,
                )

        probe = await in_daemon_thread(lambda: asyncio.run(measure()), name="bench-webhook")
        return judge_delivery(WebhookDeliveryCheck(receiver.platform), probe).status

    statuses = await asyncio.gather(tls(), delivery())
    return time.perf_counter() - started, max(statuses, key=lambda s: s.severity)


async def check_all(
    targets: list[Receiver], *, port: int, bundle: Path, probes: int
) -> tuple[float, list[Status]]:
    started = time.perf_counter()
    results = await asyncio.gather(
        *(check_one(t, port=port, bundle=bundle, probes=probes) for t in targets)
    )
    return time.perf_counter() - started, [status for _, status in results]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--probes", type=int, default=5)
    parser.add_argument("--slow-s", type=float, default=2.0)
    parser.add_argument(
        "--latency-ms", type=int, default=100, help="every other receiver's answer time"
    )
    args = parser.parse_args()

    pki = SimulatorPki(datetime.now(timezone.utc))
    with (
        tempfile.TemporaryDirectory() as tmp,
        Receivers(pki, args.slow_s, args.latency_ms / 1000) as served,
    ):
        bundle = Path(tmp) / "ca.pem"
        bundle.write_bytes(pki.root_pem())
        targets = receivers(args.receivers)
        slow_alone, fast_alone, together = [], [], []
        for _ in range(args.runs):
            seconds, _ = asyncio.run(
                check_one(targets[0], port=served.port, bundle=bundle, probes=args.probes)
            )
            slow_alone.append(seconds)
            seconds, _ = asyncio.run(
                check_one(targets[1], port=served.port, bundle=bundle, probes=args.probes)
            )
            fast_alone.append(seconds)
            seconds, statuses = asyncio.run(
                check_all(targets, port=served.port, bundle=bundle, probes=args.probes)
            )
            together.append(seconds)
            unknown = [s for s in statuses if s is Status.UNKNOWN]
            if unknown or statuses[1] is not Status.WARNING:
                # Every receiver answers; the fast ones are WARNING only for accepting the
                # wrongly signed probe (these test receivers check no signature).
                print(f"unexpected statuses: {sorted({s.value for s in statuses})}")
                return 1

    slow = statistics.median(slow_alone)
    fast = statistics.median(fast_alone)
    wall = statistics.median(together)
    sequential = slow + fast * (args.receivers - 1)
    rows = [
        ["slow receiver alone (baseline)", f"{slow:.2f}", "1.00"],
        ["one fast receiver alone", f"{fast:.3f}", f"{fast / slow:.3f}"],
        [f"all {args.receivers} at once", f"{wall:.2f}", f"{wall / slow:.2f}"],
        [
            "one after another (estimated: slow + fast × n-1)",
            f"{sequential:.2f}",
            f"{sequential / slow:.2f}",
        ],
    ]
    print(
        f"webhook checks: {args.receivers} receivers on loopback (HTTPS), receiver 0 answers "
        f"after {args.slow_s:g} s, the others after {args.latency_ms} ms; {args.probes} probes "
        "+ 1 wrongly signed each; "
        f"median of {args.runs} runs"
    )
    print(tabulate(rows, headers=["measure", "seconds", "÷ slow alone"], tablefmt="github"))
    ratio = wall / slow
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(
        f"\nall {args.receivers} ÷ slowest alone = {ratio:.2f} "
        f"({verdict} the target ≤ {TARGET_RATIO})"
    )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
