"""``nfdoctor token authorize`` against the simulator served on loopback.

The operator is played: their browser is an httpx client that opens the consent link,
follows the consent page's approve link of the right shop, and (on loopback) GETs the
redirect's ``Location``, as a browser would; their paste is the ``Location`` itself (or its
bare code). Every run checks that no secret (app secrets, codes, the PKCE verifier, old and
new tokens) reaches stdout, stderr or the logs, with and without ``--debug``.
"""

from __future__ import annotations

import dataclasses
import html
import io
import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import typer
import yaml

from nfdoctor.cli.token_authorize_cmd import authorize as authorize_command
from nfdoctor.context import Environment
from nfdoctor.platforms.authorization import AuthorizationError
from nfdoctor.services import token_authorize
from nfdoctor.services.token_authorize import AuthorizeRequest, authorize
from nfdoctor.simulator.state import SimulatorState
from tests.conftest import CliResult
from tests.e2e.conftest import (
    PLATFORMS,
    Simulated,
    _stopping,
    assert_no_secrets,
    parse_report,
    simulator,
)

#: the e2e tests' fixtures (a simulator on loopback per test), used here too
E2E_FIXTURES = (simulator, _stopping)

_LINK = re.compile(r'<a href="([^"]+)" data-decision="([^"]+)"(?: data-account="([^"]+)")?>')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def on_free_port(state: SimulatorState) -> None:
    """TikTok redirects to the callback registered for the app: a free loopback port."""
    state.tiktok_redirect_uri = f"http://127.0.0.1:{free_port()}/callback"


def consent(link: str, account: str | None, decision: str = "approve") -> str:
    """Open the consent page, choose; the redirect's ``Location``."""
    with httpx.Client(timeout=10) as http:
        page = http.get(link)
        assert page.status_code == 200, (page.status_code, page.text)
        for href, chosen, who in _LINK.findall(page.text):
            if chosen == decision and (decision != "approve" or who == account):
                answer = http.get(html.unescape(href))
                assert answer.status_code == 302, (answer.status_code, answer.text)
                return answer.headers["location"]
    raise AssertionError(f"no {decision} link for {account} on {link}:\n{page.text}")


