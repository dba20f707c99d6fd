"""Renderers against independent parsers: jsonschema, xmlschema, prometheus_client."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from prometheus_client.parser import text_string_to_metric_families

from nfdoctor.errors import StateError
from nfdoctor.fsutil import write_atomically
from nfdoctor.render import (
    OutputFormat,
    default_format,
    json_report,
    junit,
    nagios,
    plain,
    prometheus,
    render,
    table,
    totals_line,
)
from nfdoctor.results import CheckResult, FailOn, Hint, Metric, Report, Status

ROOT = Path(__file__).resolve().parents[1]
JUNIT_XSD = Path(__file__).parent / "data" / "junit.xsd"

# 08:00:03.25 in Hanoi is 01:00:03.25 UTC: renderers must convert, not copy, the wall time.
STARTED_AT = datetime(2026, 11, 1, 8, 0, 3, 250000, tzinfo=timezone(timedelta(hours=7)))
STARTED_EPOCH = datetime(2026, 11, 1, 1, 0, 3, 250000, tzinfo=timezone.utc).timestamp()

SHOP = "Shop Hà Nội 'A'"  # a quote, for Nagios label escaping
WEBHOOK = 'https://crm.example.vn/hook?x="1"\\'  # a double quote and a backslash, for Prometheus


def result(check_id: str, status: Status, **overrides: Any) -> CheckResult:
    """A result with boring defaults; tests override what they look at."""
    fields: dict[str, Any] = {
        "id": check_id,
        "title": check_id.replace(".", " ").title(),
        "status": status,
        "summary": f"{check_id} is {status.value.lower()}",
        "duration_s": 0.25,
    }
    fields.update(overrides)
    return CheckResult(**fields)


def make_report(*results: CheckResult, **overrides: Any) -> Report:
    """A report of ``results`` started at STARTED_AT."""
    fields: dict[str, Any] = {
        "command": "diagnose",
        "results": results,
        "started_at": STARTED_AT,
        "duration_s": 0.42,
        "version": "0.1.0",
        "extras": {"config": "/etc/nfdoctor/config.yaml", "token_store": "keyring"},
    }
    fields.update(overrides)
    return Report(**fields)


def varied_results() -> tuple[CheckResult, ...]:
    """One result of each status, with subjects, hints, metrics and Vietnamese text."""
    return (
        result(
            "database.connect",
            Status.OK,
            summary="kết nối trong 12 ms, mục tiêu < 1 s",
            metrics=(Metric(name="latency", value=0.012, unit="s", warn=1.0, crit=2.0),),
            duration_s=0.013,
        ),
        result(
            "platform.shopee.auth",
            Status.WARNING,
            subject=SHOP,
            summary="token hết hạn sau 3 ngày, warn < 7 d",
            details=("hết hạn lúc 2026-11-04 08:00 (giờ Hà Nội)",),
            hint=Hint(en="Refresh the Shopee token.", vi="Làm mới token Shopee."),
            next_command="nfdoctor token refresh shopee",
            metrics=(Metric(name="expires_in", value=259200, unit="s", warn=604800, crit=86400),),
            duration_s=0.2,
        ),
        result(
            "webhook.tls",
            Status.CRITICAL,
            subject=WEBHOOK,
            # An ESC from a quoted error body, and Rich markup that must stay literal.
            summary="certificate expired 3 d ago [bold]x[/bold] | \x1b[31mred",
            details=("issuer: R3", "not after: 2026-10-29"),
            hint=Hint(en="Renew the certificate.", vi="Gia hạn chứng chỉ."),
            next_command="nfdoctor webhook check shopee",
            metrics=(
                Metric(name="days_left", value=-3, unit="d"),
                Metric(name="tiny", value=1e-7),
            ),
            duration_s=0.1,
        ),
        result(
            "ai.latency",
            Status.UNKNOWN,
            summary="hết thời gian chờ sau 5 s\nkhông đo được",
            duration_s=5.0,
        ),
        result("messaging.zalo", Status.SKIPPED, summary="Zalo OA chưa cấu hình", duration_s=0.0),
        result(
            "system.disk",
            Status.OK,
            subject="/var/lib/nfdoctor",
            metrics=(Metric(name="disk_free", value=42.5, unit="%", warn=10, crit=5),),
        ),
    )


@pytest.fixture
def report() -> Report:
    return make_report(*varied_results())


# --- dispatch and defaults ----------------------------------------------------------------


def test_output_format_values() -> None:
    assert [f.value for f in OutputFormat] == [
        "table",
        "plain",
        "json",
        "junit",
        "nagios",
        "prometheus",
    ]
    assert OutputFormat("junit") is OutputFormat.JUNIT


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_render_dispatches_and_ends_with_newline(report: Report, fmt: OutputFormat) -> None:
    modules = {
        OutputFormat.TABLE: table,
        OutputFormat.PLAIN: plain,
        OutputFormat.JSON: json_report,
        OutputFormat.JUNIT: junit,
        OutputFormat.NAGIOS: nagios,
        OutputFormat.PROMETHEUS: prometheus,
    }
    text = render(report, fmt, lang="vi")
    assert text == modules[fmt].render(report, lang="vi")
    assert text.endswith("\n")


def test_importing_render_does_not_import_rich_or_tabulate() -> None:
    code = (
        "import sys, nfdoctor.render\n"
        "print(sorted(m for m in ('rich', 'tabulate') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("isatty", "environ", "expected"),
    [
        (True, {}, OutputFormat.TABLE),
        (True, {"NO_COLOR": "1"}, OutputFormat.PLAIN),
        (True, {"NO_COLOR": "false"}, OutputFormat.PLAIN),  # any value counts
        (True, {"NO_COLOR": ""}, OutputFormat.TABLE),  # empty does not (no-color.org)
        (False, {}, OutputFormat.PLAIN),
        (False, {"NO_COLOR": "1"}, OutputFormat.PLAIN),
    ],
)
def test_default_format(isatty: bool, environ: dict[str, str], expected: OutputFormat) -> None:
    assert default_format(stdout_isatty=isatty, environ=environ) is expected


# --- human formats ------------------------------------------------------------------------


def test_totals_line_in_english_and_vietnamese(report: Report) -> None:
    assert totals_line(report, "en") == (
        "1 critical, 1 unknown, 1 warning, 2 ok, 1 skipped in 0.42 s"
    )
    assert totals_line(report, "vi") == (
        "1 nghiêm trọng, 1 không rõ, 1 cảnh báo, 2 ổn, 1 bỏ qua trong 0,42 s"
    )
    empty = make_report(duration_s=1.5)
    assert totals_line(empty, "vi") == "không có kết quả trong 1,50 s"


def test_plain_has_no_ansi_and_carries_hints_and_totals(report: Report) -> None:
    text = plain.render(report, lang="vi")
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].split() == ["Status", "Check", "Summary"]
    assert any(
        line.startswith("WARNING ") and f"platform.shopee.auth · {SHOP}" in line for line in lines
    )
    assert "  Làm mới token Shopee." in lines
    assert "  → nfdoctor token refresh shopee" in lines
    assert "    hết hạn lúc 2026-11-04 08:00 (giờ Hà Nội)" in lines
    assert "Refresh the Shopee token." not in text  # only the requested language
    # The UNKNOWN summary's newline must not split its table row.
    assert any("hết thời gian chờ sau 5 s không đo được" in line for line in lines)
    assert lines[-1] == "1 nghiêm trọng, 1 không rõ, 1 cảnh báo, 2 ổn, 1 bỏ qua trong 0,42 s"


def test_plain_keeps_numeric_looking_summaries_verbatim() -> None:
    text = plain.render(make_report(result("a.b", Status.OK, summary="1.50")))
    assert "1.50" in text


def test_table_without_colour_has_no_ansi_and_keeps_markup_literal(report: Report) -> None:
    text = table.render(report, lang="en", width=160, color=False)
    assert "\x1b" not in text
    assert "[bold]x[/bold]" in text
    assert "Renew the certificate." in text
    assert "→ nfdoctor webhook check shopee" in text
    assert text.splitlines()[-1].rstrip() == (
        "1 critical, 1 unknown, 1 warning, 2 ok, 1 skipped in 0.42 s"
    )


def test_table_with_colour_colours_statuses(report: Report) -> None:
    text = table.render(report, width=160, color=True)
    assert "\x1b[32mOK" in text  # green
    assert "\x1b[33mWARNING" in text  # yellow
    assert "\x1b[35mUNKNOWN" in text  # magenta
    assert "\x1b[1;31mCRITICAL" in text  # bold red
    assert "\x1b[31mred" not in text  # the summary's own ESC was removed


def test_table_respects_width(report: Report) -> None:
    text = table.render(report, width=60)
    assert max(len(line) for line in text.splitlines()) <= 60


# --- JSON ---------------------------------------------------------------------------------


def test_json_validates_against_schema_and_round_trips(report: Report) -> None:
    text = json_report.render(report)
    schema = json_report.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(text)
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document == json_report.to_document(report)

    assert document["schema"] == "nfdoctor.report/v1"
    assert document["started_at"] == "2026-11-01T01:00:03.250Z"
    assert document["status"] == "CRITICAL"
    assert document["exit_code"] == 2
    assert document["counts"] == {"ok": 2, "warning": 1, "critical": 1, "unknown": 1, "skipped": 1}
    assert document["extras"] == {"config": "/etc/nfdoctor/config.yaml", "token_store": "keyring"}
    shopee = document["results"][1]
    assert shopee["subject"] == SHOP
    assert shopee["hint"] == {"en": "Refresh the Shopee token.", "vi": "Làm mới token Shopee."}
    assert shopee["metrics"] == [
        {"name": "expires_in", "value": 259200, "unit": "s", "warn": 604800, "crit": 86400}
    ]
    assert document["results"][0]["subject"] is None
    assert document["results"][0]["hint"] is None
    assert document["results"][3]["summary"] == "hết thời gian chờ sau 5 s\nkhông đo được"
    assert "Hà Nội" in text  # ensure_ascii=False


def test_json_schema_rejects_unknown_fields(report: Report) -> None:
    validator = jsonschema.Draft202012Validator(json_report.schema())
    document = json.loads(json_report.render(report))
    document["results"][0]["metrics"][0]["extra"] = 1
    assert not validator.is_valid(document)
    document = json.loads(json_report.render(report))
    del document["results"][2]["next_command"]
    assert not validator.is_valid(document)


def test_json_turns_non_finite_numbers_into_null() -> None:
    bad = result(
        "x.y", Status.OK, metrics=(Metric(name="ratio", value=float("nan"), crit=float("inf")),)
    )
    document = json.loads(json_report.render(make_report(bad)))
    jsonschema.Draft202012Validator(json_report.schema()).validate(document)
    assert document["results"][0]["metrics"][0] == {
        "name": "ratio",
        "value": None,
        "unit": "",
        "warn": None,
        "crit": None,
    }


def test_fail_on_critical_changes_exit_code_of_a_warning_run() -> None:
    warned = make_report(result("a.b", Status.OK), result("c.d", Status.WARNING))
    assert json.loads(render(warned, OutputFormat.JSON))["exit_code"] == 1
    relaxed = render(warned, OutputFormat.JSON, fail_on=FailOn.CRITICAL)
    assert json.loads(relaxed)["exit_code"] == 0
    assert json.loads(relaxed)["status"] == "WARNING"  # the finding itself is not hidden


# --- JUnit --------------------------------------------------------------------------------


def _junit(text: str) -> ET.Element:
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(text)
    return ET.fromstring(text.encode("utf-8"))


def test_junit_validates_and_counts(report: Report) -> None:
    text = junit.render(report, lang="vi")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = _junit(text)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.attrib["name"] == "nfdoctor.diagnose"
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == ("6", "2", "1", "1")
    assert suite.get("time") == "0.420"
    assert suite.get("timestamp") == "2026-11-01T01:00:03"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {
        "nfdoctor.version": "0.1.0",
        "config": "/etc/nfdoctor/config.yaml",
        "token_store": "keyring",
    }

    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == [
        "database",
        "platform",
        "webhook",
        "ai",
        "messaging",
        "system",
    ]
    assert cases[1].get("name") == f"platform.shopee.auth · {SHOP}"
    assert cases[0].get("name") == "database.connect"
    assert list(cases[0]) == []  # OK: a bare passing testcase

    warning = cases[1].find("failure")
    assert warning is not None and warning.get("type") == "WARNING"
    assert warning.get("message") == "token hết hạn sau 3 ngày, warn < 7 d"
    assert warning.text is not None
    assert "Làm mới token Shopee." in warning.text
    assert "→ nfdoctor token refresh shopee" in warning.text

    critical = cases[2].find("failure")
    assert critical is not None and critical.get("type") == "CRITICAL"
    assert critical.text is not None and critical.text.startswith(
        "issuer: R3\nnot after: 2026-10-29"
    )
    assert "\x1b" not in (critical.get("message") or "")  # illegal in XML 1.0

    error = cases[3].find("error")
    assert error is not None and error.get("type") == "UNKNOWN"
    skipped = cases[4].find("skipped")
    assert skipped is not None and skipped.get("message") == "Zalo OA chưa cấu hình"


def test_junit_fail_on_critical_turns_warnings_into_passes(report: Report) -> None:
    root = _junit(junit.render(report, fail_on=FailOn.CRITICAL))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    assert root.get("failures") == "1"
    warning_case = suite.findall("testcase")[1]
    assert warning_case.find("failure") is None
    out = warning_case.find("system-out")
    assert out is not None and out.text is not None
    assert out.text.startswith("WARNING: token hết hạn sau 3 ngày, warn < 7 d")


def test_junit_xsd_rejects_a_broken_document(report: Report) -> None:
    text = junit.render(report).replace('tests="6"', 'tests="six"', 1)
    assert not xmlschema.XMLSchema(str(JUNIT_XSD)).is_valid(text)


def test_junit_empty_report_is_valid() -> None:
    root = _junit(junit.render(make_report(duration_s=0.0)))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "0"


# --- Nagios -------------------------------------------------------------------------------

_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
_PERF_ITEM = (
    rf"'(?:[^'=|]|'')+'=(?:{_NUMBER}|U)(?:s|ms|us|%|B|KB|MB|TB|c)?"
    rf"(?:;(?:{_NUMBER})?){{0,2}}"
)
NAGIOS_LINE = re.compile(
    r"^NFDOCTOR (OK|WARNING|CRITICAL|UNKNOWN) - "
    r"(\d+) critical, (\d+) warning, (\d+) unknown, (\d+) ok: "
    r"([^|\n]+?)"
    rf"(?: \| ({_PERF_ITEM}(?: {_PERF_ITEM})*))?\n$"
)


def test_nagios_is_one_line_matching_the_grammar(report: Report) -> None:
    text = nagios.render(report)
    assert text.count("\n") == 1
    match = NAGIOS_LINE.match(text)
    assert match is not None, text
    assert match.group(1, 2, 3, 4, 5) == ("CRITICAL", "1", "1", "1", "2")
    problems = match.group(6)
    # Worst first, each as "id[ · subject]: summary", the newline folded into a space.
    assert problems.startswith(f"webhook.tls · {WEBHOOK}: certificate expired 3 d ago")
    assert problems.index("ai.latency: hết thời gian chờ sau 5 s không đo được") < problems.index(
        "platform.shopee.auth"
    )
    # Labels hold spaces, so split by the item grammar, and check nothing was left between.
    perfdata = re.findall(_PERF_ITEM, match.group(7))
    assert " ".join(perfdata) == match.group(7)
    assert "'database.connect.latency'=0.012s;1;2" in perfdata
    assert "'database.connect.duration'=0.013s" in perfdata
    shop_label = SHOP.replace("'", "''")
    assert f"'platform.shopee.auth[{shop_label}].expires_in'=259200s;604800;86400" in perfdata
    assert "'system.disk[/var/lib/nfdoctor].disk_free'=42.5%;10;5" in perfdata
    assert "'ai.latency.duration'=5s" in perfdata
    # '=' cannot appear in a label, even quoted: it becomes '_'.
    webhook_label = WEBHOOK.replace("=", "_")
    tiny = [p for p in perfdata if ".tiny'" in p]
    assert tiny == [f"'webhook.tls[{webhook_label}].tiny'=0.0000001"]  # no exponent
    days = [p for p in perfdata if ".days_left'" in p]
    assert days == [f"'webhook.tls[{webhook_label}].days_left'=-3"]  # "d" is no perfdata unit
    assert "e-" not in match.group(7)


def test_nagios_all_passed_and_all_skipped() -> None:
    passed = nagios.render(make_report(result("a.b", Status.OK), result("c.d", Status.SKIPPED)))
    assert passed.startswith(
        "NFDOCTOR OK - 0 critical, 0 warning, 0 unknown, 1 ok: all checks passed | "
    )
    assert NAGIOS_LINE.match(passed)
    skipped = nagios.render(make_report(result("c.d", Status.SKIPPED)))
    assert skipped.startswith("NFDOCTOR OK - ")
    empty = nagios.render(make_report())
    assert empty == "NFDOCTOR OK - 0 critical, 0 warning, 0 unknown, 0 ok: all checks passed\n"


def test_nagios_lists_only_the_first_problems() -> None:
    many = [result(f"c.n{i}", Status.WARNING, summary=f"s{i}") for i in range(8)]
    text = nagios.render(make_report(*many))
    assert NAGIOS_LINE.match(text)
    assert "c.n4: s4; +3 more |" in text
    assert "c.n5:" not in text


# --- Prometheus ---------------------------------------------------------------------------


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(f.type == "gauge" for f in families.values())
    return {name: [(s.labels, s.value) for s in f.samples] for name, f in families.items()}


def test_prometheus_parses_and_values_match(report: Report) -> None:
    text = prometheus.render(report)
    samples = _samples(text)
    assert set(samples) == {
        "nfdoctor_check_status",
        "nfdoctor_check_skipped",
        "nfdoctor_check_duration_seconds",
        "nfdoctor_check_metric",
        "nfdoctor_run_status",
        "nfdoctor_run_duration_seconds",
        "nfdoctor_run_timestamp_seconds",
    }
    for name in samples:
        assert text.count(f"# TYPE {name} gauge\n") == 1
        assert text.count(f"# HELP {name} ") == 1

    assert samples["nfdoctor_check_status"] == [
        ({"check": "database.connect", "subject": ""}, 0.0),
        ({"check": "platform.shopee.auth", "subject": SHOP}, 1.0),
        ({"check": "webhook.tls", "subject": WEBHOOK}, 2.0),  # escapes round-trip
        ({"check": "ai.latency", "subject": ""}, 3.0),
        ({"check": "system.disk", "subject": "/var/lib/nfdoctor"}, 0.0),
    ]
    assert samples["nfdoctor_check_skipped"] == [({"check": "messaging.zalo", "subject": ""}, 1.0)]
    durations = {s[0]["check"]: s[1] for s in samples["nfdoctor_check_duration_seconds"]}
    assert durations == {
        "database.connect": 0.013,
        "platform.shopee.auth": 0.2,
        "webhook.tls": 0.1,
        "ai.latency": 5.0,
        "messaging.zalo": 0.0,
        "system.disk": 0.25,
    }
    metrics = {
        (s[0]["check"], s[0]["name"]): (s[0]["unit"], s[1])
        for s in samples["nfdoctor_check_metric"]
    }
    assert metrics == {
        ("database.connect", "latency"): ("s", 0.012),
        ("platform.shopee.auth", "expires_in"): ("s", 259200.0),
        ("webhook.tls", "days_left"): ("d", -3.0),
        ("webhook.tls", "tiny"): ("", 1e-7),
        ("system.disk", "disk_free"): ("%", 42.5),
    }
    assert samples["nfdoctor_run_status"] == [({"command": "diagnose"}, 2.0)]
    assert samples["nfdoctor_run_duration_seconds"] == [({"command": "diagnose"}, 0.42)]
    ((_, timestamp),) = samples["nfdoctor_run_timestamp_seconds"]
    assert timestamp == pytest.approx(STARTED_EPOCH)


def test_prometheus_escapes_label_values_per_spec() -> None:
    odd = result("a.b", Status.WARNING, subject='line1\nline2 "q" back\\slash')
    text = prometheus.render(make_report(odd))
    assert 'subject="line1\\nline2 \\"q\\" back\\\\slash"' in text
    (status,) = _samples(text)["nfdoctor_check_status"]
    assert status == ({"check": "a.b", "subject": 'line1\nline2 "q" back\\slash'}, 1.0)


def test_prometheus_all_skipped_run_is_ok_and_specials_are_spelled_right() -> None:
    skipped = result("a.b", Status.SKIPPED, metrics=(Metric(name="r", value=float("inf")),))
    text = prometheus.render(make_report(skipped))
    samples = _samples(text)
    assert "nfdoctor_check_status" not in samples
    assert samples["nfdoctor_run_status"] == [({"command": "diagnose"}, 0.0)]
    assert 'nfdoctor_check_metric{check="a.b",subject="",name="r",unit=""} +Inf\n' in text


# --- write_atomically ---------------------------------------------------------------------


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory of our own (conftest puts a working directory in tmp_path)."""
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def test_write_atomically_writes_replaces_and_sets_mode(out_dir: Path) -> None:
    target = out_dir / "nfdoctor.prom"
    target.write_text("old\n", encoding="utf-8")
    write_atomically(target, "nfdoctor_run_status 0\n# Hà Nội\n")
    assert target.read_text(encoding="utf-8") == "nfdoctor_run_status 0\n# Hà Nội\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    write_atomically(target, "secret\n", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in out_dir.iterdir()) == ["nfdoctor.prom"]


