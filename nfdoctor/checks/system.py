"""Server resources: load, memory, and free disk where the database and logs live."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from nfdoctor.checks.base import Check, CheckContext, higher_is_worse, lower_is_worse
from nfdoctor.fsutil import expand_user
from nfdoctor.hints import HINTS
from nfdoctor.results import CheckResult, Metric, Status
from nfdoctor.store.database import parse_database_url


class LoadCheck(Check):
    """1-minute load average per CPU core."""

    id = "system.load"
    title = "Server load"

    def __init__(
        self,
        loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg,
        cpu_count: Callable[[], int | None] = os.cpu_count,
    ) -> None:
        self.loadavg = loadavg
        self.cpu_count = cpu_count

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Compare load per core with the thresholds."""
        limits = ctx.config.thresholds
        try:
            one, five, fifteen = self.loadavg()
        except OSError:
            return [self.result(Status.SKIPPED, "load average is not available on this system")]
        cores = self.cpu_count() or 1
        per_core = one / cores
        warn, crit = limits.load_per_core_warning, limits.load_per_core_critical
        status = higher_is_worse(per_core, warn, crit)
        return [
            self.result(
                status,
                f"load {one:.2f} on {cores} cores = {per_core:.2f}/core, warn ≥ {warn:g}, "
                f"crit ≥ {crit:g}",
                details=[f"5 min: {five:.2f}, 15 min: {fifteen:.2f}"],
                hint=HINTS["system.load"] if status is not Status.OK else None,
                metrics=[
                    Metric(name="load_per_core", value=round(per_core, 3), warn=warn, crit=crit)
                ],
            )
        ]


def read_meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    """``/proc/meminfo`` as bytes per field (Linux)."""
    fields: dict[str, int] = {}
    for line in path.read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return fields


class MemoryCheck(Check):
    """Memory available to new work (MemAvailable), as a share of the total."""

    id = "system.memory"
    title = "Server memory"

    def __init__(self, meminfo: Callable[[], dict[str, int]] = read_meminfo) -> None:
        self.meminfo = meminfo

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Compare available memory with the thresholds."""
        limits = ctx.config.thresholds
        try:
            info = self.meminfo()
            total, available = info["MemTotal"], info["MemAvailable"]
        except (OSError, KeyError):
            return [self.result(Status.SKIPPED, "memory figures are not available on this system")]
        percent = 100.0 * available / total if total else 0.0
        warn, crit = limits.memory_available_warning, limits.memory_available_critical
        status = lower_is_worse(percent, warn, crit)
        return [
            self.result(
                status,
                f"{_gib(available)} of {_gib(total)} available ({percent:.0f} %), "
                f"warn < {warn:g} %, crit < {crit:g} %",
                hint=HINTS["system.memory"] if status is not Status.OK else None,
                metrics=[
                    Metric(
                        name="memory_available",
                        value=round(percent, 2),
                        unit="%",
                        warn=warn,
                        crit=crit,
                    ),
                    Metric(name="memory_available_bytes", value=float(available), unit="B"),
                ],
            )
        ]


def _gib(size: float) -> str:
    return f"{size / 1024**3:.1f} GiB"


def _existing_ancestor(path: Path) -> Path:
    """The nearest existing directory at or above ``path`` (a log may not exist yet)."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return candidate if candidate.is_dir() else candidate.parent
        except OSError:
            continue  # a name too long for the file system: its parent still tells the disk
    return Path("/")


class DiskCheck(Check):
    """Free space on each filesystem holding the database, the logs or nfdoctor's state."""

    id = "system.disk"
    title = "Free disk space"

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """One result per filesystem, named by the paths it holds."""
        loaded = ctx.loaded
        config = loaded.config
        places: list[tuple[str, Path]] = []
        if config.database is not None:
            url = parse_database_url(config.database.url, base_dir=loaded.base_dir)
            if url.path is not None:
                places.append(("database", url.path))
        for log_path in config.logs.paths:
            # ~user was expanded (and proven to exist) when the config was validated.
            places.append(("logs", loaded.base_dir / expand_user(log_path)))
        places.append(("nfdoctor state", ctx.state_dir))

        by_device: dict[int, tuple[Path, list[str]]] = {}
        for label, path in places:
            directory = _existing_ancestor(path)
            device = directory.stat().st_dev
            by_device.setdefault(device, (directory, []))[1].append(f"{label} ({path})")

        warn, crit = config.thresholds.disk_free_warning, config.thresholds.disk_free_critical
        results = []
        for directory, labels in by_device.values():
            usage = shutil.disk_usage(directory)
            percent = 100.0 * usage.free / usage.total if usage.total else 0.0
            status = lower_is_worse(percent, warn, crit)
            results.append(
                self.result(
                    status,
                    f"{_gib(usage.free)} free of {_gib(usage.total)} ({percent:.0f} %) at "
                    f"{directory}, warn < {warn:g} %, crit < {crit:g} %",
                    details=[f"holds {label}" for label in labels],
                    hint=HINTS["system.disk"] if status is not Status.OK else None,
                    metrics=[
                        Metric(
                            name="disk_free",
                            value=round(percent, 2),
                            unit="%",
                            warn=warn,
                            crit=crit,
                        ),
                        Metric(name="disk_free_bytes", value=float(usage.free), unit="B"),
                    ],
                    subject=str(directory),
                )
            )
        return results
