"""The scrape format: Prometheus text exposition 0.0.4, for node_exporter's textfile collector.

Every per-check series carries ``check`` and ``subject`` labels; ``subject`` is the empty
string for a result about no particular subject. Prometheus treats an empty label value
exactly like an absent label, and keeping the label set fixed within a family is what the
Prometheus naming guidelines ask for, so queries never need two shapes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from nfdoctor.render import utc
from nfdoctor.results import CheckResult, Report, Status

#: The value of nfdoctor_check_status / nfdoctor_run_status for each status; SKIPPED has
#: none and appears in nfdoctor_check_skipped instead.
STATUS_VALUE: dict[Status, int] = {
    Status.OK: 0,
    Status.WARNING: 1,
    Status.CRITICAL: 2,
    Status.UNKNOWN: 3,
}

Sample = tuple[dict[str, str], float]


def render(report: Report, *, lang: str = "en") -> str:
    """The report as Prometheus text; ``lang`` is ignored (metric names are fixed)."""
    results = report.results
    lines: list[str] = []
    _family(
        lines,
        "nfdoctor_check_status",
        "Status of a check result: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        [(_labels(r), STATUS_VALUE[r.status]) for r in results if r.status is not Status.SKIPPED],
    )
    _family(
        lines,
        "nfdoctor_check_skipped",
        "1 for a check result that was skipped (it has no nfdoctor_check_status).",
        [(_labels(r), 1) for r in results if r.status is Status.SKIPPED],
    )
    _family(
        lines,
        "nfdoctor_check_duration_seconds",
        "How long the check took to produce this result.",
        [(_labels(r), r.duration_s) for r in results],
    )
    _family(
        lines,
        "nfdoctor_check_metric",
        "A value a check measured; the unit label says in what (empty for a count or ratio).",
        [
            ({**_labels(r), "name": m.name, "unit": m.unit}, m.value)
            for r in results
            for m in r.metrics
        ],
    )
    run = {"command": report.command}
    worst = report.worst
    _family(
        lines,
        "nfdoctor_run_status",
        "Worst status of the run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        [(run, STATUS_VALUE.get(worst, 0))],  # all-skipped is OK, as its exit code is
    )
    _family(
        lines,
        "nfdoctor_run_duration_seconds",
        "Wall-clock duration of the run.",
        [(run, report.duration_s)],
    )
    _family(
        lines,
        "nfdoctor_run_timestamp_seconds",
        "When the run started, in seconds since the Unix epoch.",
        [(run, utc(report.started_at).timestamp())],
    )
    return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, help_text: str, samples: Iterable[Sample]) -> None:
    rows = [f"{name}{_label_set(labels)} {_value(value)}" for labels, value in samples]
    if not rows:
        return  # a family without samples says nothing and some collectors reject it
    lines.append(f"# HELP {name} {_escape_help(help_text)}")
    lines.append(f"# TYPE {name} gauge")
    lines.extend(rows)


def _labels(result: CheckResult) -> dict[str, str]:
    return {"check": result.id, "subject": result.subject or ""}


def _label_set(labels: dict[str, str]) -> str:
    inner = ",".join(f'{key}="{_escape_label(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    # Backslash first, or the escapes added for quotes and newlines would be doubled.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _value(value: float) -> str:
    # The format spells the specials the Go way; Python's repr would write "inf"/"nan".
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))  # "2", not "2.0": status values read like the enum they are
    return repr(float(value))
