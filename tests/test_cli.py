"""The command line: version, help, listing, diagnose end to end on the demo database."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_process

COMMANDS = [
    ["diagnose"],
    ["config", "init"],
    ["config", "validate"],
    ["config", "show"],
    ["simulator"],
]


def test_version(cli: Callable[..., CliResult]) -> None:
    from nfdoctor import __version__

    result = cli("--version")
    assert (result.code, result.stdout) == (0, f"nfdoctor {__version__}\n")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_documents_an_example(
    cli: Callable[..., CliResult], command: list[str]
) -> None:
    result = cli(*command, "--help")
    assert result.code == 0
    assert f"Example: nfdoctor {' '.join(command)}" in result.stdout


def test_top_level_help_explains_exit_codes(cli: Callable[..., CliResult]) -> None:
    result = cli("--help")
    assert "0 OK, 1 WARNING, 2 CRITICAL, 3" in result.stdout
    assert "Bad arguments and bad config also exit 3" in result.stdout


def test_list_shows_every_check_without_config(cli: Callable[..., CliResult]) -> None:
    from nfdoctor.checks import all_checks

    result = cli("diagnose", "--list")
    assert result.code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == [c.id for c in all_checks()]


def _demo_config(tmp_path: Path, demo_db: Path, extra: str = "") -> Path:
    path = tmp_path / "nfdoctor.yaml"
    path.write_text(f"database:\n  url: sqlite:///{demo_db.name}\n{extra}", encoding="utf-8")
    return path


def test_diagnose_json_on_demo_database(
    cli: Callable[..., CliResult], tmp_path: Path, demo_db: Path
) -> None:
    import jsonschema

    from nfdoctor.render.json_report import schema

    config = _demo_config(tmp_path, demo_db)
    result = cli("diagnose", "--config", str(config), "--only", "database,config", "-o", "json")
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema())
    statuses = {r["id"]: r["status"] for r in document["results"]}
    assert statuses == {
        "database.connect": "OK",
        "database.schema": "OK",
        "database.integrity": "OK",
        "config.changes": "OK",
    }
    assert result.code == 0 and document["exit_code"] == 0


def test_diagnose_reports_schema_drift_as_critical(
    cli: Callable[..., CliResult], tmp_path: Path, demo_db: Path
) -> None:
    import sqlite3

    with sqlite3.connect(demo_db) as conn:
        conn.execute("ALTER TABLE orders DROP COLUMN synced_at")
    config = _demo_config(tmp_path, demo_db)
    result = cli("diagnose", "--config", str(config), "--only", "database.schema", "-o", "plain")
    assert result.code == 2
    assert "schema drift: missing column orders.synced_at" in result.stdout


def test_missing_database_file_is_critical_and_not_created(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    config = tmp_path / "nfdoctor.yaml"
    config.write_text("database:\n  url: sqlite:///missing.db\n")
    result = cli("diagnose", "--config", str(config), "--only", "database", "-o", "plain")
    assert result.code == 2
    assert "not found" in result.stdout
    assert "skipped: database.connect is CRITICAL" in result.stdout
    assert not (tmp_path / "missing.db").exists()


def test_fail_on_critical_ignores_warnings(
    cli: Callable[..., CliResult], tmp_path: Path, demo_db: Path
) -> None:
    config = _demo_config(
        tmp_path, demo_db, "thresholds:\n  disk_free_warning: 100\n  disk_free_critical: 0\n"
    )
    result = cli("diagnose", "--config", str(config), "--only", "system.disk", "-o", "plain")
    assert result.code == 1
    result = cli(
        "diagnose",
        "--config",
        str(config),
        "--only",
        "system.disk",
        "-o",
        "plain",
        "--fail-on",
        "critical",
    )
    assert result.code == 0


def test_vietnamese_hints(cli: Callable[..., CliResult], tmp_path: Path, demo_db: Path) -> None:
    config = _demo_config(
        tmp_path, demo_db, "thresholds:\n  disk_free_warning: 100\n  disk_free_critical: 0\n"
    )
    result = cli(
        "diagnose", "--config", str(config), "--only", "system.disk", "-o", "plain", "--lang", "vi"
    )
    assert "Giải phóng dung lượng đĩa" in result.stdout
    result = cli("diagnose", "--config", str(config), "--only", "system.disk", "-o", "plain")
    assert "Free disk space where the database" in result.stdout


def test_locale_selects_vietnamese(
    cli: Callable[..., CliResult], tmp_path: Path, demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    config = _demo_config(
        tmp_path, demo_db, "thresholds:\n  disk_free_warning: 100\n  disk_free_critical: 0\n"
    )
    result = cli("diagnose", "--config", str(config), "--only", "system.disk", "-o", "plain")
    assert "Giải phóng dung lượng đĩa" in result.stdout


def test_prometheus_write_is_atomic_and_stdout_empty(
    cli: Callable[..., CliResult], tmp_path: Path, demo_db: Path
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    config = _demo_config(tmp_path, demo_db)
    target = tmp_path / "nfdoctor.prom"
    result = cli(
        "diagnose",
        "--config",
        str(config),
        "-o",
        "prometheus",
        "--write",
        str(target),
        "--only",
        "database",
    )
    assert result.stdout == ""
    families = {f.name: f for f in text_string_to_metric_families(target.read_text())}
    assert "nfdoctor_check_status" in families
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".nfdoctor.prom")] == []


def test_plain_is_default_when_piped_and_has_no_escape_codes(tmp_path: Path, demo_db: Path) -> None:
    config = _demo_config(tmp_path, demo_db)
    result = run_process("diagnose", "--config", str(config), "--only", "database")
    assert result.code == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert result.stdout.splitlines()[0].startswith("Status")


def test_config_init_then_validate_and_show(
    cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "new.yaml"
    result = cli("config", "init", "--path", str(target))
    assert result.code == 0 and target.exists()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    for name in (
        "NEXTFLOW_CRM_API_KEY",
        "NEXTFLOW_AI_API_KEY",
        "SHOPEE_PARTNER_KEY",
        "LAZADA_APP_SECRET",
        "TIKTOK_APP_SECRET",
        "FACEBOOK_APP_SECRET",
        "FACEBOOK_VERIFY_TOKEN",
        "ZALO_SECRET_KEY",
    ):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    result = cli("config", "validate", "--config", str(target))
    assert result.code == 0, result.stderr
    assert "valid (5 platform(s), 5 shop(s)/page(s)/OA(s), 8 secret(s) resolved)" in result.stdout
    result = cli("config", "show", "--config", str(target))
    assert "partner_key: env:SHOPEE_PARTNER_KEY" in result.stdout
    assert "value-of-" not in result.stdout
    again = cli("config", "init", "--path", str(target))
    assert again.code == 3 and "already exists" in again.stderr


def test_import_of_cli_stays_light() -> None:
    code = (
        "import sys, nfdoctor.cli.app;"
        "heavy = {'httpx', 'keyring', 'yaml', 'pydantic', 'rich', 'tabulate', 'sqlite3',"
        " 'psycopg', 'cryptography', 'nfdoctor.cli.webhook_cmd'};"
        "print(sorted(heavy & ({m.split('.')[0] for m in sys.modules} | set(sys.modules))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_version_builds_no_lazy_group(
    cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Typer builds every command before it parses; the webhook group is built only when
    used (start-up: benchmarks/startup.py)."""
    import nfdoctor.cli.app as app

    built: list[str] = []
    original = app.LazyGroup._group

    def spy(self: app.LazyGroup) -> object:
        built.append(self.name or "")
        return original(self)

    monkeypatch.setattr(app.LazyGroup, "_group", spy)
    assert cli("--version").code == 0
    assert built == []
    assert cli("webhook", "--help").code == 0
    assert "webhook" in built


