"""The pipe- and log-friendly format: a tabulate "simple" table, never any ANSI codes."""

from __future__ import annotations

from tabulate import tabulate

from nfdoctor.render import advice_blocks, check_label, one_line, totals_line
from nfdoctor.results import Report


def render(report: Report, *, lang: str = "en") -> str:
    """The report as a plain-text table followed by hints and totals."""
    sections = []
    if report.results:
        rows = [
            [result.status.value, check_label(result), one_line(result.summary)]
            for result in report.results
        ]
        # disable_numparse: a summary such as "1.50" must stay as written, not become 1.5.
        # No wrapping to a width: grep and awk over this output want one row per line.
        sections.append(
            tabulate(
                rows,
                headers=["Status", "Check", "Summary"],
                tablefmt="simple",
                disable_numparse=True,
            )
        )
    for result, lines in advice_blocks(report, lang):
        sections.append("\n".join([f"{result.status.value} {check_label(result)}", *lines]))
    sections.append(totals_line(report, lang))
    return "\n\n".join(sections) + "\n"
