"""No secret value leaves nfdoctor: not on stdout, not on stderr, not in any file it writes.

A config holds a distinctive fake value for EVERY secret field of the model (a test below
proves the list is complete), written as ``env:``, ``file:`` and inline references, plus a
database password either in ``database.password`` or inside the URL. Every command runs,
in every output format, with ``--debug``, failing, and after the secrets rotate; then
stdout, stderr and every file under tmp_path (the state dir included; the config and the
secret files themselves excluded) are searched for each value and for the marker ``LEAK``
that every value carries, so even a fragment of one is caught.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import quote, quote_plus

import pytest
from pydantic import BaseModel

from nfdoctor.config.loader import load_config
from nfdoctor.config.model import NfdoctorConfig
from nfdoctor.secrets.reference import SecretRef
from tests.conftest import CliResult, run_process
from tests.served import serve

MARKER = "LEAK"  # in every secret value; in no env var name, file name or key
FORMATS = ("table", "plain", "json", "junit", "nagios", "prometheus")

#: env var → value (the config references these as env:NAME)
ENV_SECRETS = {
    "NFD_T_CRM": "LEAK-env-crm-3b1d5e",
    "NFD_T_DBPASS": "LEAK-env-dbpass-c41f0a",
    "NFD_T_SHOPEE": "LEAK-env-shopee-7f3a9c",
    "NFD_T_FACEBOOK": "LEAK-env-facebook-6c2f11",
    "NFD_T_ZALO_OA": "LEAK-env-zalo-oa-0f9e27",
}
#: file name (next to the config) → value (referenced as file:secrets/NAME)
FILE_SECRETS = {
    "ai.key": "LEAK-file-ai-5e7a90",
    "lazada.key": "LEAK-file-lazada-2d8e44",
    "zalo.key": "LEAK-file-zalo-8b3c61",
}
INLINE_SECRETS = {
    "tiktok": "LEAK-inline-tiktok-9a0b72",
    "fb_verify": "LEAK-inline-fbverify-1e4d38",
    "webhook": "https://hooks.example.vn/services/T0/B0/LEAK-inline-webhook-4a6d05",
}
URL_PASSWORD = "LEAK-url-dbpass-91c2e6"

CONFIG = """\
crm:
  base_url: https://crm.example.vn
  status_url: https://crm.example.vn/api/status
  api_key: env:NFD_T_CRM
database:
{database}
  timeout: 1s
ai:
  endpoint: https://crm.example.vn/api/ai/reply
  api_key: file:secrets/ai.key
platforms:
  shopee:
    base_url: http://127.0.0.1:1/shopee  # refused: no platform is reached
    partner_id: 2001234
    partner_key: env:NFD_T_SHOPEE
    shops:
      - shop_id: 220001
  lazada:
    base_url: http://127.0.0.1:1/lazada  # refused: no platform is reached
    app_key: "100001"
    app_secret: file:secrets/lazada.key
    shops:
      - seller_id: VN1A2B3C
  tiktok:
    base_url: http://127.0.0.1:1/tiktok  # refused: no platform is reached
    app_key: 6abc123def456
    app_secret: {tiktok}
  facebook:
    base_url: http://127.0.0.1:1/facebook  # refused: no platform is reached
    app_id: "100000000000001"
    app_secret: env:NFD_T_FACEBOOK
    verify_token: {fb_verify}
    pages:
      - page_id: "100000000000123"
  zalo:
    base_url: http://127.0.0.1:1/zalo  # refused: no platform is reached
    app_id: "1234567890123456789"
    secret_key: file:secrets/zalo.key
    oas:
      - oa_id: "4318000000000000001"
        oa_secret: env:NFD_T_ZALO_OA
notifications:
  webhook_url: {webhook}
