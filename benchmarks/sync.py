"""`nfdoctor sync` against the platform's rate limit: how close it gets, and what it costs.

Two measurements, each against `nfdoctor simulator` with 100 ms of latency on every API call
and a real per-platform rate limit (the simulator answers 429 above it):

1. **One process, 20,000 orders** (4 Shopee shops x 5,000; Shopee is the costliest: a list
   call per 100 orders and a detail call per 50), limit 40 requests/s. The baseline,
   measured in the same run on one of the shops, is the same sync one request at a time
   (`sync.concurrency: 1`): 100 ms per call caps it near 10/s, which is where tools that
   fetch one page at a time stay. Target: requests / wall >= 0.85 x the limit, peak memory
   <= 150 MB, exactly 20,000 orders in the CRM, no 429.
2. **Four `--shard` processes on 100 shops**, one shared limit of 40 requests/s (the CRM
   database's `nfdoctor_rate_limits`). Target: their aggregate requests / wall >= 0.85 x the
   limit with no 429.

    python benchmarks/sync.py [--orders-per-shop 5000] [--limit 40] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

TARGET = 0.85
MAX_RSS_MB = 150.0
#: runs `nfdoctor` in this process and writes its peak RSS (KiB) to $NFD_BENCH_RSS at exit
_WRAPPER = """
import os, resource, sys
from nfdoctor.cli.app import main
try:
    main()
finally:
    with open(os.environ["NFD_BENCH_RSS"], "w") as out:
        out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def start_simulator(
    workdir: Path, *, shops: int, orders: int, limit: int, latency_ms: int
) -> tuple[subprocess.Popen[str], Path, Path]:
    """The simulator with its SQLite CRM, latency on every Shopee call and a rate limit."""
    plan = workdir / "faults.yaml"
    plan.write_text(
        yaml.safe_dump({"rules": [{"platform": "shopee", "fault": "latency", "ms": latency_ms}]}),
        encoding="utf-8",
    )
    config, database = workdir / "sim.yaml", workdir / "crm.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nfdoctor",
            "simulator",
            "--shops",
            str(shops),
            "--orders",
            str(orders),
            "--rate-limit",
            f"shopee={limit}",
            "--faults",
            str(plan),
            "--write-config",
            str(config),
            "--database",
            f"sqlite:///{database}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not config.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"the simulator did not start: {process.stderr.read() if process.stderr else ''}"
            )
        time.sleep(0.1)
    time.sleep(0.5)
    return process, config, database


def configure(config: Path, *, limit: int, concurrency: int) -> Path:
    """A copy of the simulator's config with the sync's limit and concurrency."""
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["sync"] = {"rate_limits": {"shopee": limit}, "concurrency": concurrency}
    out = config.with_name(f"sync-c{concurrency}.yaml")
    out.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    # The secrets directory is relative to the config: keep it next to the original.
    return out


def empty_crm(database: Path) -> None:
    with sqlite3.connect(database) as conn:
        conn.execute("DELETE FROM message_attachments")
        conn.execute("UPDATE messages SET reply_to_id = NULL")
        conn.execute("DELETE FROM orders")
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'nfdoctor_sync_%'"
        ).fetchall():
            conn.execute(f"DELETE FROM {table}")


def shopee_orders(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM orders o JOIN shops s ON s.id = o.shop_id "
            "WHERE s.channel = 'shopee'"
        ).fetchone()
    return int(count)


def sync(config: Path, workdir: Path, *extra: str, state: str = "state") -> subprocess.Popen[str]:
    """Start one `nfdoctor sync --platform shopee --since 40d` process."""
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(workdir / state),
        "NFD_BENCH_RSS": str(workdir / f"rss-{state}"),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WRAPPER,
            "sync",
            "--platform",
            "shopee",
            "--since",
            "40d",
            "--config",
            str(config),
            "-o",
            "json",
            "--fail-on",
            "critical",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=1800)
    if process.returncode != 0:
        failing = ""
        if out.strip():
            failing = "\n".join(
                f"{r['status']} {r['id']} {r.get('subject', '')}: {r['summary']}"
                for r in json.loads(out)["results"]
                if r["status"] != "OK"
            )
        raise RuntimeError(f"sync exited {process.returncode}:\n{failing}\n{err[-2000:]}")
    report: dict[str, Any] = json.loads(out)
    return report