def replace_param(url: str, name: str, value: str | None) -> str:
    """``url`` with query parameter ``name`` set to ``value`` (None: removed)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    if value is not None:
        query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class Operator:
    """The person at the terminal: their browser and what they paste."""

    account: str | None
    #: "approve" (the account's link), "deny", or "none" (the page is not even opened)
    decision: str = "approve"
    #: what the browser's address bar shows after the consent (to tamper with it)
    edit: Callable[[str], str] = lambda location: location
    #: what is pasted, given the address the browser ends on
    paste: Callable[[str], str] = lambda location: location
    #: called when the browser has its ``Location``, before it goes there
    before_return: Callable[[], None] = lambda: None
    #: the browser never comes back (closed tab)
    returns: bool = True
    told: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def _approve(self, link: str) -> str:
        # decision "none": the operator does not go to the page (and pastes the link itself)
        answer = link if self.decision == "none" else consent(link, self.account, self.decision)
        location = self.edit(answer)
        self.locations.append(location)
        self.before_return()
        return location

    def tell(self, text: str) -> None:
        self.told.append(text)

    def show_link(self, url: str) -> None:
        self.told.append(f"  {url}")

    def open_browser(self, url: str) -> bool:
        self.opened.append(url)
        try:
            location = self._approve(url)
            if self.returns:
                httpx.get(location, timeout=10)
        except Exception as exc:  # a failing browser must fail the test, not hang it
            self.errors.append(exc)
            raise
        return True

    def read_line(self) -> str | None:
        link = self.link()
        return self.paste(self._approve(link)) + "\n"

    def link(self, told: list[str] | None = None) -> str:
        lines = [line.strip() for line in (told or self.told) if line.startswith("  http")]
        assert len(lines) == 1, told or self.told
        return lines[0]


def code_of(location: str) -> str:
    return dict(parse_qsl(urlsplit(location).query))["code"]


# --- running it ---------------------------------------------------------------------------


@dataclass
class Run:
    """One ``token authorize`` through the command, and what it left."""

    result: CliResult
    operator: Operator
    verifiers: list[str]

    @property
    def code(self) -> int:
        return self.result.code


class _PastingStdin(io.StringIO):
    """stdin whose line is the operator's paste, made from the link on stderr so far."""

    def __init__(self, operator: Operator, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__()
        self.operator = operator
        self.capsys = capsys
        self.seen_out = ""
        self.seen_err = ""

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        out, err = self.capsys.readouterr()
        self.seen_out += out
        self.seen_err += err
        link = self.operator.link(err.splitlines())
        return self.operator.paste(self.operator._approve(link)) + "\n"


@pytest.fixture
def authorize_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Run]:
    """Run ``token authorize ARGS --output json --config SIM`` through the Typer command,
    the operator's browser as ``webbrowser.open`` and their paste as stdin."""
    app = typer.Typer()
    app.command("authorize")(authorize_command)
    app.command("other")(lambda: None)  # a group, as `token` is: `authorize` is named
    command = typer.main.get_command(app)

    def run(sim: Simulated, operator: Operator, *args: str) -> Run:
        verifiers: list[str] = []
        made = token_authorize.new_code_verifier

        def spy() -> str:
            verifiers.append(made())
            return verifiers[-1]

        monkeypatch.setattr(token_authorize, "new_code_verifier", spy)
        monkeypatch.setattr("webbrowser.open", lambda url, new=0: operator.open_browser(url))
        stdin = _PastingStdin(operator, capsys)
        monkeypatch.setattr("sys.stdin", stdin)
        capsys.readouterr()
        argv = ["authorize", *args, "--output", "json", "--config", str(sim.config)]
        code = command(args=argv, prog_name="nfdoctor token", standalone_mode=False)
        out, err = capsys.readouterr()
        result = CliResult(code, stdin.seen_out + out, stdin.seen_err + err)
        secrets = sim.secret_values()
        for i, location in enumerate(operator.locations):
            secrets[f"code {i}"] = dict(parse_qsl(urlsplit(location).query)).get("code", "")
        secrets.update({f"issued code {c}": c for c in sim.state.auth_codes})
        secrets.update({f"PKCE verifier {i}": v for i, v in enumerate(verifiers)})
        assert_no_secrets({"stdout": result.stdout, "stderr": result.stderr}, secrets)
        return Run(result, operator, verifiers)

    return run


def stored(sim: Simulated, platform: str) -> dict[str, Any]:
    """The platform's records in the token file."""
    document = json.loads(sim.tokens_path.read_text(encoding="utf-8"))
    records: dict[str, Any] = document["tokens"].get(platform, {})
    return records


def assert_authorized(sim: Simulated, run: Run, platform: str, before: dict[str, Any]) -> None:
    """OK, one result, a new pair stored for the account, and the platform takes it."""
    assert run.code == 0, run.result.stderr
    assert not run.operator.errors
    report = parse_report(run.result)
    result = report.one("token.authorize")
    assert result["status"] == "OK", result
    assert result["subject"] == sim.label(platform)
    account = sim.account_ids(platform)[0]
    after = stored(sim, platform)[account]
    assert after["access_token"] != before[account]["access_token"]
    status, token = sim.state.check(platform, after["access_token"], "access")
    assert (status, token.owner if token else None) == ("ok", account) or (
        platform == "facebook" and status == "ok"
    ), status
    # Expiries in the store's format: Facebook's Page token and refresh token have none
    # (null); the others expire in the future, the refresh token after the access token.
    if platform == "facebook":
        assert after["access_expires_at"] is None and after["refresh_token"] is None
    else:
        access = datetime.fromisoformat(after["access_expires_at"])
        refresh = datetime.fromisoformat(after["refresh_expires_at"])
        assert datetime.now(timezone.utc) < access < refresh
        assert sim.state.check(platform, after["refresh_token"], "refresh")[0] == "ok"