"""
DATABASE = {
    "password-key": "  url: postgresql://nfd@127.0.0.1:1/crm\n  password: env:NFD_T_DBPASS",
    "password-in-url": f"  url: postgresql://nfd:{URL_PASSWORD}@127.0.0.1:1/crm",
}


def all_secret_values() -> list[str]:
    return [*ENV_SECRETS.values(), *FILE_SECRETS.values(), *INLINE_SECRETS.values(), URL_PASSWORD]


@dataclass
class Setup:
    """The written config, its secret files, and everything the runs produced."""

    tmp: Path
    config: Path
    secret_files: list[Path]
    outputs: list[tuple[str, str]]  # (where, text) to search

    def record(self, label: str, result: CliResult) -> CliResult:
        self.outputs.append((f"{label}: stdout", result.stdout))
        self.outputs.append((f"{label}: stderr", result.stderr))
        return result

    def written_files(self) -> Iterator[Path]:
        """Every file under tmp_path except the config and the secret files we wrote."""
        skip = {self.config, *self.secret_files}
        for path in sorted(self.tmp.rglob("*")):
            if path.is_file() and path not in skip:
                yield path

    def leaks(self, extra: tuple[str, ...] = ()) -> list[str]:
        """Every (place, secret) where a secret or the marker shows up."""
        found = []
        texts = list(self.outputs)
        for path in self.written_files():
            texts.append(
                (f"file {path.relative_to(self.tmp)}", path.read_bytes().decode("utf-8", "replace"))
            )
        for where, text in texts:
            for secret in (*all_secret_values(), *extra):
                if secret in text:
                    found.append(f"{where}: contains {secret!r}")
            if MARKER in text and not any(f.startswith(f"{where}:") for f in found):
                line = next(x for x in text.splitlines() if MARKER in x)
                found.append(f"{where}: contains the marker: {line.strip()[:200]}")
        return found


def assert_no_leaks(setup: Setup, extra: tuple[str, ...] = ()) -> None:
    leaks = setup.leaks(extra)
    assert not leaks, "secret values leaked:\n" + "\n".join(leaks)


def write_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str) -> Setup:
    conf_dir = tmp_path / "conf"
    (conf_dir / "secrets").mkdir(parents=True)
    config = conf_dir / "nfdoctor.yaml"
    config.write_text(CONFIG.format(database=DATABASE[variant], **INLINE_SECRETS), encoding="utf-8")
    secret_files = []
    for name, value in FILE_SECRETS.items():
        path = conf_dir / "secrets" / name
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o600)
        secret_files.append(path)
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "out").mkdir()
    return Setup(tmp=tmp_path, config=config, secret_files=secret_files, outputs=[])


@pytest.fixture(params=sorted(DATABASE))
def every_setup(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Setup:
    """Both database variants: the password in ``database.password``, and inside the URL."""
    return write_setup(tmp_path, monkeypatch, request.param)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    return write_setup(tmp_path, monkeypatch, "password-key")


# --- the config covers every secret field ----------------------------------------------------


def _secret_paths(annotation: Any, path: str) -> Iterator[str]:
    """Key paths (``[]`` for any list index) of every SecretRef field under ``annotation``."""
    if annotation is SecretRef:
        yield path
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            yield from _secret_paths(info.annotation, f"{path}.{name}" if path else name)
        return
    if get_origin(annotation) is list:
        for arg in get_args(annotation):
            yield from _secret_paths(arg, f"{path}[]")
        return
    for arg in get_args(annotation):  # Optional, unions, Annotated
        yield from _secret_paths(arg, path)


def test_the_config_sets_every_secret_field_of_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_paths = set(_secret_paths(NfdoctorConfig, ""))
    assert "platforms.shopee.partner_key" in model_paths  # the walk itself works
    setup = write_setup(tmp_path, monkeypatch, "password-key")
    loaded = load_config(setup.config)
    written = {re.sub(r"\[\d+\]", "[]", s.key_path) for s in loaded.secrets}
    assert written == model_paths
    assert {s.ref.kind for s in loaded.secrets} == {"env", "file", "inline"}


# --- every command, in-process ----------------------------------------------------------------


def test_every_command_masks_every_secret(
    every_setup: Setup, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = every_setup
    c = ("--config", str(setup.config))
    out = setup.tmp / "out"

    def run(label: str, *args: str) -> CliResult:
        return setup.record(label, cli(*args))

    for fmt in FORMATS:
        result = run(f"diagnose -o {fmt}", "diagnose", *c, "-o", fmt)
        # The database and the platforms (a refused loopback port) are unreachable on purpose.
        assert result.code == 2, result
        assert result.stdout.strip(), f"no {fmt} report"
    written = run(
        "diagnose --write",
        "diagnose",
        *c,
        "-o",
        "prometheus",
        "--write",
        str(out / "nfdoctor.prom"),
    )
    assert written.stdout == "" and (out / "nfdoctor.prom").read_text().startswith("#")
    debug = run("diagnose --debug", "diagnose", *c, "-o", "json", "--debug")
    json.loads(debug.stdout)
    assert run("diagnose --list", "diagnose", "--list").code == 0
    shown = run("config show", "config", "show", *c)
    assert shown.code == 0 and "partner_key: env:NFD_T_SHOPEE" in shown.stdout
    assert "****** (inline)" in shown.stdout
    shown_json = run("config show --json", "config", "show", "--json", *c)
    assert json.loads(shown_json.stdout)["platforms"]["tiktok"]["app_secret"] == "****** (inline)"
    run("config show --debug", "config", "show", *c, "--debug")
    validated = run("config validate", "config", "validate", *c)
    assert validated.code == 1  # the inline secrets are warnings
    assert "inline secret" in validated.stderr
    run("config validate --debug", "config", "validate", *c, "--debug")
    init = run("config init", "config", "init", "--path", str(out / "init.yaml"))
    assert init.code == 0 and (out / "init.yaml").is_file()
    assert run("--version", "--version").code == 0
    for args in (("--help",), ("diagnose", "--help"), ("config", "--help")):
        assert run(" ".join(args), *args).code == 0
    bad_only = run("diagnose --only nosuch", "diagnose", *c, "--only", "nosuch", "--debug")
    assert bad_only.code == 3 and "unknown check 'nosuch'" in bad_only.stderr

    # Rotated values: config.changes reports "secret value changed", never old or new value.
    rotated = {name: value.replace("LEAK-", "LEAK-rotated-") for name, value in ENV_SECRETS.items()}
    for name, value in rotated.items():
        monkeypatch.setenv(name, value)
    for path in setup.secret_files:
        path.write_text(path.read_text().replace("LEAK-", "LEAK-rotated-"))
    if URL_PASSWORD in setup.config.read_text():
        setup.config.write_text(
            setup.config.read_text().replace(URL_PASSWORD, "LEAK-rotated-url-77d1aa")
        )
    again = run("diagnose after rotation", "diagnose", *c, "-o", "json")
    changes = next(r for r in json.loads(again.stdout)["results"] if r["id"] == "config.changes")
    assert changes["status"] == "WARNING", changes
    assert any("secret value changed" in d for d in changes["details"]), changes

    # Secrets that fail to resolve: the message names the key, never a value.
    monkeypatch.delenv("NFD_T_FACEBOOK")
    missing_env = run("diagnose env missing", "diagnose", *c, "--debug")
    assert missing_env.code == 3
    assert "platforms.facebook.app_secret: environment variable NFD_T_FACEBOOK is not set" in (
        missing_env.stderr
    )
    monkeypatch.setenv("NFD_T_FACEBOOK", rotated["NFD_T_FACEBOOK"])
    setup.secret_files[2].unlink()  # zalo.key
    missing_file = run("config validate file missing", "config", "validate", *c)
    assert missing_file.code == 3 and "zalo.key does not exist" in missing_file.stderr

    extra = (*rotated.values(), "LEAK-rotated-url-77d1aa")
    assert_no_leaks(setup, extra)


def test_loggers_of_httpx_and_httpcore_are_quiet_unless_debug(
    setup: Setup, cli: Callable[..., CliResult]
) -> None:
    c = ("--config", str(setup.config), "--only", "system.load")
    cli("diagnose", *c)
    for name in ("httpx", "httpcore"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    cli("diagnose", *c, "--debug")
    for name in ("httpx", "httpcore"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.DEBUG, name


# --- a check that talks HTTP and raises with a secret in its message -----------------------

SHOPEE_URL = (
    "https://partner.shopeemobile.com/api/v2/shop/get_shop_info?partner_id=2001234"
    "&timestamp=1764122400&access_token=LEAK-token-5a1f22&shop_id=220001"
    "&sign=LEAK-sign-0c9d33"
)
QUERY_SECRETS = ("LEAK-token-5a1f22", "LEAK-sign-0c9d33")


def leaky_run(self: Any, ctx: Any) -> Any:
    """Stands in for a check: one HTTP request (httpx logs its URL), then a crash that
    quotes a resolved secret, as a careless client library might."""
    import httpx

    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    with httpx.Client(transport=transport) as client:
        client.get(SHOPEE_URL)
    raise RuntimeError(f"boom: shopee refused key {os.environ['NFD_T_SHOPEE']}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_secret_in_a_check_exception_is_masked(
    fmt: str, setup: Setup, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nfdoctor.checks.system import LoadCheck

    monkeypatch.setattr(LoadCheck, "run", leaky_run)
    c = ("diagnose", "--config", str(setup.config), "--only", "system.load", "-o", fmt)
    quiet = setup.record("quiet", cli(*c))
    assert quiet.code == 3, quiet
    if fmt != "prometheus":  # prometheus carries no summaries
        assert "boom: shopee refused key ***" in quiet.stdout
    assert "HTTP Request" not in quiet.stderr
    assert "Traceback" not in quiet.stdout + quiet.stderr
    if fmt == "json":
        target = setup.tmp / "out" / "report.json"
        written = setup.record("quiet --write", cli(*c, "--write", str(target)))
        assert written.code == 3 and written.stdout == ""
        assert "boom: shopee refused key ***" in target.read_text(encoding="utf-8")

    loud = setup.record("debug", cli(*c, "--debug"))
    assert loud.code == 3, loud
    assert "INFO httpx: HTTP Request: GET https://partner.shopeemobile.com/" in loud.stderr
    assert "&access_token=***&shop_id=220001&sign=***" in loud.stderr
    assert "Traceback" in loud.stderr
    assert "RuntimeError: boom: shopee refused key ***" in loud.stderr
    assert_no_leaks(setup, QUERY_SECRETS)


def test_secret_in_an_internal_error_is_masked(
    setup: Setup, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nfdoctor.render

    def broken_render(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError(f"renderer choked on {os.environ['NFD_T_CRM']}")

    monkeypatch.setattr(nfdoctor.render, "render", broken_render)
    c = ("diagnose", "--config", str(setup.config), "--only", "system.load")
    quiet = setup.record("quiet", cli(*c))
    assert quiet.code == 3
    assert quiet.stderr.splitlines()[-2:] == [
        "nfdoctor: internal error: RuntimeError: renderer choked on ***",
        "Tip: run again with --debug for the traceback",
    ]
    loud = setup.record("debug", cli(*c, "--debug"))
    assert loud.code == 3
    assert "Traceback" in loud.stderr
    assert "RuntimeError: renderer choked on ***" in loud.stderr
    assert_no_leaks(setup)


# --- real processes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("diagnose", "--config", "{config}", "-o", "json", "--debug"),
        ("config", "show", "--config", "{config}", "--debug"),
        ("config", "validate", "--config", "{config}", "--debug"),
        ("diagnose", "--config", "{config}", "--only", "nosuch", "--debug"),
    ],
    ids=["diagnose-json", "config-show", "config-validate", "bad-only"],
)
def test_real_process_with_debug(args: tuple[str, ...], every_setup: Setup) -> None:
    setup = every_setup
    argv = [arg.replace("{config}", str(setup.config)) for arg in args]
    result = run_process(*argv, env=dict(os.environ), cwd=setup.tmp / "work")
    setup.record(" ".join(args), result)
    assert result.code in (0, 1, 2, 3), result
    assert "Traceback" not in result.stdout
    assert_no_leaks(setup)


PATCHED_MAIN = textwrap.dedent("""
    import sys
    from nfdoctor.checks.system import LoadCheck
    from tests.test_no_secret_leaks import leaky_run
    LoadCheck.run = leaky_run
    from nfdoctor.cli.app import main
    main(sys.argv[1:])
