"""The services: one module per command family, each taking a typed request and returning a
result (a report, a plan, a run summary), with progress through an observer.

A service never prints, exits or imports Typer; the command in :mod:`nfdoctor.cli` parses the
arguments, calls one service, renders what it returns and turns it into an exit code.
"""

from __future__ import annotations