# --- the five platforms, both ways --------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_authorize_with_the_redirect_caught_on_loopback(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], platform: str
) -> None:
    sim = simulator(prepare=on_free_port)
    before = stored(sim, platform)
    operator = Operator(account=sim.account_ids(platform)[0])
    run = authorize_cli(sim, operator, platform)
    assert_authorized(sim, run, platform, before)
    assert len(operator.opened) == 1
    assert operator.opened[0] in run.result.stderr  # printed too, for a box without a browser


@pytest.mark.parametrize("platform", PLATFORMS)
def test_authorize_with_no_browser_reads_the_pasted_address(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], platform: str
) -> None:
    sim = simulator()
    before = stored(sim, platform)
    operator = Operator(account=sim.account_ids(platform)[0])
    run = authorize_cli(sim, operator, platform, "--no-browser")
    assert_authorized(sim, run, platform, before)
    assert operator.opened == []  # no browser, and no server: nothing came to loopback
    assert "paste" in run.result.stderr


# --- refusals: one line, exit 3, nothing stored --------------------------------------------


def error_lines(result: CliResult) -> list[str]:
    """The lines nfdoctor says about a failure (the instructions before are the operator's)."""
    return [line for line in result.stderr.splitlines() if line.startswith("nfdoctor:")]


def assert_refused(run: Run, sim: Simulated, before: bytes, *phrases: str) -> str:
    """Exit 3, one ``nfdoctor:`` line saying ``phrases``, no report, the token file as it was."""
    assert run.code == 3, (run.code, run.result.stdout, run.result.stderr)
    lines = error_lines(run.result)
    assert len(lines) == 1, run.result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert run.result.stdout == ""
    assert sim.tokens_path.read_bytes() == before
    return lines[0]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_reused_code_is_refused_and_nothing_is_stored(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], platform: str
) -> None:
    sim = simulator()
    account = sim.account_ids(platform)[0]
    first = authorize_cli(sim, Operator(account=account), platform, "--no-browser")
    assert first.code == 0, first.result.stderr
    after_first = sim.tokens_path.read_bytes()
    spent = code_of(first.operator.locations[0])
    again = Operator(account=account, paste=lambda location: spent)  # the bare code, again
    run = authorize_cli(sim, again, platform, "--no-browser")
    assert_refused(run, sim, after_first, "refused the authorization code", "nothing was stored")
    assert "Tip: run `nfdoctor token authorize" in run.result.stderr
    # The platform was asked once, and said no; nothing was exchanged after that.
    last = sim.state.token_events[-1]
    assert (last.kind, last.outcome, last.account) == ("exchange", "refused", account) or (
        platform == "facebook" and (last.kind, last.outcome) == ("exchange", "refused")
    )


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_wrong_state_is_refused_before_the_code_is_spent(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], platform: str
) -> None:
    sim = simulator(prepare=on_free_port)
    before = sim.tokens_path.read_bytes()
    operator = Operator(
        account=sim.account_ids(platform)[0],
        edit=lambda location: replace_param(location, "state", "forged-by-another-page"),
    )
    run = authorize_cli(sim, operator, platform)
    assert_refused(run, sim, before, "state does not match", "nothing was stored")
    # Refused before the exchange: the code was never presented, so it is still unused.
    assert not sim.state.auth_codes[code_of(operator.locations[0])].used


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_expired_code_is_refused_and_nothing_is_stored(
    simulator: Callable[..., Simulated], platform: str, tmp_path: Path
) -> None:
    sim = simulator()
    before = sim.tokens_path.read_bytes()
    real = sim.state.clock
    shift = timedelta()

    def later() -> datetime:
        return real() + shift

    def time_passes() -> None:
        # The seller approved; the paste comes after the code's lifetime, on both clocks.
        nonlocal shift
        shift = timedelta(minutes=31)

    sim.state.clock = later
    operator = Operator(account=sim.account_ids(platform)[0], before_return=time_passes)
    env = environment(clock=lambda: datetime.now(timezone.utc) + shift)
    request = AuthorizeRequest(platform=platform, config_path=sim.config, no_browser=True)
    with pytest.raises(AuthorizationError) as refused:
        authorize(env, request, consent=operator)
    assert "refused the authorization code" in refused.value.message
    assert "nothing was stored" in refused.value.message
    code = sim.state.auth_codes[code_of(operator.locations[0])]
    assert not code.used and code.expires_at < later()
    assert sim.tokens_path.read_bytes() == before


