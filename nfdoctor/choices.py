"""The enumerated option values of the command line, in a module light enough for start-up."""

from __future__ import annotations

import enum


class OutputFormat(str, enum.Enum):
    """How a report is written: ``table`` on a terminal, ``plain`` otherwise, or a contract."""

    TABLE = "table"
    PLAIN = "plain"
    JSON = "json"
    JUNIT = "junit"
    NAGIOS = "nagios"
    PROMETHEUS = "prometheus"


class FailOn(enum.Enum):
    """Lowest status that makes the run exit non-zero."""

    WARNING = "warning"
    CRITICAL = "critical"
