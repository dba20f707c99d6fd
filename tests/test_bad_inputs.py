"""Bad inputs: every one exits 3 with one located line on stderr and writes nothing.

The contract (design.md, "Exit codes"): a bad argument or a bad config is UNKNOWN (3) with
one clear line on stderr naming what and where (file, line, column and key path for config
problems), never a traceback, optionally followed by a ``Tip:`` line. Nothing is measured,
so nothing may be written: not the config, not nfdoctor's state dir, not the database.

Each row of ``ROWS`` is one bad input; docs/bad-inputs.md is the same table for people.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_process

Snapshot = dict[str, tuple[str, bytes | None, int, int]]


# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """One bad input and the first stderr line it must produce.

    ``yaml`` is written to ``{config}`` (tmp_path/conf/nfdoctor.yaml) unless None. In
    ``args``, ``env`` values and ``expect``, ``{config}`` and ``{tmp}`` are replaced by
    the config path and tmp_path. ``expect`` is the start of the one ``nfdoctor:`` line;
    ``contains`` lists more text it must hold.
    """

    id: str
    expect: str
    yaml: str | None = None
    args: tuple[str, ...] = ("diagnose", "--config", "{config}")
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path, Path], None] | None = None
    contains: tuple[str, ...] = ()  # more text the line must hold, after ``expect``


SHOPEE = "platforms:\n  shopee:\n    partner_id: 2001234\n    partner_key: {key}\n"
SHOPS_TWO = (
    "platforms:\n"
    "  shopee:\n"
    "    partner_id: 2001234\n"
    "    partner_key: env:NFD_TEST_KEY\n"
    "    shops:\n"
    "      - shop_id: 220001\n"
    "      - shop_id: abc\n"
)
GOOD = "timezone: Asia/Ho_Chi_Minh\n"
#: Shopee and Lazada configured, TikTok configured but disabled (for the check rows)
PLATFORMS_CFG = (
    "timezone: Asia/Ho_Chi_Minh\n"
    "platforms:\n"
    "  shopee:\n"
    "    partner_id: 2001234\n"
    "    partner_key: env:NFD_TEST_KEY\n"
    "    shops:\n"
    "      - shop_id: 220001\n"
    "  lazada:\n"
    '    app_key: "100001"\n'
    "    app_secret: env:NFD_TEST_KEY\n"
    "    shops:\n"
    "      - seller_id: VN1A2B3C\n"
    "  tiktok:\n"
    "    enabled: false\n"
    "    app_key: 6abc123def456\n"
    "    app_secret: env:NFD_TEST_KEY\n"
    "    shops:\n"
    '      - shop_id: "7494000000000000001"\n'
)
PLATFORMS_ENV = {"NFD_TEST_KEY": "test-signing-key-0042"}
CFG = "nfdoctor: config: {config}"
SECRET = "nfdoctor: secret: {config}"
USAGE = "nfdoctor: usage: "


def _shopee(key: str) -> str:
    return SHOPEE.format(key=key)


def _write_bytes(data: bytes) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, config: Path) -> None:
        config.write_bytes(data)

    return setup


def _unreadable(tmp: Path, config: Path) -> None:
    # chmod 000 stops everyone but root. As root (CI containers) the file is still read,
    # so it also holds bytes that are not UTF-8: the row then proves the other refusal.
    config.write_bytes(b"timezone: \xff\xfe\n")
    config.chmod(0)


UNREADABLE_EXPECT = (
    CFG + ": not UTF-8 text (byte 10)"
    if os.geteuid() == 0
    else CFG + ": cannot read the config file (permission denied)"
)


def _config_is_directory(tmp: Path, config: Path) -> None:
    config.mkdir()


def _secret_file(name: str, content: bytes | None) -> Callable[[Path, Path], None]:
    """``content`` None makes ``name`` a directory; the file is next to the config."""

    def setup(tmp: Path, config: Path) -> None:
        target = config.parent / name
        if content is None:
            target.mkdir()
        else:
            target.write_bytes(content)

    return setup


def _existing_target(tmp: Path, config: Path) -> None:
    (tmp / "existing.yaml").write_text("# mine, hand-edited\ntimezone: UTC\n", encoding="utf-8")


ROWS: list[Bad] = [
    # --- malformed YAML ---
    Bad(
        "yaml-unclosed-bracket",
        CFG + ":3:3: invalid YAML: expected ',' or ']'",
        yaml="crm:\n  base_url: [unclosed\nai: {}\n",
    ),
    Bad(
        "yaml-bad-indentation",
        CFG + ":3:11: invalid YAML: mapping values are not allowed here",
        yaml="crm:\n  base_url: https://crm.example.vn\n   api_key: env:X\n",
    ),
    Bad(
        "yaml-tab-indentation",
        CFG + ":2:1: invalid YAML: found character '\\t' that cannot start any token",
        yaml="crm:\n\tbase_url: https://crm.example.vn\n",
    ),
    Bad(
        "yaml-unclosed-quote",
        CFG + ":2:1: invalid YAML: found unexpected end of stream",
        yaml='timezone: "Asia/Ho_Chi_Minh\n',
    ),
    Bad(
        "yaml-top-level-scalar",
        CFG + ":1:1: the top level must be a mapping of sections, got a string",
        yaml="just some words\n",
    ),
    Bad(
        "yaml-top-level-list",
        CFG + ":1:1: the top level must be a mapping of sections, got a list",
        yaml="- crm\n- database\n",
    ),
    Bad(
        "yaml-duplicate-key",
        CFG + ":4:5: platforms.shopee.partner_id: duplicate key",
        yaml="platforms:\n  shopee:\n    partner_id: 1\n    partner_id: 2\n"
        "    partner_key: env:K\n",
    ),
    # --- empty values that are not allowed ---
    Bad(
        "empty-database-url",
        CFG + ":2:3: database.url: the database URL is empty",
        yaml='database:\n  url: ""\n',
    ),
    Bad(
        "empty-secret",
        CFG + ":2:3: crm.api_key: empty secret; use env:VAR, file:PATH or keyring:SERVICE/NAME",
        yaml='crm:\n  api_key: ""\n',
    ),
    Bad("empty-timezone", CFG + ":1:1: timezone: unknown time zone ''", yaml='timezone: ""\n'),
    Bad(
        "empty-span",
        CFG + ":2:3: thresholds.check_timeout: '' is not a time span",
        yaml='thresholds:\n  check_timeout: ""\n',
    ),
    Bad(
        "empty-section",
        CFG + ":1:1: crm: expected a mapping of keys, got nothing (null)",
        yaml="crm:\ntimezone: UTC\n",
    ),
    # --- wrong types and out-of-range values ---
    Bad(
        "partner-id-not-integer",
        CFG + ":3:5: platforms.shopee.partner_id: expected an integer, got 'abc'",
        yaml='platforms:\n  shopee:\n    partner_id: "abc"\n    partner_key: env:K\n',
    ),
    Bad(
        "shop-id-not-integer",
        CFG + ":7:9: platforms.shopee.shops[1].shop_id: expected an integer, got 'abc'",
        yaml=SHOPS_TWO,
    ),
    Bad(
        "shops-not-a-list",
        CFG + ":5:5: platforms.shopee.shops: expected a list, got 220001",
        yaml=_shopee("env:K") + "    shops: 220001\n",
    ),
    Bad(
        "enabled-maybe",
        CFG + ":5:5: platforms.shopee.enabled: expected true or false, got 'maybe'",
        yaml=_shopee("env:K") + "    enabled: maybe\n",
    ),
    Bad(
        "disk-threshold-over-100",
        CFG + ":2:3: thresholds.disk_free_warning: must be at most 100, got 150",
        yaml="thresholds:\n  disk_free_warning: 150\n",
    ),
    Bad(
        "negative-load-threshold",
        CFG + ":2:3: thresholds.load_per_core_warning: must be more than zero, got -1",
        yaml="thresholds:\n  load_per_core_warning: -1\n",
    ),
    Bad(
        "warning-below-critical",
        CFG + ":1:1: thresholds: disk_free_warning must be greater "
        "than or equal to disk_free_critical",
        yaml="thresholds:\n  disk_free_warning: 3\n  disk_free_critical: 5\n",
    ),
    Bad(
        "notify-on-bad-choice",
        CFG + ":2:8: notifications.on[0]: expected one of 'warning', "
        "'critical' or 'unknown', got 'sometimes'",
        yaml="notifications:\n  on: [sometimes]\n",
    ),
    Bad(
        "unknown-platform",
        CFG + ":2:3: platforms.shoppe: unknown platform 'shoppe' (did you mean 'shopee'?)",
        yaml="platforms:\n  shoppe:\n    partner_id: 1\n",
    ),
    Bad(
        "missing-partner-key",
        CFG + ":2:3: platforms.shopee.partner_key: required key is missing",
        yaml="platforms:\n  shopee:\n    partner_id: 2001234\n",
    ),
    Bad(
        "crm-url-not-a-url",
        CFG + ":2:3: crm.base_url: expected an http(s) URL, got 'not a url'",
        yaml="crm:\n  base_url: not a url\n",
    ),
    Bad(
        "crm-url-ftp",
        CFG + ":2:3: crm.base_url: expected an http(s) URL, got 'ftp://x'",
        yaml="crm:\n  base_url: ftp://x\n",
    ),
    Bad(
        "database-url-mysql",
        CFG + ":2:3: database.url: unsupported database URL 'mysql://crm@db.internal/crm'",
        yaml="database:\n  url: mysql://crm@db.internal/crm\n",
    ),
    Bad(
        "database-url-sqlite-two-slashes",
        CFG + ":2:3: database.url: sqlite URL 'sqlite://crm.db' needs three slashes",
        yaml="database:\n  url: sqlite://crm.db\n",
    ),
    Bad(
        "bad-timezone",
        CFG + ":1:1: timezone: unknown time zone 'Mars/Olympus'",
        yaml="timezone: Mars/Olympus\n",
    ),
    Bad(
        "bad-span",
        CFG + ":3:3: database.timeout: 'forever' is not a time span",
        yaml="database:\n  url: sqlite:///crm.db\n  timeout: forever\n",
    ),
    Bad(
        "span-overflow",
        CFG + ":2:3: thresholds.check_timeout: ",
        yaml="thresholds:\n  check_timeout: 99999999999d\n",
    ),
    Bad(
        "span-infinite",
        CFG + ":2:3: thresholds.check_timeout: ",
        contains=("finite",),
        yaml="thresholds:\n  check_timeout: .inf\n",
    ),
    Bad(
        "check-timeout-zero",
        CFG + ":2:3: thresholds.check_timeout: must be more than zero, got '0s'",
        yaml="thresholds:\n  check_timeout: 0s\n",
    ),
    Bad(
        "check-timeout-negative",
        CFG + ":2:3: thresholds.check_timeout: ",
        contains=("negative",),
        yaml="thresholds:\n  check_timeout: -5\n",
    ),
    # --- secrets ---
    Bad(
        "secret-as-number",
        CFG + ":4:5: platforms.shopee.partner_key: expected a secret reference (env:VAR, "
        "file:PATH or keyring:SERVICE/NAME) or a quoted string, got an integer; the value is "
        "not shown",
        yaml=_shopee("12345"),
    ),
    Bad(
        "secret-ref-env-1BAD",
        CFG + ":4:5: platforms.shopee.partner_key: env: needs a "
        "variable name (env:SHOPEE_PARTNER_KEY), got '1BAD'",
        yaml=_shopee("env:1BAD"),
    ),
    Bad(
        "secret-keyring-no-backend",
        "nfdoctor: keyring: {config}:4:5: "
        "platforms.shopee.partner_key: the OS keyring has no usable backend",
        yaml=_shopee("keyring:nfdoctor/shopee"),
    ),
    Bad(
        "secret-env-missing",
        SECRET + ":4:5: platforms.shopee.partner_key: environment "
        "variable NFD_TEST_MISSING is not set",
        yaml=_shopee("env:NFD_TEST_MISSING"),
    ),
    Bad(
        "secret-env-empty",
        SECRET + ":4:5: platforms.shopee.partner_key: environment variable NFD_TEST_EMPTY is empty",
        yaml=_shopee("env:NFD_TEST_EMPTY"),
        env={"NFD_TEST_EMPTY": "  "},
    ),
    Bad(
        "secret-file-missing",
        SECRET + ":4:5: platforms.shopee.partner_key: secret file "
        "{tmp}/conf/shopee.key does not exist",
        yaml=_shopee("file:shopee.key"),
    ),
    Bad(
        "secret-file-empty",
        SECRET + ":4:5: platforms.shopee.partner_key: secret file {tmp}/conf/shopee.key is empty",
        yaml=_shopee("file:shopee.key"),
        setup=_secret_file("shopee.key", b"\n"),
    ),
    Bad(
        "secret-file-directory",
        SECRET + ":4:5: platforms.shopee.partner_key: secret file "
        "{tmp}/conf/shopee.key is a directory",
        yaml=_shopee("file:shopee.key"),
        setup=_secret_file("shopee.key", None),
    ),
    # --- the config file itself ---
    Bad("config-unreadable", UNREADABLE_EXPECT, setup=_unreadable),
    Bad(
        "config-is-directory",
        CFG + ": config file is a directory, not a regular file (--config)",
        setup=_config_is_directory,
    ),
    Bad(
        "config-flag-missing-file",
        "nfdoctor: config: {tmp}/nope.yaml: config file does not exist (--config)",
        args=("diagnose", "--config", "{tmp}/nope.yaml"),
    ),
    Bad(
        "config-env-missing-file",
        "nfdoctor: config: {tmp}/nope.yaml: config file does not exist ($NFDOCTOR_CONFIG)",
        args=("diagnose",),
        env={"NFDOCTOR_CONFIG": "{tmp}/nope.yaml"},
    ),
    Bad(
        "config-none-anywhere",
        "nfdoctor: config: ",
        args=("diagnose",),
        contains=(
            "no config file found (looked in {tmp}/work/nfdoctor.yaml, "
            "{tmp}/xdg-config/nfdoctor/config.yaml, /etc/nfdoctor/config.yaml)",
        ),
    ),
    Bad(
        "config-not-utf8",
        CFG + ": not UTF-8 text (byte 19); save the file as UTF-8",
        setup=_write_bytes(b"timezone: UTC\n# caf\xe9 (latin-1)\n"),
    ),
    Bad(
        "config-huge",
        CFG + ": file is larger than 1 MiB; not a config file?",
        setup=_write_bytes(GOOD.encode() + b"# padding\n" * 110_000),
    ),
    # --- command line ---
    Bad(
        "only-unknown-id",
        USAGE + "--only: unknown check 'databse.conect' (did you mean 'database.connect'?)",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--only", "databse.conect"),
    ),
    Bad(
        "skip-unknown-id",
        USAGE + "--skip: unknown check 'systen'",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--skip", "systen"),
    ),
    Bad(
        "only-skip-leave-nothing",
        USAGE + "--only/--skip left no check to run",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--only", "system", "--skip", "system"),
    ),
    Bad(
        "output-bad",
        USAGE + "Invalid value for '--output' / '-o'",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--output", "xml"),
    ),
    Bad(
        "fail-on-bad",
        USAGE + "Invalid value for '--fail-on'",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--fail-on", "never"),
    ),
    Bad(
        "lang-bad",
        USAGE + "--lang: expected vi or en, got 'fr'",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--lang", "fr"),
    ),
    Bad(
        "timeout-abc",
        USAGE + "--timeout: 'abc' is not a time span",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--timeout", "abc"),
    ),
    Bad(
        "timeout-zero",
        USAGE + "--timeout: must be more than zero",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--timeout", "0s"),
    ),
    Bad(
        "timeout-negative",
        USAGE + "--timeout: '-5s' is not a time span",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--timeout", "-5s"),
    ),
    Bad(
        "timeout-overflow",
        USAGE + "--timeout: ",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--timeout", "99999999999d"),
    ),
    Bad(
        "write-missing-directory",
        USAGE + "--write: directory {tmp}/no-such-dir does not exist",
        yaml=GOOD,
        args=(
            "diagnose",
            "--config",
            "{config}",
            "-o",
            "prometheus",
            "--write",
            "{tmp}/no-such-dir/nfdoctor.prom",
        ),
    ),
    Bad(
        "write-onto-directory",
        USAGE + "--write: ",
        yaml=GOOD,
        contains=("{tmp}/out is a directory",),
        args=("diagnose", "--config", "{config}", "-o", "prometheus", "--write", "{tmp}/out"),
        setup=lambda tmp, config: (tmp / "out").mkdir(),
    ),
    Bad(
        "write-empty-path",
        USAGE + "--write: ",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "-o", "prometheus", "--write", ""),
    ),
    Bad("unknown-command", USAGE + "No such command 'diagnoze'", args=("diagnoze",)),
    Bad(
        "unknown-option",
        USAGE + "No such option: --verbose",
        yaml=GOOD,
        args=("diagnose", "--config", "{config}", "--verbose"),
    ),
    Bad(
        "init-onto-existing",
        USAGE + "{tmp}/existing.yaml already exists; use --force",
        args=("config", "init", "--path", "{tmp}/existing.yaml"),
        setup=_existing_target,
    ),
    Bad(
        "init-missing-directory",
        USAGE + "--path: directory {tmp}/no-such-dir does not exist",
        args=("config", "init", "--path", "{tmp}/no-such-dir/config.yaml"),
    ),
    # --- the config commands on a broken config ---
    Bad(
        "validate-broken",
        CFG + ":7:9: platforms.shopee.shops[1].shop_id: expected an integer, got 'abc'",
        yaml=SHOPS_TWO,
        args=("config", "validate", "--config", "{config}"),
    ),
    Bad(
        "show-broken",
        CFG + ":2:3: crm.base_url: expected an http(s) URL",
        yaml="crm:\n  base_url: not a url\n",
        args=("config", "show", "--config", "{config}"),
    ),
    Bad(
        "show-json-broken-yaml",
        CFG + ":3:3: invalid YAML: expected ',' or ']'",
        yaml="crm:\n  base_url: [unclosed\nai: {}\n",
        args=("config", "show", "--json", "--config", "{config}"),
    ),
    Bad(
        "validate-secret-missing",
        SECRET + ":4:5: platforms.shopee.partner_key: environment "
        "variable NFD_TEST_MISSING is not set",
        yaml=_shopee("env:NFD_TEST_MISSING"),
        args=("config", "validate", "--config", "{config}"),
    ),
    # --- nfdoctor check, and the platform scope of diagnose ---
    Bad(
        "check-platform-typo",
        USAGE + "unknown platform 'shoppe' (did you mean 'shopee'?); "
        "expected one of shopee, lazada, tiktok, facebook, zalo",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "shoppe", "--config", "{config}"),
    ),
    Bad(
        "check-platform-unknown",
        USAGE + "unknown platform 'sendo'; expected one of shopee, lazada,",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "sendo", "--config", "{config}"),
    ),
    Bad(
        "check-platform-not-configured",
        USAGE + "zalo is not configured (no enabled platforms.zalo section); "
        "configured: shopee, lazada",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "zalo", "--config", "{config}"),
    ),
    Bad(
        "check-platform-disabled",
        USAGE + "tiktok is not configured (no enabled platforms.tiktok section); "
        "configured: shopee, lazada",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "tiktok", "--config", "{config}"),
    ),
    Bad(
        "check-platform-empty",
        USAGE + "PLATFORM: empty; expected a platform name or all",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "", "--config", "{config}"),
    ),
    Bad(
        "check-platform-blank",
        USAGE + "PLATFORM: empty; expected a platform name or all",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "  ", "--config", "{config}"),
    ),
    Bad(
        "check-platform-missing",
        USAGE + "Missing argument 'platform'",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "--config", "{config}"),
    ),
    Bad(
        "check-shop-unknown",
        USAGE + "--shop: no shop, page or OA '22001' in shopee (did you mean '220001'?)",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "shopee", "--shop", "22001", "--config", "{config}"),
    ),
    Bad(
        "check-shop-of-another-platform",
        USAGE + "--shop: no shop, page or OA 'VN1A2B3C' in shopee",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "shopee", "--shop", "VN1A2B3C", "--config", "{config}"),
    ),
    Bad(
        "check-shop-empty",
        USAGE + "--shop: empty id",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "all", "--shop", "", "--config", "{config}"),
    ),
    Bad(
        "check-shop-blank",
        USAGE + "--shop: empty id",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "shopee", "--shop", " ", "--config", "{config}"),
    ),
    Bad(
        "check-flag-timeout-zero",
        USAGE + "--timeout: must be more than zero",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "shopee", "--timeout", "0s", "--config", "{config}"),
    ),
    Bad(
        "check-flag-timeout-bare-zero",
        USAGE + "--timeout: '0' is not a time span",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("check", "shopee", "--timeout", "0", "--config", "{config}"),
    ),
    Bad(
        "check-no-platform-configured",
        USAGE + "no platform is configured in {config}; add a platforms: section "
        "(see nfdoctor config init)",
        yaml=GOOD,
        args=("check", "all", "--config", "{config}"),
    ),
    Bad(
        "check-platform-when-none-configured",
        USAGE + "shopee is not configured (no enabled platforms.shopee section); configured: none",
        yaml=GOOD,
        args=("check", "shopee", "--config", "{config}"),
    ),
    Bad(
        "check-secret-missing",
        SECRET + ":5:5: platforms.shopee.partner_key: environment "
        "variable NFD_TEST_MISSING is not set",
        yaml=PLATFORMS_CFG.replace("env:NFD_TEST_KEY", "env:NFD_TEST_MISSING", 1),
        env=PLATFORMS_ENV,
        args=("check", "shopee", "--config", "{config}"),
    ),
    Bad(
        "diagnose-platform-unknown",
        USAGE + "unknown platform 'bogus'; expected one of shopee, lazada,",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("diagnose", "--config", "{config}", "--platform", "bogus"),
    ),
    Bad(
        "diagnose-platform-typo-in-list",
        USAGE + "unknown platform 'lazda' (did you mean 'lazada'?)",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("diagnose", "--config", "{config}", "--platform", "shopee,lazda"),
    ),
    Bad(
        "diagnose-platform-empty",
        USAGE + "--platform: no platform given",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("diagnose", "--config", "{config}", "--platform", " , "),
    ),
    Bad(
        "diagnose-platform-not-configured",
        USAGE + "facebook is not configured (no enabled platforms.facebook section)",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("diagnose", "--config", "{config}", "--platform", "facebook"),
    ),
    Bad(
        "diagnose-only-unconfigured-platform",
        USAGE + "--only/--skip left no check to run (platform checks run only for configured "
        "platforms)",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("diagnose", "--config", "{config}", "--only", "platforms.zalo"),
    ),
    Bad(
        "diagnose-only-disabled-platform",
        USAGE + "--only/--skip left no check to run",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("diagnose", "--config", "{config}", "--only", "platforms.tiktok.token"),
    ),
    Bad(
        "diagnose-only-platform-check-typo",
        USAGE + "--only: unknown check 'platforms.shoppe.api' (did you mean "
        "'platforms.shopee.api'?)",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("diagnose", "--config", "{config}", "--only", "platforms.shoppe.api"),
    ),
    Bad(
        "diagnose-shop-unknown",
        USAGE + "--shop: no shop, page or OA '999' in shopee, lazada",
        yaml=PLATFORMS_CFG,
        env=PLATFORMS_ENV,
        args=("diagnose", "--config", "{config}", "--shop", "999"),
    ),
]

#: rows run again as a real process: the same contract through `python -m nfdoctor`
PROCESS_ROWS = (
    "yaml-unclosed-bracket",
    "secret-env-missing",
    "output-bad",
    "config-env-missing-file",
    "check-platform-typo",
)


# --- helpers ------------------------------------------------------------------------------


def _fill(text: str, tmp: Path, config: Path) -> str:
    return text.replace("{config}", str(config)).replace("{tmp}", str(tmp))


def snapshot(root: Path) -> Snapshot:
    """Every file and directory under ``root``: kind, bytes (files), mtime and mode."""
    seen: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            info = path.lstat()
            data: bytes | None = None
            if path.is_file() and not path.is_symlink():
                try:
                    data = path.read_bytes()
                except PermissionError:
                    data = None
            kind = "dir" if path.is_dir() else "file"
            seen[str(path.relative_to(root))] = (kind, data, info.st_mtime_ns, info.st_mode)
    return seen


def assert_nothing_written(before: Snapshot, after: Snapshot, tmp: Path) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert (added, removed, changed) == ([], [], [])
    assert not (tmp / "xdg-state").exists(), "the XDG state dir was created"


PYTHON_REPR = re.compile(r"datetime\.\w+\(|<class '|object at 0x")


def assert_one_located_line(result: CliResult, expect: str, contains: tuple[str, ...] = ()) -> None:
    """Exit 3; stdout empty; stderr one ``nfdoctor:`` line (plus a Tip); no traceback."""
    shown = f"exit {result.code}\n--- stdout:\n{result.stdout}--- stderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    lines = result.stderr.splitlines()
    assert lines, f"nothing on stderr; {shown}"
    assert lines[0].startswith(expect), f"\n got: {lines[0]}\nwant: {expect}...\n{shown}"
    for text in contains:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    # One clear line for an operator: no Python internals quoted into it.
    assert not PYTHON_REPR.search(lines[0]), f"Python repr in the message: {lines[0]}"
    assert result.stdout == "", shown
    assert len(lines) <= 2, shown
    if len(lines) == 2:
        assert lines[1].startswith("Tip: "), shown
    assert result.code == 3, shown


@pytest.fixture
def prepared(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Bad, Path, list[str]]]:
    row: Bad = request.param
    if row.id == "config-none-anywhere" and Path("/etc/nfdoctor/config.yaml").exists():
        pytest.skip("this machine has /etc/nfdoctor/config.yaml")
    config = tmp_path / "conf" / "nfdoctor.yaml"
    config.parent.mkdir()
    if row.yaml is not None:
        config.write_text(row.yaml, encoding="utf-8")
    if row.setup is not None:
        row.setup(tmp_path, config)
    for name, value in row.env.items():
        monkeypatch.setenv(name, _fill(value, tmp_path, config))
    monkeypatch.delenv("NFD_TEST_MISSING", raising=False)
    args = [_fill(arg, tmp_path, config) for arg in row.args]
    yield row, config, args
    if config.exists() and not config.is_dir():
        config.chmod(0o600)  # so pytest can clean tmp_path up as any user


# --- the tests ----------------------------------------------------------------------------


def test_the_table_is_big_and_ids_unique() -> None:
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids))
    assert len(ROWS) >= 45
    assert set(PROCESS_ROWS) <= set(ids)


@pytest.mark.parametrize("prepared", ROWS, ids=[row.id for row in ROWS], indirect=True)
def test_bad_input(
    prepared: tuple[Bad, Path, list[str]], cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    row, config, args = prepared
    before = snapshot(tmp_path)
    result = cli(*args)
    assert_one_located_line(
        result,
        _fill(row.expect, tmp_path, config),
        tuple(_fill(text, tmp_path, config) for text in row.contains),
    )
    assert_nothing_written(before, snapshot(tmp_path), tmp_path)


@pytest.mark.parametrize(
    "prepared",
    [r for r in ROWS if r.id in PROCESS_ROWS],
    ids=[r.id for r in ROWS if r.id in PROCESS_ROWS],
    indirect=True,
)
def test_bad_input_real_process(prepared: tuple[Bad, Path, list[str]], tmp_path: Path) -> None:
    row, config, args = prepared
    env = dict(os.environ)  # clean_environment's XDG dirs, HOME, LANG, keyring backend
    before = snapshot(tmp_path)
    result = run_process(*args, env=env, cwd=tmp_path / "work")
    assert_one_located_line(
        result,
        _fill(row.expect, tmp_path, config),
        tuple(_fill(text, tmp_path, config) for text in row.contains),
    )
    assert_nothing_written(before, snapshot(tmp_path), tmp_path)


# --- database files: check results, not usage errors ----------------------------------------


def _db_config(tmp_path: Path, db: Path, timeout: str = "5s") -> Path:
    config = tmp_path / "conf" / "nfdoctor.yaml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f"database:\n  url: sqlite:///{db}\n  timeout: {timeout}\n", encoding="utf-8")
    return config


def _summary_line(stdout: str, check_id: str) -> str:
    """The plain table's row for ``check_id``: ``STATUS  check.id  summary``."""
    row = re.compile(rf"^[A-Z]+ +{re.escape(check_id)} {{2,}}\S")
    lines = [line for line in stdout.splitlines() if row.match(line)]
    assert len(lines) == 1, stdout
    return lines[0]


