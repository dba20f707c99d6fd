"""The options the commands share: their names, types and help, and nothing else.

Light on purpose: every command module imports this at start-up (``nfdoctor --version``
imports the command modules), so what runs a command lives in :mod:`nfdoctor.cli.common`,
imported by the command's body.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nfdoctor.choices import FailOn, OutputFormat

__all__ = [
    "ConfigOption",
    "DebugOption",
    "FailOnOption",
    "LangOption",
    "OutputOption",
    "ShopOption",
    "TimeoutOption",
    "WriteOption",
]

DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show debug logs and tracebacks (secrets still masked).")
]

ConfigOption = Annotated[
    Optional[Path],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: discovery order in the README).",
        show_default=False,
    ),
]
LangOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--lang", help="Hint language: vi or en (default: from the locale).", show_default=False
    ),
]
OutputOption = Annotated[
    Optional[OutputFormat],  # noqa: UP045
    typer.Option(
        "--output",
        "-o",
        help="table (terminal default), plain (pipe default), json, junit, nagios, prometheus.",
        show_default=False,
    ),
]
WriteOption = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--write",
        help="Write the output to FILE atomically instead of stdout "
        "(for node_exporter's textfile collector).",
        show_default=False,
    ),
]
FailOnOption = Annotated[
    FailOn, typer.Option("--fail-on", help="Lowest status that makes the exit code non-zero.")
]
TimeoutOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--timeout",
        help="Per-check timeout, e.g. 10s (default: thresholds.check_timeout, 15s).",
        show_default=False,
    ),
]
ShopOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--shop",
        help="Only this shop id, Lazada seller id, Facebook page id or Zalo OA id.",
        show_default=False,
    ),
]