def test_write_atomically_missing_directory(out_dir: Path) -> None:
    target = out_dir / "missing" / "nfdoctor.prom"
    with pytest.raises(StateError, match=r"directory .*missing does not exist"):
        write_atomically(target, "x\n")
    assert not (out_dir / "missing").exists()  # not created behind the operator's back


def test_write_atomically_failure_leaves_no_temp_file(out_dir: Path) -> None:
    target = out_dir / "report.prom"
    target.mkdir()  # refused before any temp file is made: only regular files are replaced
    with pytest.raises(StateError, match=rf"{re.escape(str(target))} is a directory, not a "):
        write_atomically(target, "x\n")
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.prom"]
    assert target.is_dir()


def test_write_atomically_unencodable_text_leaves_no_temp_file(out_dir: Path) -> None:
    target = out_dir / "report.prom"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(StateError, match="cannot write"):
        write_atomically(target, "lone surrogate \udc80\n")
    assert target.read_text(encoding="utf-8") == "old\n"  # the old file is untouched
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.prom"]


def test_nagios_non_finite_value_is_undetermined() -> None:
    odd = result(
        "a.b", Status.OK, metrics=(Metric(name="r", value=float("nan"), warn=float("inf")),)
    )
    text = nagios.render(make_report(odd))
    assert NAGIOS_LINE.match(text)
    assert "'a.b.r'=U " in text
