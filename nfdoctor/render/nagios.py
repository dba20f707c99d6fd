"""The monitoring format: one Nagios/Icinga plugin line with performance data.

Grammar (see docs/output.md)::

    NFDOCTOR <STATE> - <n> critical, <n> warning, <n> unknown, <n> ok: <problems> | <perfdata>

Nagios decides the service state from the exit code, so <STATE> is the report's worst
status (SKIPPED counts as OK; Nagios has no such state) regardless of ``--fail-on``.
"""

from __future__ import annotations

import math
from decimal import Decimal

from nfdoctor.render import check_label, one_line
from nfdoctor.results import CheckResult, Metric, Report, Status

#: Problems listed in the text part before "+N more": Nagios UIs show the first line in a
#: narrow column and older cores cut plugin output at 4 KB, so the worst few come first.
MAX_PROBLEMS = 5

# Units monitoring-plugins perfdata understands; anything else would be read as part of
# the number or rejected, so it is dropped and the value reads as a plain count.
_PERFDATA_UNITS = frozenset({"s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"})


def render(report: Report, *, lang: str = "en") -> str:
    """The report as exactly one plugin-output line; ``lang`` is ignored (the grammar is fixed)."""
    worst = report.worst
    state = Status.OK if worst is Status.SKIPPED else worst
    counts = report.counts()
    tally = ", ".join(
        f"{counts[s]} {s.value.lower()}"
        for s in (Status.CRITICAL, Status.WARNING, Status.UNKNOWN, Status.OK)
    )
    line = f"NFDOCTOR {state.value} - {tally}: {_problems(report)}"
    perfdata = " ".join(item for result in report.results for item in _perfdata(result))
    if perfdata:
        line += f" | {perfdata}"
    return line + "\n"


def _problems(report: Report) -> str:
    problems = [r for r in report.results if r.status not in (Status.OK, Status.SKIPPED)]
    if not problems:
        return "all checks passed"
    # sorted() is stable: among equally bad results, declaration order is kept.
    problems.sort(key=lambda r: r.status.severity, reverse=True)
    shown = [f"{_text(check_label(r))}: {_text(r.summary)}" for r in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"+{len(problems) - MAX_PROBLEMS} more")
    return "; ".join(shown)


def _perfdata(result: CheckResult) -> list[str]:
    base = result.id if result.subject is None else f"{result.id}[{result.subject}]"
    items = [_metric(f"{base}.{metric.name}", metric) for metric in result.metrics]
    items.append(f"{_label(base + '.duration')}={_value(result.duration_s)}s")
    return items


def _metric(label: str, metric: Metric) -> str:
    unit = metric.unit if metric.unit in _PERFDATA_UNITS else ""
    fields = [f"{_value(metric.value)}{unit}", _threshold(metric.warn), _threshold(metric.crit)]
    # Trailing empty threshold fields are optional in the grammar; dropping them keeps
    # "'x.latency'=0.2s" readable when a metric has no thresholds.
    return f"{_label(label)}=" + ";".join(fields).rstrip(";")


def _value(value: float) -> str:
    # "U" is the grammar's "undetermined"; NaN or infinity would not parse as a number.
    return _number(value) if math.isfinite(value) else "U"


def _threshold(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return _number(value)


def _number(value: float) -> str:
    """Fixed-point, shortest exact form: 0.0000001, not 1e-07 (perfdata has no exponents)."""
    if value == 0:
        return "0"  # also turns -0.0 into 0
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _label(text: str) -> str:
    # '=' ends a label and '|' starts perfdata in every parser, quoted or not; a newline
    # would end the line. A quote is escaped by doubling, as Nagios' own parser expects.
    cleaned = one_line(text).replace("=", "_").replace("|", "_")
    return "'" + cleaned.replace("'", "''") + "'"


def _text(text: str) -> str:
    # '|' in the text part would be read as the start of perfdata.
    return one_line(text).replace("|", "/")
