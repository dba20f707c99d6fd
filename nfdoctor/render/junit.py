"""The CI format: JUnit XML as Jenkins, GitLab and GitHub test reporters read it.

Mapping: CRITICAL is a ``<failure>``; WARNING is a ``<failure>`` too unless the run uses
``--fail-on critical``, when it is a passing test case whose ``<system-out>`` says what was
found; UNKNOWN is an ``<error>`` (nfdoctor could not judge, which is not the same as a
finding); SKIPPED is ``<skipped>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from nfdoctor.render import check_label, utc
from nfdoctor.results import CheckResult, FailOn, Report, Status

# XML 1.0 cannot carry most C0 controls, even escaped; a platform error body quoted in a
# summary could hold one and make the whole report unparsable.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(report: Report, *, lang: str = "en", fail_on: FailOn = FailOn.WARNING) -> str:
    """The report as one ``<testsuites>`` holding one ``<testsuite>``, with XML declaration."""
    counts = report.counts()
    failures = counts[Status.CRITICAL]
    if fail_on is FailOn.WARNING:
        failures += counts[Status.WARNING]
    totals = {
        "tests": str(len(report.results)),
        "failures": str(failures),
        "errors": str(counts[Status.UNKNOWN]),
    }
    duration = _seconds(report.duration_s)

    suites = ET.Element("testsuites", {"name": "nfdoctor", **totals, "time": duration})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": f"nfdoctor.{_xml(report.command)}",
            **totals,
            "skipped": str(counts[Status.SKIPPED]),
            "time": duration,
            # The Ant schema's timestamp has no zone designator; it is UTC (docs/output.md).
            "timestamp": utc(report.started_at).strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in [("nfdoctor.version", report.version), *report.extras.items()]:
        ET.SubElement(properties, "property", {"name": _xml(name), "value": _xml(value)})
    for result in report.results:
        _testcase(suite, result, lang=lang, fail_on=fail_on)

    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _testcase(suite: ET.Element, result: CheckResult, *, lang: str, fail_on: FailOn) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": _xml(result.id.split(".", 1)[0]),
            "name": _xml(check_label(result)),
            "time": _seconds(result.duration_s),
        },
    )
    status = result.status
    summary = _xml(result.summary)
    if status is Status.CRITICAL or (status is Status.WARNING and fail_on is FailOn.WARNING):
        failure = ET.SubElement(case, "failure", {"message": summary, "type": status.value})
        failure.text = _explanation(result, lang)
    elif status is Status.WARNING:
        # --fail-on critical: the pipeline passes, but the finding stays visible in CI.
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(filter(None, [f"WARNING: {summary}", _explanation(result, lang)]))
    elif status is Status.UNKNOWN:
        error = ET.SubElement(case, "error", {"message": summary, "type": status.value})
        error.text = _explanation(result, lang)
    elif status is Status.SKIPPED:
        ET.SubElement(case, "skipped", {"message": summary})


def _explanation(result: CheckResult, lang: str) -> str:
    """Details, then the hint and next command: what a CI log reader needs to act."""
    lines = list(result.details)
    if result.hint is not None:
        lines.append(result.hint.text(lang))
    if result.next_command:
        lines.append(f"→ {result.next_command}")
    return _xml("\n".join(lines))


def _seconds(value: float) -> str:
    # Fixed-point: the Jenkins schema's time type has no exponent notation.
    return f"{max(value, 0.0):.3f}"


def _xml(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", text)
