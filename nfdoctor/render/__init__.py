"""Renderers: a :class:`~nfdoctor.results.Report` in, text out.

Every format lives in its own module with a pure ``render(report, *, lang, ...) -> str``;
nothing here prints or writes. :func:`render` imports the format module on demand so that
``import nfdoctor.render`` stays cheap (no Rich, no tabulate) for commands that never render
a table. The helpers below are shared by the human-readable formats (table and plain).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timezone

from nfdoctor.choices import OutputFormat
from nfdoctor.results import CheckResult, FailOn, Report, Status

__all__ = [
    "OutputFormat",
    "advice_blocks",
    "check_label",
    "default_format",
    "finite_or_none",
    "one_line",
    "render",
    "totals_line",
    "utc",
]


def render(
    report: Report,
    fmt: OutputFormat,
    *,
    lang: str = "en",
    width: int = 100,
    color: bool = False,
    fail_on: FailOn = FailOn.WARNING,
) -> str:
    """Render ``report`` in ``fmt``; the text always ends with a newline."""
    # Imports are local on purpose: each format pulls in its own dependency (Rich,
    # tabulate, ElementTree) and a cron job writing Prometheus should not pay for Rich.
    if fmt is OutputFormat.TABLE:
        from nfdoctor.render import table

        return table.render(report, lang=lang, width=width, color=color)
    if fmt is OutputFormat.PLAIN:
        from nfdoctor.render import plain

        return plain.render(report, lang=lang)
    if fmt is OutputFormat.JSON:
        from nfdoctor.render import json_report

        return json_report.render(report, lang=lang, fail_on=fail_on)
    if fmt is OutputFormat.JUNIT:
        from nfdoctor.render import junit

        return junit.render(report, lang=lang, fail_on=fail_on)
    if fmt is OutputFormat.NAGIOS:
        from nfdoctor.render import nagios

        return nagios.render(report, lang=lang)
    if fmt is OutputFormat.PROMETHEUS:
        from nfdoctor.render import prometheus

        return prometheus.render(report, lang=lang)
    raise ValueError(f"unknown output format: {fmt!r}")  # pragma: no cover - enum is closed


def default_format(*, stdout_isatty: bool, environ: Mapping[str, str]) -> OutputFormat:
    """TABLE on a terminal, PLAIN when piped or when ``NO_COLOR`` is set."""
    # no-color.org: NO_COLOR counts when present and not empty, whatever its value; Rich
    # reads it the same way, so the two never disagree about an empty NO_COLOR.
    if stdout_isatty and not environ.get("NO_COLOR"):
        return OutputFormat.TABLE
    return OutputFormat.PLAIN


# --- shared by the human-readable formats -------------------------------------------------

_TOTAL_WORDS: dict[str, dict[Status | str, str]] = {
    "en": {
        Status.CRITICAL: "critical",
        Status.UNKNOWN: "unknown",
        Status.WARNING: "warning",
        Status.OK: "ok",
        Status.SKIPPED: "skipped",
        "in": "in",
        "none": "no results",
    },
    "vi": {
        Status.CRITICAL: "nghiêm trọng",
        Status.UNKNOWN: "không rõ",
        Status.WARNING: "cảnh báo",
        Status.OK: "ổn",
        Status.SKIPPED: "bỏ qua",
        "in": "trong",
        "none": "không có kết quả",
    },
}

# Worst first, so the number an operator looks for comes first on the line.
_TOTALS_ORDER = (Status.CRITICAL, Status.UNKNOWN, Status.WARNING, Status.OK, Status.SKIPPED)


def totals_line(report: Report, lang: str) -> str:
    """``1 critical, 2 warning, 5 ok in 0.42 s`` (zeros left out), in ``lang``."""
    words = _TOTAL_WORDS.get(lang, _TOTAL_WORDS["en"])
    counts = report.counts()
    parts = [f"{counts[s]} {words[s]}" for s in _TOTALS_ORDER if counts[s]]
    seconds = f"{report.duration_s:.2f}"
    if lang == "vi":
        seconds = seconds.replace(".", ",")  # Vietnamese writes a decimal comma
    counted = ", ".join(parts) if parts else words["none"]
    return f"{counted} {words['in']} {seconds} s"


def one_line(text: str) -> str:
    """``text`` with line breaks and tabs as spaces and other control characters removed."""
    # Summaries can quote a platform's error body; an ESC in one would smuggle ANSI codes
    # into "plain" output, and a newline would break one-line formats.
    out = []
    for char in text:
        if char in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(char) != "Cc":
            out.append(char)
    return "".join(out)


def check_label(result: CheckResult) -> str:
    """``id`` or ``id · subject``: how a result is named to a person."""
    if result.subject is None:
        return result.id
    return f"{result.id} · {one_line(result.subject)}"


def advice_blocks(report: Report, lang: str) -> list[tuple[CheckResult, list[str]]]:
    """For each result needing attention: its hint, ``→ next command`` and indented details."""
    blocks = []
    for result in report.results:
        if result.status in (Status.OK, Status.SKIPPED):
            continue
        lines = []
        if result.hint is not None:
            lines.append("  " + one_line(result.hint.text(lang)))
        if result.next_command:
            lines.append("  → " + one_line(result.next_command))
        lines.extend("    " + one_line(detail) for detail in result.details)
        if lines:
            blocks.append((result, lines))
    return blocks


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already (the clock's contract)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def finite_or_none(value: float | None) -> float | None:
    """``value`` unless it is NaN or infinite, which JSON and perfdata cannot carry."""
    if value is None or not math.isfinite(value):
        return None
    return value