""")


@pytest.mark.parametrize("debug", [False, True], ids=["quiet", "debug"])
def test_real_process_check_crash_and_httpx_log(debug: bool, setup: Setup) -> None:
    env = dict(os.environ)  # PYTHONPATH already holds the project root and the loopback guard
    args = ["diagnose", "--config", str(setup.config), "--only", "system.load", "-o", "plain"]
    completed = subprocess.run(
        [sys.executable, "-c", PATCHED_MAIN, *args, *(["--debug"] if debug else [])],
        capture_output=True,
        text=True,
        env=env,
        cwd=setup.tmp / "work",
        timeout=60,
    )
    result = setup.record(
        "process", CliResult(completed.returncode, completed.stdout, completed.stderr)
    )
    assert result.code == 3, result
    assert "boom: shopee refused key ***" in result.stdout
    assert ("HTTP Request" in result.stderr) is debug
    assert ("Traceback" in result.stderr) is debug
    if debug:
        assert "&access_token=***&shop_id=220001&sign=***" in result.stderr
    assert_no_leaks(setup, QUERY_SECRETS)


# --- the platform checks, against the simulator on loopback ---------------------------------

#: the simulator's fault plan for the "faults" scenario: a platform error on every platform
SIM_FAULTS = """\
rules:
  - platform: tiktok
    fault: expired_token