def test_database_file_that_is_not_sqlite(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    db = tmp_path / "crm.db"
    db.write_bytes(b"id,name\n1,Thoi Trang Ha My\n" * 200)
    config = _db_config(tmp_path, db)
    before = snapshot(tmp_path)
    result = cli("diagnose", "--config", str(config), "--only", "database", "-o", "plain")
    assert "Traceback" not in result.stdout + result.stderr
    assert result.code == 3, result
    line = _summary_line(result.stdout, "database.connect")
    assert line.startswith("UNKNOWN")
    assert f"{db} is not a SQLite database" in line
    assert_nothing_written(before, snapshot(tmp_path), tmp_path)


def test_database_file_locked(tmp_path: Path, cli: Callable[..., CliResult], demo_db: Path) -> None:
    config = _db_config(tmp_path, demo_db, timeout="200ms")
    holder = sqlite3.connect(demo_db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        before = snapshot(tmp_path)
        result = cli("diagnose", "--config", str(config), "--only", "database", "-o", "plain")
        after = snapshot(tmp_path)
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert "Traceback" not in result.stdout + result.stderr
    assert result.code == 3, result
    line = _summary_line(result.stdout, "database.connect")
    assert line.startswith("UNKNOWN")
    assert f"{demo_db} is locked by another process (waited 0.2 s)" in line
    assert_nothing_written(before, after, tmp_path)


def test_unreachable_postgresql_is_critical(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    import psycopg  # noqa: F401 - CI installs the postgres extra: a missing driver must fail

    config = tmp_path / "conf" / "nfdoctor.yaml"
    config.parent.mkdir()
    config.write_text(
        "database:\n  url: postgresql://nobody@127.0.0.1:1/x\n  timeout: 2s\n", encoding="utf-8"
    )
    before = snapshot(tmp_path)
    result = cli("diagnose", "--config", str(config), "--only", "database.connect", "-o", "plain")
    assert "Traceback" not in result.stdout + result.stderr
    assert result.code == 2, result
    line = _summary_line(result.stdout, "database.connect")
    assert line.startswith("CRITICAL")
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in line
    assert_nothing_written(before, snapshot(tmp_path), tmp_path)


# --- a tiny file that expands exponentially ------------------------------------------------


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """'Billion laughs': 1 KB of YAML aliases that expands to 10**9 strings.

    The 1 MiB size limit does not catch it; the loader must refuse (or not expand) aliases
    beyond a sane size and exit 3 with one located line, within seconds.
    """
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    config = tmp_path / "conf" / "nfdoctor.yaml"
    config.parent.mkdir()
    config.write_text("\n".join(lines) + "\nlogs:\n  paths: *a8\n", encoding="utf-8")
    assert config.stat().st_size < 1024
    before = snapshot(tmp_path)
    try:
        result = run_process(
            "config",
            "validate",
            "--config",
            str(config),
            env=dict(os.environ),
            cwd=tmp_path / "work",
            timeout=5,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("nfdoctor config validate still expanding a 1 KB YAML alias bomb after 5 s")
    assert_one_located_line(result, f"nfdoctor: config: {config}")
    assert_nothing_written(before, snapshot(tmp_path), tmp_path)


# --- the token store: check results, not usage errors ---------------------------------------

#: a token value inside a broken token file: no message may quote it
CORRUPT_TOKEN = "tok-in-corrupt-file-5be1d7"


def _platform_rows(stdout: str, check_id: str) -> list[str]:
    """The plain report's rows of ``check_id`` (per-account rows name the account)."""
    row = re.compile(rf"^[A-Z]+ +{re.escape(check_id)}( · \S.*?)? {{2,}}\S")
    return [line for line in stdout.splitlines() if row.match(line)]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            b'{"format": "nfdoctor.tokens/v1", "tokens": {"shopee": {"1": {"access_token": "'
            + CORRUPT_TOKEN.encode(),
            "not valid JSON",
        ),
        (
            b'{"format": "nfdoctor.tokens/v9", "tokens": {"shopee": {"1": {"access_token": "'
            + CORRUPT_TOKEN.encode()
            + b'"}}}}',
            "unknown token file format 'nfdoctor.tokens/v9'",
        ),
        (b'["' + CORRUPT_TOKEN.encode() + b'"]', "expected a JSON object, got a list"),
        (b'{"tokens": "' + CORRUPT_TOKEN.encode() + b'\xff"}', "not UTF-8"),
        (
            b'{"format": "nfdoctor.tokens/v1", "tokens": {"shopee": "'
            + CORRUPT_TOKEN.encode()
            + b'"}}',
            "tokens.shopee: expected an object of accounts, got a string",
        ),
    ],
    ids=["truncated", "future-format", "list", "not-utf8", "platform-not-object"],
)
def test_corrupt_token_file_is_unknown_and_left_as_it_is(
    tmp_path: Path, cli: Callable[..., CliResult], content: bytes, says: str
) -> None:
    from nfdoctor.simulator.app import build_simulator
    from nfdoctor.simulator.server import SimulatorServer, write_config

    app, state = build_simulator(seed=7)
    server = SimulatorServer(app, port=0)
    server.start_in_thread()
    try:
        config = tmp_path / "conf" / "sim.yaml"
        config.parent.mkdir()
        write_config(config, server.url, state)
        tokens = config.parent / "sim-secrets" / "tokens.json"
        tokens.write_bytes(content)
        before = snapshot(tmp_path)
        result = cli("check", "shopee", "--config", str(config), "-o", "plain")
        after = snapshot(tmp_path)
    finally:
        server.stop()
    shown = f"exit {result.code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    # The host answers (connectivity OK); what the store holds cannot be judged: UNKNOWN.
    assert result.code == 3, shown
    (connectivity,) = _platform_rows(result.stdout, "platforms.shopee.connectivity")
    assert connectivity.startswith("OK"), shown
    for check_id in ("platforms.shopee.api", "platforms.shopee.token"):
        (line,) = _platform_rows(result.stdout, check_id)
        assert line.startswith("UNKNOWN"), shown
        assert f"{tokens}" in line and says in line, line
    assert CORRUPT_TOKEN not in result.stdout + result.stderr
    assert tokens.read_bytes() == content
    assert_nothing_written(before, after, tmp_path)


def test_keyring_token_store_without_a_usable_backend(
    tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``tokens:`` section means the OS keyring; the test env has keyring's fail backend."""
    monkeypatch.setenv("NFD_TEST_KEY", PLATFORMS_ENV["NFD_TEST_KEY"])
    config = tmp_path / "conf" / "nfdoctor.yaml"
    config.parent.mkdir()
    config.write_text(PLATFORMS_CFG, encoding="utf-8")
    before = snapshot(tmp_path)
    result = cli(
        "diagnose",
        "--config",
        str(config),
        "--only",
        "platforms.lazada.api,platforms.lazada.token",
        "-o",
        "plain",
    )
    shown = f"exit {result.code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert result.code == 3, shown
    for check_id in ("platforms.lazada.api", "platforms.lazada.token"):
        (line,) = _platform_rows(result.stdout, check_id)
        assert line.startswith("UNKNOWN"), shown
        assert "cannot keep tokens in the OS keyring" in line, line
        assert "set `tokens: {store: file}` in the config" in line, line
    assert_nothing_written(before, snapshot(tmp_path), tmp_path)


def test_keyring_token_store_next_command_is_not_config_validate(
    tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("NFD_TEST_KEY", PLATFORMS_ENV["NFD_TEST_KEY"])
    config = tmp_path / "conf" / "nfdoctor.yaml"
    config.parent.mkdir()
    config.write_text(PLATFORMS_CFG, encoding="utf-8")
    validated = cli("config", "validate", "--config", str(config))
    assert validated.code == 0 and ": valid (" in validated.stdout
    result = cli(
        "diagnose", "--config", str(config), "--only", "platforms.lazada.token", "-o", "json"
    )
    assert result.code == 3, result
    (token,) = json.loads(result.stdout)["results"]
    assert token["status"] == "UNKNOWN"
    # The way out is tokens.store: file (in the summary); config validate would say "valid".
    assert token["next_command"] is None