@pytest.mark.postgres
def test_diagnose_against_real_postgresql(
    cli: Callable[..., CliResult], tmp_path: Path, pg_crm_schema: object
) -> None:
    url = pg_crm_schema.url  # type: ignore[attr-defined]
    config = tmp_path / "nfdoctor.yaml"
    config.write_text(f"database:\n  url: {url}\n")
    result = cli("diagnose", "--config", str(config), "--only", "database", "-o", "json")
    document = json.loads(result.stdout)
    statuses = {r["id"]: (r["status"], r["summary"]) for r in document["results"]}
    assert statuses["database.connect"][0] == "OK"
    assert statuses["database.connect"][1].startswith("postgresql ")
    assert statuses["database.schema"] == (
        "OK",
        "all tables and columns of CRM schema v1 are present",
    )
    assert statuses["database.integrity"][0] == "SKIPPED"
    assert result.code == 0

    with pg_crm_schema.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("ALTER TABLE messages DROP COLUMN reply_to_id")
    result = cli("diagnose", "--config", str(config), "--only", "database.schema", "-o", "plain")
    assert result.code == 2
    assert "missing column messages.reply_to_id" in result.stdout


@pytest.mark.postgres
def test_postgres_password_reference_is_used_and_masked(
    cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trust auth accepts any password, so the reference must resolve and never be shown.
    monkeypatch.setenv("NFD_PG_PASSWORD", "pg-secret-value-4411")
    config = tmp_path / "nfdoctor.yaml"
    config.write_text(
        "database:\n  url: postgresql://nobody@127.0.0.1:1/crm\n  password: env:NFD_PG_PASSWORD\n"
    )
    result = cli(
        "diagnose", "--config", str(config), "--only", "database.connect", "-o", "plain", "--debug"
    )
    assert result.code == 2
    assert "127.0.0.1:1" in result.stdout
    assert "pg-secret-value-4411" not in result.stdout + result.stderr


def test_empty_only_is_an_error_not_everything(
    cli: Callable[..., CliResult], tmp_path: Path, demo_db: Path
) -> None:
    config = _demo_config(tmp_path, demo_db)
    result = cli("diagnose", "--config", str(config), "--only", "")
    assert result.code == 3
    assert result.stderr.startswith("nfdoctor: usage: --only: no check id given")


def test_no_config_anywhere_names_where_it_looked(cli: Callable[..., CliResult]) -> None:
    if Path("/etc/nfdoctor/config.yaml").exists():
        pytest.skip("this machine has /etc/nfdoctor/config.yaml")
    result = cli("diagnose")
    assert result.code == 3
    assert result.stderr.startswith("nfdoctor: config: no config file found (looked in ")
    assert "Tip: run `nfdoctor config init`" in result.stderr
