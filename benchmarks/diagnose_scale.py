"""Many shops per platform: `diagnose` against nfdoctor's own connection cap, not the platform.

Each platform gets ``max_connections`` (10) connections at once in a run. With 20 shops per
platform and 500 ms on every call, the calls of one platform go out in waves of 10; before
the platform session measured queueing apart, the wait for a connection was counted as the
platform's latency and half the shops were reported "slower than the 1 s API target".

For each size (default 20 and 50 shops per platform) this starts `nfdoctor simulator --shops
N` with 500 ms of latency on every call and a Meta app allowance large enough that Facebook's
usage counter is not what limits the run (`limits:` in the fault plan), runs `nfdoctor
diagnose --only platforms --output json` and prints:

- the floor that the caps set: per platform, its capped calls (one API call per shop, plus
  Facebook's `debug_token` per page) in waves of ``max_connections``, times the latency
  measured for one call alone in the same run (the baseline: `--shops 1`); the run's floor is
  the slowest platform's;
- the run's wall time (the report's ``duration_s``) and wall ÷ floor (target ≤ 1.3 at 50);
- how many API results say "slower than" the target (target 0 at 20: the platform answered in
  500 ms), and the longest wait for a connection a result reports ("queued … ms").

    python benchmarks/diagnose_scale.py [--shops 20 50] [--latency-ms 500] [--runs 2]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

from diagnose_concurrency import Run, diagnose, start_simulator, stop
from tabulate import tabulate

TARGET_RATIO = 1.3
CAP = 10  # platforms.<p>.max_connections, the default
#: the simulator's platforms: (name, capped calls per shop in one diagnose)
CALLS_PER_SHOP = {"shopee": 1, "lazada": 1, "tiktok": 1, "facebook": 2, "zalo": 1}
LIMITS = "limits:\n  facebook:\n    hourly_allowance: 1000000000\n"
QUEUED = re.compile(r"queued ([0-9.]+) ms")


def api_results(run: Run) -> list[dict[str, object]]:
    return [r for r in run.report["results"] if str(r["id"]).endswith(".api")]


def slow_warnings(run: Run) -> int:
    """API results that blame the platform for slowness."""
    return sum("slower than" in str(r["summary"]) for r in api_results(run))


def longest_queue_ms(run: Run) -> float:
    waits = [
        float(match.group(1))
        for r in run.report["results"]
        for detail in r["details"]  # type: ignore[attr-defined]
        if (match := QUEUED.search(str(detail)))
    ]
    return max(waits, default=0.0)


def failures(run: Run, shops: int) -> list[str]:
    problems = []
    if len(api_results(run)) != len(CALLS_PER_SHOP) * shops:
        problems.append(f"{len(api_results(run))} API results for {shops} shops per platform")
    for result in run.report["results"]:
        if result["status"] in ("CRITICAL", "UNKNOWN"):
            problems.append(f"{result['id']} [{result['subject']}]: {result['summary']}")
    return problems


def measure(shops: int, latency_ms: int, runs: int, workdir: Path) -> list[Run]:
    env = {**os.environ, "XDG_STATE_HOME": str(workdir / "state"), "NO_COLOR": "1"}
    simulator, config = start_simulator(workdir, shops, latency_ms, plan_extra=LIMITS)
    try:
        diagnose(config, "platforms", env)  # warm-up: .pyc files, page cache
        return [diagnose(config, "platforms", env) for _ in range(runs)]
    finally:
        stop(simulator)


def main() -> int:
    """Print the table; exit 1 when a target is missed or a run is invalid."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shops", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--latency-ms", type=int, default=500)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nfdoctor-scale-") as tmp:
        base = Path(tmp)
        (base / "baseline").mkdir()
        baseline_runs = measure(1, args.latency_ms, args.runs, base / "baseline")
        one_call = statistics.median(
            max(float(r["duration_s"]) for r in api_results(run)) for run in baseline_runs
        )
        measured = {}
        for shops in args.shops:
            (base / str(shops)).mkdir()
            measured[shops] = measure(shops, args.latency_ms, args.runs, base / str(shops))

    problems = [p for run in baseline_runs for p in failures(run, 1)]
    problems += [
        p for shops, runs in measured.items() for run in runs for p in failures(run, shops)
    ]
    if problems:
        print("invalid measurement: these results did not time a successful call")
        for problem in dict.fromkeys(problems):
            print(f"  {problem}")
        return 1

    rows = []
    verdicts = []
    for shops, runs in measured.items():
        waves = {p: math.ceil(shops * n / CAP) for p, n in CALLS_PER_SHOP.items()}
        floor_s = max(waves.values()) * one_call
        walls = [run.wall_s for run in runs]
        ratio = statistics.median(walls) / floor_s
        slow = max(slow_warnings(run) for run in runs)
        queued = max(longest_queue_ms(run) for run in runs)
        ratio_target = shops < 50 or ratio <= TARGET_RATIO
        slow_target = shops > 20 or slow == 0
        verdicts.append(ratio_target and slow_target)
        rows.append(
            [
                shops,
                len(CALLS_PER_SHOP) * shops,
                f"{max(waves.values())} (facebook: {shops * 2} calls)",
                f"{floor_s * 1000:.0f}",
                f"{statistics.median(walls) * 1000:.0f}",
                f"{ratio:.2f}" + ("" if shops < 50 else (" PASS" if ratio_target else " FAIL")),
                f"{slow}" + ("" if shops > 20 else (" PASS" if slow_target else " FAIL")),
                f"{queued:.0f}",
            ]
        )
    print(
        f"one call alone (baseline, --shops 1): {one_call * 1000:.0f} ms; {args.latency_ms} ms "
        f"injected on every call; cap {CAP} connections per platform; median of {args.runs} runs"
    )
    print(
        tabulate(
            rows,
            headers=[
                "shops/platform",
                "API results",
                "waves (slowest platform)",
                "floor (ms)",
                "wall (ms)",
                "wall ÷ floor (≤ 1.3 at 50)",
                "'slower than' warnings (0 at 20)",
                "longest queue (ms)",
            ],
        )
    )
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