def environment(**changes: Any) -> Environment:
    """The process's environment, as the command builds it (tests' XDG dirs and cwd)."""
    return dataclasses.replace(Environment.of_process(), **changes)


def edit_config(sim: Simulated, platform: str, **changes: Any) -> None:
    """Set (or, with None, remove) keys of ``platforms.<platform>`` in the simulator's config."""
    document = yaml.safe_load(sim.config.read_text(encoding="utf-8"))
    section = document["platforms"][platform]
    for key, value in changes.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    sim.config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


def test_a_seller_who_refuses_is_reported_and_nothing_is_stored(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    # TikTok's refusal: ?code=null&error=auth_denied&state=… (§4.1)
    sim = simulator(prepare=on_free_port)
    before = sim.tokens_path.read_bytes()
    operator = Operator(account=None, decision="deny")
    run = authorize_cli(sim, operator, "tiktok")
    assert_refused(run, sim, before, "TikTok Shop did not authorise", "error=auth_denied")


@pytest.mark.parametrize("platform", ["lazada", "tiktok", "facebook"])
def test_a_missing_state_is_refused_where_the_platform_sends_it_back(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], platform: str
) -> None:
    sim = simulator(prepare=on_free_port)
    before = sim.tokens_path.read_bytes()
    operator = Operator(
        account=sim.account_ids(platform)[0],
        edit=lambda location: replace_param(location, "state", None),
    )
    run = authorize_cli(sim, operator, platform)
    assert_refused(run, sim, before, "the redirect has no state", "nothing was stored")


@pytest.mark.parametrize("platform", ["shopee", "zalo"])
def test_a_missing_state_is_accepted_where_the_code_is_bound_otherwise(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], platform: str
) -> None:
    # Shopee has no state parameter (nfdoctor's rides in the redirect URL) and Zalo's echo is
    # disputed (§6.3): the shop id of the exchange, or the PKCE verifier, binds the code.
    sim = simulator()
    before = stored(sim, platform)
    operator = Operator(
        account=sim.account_ids(platform)[0],
        edit=lambda location: replace_param(location, "state", None),
    )
    run = authorize_cli(sim, operator, platform, "--no-browser")
    assert_authorized(sim, run, platform, before)


def test_a_pasted_address_without_a_code_is_refused(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    before = sim.tokens_path.read_bytes()
    # The operator pastes the consent link nfdoctor printed instead of where the browser went.
    operator = Operator(account=None, decision="none")
    run = authorize_cli(sim, operator, "lazada", "--no-browser")
    assert_refused(run, sim, before, "the pasted address has no code", "nothing was stored")


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (("shopify",), "unknown platform 'shopify'"),
        (("all",), "one platform at a time"),
        (("lazada", "--shop", "nope"), "--shop: no shop, page or OA 'nope'"),
        (("lazada", "--timeout", "0s"), "--timeout"),
    ],
)
def test_bad_arguments_stop_before_any_consent(
    simulator: Callable[..., Simulated],
    authorize_cli: Callable[..., Run],
    args: tuple[str, ...],
    phrase: str,
) -> None:
    sim = simulator()
    before = sim.tokens_path.read_bytes()
    operator = Operator(account=None)
    run = authorize_cli(sim, operator, *args)
    assert_refused(run, sim, before, phrase)
    assert operator.opened == [] and sim.state.consents == {}


