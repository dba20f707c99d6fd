"""The machine format: JSON in the versioned shape described by ``report.schema.json``.

The shape is a promise to scripts (``nfdoctor diagnose --output json | jq``): a field is
only ever added under a new schema id, never renamed or removed within one.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from nfdoctor.render import finite_or_none, utc
from nfdoctor.results import CheckResult, FailOn, Metric, Report

SCHEMA_ID = "nfdoctor.report/v1"
SCHEMA_RESOURCE = "report.schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every report this module writes validates against."""
    text = resources.files("nfdoctor.render").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def to_document(report: Report, *, fail_on: FailOn = FailOn.WARNING) -> dict[str, Any]:
    """The report as the plain ``dict`` that :func:`render` serialises."""
    counts = report.counts()
    return {
        "schema": SCHEMA_ID,
        "command": report.command,
        "version": report.version,
        "started_at": _timestamp(report),
        "duration_s": report.duration_s,
        "status": report.worst.value,
        "exit_code": report.exit_code(fail_on),
        "counts": {status.value.lower(): count for status, count in counts.items()},
        "results": [_result(result) for result in report.results],
        "extras": dict(report.extras),
    }


def render(report: Report, *, lang: str = "en", fail_on: FailOn = FailOn.WARNING) -> str:
    """The report as indented UTF-8 JSON; ``lang`` is ignored (both languages are included)."""
    # allow_nan=False: NaN is not JSON; to_document already turned non-finite numbers into
    # null, so this only fires on a bug, and loudly.
    text = json.dumps(
        to_document(report, fail_on=fail_on), ensure_ascii=False, indent=2, allow_nan=False
    )
    return text + "\n"


def _timestamp(report: Report) -> str:
    # Milliseconds: enough to line a run up with log lines, short enough to read.
    return utc(report.started_at).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _result(result: CheckResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "title": result.title,
        "status": result.status.value,
        "summary": result.summary,
        "subject": result.subject,
        "details": list(result.details),
        "hint": None if result.hint is None else {"en": result.hint.en, "vi": result.hint.vi},
        "next_command": result.next_command,
        "duration_s": result.duration_s,
        "metrics": [_metric(metric) for metric in result.metrics],
    }


def _metric(metric: Metric) -> dict[str, Any]:
    return {
        "name": metric.name,
        "value": finite_or_none(metric.value),
        "unit": metric.unit,
        "warn": finite_or_none(metric.warn),
        "crit": finite_or_none(metric.crit),
    }