def requests_of(report: dict[str, Any]) -> tuple[int, int]:
    """(requests, rate-limited answers) of the report's Shopee line."""
    (line,) = [r for r in report["results"] if r["id"] == "sync.shopee.requests"]
    metrics = {m["name"]: m["value"] for m in line["metrics"]}
    return int(metrics["requests"]), int(metrics["rate_limited"])


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def one_process(args: argparse.Namespace) -> list[list[Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="nfdoctor-bench-sync-") as tmp:
        workdir = Path(tmp)
        simulator, config, database = start_simulator(
            workdir,
            shops=4,
            orders=args.orders_per_shop,
            limit=args.limit,
            latency_ms=args.latency_ms,
        )
        try:
            # Baseline: one request at a time, on one shop.
            empty_crm(database)
            first_shop = str(
                yaml.safe_load(config.read_text())["platforms"]["shopee"]["shops"][0]["shop_id"]
            )
            started = time.perf_counter()
            report = finish(
                sync(
                    configure(config, limit=args.limit, concurrency=1),
                    workdir,
                    "--shop",
                    first_shop,
                    state="base",
                )
            )
            wall = time.perf_counter() - started
            sent, limited = requests_of(report)
            base_rate = sent / wall
            rss = int((workdir / "rss-base").read_text()) / 1024
            rows.append(
                [
                    "one request at a time (1 shop, baseline)",
                    shopee_orders(database),
                    sent,
                    f"{wall:.1f}",
                    f"{base_rate:.1f}",
                    f"{base_rate / args.limit:.2f}",
                    limited,
                    f"{rss:.0f}",
                ]
            )
            # The measured run: 20,000 orders.
            empty_crm(database)
            started = time.perf_counter()
            report = finish(
                sync(configure(config, limit=args.limit, concurrency=16), workdir, state="main")
            )
            wall = time.perf_counter() - started
            sent, limited = requests_of(report)
            rate = sent / wall
            rss = int((workdir / "rss-main").read_text()) / 1024
            stored = shopee_orders(database)
            rows.append(
                [
                    f"nfdoctor sync (4 shops x {args.orders_per_shop})",
                    stored,
                    sent,
                    f"{wall:.1f}",
                    f"{rate:.1f}",
                    f"{rate / args.limit:.2f}",
                    limited,
                    f"{rss:.0f}",
                ]
            )
            verdict = (
                rate >= TARGET * args.limit
                and rss <= MAX_RSS_MB
                and stored == 4 * args.orders_per_shop
                and limited == 0
            )
            rows.append(
                [
                    "target",
                    4 * args.orders_per_shop,
                    "",
                    "",
                    f">= {TARGET * args.limit:.0f}",
                    f">= {TARGET}",
                    0,
                    f"<= {MAX_RSS_MB:.0f}",
                ]
            )
            rows.append(
                [
                    "met",
                    "yes" if verdict else "NO",
                    "",
                    "",
                    f"x{rate / base_rate:.1f} the baseline",
                    "",
                    "",
                    "",
                ]
            )
        finally:
            stop(simulator)
    return rows


def four_shards(args: argparse.Namespace) -> list[list[Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="nfdoctor-bench-shards-") as tmp:
        workdir = Path(tmp)
        simulator, config, database = start_simulator(
            workdir,
            shops=100,
            orders=args.shard_orders,
            limit=args.limit,
            latency_ms=args.latency_ms,
        )
        try:
            empty_crm(database)
            tuned = configure(config, limit=args.limit, concurrency=16)
            started = time.perf_counter()
            processes = [
                sync(tuned, workdir, "--shard", f"{i}/4", state=f"shard-{i}") for i in range(1, 5)
            ]
            reports = [finish(p) for p in processes]
            wall = time.perf_counter() - started
            counts = [requests_of(r) for r in reports]
            for i, ((sent, limited), report) in enumerate(zip(counts, reports, strict=True), 1):
                shops = sum(1 for r in report["results"] if r["id"] == "sync.shopee.orders")
                rows.append([f"shard {i}/4", shops, sent, "", "", "", limited])
            sent = sum(c[0] for c in counts)
            limited = sum(c[1] for c in counts)
            rate = sent / wall
            stored = shopee_orders(database)
            rows.append(
                [
                    "all four",
                    stored,
                    sent,
                    f"{wall:.1f}",
                    f"{rate:.1f}",
                    f"{rate / args.limit:.2f}",
                    limited,
                ]
            )
            met = rate >= TARGET * args.limit and limited == 0 and stored == 100 * args.shard_orders
            rows.append(
                [
                    "target",
                    100 * args.shard_orders,
                    "",
                    "",
                    f">= {TARGET * args.limit:.0f}",
                    f">= {TARGET}",
                    0,
                ]
            )
            rows.append(["met", "yes" if met else "NO", "", "", "", "", ""])
        finally:
            stop(simulator)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders-per-shop", type=int, default=5000)
    parser.add_argument("--shard-orders", type=int, default=200, help="orders per shop, 100 shops")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--latency-ms", type=int, default=100)
    args = parser.parse_args()
    print(
        f"Shopee, {args.latency_ms} ms per call, limit {args.limit} requests/s "
        "(the simulator refuses above it)\n"
    )
    print(
        tabulate(
            one_process(args),
            headers=[
                "run",
                "orders in CRM",
                "requests",
                "wall s",
                "requests/s",
                "of limit",
                "429s",
                "peak MB",
            ],
        )
    )
    print()
    print(
        tabulate(
            four_shards(args),
            headers=[
                "process",
                "shops / orders",
                "requests",
                "wall s",
                "requests/s",
                "of limit",
                "429s",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