def test_missing_app_credentials_stop_before_any_consent(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    before = sim.tokens_path.read_bytes()
    (sim.secrets_dir / "lazada-app-secret").unlink()
    operator = Operator(account=sim.account_ids("lazada")[0])
    run = authorize_cli(sim, operator, "lazada")
    assert_refused(run, sim, before, "lazada-app-secret")
    assert operator.opened == [] and sim.state.consents == {}


def test_tiktok_without_its_service_id_says_where_to_find_it(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    before = sim.tokens_path.read_bytes()
    edit_config(sim, "tiktok", service_id=None)
    run = authorize_cli(sim, Operator(account=None), "tiktok")
    assert_refused(run, sim, before, "platforms.tiktok.service_id is not set", "Partner Center")


def test_tiktok_without_its_registered_redirect_cannot_listen_but_can_paste(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    edit_config(sim, "tiktok", redirect_uri=None)
    before = sim.tokens_path.read_bytes()
    run = authorize_cli(sim, Operator(account=None), "tiktok")
    assert_refused(run, sim, before, "platforms.tiktok.redirect_uri is not set", "--no-browser")
    tokens = stored(sim, "tiktok")
    run = authorize_cli(
        sim, Operator(account=sim.account_ids("tiktok")[0]), "tiktok", "--no-browser"
    )
    assert_authorized(sim, run, "tiktok", tokens)


def test_no_browser_coming_back_in_time_is_a_timeout(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    before = sim.tokens_path.read_bytes()
    operator = Operator(account=sim.account_ids("zalo")[0], returns=False)  # tab closed
    run = authorize_cli(sim, operator, "zalo", "--timeout", "1s")
    assert_refused(run, sim, before, "did not come back", "within 1 s", "nothing was stored")
    assert not sim.state.auth_codes[code_of(operator.locations[0])].used


# --- which account ------------------------------------------------------------------------


def test_a_shop_other_than_the_one_asked_is_refused_before_the_exchange(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    # Shopee's redirect names the shop: a mismatch is seen before the code is spent.
    sim = simulator(accounts=2)
    before = sim.tokens_path.read_bytes()
    asked, other = sim.account_ids("shopee")
    operator = Operator(account=other)
    run = authorize_cli(sim, operator, "shopee", "--shop", asked, "--no-browser")
    assert_refused(run, sim, before, f"authorised shop {other}, not {asked}", "nothing was stored")
    assert not sim.state.auth_codes[code_of(operator.locations[0])].used


def test_a_seller_other_than_the_one_asked_is_refused_after_the_exchange(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    # Lazada's redirect does not name the seller; the token response does.
    sim = simulator(accounts=2)
    before = sim.tokens_path.read_bytes()
    asked, other = sim.account_ids("lazada")
    operator = Operator(account=other)
    run = authorize_cli(sim, operator, "lazada", "--shop", asked, "--no-browser")
    assert_refused(run, sim, before, f"seller {other}, not {asked}", "nothing was stored")


def test_without_shop_the_account_is_the_one_the_platform_names(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator(accounts=2)
    first, second = sim.account_ids("lazada")
    before = stored(sim, "lazada")
    run = authorize_cli(sim, Operator(account=second), "lazada", "--no-browser")
    assert run.code == 0, run.result.stderr
    assert parse_report(run.result).one("token.authorize")["subject"] == sim.label("lazada", 1)
    after = stored(sim, "lazada")
    assert after[first] == before[first]
    assert after[second]["access_token"] != before[second]["access_token"]


@pytest.mark.parametrize("platform", ["tiktok", "facebook"])
def test_platforms_that_do_not_name_the_account_need_shop_when_there_are_several(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], platform: str
) -> None:
    sim = simulator(accounts=2)
    before = sim.tokens_path.read_bytes()
    operator = Operator(account=None)
    run = authorize_cli(sim, operator, platform, "--no-browser")
    assert_refused(run, sim, before, "--shop:", *sim.account_ids(platform))
    assert sim.state.consents == {}
    second = sim.account_ids(platform)[1]
    tokens = stored(sim, platform)
    run = authorize_cli(sim, Operator(account=second), platform, "--shop", second, "--no-browser")
    assert run.code == 0, run.result.stderr
    assert stored(sim, platform)[second]["access_token"] != tokens[second]["access_token"]


def test_a_page_the_approver_did_not_grant_gets_no_token(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    # The seller chose the other Page in the dialog: Graph gives no Page token for this one.
    sim = simulator(accounts=2)
    before = sim.tokens_path.read_bytes()
    asked, other = sim.account_ids("facebook")
    run = authorize_cli(sim, Operator(account=other), "facebook", "--shop", asked, "--no-browser")
    assert_refused(run, sim, before, f"page {asked}", "nothing was stored")


# --- after the exchange: stored, then verified ---------------------------------------------


def test_tokens_the_api_then_refuses_are_stored_and_reported_critical(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    ping = {"platform": "zalo", "endpoint": "/v2.0/oa/getoa", "fault": "http_5xx", "status": 503}
    sim = simulator([ping])
    before = stored(sim, "zalo")
    run = authorize_cli(sim, Operator(account=sim.account_ids("zalo")[0]), "zalo", "--no-browser")
    assert run.code == 2, run.result.stderr
    result = parse_report(run.result).one("token.authorize")
    assert result["status"] == "CRITICAL"
    assert result["summary"].startswith("new tokens stored, but the API")
    assert result["next_command"] == f"nfdoctor check zalo --shop {sim.account_ids('zalo')[0]}"
    account = sim.account_ids("zalo")[0]
    assert stored(sim, "zalo")[account]["refresh_token"] != before[account]["refresh_token"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_secret_in_debug_output(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], platform: str
) -> None:
    # --debug turns on httpx's URL logging (TikTok sends its app secret in the query, Zalo
    # the verifier in the body): authorize_cli greps every output for every secret.
    sim = simulator(prepare=on_free_port)
    operator = Operator(account=sim.account_ids(platform)[0])
    run = authorize_cli(sim, operator, platform, "--debug")
    assert run.code == 0, run.result.stderr
    assert "DEBUG" in run.result.stderr and "HTTP Request" in run.result.stderr
    assert run.verifiers if platform == "zalo" else not run.verifiers
    # and after a failure too, with its traceback
    spent = code_of(operator.locations[0])
    again = authorize_cli(
        sim, Operator(account=None, paste=lambda _: spent), platform, "--debug", "--no-browser"
    )
    assert again.code == 3 and "Traceback" in again.result.stderr


# --- the loopback catcher and the redirect URI ----------------------------------------------


@dataclass
class CarefulBrowser(Operator):
    """A browser that asks for a favicon first, as browsers do."""

    pages: list[httpx.Response] = field(default_factory=list)

    def open_browser(self, url: str) -> bool:
        location = self._approve(url)
        favicon = urlunsplit(urlsplit(location)._replace(path="/favicon.ico", query=""))
        with httpx.Client(timeout=10) as http:
            self.pages.append(http.get(favicon))
            self.pages.append(http.get(location))
        return True


def test_the_catcher_answers_the_callback_once_and_nothing_else(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    before = stored(sim, "lazada")
    browser = CarefulBrowser(account=sim.account_ids("lazada")[0])
    run = authorize_cli(sim, browser, "lazada")
    assert_authorized(sim, run, "lazada", before)
    favicon, callback = browser.pages
    assert favicon.status_code == 404
    assert callback.status_code == 200 and "You can close this tab." in callback.text
    assert callback.headers["cache-control"] == "no-store"
    assert callback.headers["referrer-policy"] == "no-referrer"
    assert code_of(browser.locations[0]) not in callback.text
    # One shot: nothing listens once the run is over (a reload finds no server).
    with pytest.raises(httpx.ConnectError):
        httpx.get(browser.locations[0], timeout=5)


def test_a_busy_port_is_one_line(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    before = sim.tokens_path.read_bytes()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        run = authorize_cli(sim, Operator(account=None), "zalo", "--port", port)
    assert_refused(run, sim, before, f"--port {port}: cannot listen on 127.0.0.1:{port}", "use")


def test_the_port_of_a_configured_loopback_redirect_is_listened_on(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    port = free_port()
    redirect = f"http://localhost:{port}/zalo/callback"
    edit_config(sim, "zalo", redirect_uri=redirect)
    before = sim.tokens_path.read_bytes()
    run = authorize_cli(sim, Operator(account=None), "zalo", "--port", str(free_port()))
    assert_refused(run, sim, before, f"must listen on port {port}")
    tokens = stored(sim, "zalo")
    operator = Operator(account=sim.account_ids("zalo")[0])
    run = authorize_cli(sim, operator, "zalo")
    assert_authorized(sim, run, "zalo", tokens)
    assert operator.locations[0].startswith(redirect + "?")


def test_a_registered_callback_elsewhere_opens_the_browser_and_reads_the_paste(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    # The browser lands on the CRM's callback, not on this machine: nothing to listen for.
    sim = simulator()
    edit_config(sim, "lazada", redirect_uri="https://crm.example.vn/oauth/lazada")
    before = sim.tokens_path.read_bytes()
    operator = Operator(account=None, decision="none", paste=lambda link: "")
    operator.open_browser = operator.opened.append  # type: ignore[assignment,method-assign]
    run = authorize_cli(sim, operator, "lazada")
    assert_refused(run, sim, before, "nothing was pasted")
    (link,) = operator.opened
    assert dict(parse_qsl(urlsplit(link).query))["redirect_uri"] == (
        "https://crm.example.vn/oauth/lazada"
    )
    assert "paste here the whole address" in run.result.stderr


#: a token file nfdoctor refuses to read or overwrite (written by a newer version)
NEWER_FORMAT = '{"format": "nfdoctor.tokens/v9", "tokens": {}}'


def test_a_store_that_cannot_be_read_stops_before_any_consent(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run]
) -> None:
    sim = simulator()
    sim.tokens_path.write_text(NEWER_FORMAT, encoding="utf-8")
    operator = Operator(account=None)
    run = authorize_cli(sim, operator, "shopee")
    assert_refused(run, sim, NEWER_FORMAT.encode(), "tokens.json", "unknown token file format")
    assert operator.opened == [] and sim.state.consents == {}


def test_a_pair_that_cannot_be_stored_is_kept_in_a_recovery_file(
    simulator: Callable[..., Simulated], authorize_cli: Callable[..., Run], tmp_path: Path
) -> None:
    sim = simulator()

    def store_breaks() -> None:  # while the seller approves, a newer nfdoctor rewrites it
        sim.tokens_path.write_text(NEWER_FORMAT, encoding="utf-8")

    account = sim.account_ids("zalo")[0]
    operator = Operator(account=account, before_return=store_breaks)
    run = authorize_cli(sim, operator, "zalo", "--no-browser")
    line = assert_refused(
        run, sim, NEWER_FORMAT.encode(), "could not be stored", "token import --from"
    )
    (path,) = (tmp_path / "xdg-state" / "nfdoctor" / "token-recovery").iterdir()
    assert str(path) in line
    assert path.stat().st_mode & 0o777 == 0o600
    record = json.loads(path.read_text(encoding="utf-8"))["tokens"]["zalo"][account]
    assert sim.state.check("zalo", record["access_token"], "access")[0] == "ok"
    assert sim.state.check("zalo", record["refresh_token"], "refresh")[0] == "ok"
