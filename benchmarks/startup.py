"""Start-up cost: `nfdoctor --version` against `python -c "import typer"` (the floor).

Prints the median wall time of each over the same interleaved runs, and their ratio.
Target (issue 2): ratio ≤ 1.3, which holds only while heavy modules are imported lazily.

    python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_RATIO = 1.3


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    """Median seconds for each command, runs interleaved so drift hits both alike."""
    commands = {
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
        "nfdoctor --version": [sys.executable, "-m", "nfdoctor", "--version"],
        "nfdoctor --help": [sys.executable, "-m", "nfdoctor", "--help"],
    }
    for command in commands.values():  # warm the page cache and .pyc files
        _time(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(_time(command))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    """Print the table; exit 1 when the --version ratio misses the target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    medians = measure(args.runs)
    baseline = medians['python -c "import typer"']
    print(f"{'command':<28} {'median ms':>10} {'× baseline':>11}")
    for name, seconds in medians.items():
        print(f"{name:<28} {seconds * 1000:>10.1f} {seconds / baseline:>11.2f}")
    ratio = medians["nfdoctor --version"] / baseline
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"\nnfdoctor --version / import typer = {ratio:.2f} ({verdict} target ≤ {TARGET_RATIO})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
