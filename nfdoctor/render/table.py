"""The terminal format: a Rich table, then hints and next commands, then the totals."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nfdoctor.render import advice_blocks, check_label, one_line, totals_line
from nfdoctor.results import Report, Status

STATUS_STYLE: dict[Status, str] = {
    Status.OK: "green",
    Status.WARNING: "yellow",
    Status.CRITICAL: "bold red",
    Status.UNKNOWN: "magenta",
    Status.SKIPPED: "dim",
}


def render(report: Report, *, lang: str = "en", width: int = 100, color: bool = False) -> str:
    """The report as a Rich table ``width`` columns wide, with ANSI colour only if ``color``."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        highlight=False,
        # Text from platforms may contain "[...]" or ":name:"; never interpret it.
        markup=False,
        emoji=False,
        # The caller already decided on colour and width (NO_COLOR, isatty, COLUMNS);
        # an empty environment keeps Rich from deciding again, so output is reproducible.
        _environ={},
    )
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("Status", no_wrap=True)
    table.add_column("Check", overflow="fold")
    table.add_column("Summary", overflow="fold")
    for result in report.results:
        # Text objects, not strings: a summary is data, not Rich markup.
        table.add_row(
            Text(result.status.value, style=STATUS_STYLE[result.status]),
            Text(check_label(result)),
            Text(one_line(result.summary)),
        )
    if report.results:
        console.print(table)
        console.print()

    for result, lines in advice_blocks(report, lang):
        header = Text()
        header.append(result.status.value, style=STATUS_STYLE[result.status])
        header.append(" " + check_label(result), style="bold")
        console.print(header)
        for line in lines:
            console.print(Text(line))
        console.print()

    console.print(Text(totals_line(report, lang), style="bold"))
    return buffer.getvalue()