"""
#: signing keys swapped for wrong ones in the "faults" scenario (secrets too: never shown)
WRONG_KEYS = {
    "shopee-partner-key": "wrong-shopee-partner-key-e61b0c",
    "lazada-app-secret": "wrongLazadaAppSecret0b7d22e",
}


@dataclass
class Simulated:
    """A config written for a live simulator, every secret value it holds, and the runs."""

    setup: Setup
    secrets: tuple[str, ...]
    scenario: str


def _simulator_secrets(secrets_dir: Path) -> list[str]:
    """Every value in the secret files and every token in tokens.json."""
    values: list[str] = []
    for path in sorted(secrets_dir.iterdir()):
        if path.name != "tokens.json":
            values.append(path.read_text(encoding="utf-8").strip())
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        for accounts in document["tokens"].values():
            for record in accounts.values():
                values += [v for v in (record["access_token"], record["refresh_token"]) if v]
    return values


@pytest.fixture(params=["healthy", "faults"])
def simulated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Simulated]:
    """The simulator on 127.0.0.1 with two accounts per platform and the config it wrote.

    ``faults``: Shopee and Lazada signed with wrong keys, Facebook's and Zalo's tokens
    revoked, TikTok's treated as expired: every platform answers with its own error
    message, which nfdoctor echoes ("platform says: …").
    """
    from nfdoctor.simulator.app import build_simulator

    plan = None
    if request.param == "faults":
        plan = tmp_path / "faults.yaml"
        plan.write_text(SIM_FAULTS, encoding="utf-8")
    app, state = build_simulator(seed=7, faults=plan, accounts_per_platform=2)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    config = conf_dir / "sim.yaml"
    with serve(app, state, config):
        secrets_dir = conf_dir / "sim-secrets"
        extra: list[str] = []
        if request.param == "faults":
            for name, value in WRONG_KEYS.items():
                (secrets_dir / name).write_text(value + "\n", encoding="utf-8")
            state.revoke_all("facebook")
            state.revoke_all("zalo")
            extra = [state.shopee_partner_key, state.lazada_app_secret]  # the right keys
        (tmp_path / "out").mkdir()
        values = [*_simulator_secrets(secrets_dir), *extra]
        assert len(values) >= 20 and all(len(v) >= 16 for v in values)
        setup = Setup(
            tmp=tmp_path,
            config=config,
            secret_files=sorted(secrets_dir.iterdir()),
            outputs=[],
        )
        yield Simulated(setup=setup, secrets=tuple(values), scenario=request.param)


def test_platform_checks_mask_every_secret(
    simulated: Simulated, cli: Callable[..., CliResult]
) -> None:
    setup = simulated.setup
    c = ("--config", str(setup.config))
    out = setup.tmp / "out"
    want = 0 if simulated.scenario == "healthy" else 2

    def run(label: str, *args: str) -> CliResult:
        return setup.record(label, cli(*args))

    for fmt in FORMATS:
        checked = run(f"check all -o {fmt}", "check", "all", *c, "-o", fmt)
        assert checked.code == want, checked
        assert checked.stdout.strip(), f"no {fmt} report"
        diagnosed = run(f"diagnose -o {fmt}", "diagnose", *c, "-o", fmt, "--skip", "system")
        assert diagnosed.code == want, diagnosed
    for args in (
        ("check", "all", "-o", "json", "--debug"),
        ("check", "facebook", "-o", "plain", "--debug"),
        ("diagnose", "-o", "table", "--debug"),
        ("check", "zalo", "--shop", "nosuch", "--debug"),
    ):
        run(" ".join(args), *args, *c)
    written = run(
        "check --write",
        "check",
        "all",
        *c,
        "-o",
        "prometheus",
        "--write",
        str(out / "platforms.prom"),
    )
    assert written.code == want and written.stdout == ""
    run("diagnose --write", "diagnose", *c, "-o", "junit", "--write", str(out / "report.xml"))
    assert (out / "report.xml").is_file() and (out / "platforms.prom").is_file()

    debug = next(
        text for where, text in setup.outputs if where == "check all -o json --debug: stderr"
    )
    # The debug log shows every call's URL, its tokens and signatures masked.
    assert "HTTP Request: GET http://127.0.0.1:" in debug
    assert "access_token=***" in debug
    report = json.loads(
        next(text for where, text in setup.outputs if where == "check all -o json: stdout")
    )
    said = [d for r in report["results"] for d in r["details"] if d.startswith("platform says:")]
    if simulated.scenario == "faults":
        # The platforms' own error messages are echoed: the path a secret could take.
        assert "platform says: Wrong sign." in said
        assert any(r["status"] == "CRITICAL" for r in report["results"] if ".facebook." in r["id"])
        assert {r["status"] for r in report["results"] if r["id"].endswith(".api")} == {"CRITICAL"}
    else:
        assert said == []
    assert_no_leaks(setup, simulated.secrets)


def test_platform_checks_in_a_real_process_mask_every_secret(simulated: Simulated) -> None:
    setup = simulated.setup
    for args in (
        ("check", "all", "-o", "json", "--debug"),
        ("diagnose", "-o", "plain", "--debug", "--skip", "system"),
    ):
        result = run_process(
            *args, "--config", str(setup.config), env=dict(os.environ), cwd=setup.tmp / "work"
        )
        setup.record(" ".join(args), result)
        assert result.code == (0 if simulated.scenario == "healthy" else 2), result
        assert "Traceback" not in result.stdout + result.stderr
    assert_no_leaks(setup, simulated.secrets)


# --- escaped forms: a secret quoted by repr, JSON, a URL or httpx's bytes repr ------------------

#: a secret with every character some form escapes: a quote, a backslash, a slash, a plus, an
#: ampersand, a space, Vietnamese and a control character
ESCAPED_SECRET = 'LEAK-esc "q\\b/+&ờ\x01z-5c2e'


def escaping_run(self: Any, ctx: Any) -> Any:
    """A check that logs and raises with the resolved secret in every escaped form."""
    import httpx

    secret = os.environ["NFD_T_SHOPEE"]
    logging.getLogger("nfdoctor.test").warning(
        "repr %r json %s url %s plus %s",
        secret,
        json.dumps(secret),
        quote(secret),
        quote_plus(secret),
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=transport) as client:
        client.get(
            "https://partner.shopeemobile.com/x", params={"partner_key": secret, "q": secret}
        )
    # What httpx raises for a header value HTTP does not allow: the bytes, repr'd.
    raise httpx.LocalProtocolError(f"Illegal header value {secret.encode()!r}") from RuntimeError(
        f"json {json.dumps(secret)} / unicode-escape {secret.encode('unicode_escape').decode()}"
    )


@pytest.mark.parametrize("redaction", ["on", "off"])
@pytest.mark.parametrize("fmt", ["json", "plain", "junit"])
def test_escaped_forms_of_a_secret_are_masked(
    fmt: str,
    redaction: str,
    setup: Setup,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every form is masked; with redaction switched off the same run leaks, so the search
    (for the LEAK marker, which survives every escaping) can fail."""
    from nfdoctor.checks.system import LoadCheck
    from nfdoctor.secrets.redaction import Redactor

    monkeypatch.setenv("NFD_T_SHOPEE", ESCAPED_SECRET)
    monkeypatch.setattr(LoadCheck, "run", escaping_run)
    if redaction == "off":
        monkeypatch.setattr(Redactor, "redact", lambda self, text: text)
    c = ("diagnose", "--config", str(setup.config), "--only", "system.load", "-o", fmt)
    quiet = setup.record("quiet", cli(*c))
    loud = setup.record("debug", cli(*c, "--debug"))
    assert quiet.code == 3 and loud.code == 3, (quiet, loud)
    assert "LocalProtocolError" in quiet.stdout, quiet
    assert "Traceback" in loud.stderr and "HTTP Request" in loud.stderr
    leaks = setup.leaks((ESCAPED_SECRET,))
    if redaction == "on":
        assert not leaks, "secret values leaked:\n" + "\n".join(leaks)
    else:
        assert leaks, "with redaction off the secret must show: the search is blind"


# --- inline secrets YAML reads as something else: a number, a date, binary ---------------------

TYPED_SECRETS = {
    "number": ("98765432109876543210", "98765432109876543210"),
    "date": ("2031-07-19", "2031-07-19"),
    "binary": ("!!binary TEVBSy1iaW5hcnktc2VjcmV0", "LEAK-binary-secret"),
}


@pytest.mark.parametrize("kind", sorted(TYPED_SECRETS))
def test_inline_secret_of_another_type_is_never_echoed(
    kind: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    written, value = TYPED_SECRETS[kind]
    config = tmp_path / "conf" / "nfdoctor.yaml"
    config.parent.mkdir()
    config.write_text(
        f"crm:\n  api_key: {written}\nplatforms:\n  shopee:\n    partner_id: 2001234\n"
        f"    partner_key: {written}\n",
        encoding="utf-8",
    )
    outputs = []
    for args in (
        ("config", "validate"),
        ("config", "show"),
        ("diagnose", "-o", "json"),
        ("check", "shopee"),
    ):
        for debug in ((), ("--debug",)):
            result = cli(*args, "--config", str(config), *debug)
            assert result.code == 3, result
            assert "the value is not shown" in result.stderr, result
            outputs.append(result.stdout + result.stderr)
    base64_text = written.split()[-1]
    for text in outputs:
        assert value not in text and base64_text not in text, text


# --- the simulator's --debug access log --------------------------------------------------------


@pytest.mark.parametrize("masking", ["on", "off"])
def test_simulator_debug_log_masks_what_it_issued(
    masking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    """Access log lines carry query strings (Shopee and Lazada tokens and signs, Facebook's
    ``input_token`` and ``ID|SECRET`` app token). Masked, none shows; unmasked, they do."""
    import nfdoctor.simulator.server as server_module
    from nfdoctor.simulator.app import build_simulator
    from nfdoctor.simulator.server import SimulatorServer, write_config

    if masking == "off":
        monkeypatch.setattr(server_module._MaskIssuedSecrets, "filter", lambda self, r: True)
    app, state = build_simulator(seed=9, orders_per_shop=0, conversations_per_account=0)
    server = SimulatorServer(app, port=0, log_level="info", state=state)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    keep = Keep()
    keep.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(keep)
    server.start_in_thread()
    try:
        config = tmp_path / "sim.yaml"
        write_config(config, server.url, state)
        assert cli("check", "all", "--config", str(config), "-o", "json").code == 0
    finally:
        server.stop()
        access.removeHandler(keep)
    log = "\n".join(records)
    assert "/debug_token?input_token=" in log and "/get_shop_info?" in log, log
    issued = [v for v in state.secret_values() if len(v) >= 8]
    app_token = f"{state.facebook_app_id}|{state.facebook_app_secret}"
    shown = [v[:12] for v in issued if v in log or quote(v, safe="") in log]
    if masking == "on":
        assert shown == [], f"issued secrets in the access log: {shown}"
        assert quote(app_token, safe="") not in log and app_token not in log
    else:
        assert shown, "with masking off the log must show the tokens: the search is blind"


def test_simulator_debug_log_in_a_real_process(tmp_path: Path) -> None:
    """``nfdoctor simulator --debug`` as operators run it: stdout and stderr hold no secret."""
    import re
    import signal
    import time

    work = tmp_path / "work"
    config = tmp_path / "sim.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "nfdoctor", "simulator", "--debug", "--write-config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=work,
        env=dict(os.environ),
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        port = None
        lines = []
        while time.monotonic() < deadline and port is None:
            line = process.stderr.readline().decode()
            lines.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port is not None, "".join(lines)
        time.sleep(0.5)  # the message comes just before uvicorn starts accepting
        checked = run_process(
            "check", "all", "--config", str(config), env=dict(os.environ), cwd=work
        )
        assert checked.code == 0, checked
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    log = "".join(lines) + err.decode() + out.decode()
    assert "GET /shopee/api/v2/shop/get_shop_info?" in log, log
    secrets = _simulator_secrets(config.parent / "sim-secrets")
    shown = [s[:12] for s in secrets if s in log or quote(s, safe="") in log]
    assert shown == [], f"secrets in the simulator's --debug output: {shown}"
