"""``token authorize PLATFORM``: authorise a shop again without the seller centre.

The runbook's "re-authorize the application", as one command:

1. the platform's consent link (its :class:`~nfdoctor.platforms.authorization.
   AuthorizationSpec`), carrying a fresh random ``state`` (and, on Zalo, a PKCE challenge);
2. the redirect back, caught by a one-shot HTTP server on loopback (the browser is opened
   for the operator), or pasted by the operator (``--no-browser``, or a registered callback
   that is not on this machine): the whole address, or the bare code;
3. the ``state`` checked, the account decided (asked with ``--shop``, or named by the
   redirect or the token response; never one the config does not list);
4. the code exchanged once: codes are single use and short-lived, so a failure is never
   retried but reported, with "authorise again";
5. the pair stored under the account's lease (compare and set), then verified with the
   account's ping: a :class:`~nfdoctor.results.Report` with one result, ``token.authorize``.

Anything that stops the flow before the tokens are stored is an error (one line, exit 3,
nothing stored): an unknown platform or shop, missing credentials, a refused or reused
code, a wrong state, a denial, no redirect within ``--timeout``, a paste without a code.

Secrets: the code, the PKCE verifier and every token the exchange sees are registered with
the run's redactor the moment they are known, so no output (``--debug`` logs included)
shows them. The operator-facing lines go through :class:`Consent`, never printed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hmac
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx

from nfdoctor import __version__
from nfdoctor.context import Environment
from nfdoctor.durations import format_span
from nfdoctor.errors import DatabaseError, StateError, UsageError
from nfdoctor.platforms.authorization import (
    AuthorizationError,
    AuthorizationSpec,
    ConsentInputs,
    ExchangeInputs,
    Grant,
    code_challenge,
    new_code_verifier,
    new_state,
)
from nfdoctor.platforms.base import PingResult
from nfdoctor.platforms.errors import Category, TaxonomyError
from nfdoctor.platforms.registry import select_accounts
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account, PlatformSection, PlatformSpec
from nfdoctor.results import CheckResult, Hint, Metric, Report, Status
from nfdoctor.services.checkrun import MAX_CALL_TIMEOUT_S, PreparedConfig, open_tokens, prepare
from nfdoctor.services.observer import RunObserver, SilentObserver
from nfdoctor.session import PlatformSession
from nfdoctor.threads import in_daemon_thread
from nfdoctor.tokens.refresh import RECOVERY_DIR, run_owner, write_recovery_file
from nfdoctor.tokens.store import StoredToken, TokenStore

__all__ = [
    "CHECK_ID",
    "DEFAULT_WAIT",
    "AuthorizeRequest",
    "Consent",
    "authorize",
]

CHECK_ID = "token.authorize"
#: how long to wait for the browser to come back, or for the paste
DEFAULT_WAIT = timedelta(minutes=5)
#: the path of the loopback callback when no redirect URI is configured
DEFAULT_CALLBACK_PATH = "/callback"
#: the most a request to the loopback catcher may send before its blank line
MAX_REQUEST_HEAD = 16 * 1024
#: how long a browser may take to send its request to the catcher
REQUEST_READ_TIMEOUT_S = 10.0
#: the longest paste taken (a redirect address is a few hundred characters)
MAX_PASTE = 8 * 1024
#: the refresh lease is taken to store the new pair (a refresher holding it is waited for)
LEASE_S = 60.0
LEASE_WAIT_S = 30.0

_HINT = Hint(
    en="The platform issued the tokens and nfdoctor stored them, but an API call with them "
    "failed: check the app's permissions for this shop and the platform's status, then run "
    "the check again; authorise again if the tokens were refused.",
    vi="Nền tảng đã cấp token và nfdoctor đã lưu, nhưng lệnh gọi API bằng token đó thất bại: "
    "kiểm tra quyền của ứng dụng với cửa hàng và trạng thái của nền tảng rồi chạy lại kiểm "
    "tra; ủy quyền lại nếu token bị từ chối.",
)


@dataclass(frozen=True, kw_only=True)
class AuthorizeRequest:
    """Which platform and account to authorise, and how the redirect comes back."""

    platform: str
    shop: str | None = None
    config_path: Path | None = None
    #: print the link and read the pasted redirect (no browser, no loopback server)
    no_browser: bool = False
    #: the loopback port to listen on (default: the configured redirect URI's, else any)
    port: int | None = None
    #: how long to wait for the redirect or the paste
    wait: timedelta = DEFAULT_WAIT


class Consent(Protocol):
    """The operator's side: what they are told, their browser, what they paste.

    The command gives the terminal's (stderr, :mod:`webbrowser`, stdin); tests give a browser
    that approves on the simulator's consent page.
    """

    def tell(self, text: str) -> None:
        """Show the operator one line (stderr: it is not the command's data), redacted."""

    def show_link(self, url: str) -> None:
        """Show the consent link, as it is: masking its ``sign`` (a public sign over public
        values) would break it. It never holds a secret (the tests check every output)."""

    def open_browser(self, url: str) -> bool:
        """Open ``url`` in a browser; False when none could be opened."""

    def read_line(self) -> str | None:
        """One pasted line (blocking); None at the end of the input."""


# --- the redirect: where it goes, and how it comes back -----------------------------------


@dataclass(frozen=True, kw_only=True)
class _Route:
    """Where the consent sends the browser back, and whether nfdoctor listens there."""

    #: the registered callback from the config; None: a loopback URL of nfdoctor's own
    configured: str | None
    #: listen on loopback (False: the operator pastes the address)
    catch: bool
    host: str = "127.0.0.1"
    #: 0: any free port
    port: int = 0
    path: str = DEFAULT_CALLBACK_PATH

    def uri(self, port: int) -> str:
        """The redirect URI the link carries, once the port is known."""
        if self.configured is not None:
            return self.configured
        return f"http://127.0.0.1:{port}{self.path}"


def _loopback_host(host: str | None) -> str | None:
    """The address to listen on for a redirect to ``host``; None when it is not loopback."""
    if host is None:
        return None
    if host == "localhost":
        # Browsers try 127.0.0.1 for localhost when ::1 refuses.
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(address) if address.is_loopback else None


def _route(
    plan: AuthorizationSpec[Any], section: PlatformSection, request: AuthorizeRequest, name: str
) -> _Route:
    configured = plan.redirect_uri(section)
    key = f"platforms.{name}.redirect_uri"
    if configured is None:
        if not plan.sends_redirect_uri and not request.no_browser:
            raise UsageError(
                f"{key} is not set: the platform sends the browser to the redirect URL "
                f"registered in {plan.console}, which nfdoctor must know to listen there; set "
                "it, or run with --no-browser and paste the address the browser ends on"
            )
        return _Route(configured=None, catch=not request.no_browser, port=request.port or 0)
    parts = urlsplit(configured)
    host = _loopback_host(parts.hostname) if parts.scheme == "http" else None
    if host is None:
        if request.port is not None:
            raise UsageError(
                f"--port {request.port}: {key} ({configured}) is not on this machine, so "
                "nothing listens for it; --port applies to a loopback redirect URI"
            )
        # The browser lands on the registered callback: the operator brings the address.
        return _Route(configured=configured, catch=False)
    port = parts.port or 80
    if request.port is not None and request.port != port:
        raise UsageError(
            f"--port {request.port}: the platform redirects to {configured} (registered in "
            f"{plan.console}), so nfdoctor must listen on port {port}; drop --port or change "
            f"{key} and the registration together"
        )
    return _Route(
        configured=configured,
        catch=not request.no_browser,
        host=host,
        port=port,
        path=parts.path or "/",
    )


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>nfdoctor</title></head>
<body><h1>nfdoctor</h1><p>{text}</p><p>You can close this tab.</p></body></html>
"""


class _Catcher:
    """A one-shot HTTP server on loopback: the first GET of the callback path ends it.

    It answers the browser with a small page and hands the query string over; other paths
    (a favicon) get 404 and it keeps waiting. It never echoes what it received.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._server: asyncio.Server | None = None
        self._received: asyncio.Future[dict[str, str]] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; the port listened on (a free one for 0)."""
        self._received = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(
            self._handle, host=host, port=port, limit=MAX_REQUEST_HEAD
        )
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def received(self) -> dict[str, str]:
        """The callback's query parameters, once a browser has brought them."""
        assert self._received is not None
        return await asyncio.shield(self._received)

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_READ_TIMEOUT_S)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _version = request_line.split(" ")
            parts = urlsplit(target)
            if parts.path != self.path:
                await _answer(writer, 404, "Not the address nfdoctor waits on.")
            elif method != "GET":
                await _answer(writer, 405, "nfdoctor expects the browser's GET here.")
            elif self._received is None or self._received.done():
                await _answer(writer, 410, "nfdoctor has already received an answer.")
            else:
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                # Neutral: the state and the code are judged after this page is sent.
                await _answer(writer, 200, "nfdoctor received the answer: the terminal says more.")
                self._received.set_result(query)
        except asyncio.TimeoutError:
            pass  # a connection that never sent its request (3.11: before OSError, its base)
        except (ValueError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            with contextlib.suppress(OSError):
                await _answer(writer, 400, "nfdoctor could not read that request.")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
    body = _PAGE.format(text=text).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {reason.get(status, 'Gone')}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        # The address carried the code: nothing may cache it, refer to it or frame it.
        "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("ascii") + body)
    await writer.drain()


def _parse_paste(text: str) -> tuple[dict[str, str], bool]:
    """The pasted redirect's query, and whether it was a bare code (no address around it)."""
    text = text.strip()
    if not text:
        raise AuthorizationError(
            "nothing was pasted; nothing was stored: run again and paste the address the "
            "browser ends on after approving (it has ?code=…)"
        )
    if len(text) > MAX_PASTE or any(c.isspace() for c in text):
        raise AuthorizationError(
            "the paste is not one address or code (it has spaces or is too long); nothing "
            "was stored"
        )
    if "://" in text or text.startswith("?") or "code=" in text or "error=" in text:
        if "://" in text:
            query_text = urlsplit(text).query
        else:
            query_text = text.split("?", 1)[-1].split("#", 1)[0]
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        if "code" not in query and "error" not in query:
            raise AuthorizationError(
                "the pasted address has no code: paste the address the browser ends on "
                "after approving (it has ?code=…), not the link nfdoctor printed; nothing "
                "was stored"
            )
        return query, False
    return {"code": text}, True


# --- the callback -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Callback:
    """What the redirect brought: the code, and the account it names."""

    code: str = field(repr=False)
    account: str | None


def _shown(value: str, limit: int = 120) -> str:
    """A value from the redirect, as safe to show: printable, bounded."""
    cleaned = "".join(c if c.isprintable() else "?" for c in value)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"


def _read_callback(
    query: Mapping[str, str],
    plan: AuthorizationSpec[Any],
    *,
    state: str,
    bare_code: bool,
    title: str,
) -> _Callback:
    error = query.get("error")
    code = query.get("code")
    if error:
        reason = query.get("error_description") or query.get("error_reason") or ""
        said = f" ({_shown(reason)})" if reason else ""
        raise AuthorizationError(
            f"{title} did not authorise: the redirect says error={_shown(error)}{said}; "
            "nothing was stored"
        )
    if code is None or code in ("", "null"):
        raise AuthorizationError(
            f"the redirect from {title} has no code; nothing was stored: authorise again and "
            "approve on the consent page"
        )
    returned = query.get("state")
    if bare_code:
        # A code pasted by the operator by hand: no redirect that could have been forged.
        pass
    elif returned is None:
        if plan.state == "echoed":
            raise AuthorizationError(
                f"the redirect has no state, which {title} sends back: it is not the answer "
                "to the link this run made; nothing was stored"
            )
    elif not hmac.compare_digest(returned.encode(), state.encode()):
        raise AuthorizationError(
            "the redirect's state does not match this run's: it answers another link (an "
            "older tab, or another run); nothing was stored: authorise again from the link "
            "this run prints"
        )
    account = query.get(plan.account_param) if plan.account_param else None
    return _Callback(code=code, account=account.strip() if account else None)


# --- the service --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Flow:
    """One run's fixed facts."""

    env: Environment
    request: AuthorizeRequest
    platform: PlatformSpec[Any]
    plan: AuthorizationSpec[Any]
    section: PlatformSection
    prepared: PreparedConfig
    store: TokenStore
    configured: list[Account]
    asked: Account | None

    @property
    def name(self) -> str:
        return self.platform.name

    @property
    def title(self) -> str:
        return self.platform.title

    @property
    def noun(self) -> str:
        return self.platform.account_noun

    def again(self, account_id: str | None = None) -> str:
        """The command that starts over."""
        shop = account_id or (self.asked.account_id if self.asked else None)
        return f"nfdoctor token authorize {self.name}" + (f" --shop {shop}" if shop else "")

    def secret(self, key: str) -> str:
        return self.prepared.secrets.get(f"platforms.{self.name}.{key}")


def authorize(
    env: Environment,
    request: AuthorizeRequest,
    *,
    consent: Consent,
    observer: RunObserver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Authorise one account of ``request.platform`` again; the report of the stored pair."""
    observer = observer or SilentObserver()
    started_at = env.clock()
    began = env.monotonic()
    flow = _prepare(env, request, observer)
    result = asyncio.run(_run(flow, consent, transport))
    return Report(
        command=f"token authorize {flow.name}",
        results=(dataclasses.replace(result, duration_s=env.monotonic() - began),),
        started_at=started_at,
        duration_s=env.monotonic() - began,
        version=__version__,
    )


def _prepare(env: Environment, request: AuthorizeRequest, observer: RunObserver) -> _Flow:
    """Everything checked before the consent link is made: nothing is spent on a refusal."""
    name = request.platform.strip().lower()
    if not name:
        raise UsageError("PLATFORM: empty; expected one of shopee, lazada, tiktok, facebook, zalo")
    if name == "all":
        raise UsageError("PLATFORM: one platform at a time (a seller approves one app at once)")
    platform = platform_spec(name)
    plan = platform.authorization
    if plan is None:
        raise UsageError(f"{platform.title}: nfdoctor cannot authorise its accounts")
    if request.port is not None and not 1 <= request.port <= 65535:
        raise UsageError(f"--port {request.port}: expected a port from 1 to 65535")
    if request.wait.total_seconds() <= 0:
        raise UsageError("--timeout: must be more than zero")
    shop = request.shop.strip() if request.shop is not None else None
    if shop is not None and not shop:
        raise UsageError("--shop: empty id")
    prepared = prepare(env, request.config_path, observer)
    platforms = prepared.loaded.config.platforms
    scope = select_accounts(platforms, only=(name,), account_id=shop)
    section = platform.section(platforms)
    assert section is not None  # select_accounts refused an unconfigured platform
    configured = platform.accounts(section)
    if not configured:
        raise UsageError(
            f"platforms.{name}.{platform.accounts_key} lists no {platform.account_noun}: add "
            f"the {platform.account_noun} to authorise to the config first"
        )
    missing = plan.missing(section)
    if missing:
        key, what = next(iter(missing.items()))
        raise UsageError(f"platforms.{name}.{key} is not set: {what}")
    asked = scope[name][0] if shop is not None else None
    if asked is None and plan.account_source == "asked":
        if len(configured) > 1:
            ids = ", ".join(a.account_id for a in configured)
            raise UsageError(
                f"--shop: {platform.title} does not say which {platform.account_noun} a code "
                f"is for; name one of {ids}"
            )
        asked = configured[0]
    # A store that cannot be read (a corrupt file, a keyring with no backend) is said now,
    # before the seller approves anything and a code is spent.
    store = open_tokens(env, prepared)
    store.get(name, (asked or configured[0]).account_id)
    return _Flow(
        env=env,
        request=request,
        platform=platform,
        plan=plan,
        section=section,
        prepared=prepared,
        store=store,
        configured=configured,
        asked=asked,
    )


async def _run(
    flow: _Flow, consent: Consent, transport: httpx.AsyncBaseTransport | None
) -> CheckResult:
    env, plan = flow.env, flow.plan
    route = _route(plan, flow.section, flow.request, flow.name)
    state = new_state()
    verifier = new_code_verifier() if plan.pkce else None
    if verifier is not None:
        env.redactor.add(verifier)
    catcher = _Catcher(route.path) if route.catch else None
    try:
        port = route.port
        if catcher is not None:
            port = await _listen(catcher, route, flow)
        elif route.configured is None and port == 0:
            port = _free_port()
        redirect_uri = route.uri(port)
        link = plan.consent_url(
            ConsentInputs(
                section=flow.section,
                secret=flow.secret,
                redirect_uri=redirect_uri,
                state=state,
                code_challenge=code_challenge(verifier) if verifier is not None else None,
                now=env.clock(),
            )
        )
        query, bare = await _wait_for_redirect(flow, consent, catcher, route, link, redirect_uri)
    finally:
        if catcher is not None:
            await catcher.close()
    callback = _read_callback(query, plan, state=state, bare_code=bare, title=flow.title)
    env.redactor.add(callback.code)
    return await _exchange_and_store(flow, callback, redirect_uri, verifier, transport)


async def _listen(catcher: _Catcher, route: _Route, flow: _Flow) -> int:
    try:
        return await catcher.start(route.host, route.port)
    except OSError as exc:
        where = f"{route.host}:{route.port}"
        why = "it is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        source = (
            f"--port {route.port}"
            if flow.request.port is not None
            else f"platforms.{flow.name}.redirect_uri"
        )
        raise UsageError(
            f"{source}: cannot listen on {where} ({why}); stop what uses it, or run with "
            "--no-browser and paste the address the browser ends on"
        ) from None


def _free_port() -> int:
    """A port nothing listens on now (for a redirect nobody will listen to: the paste)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _wait_for_redirect(
    flow: _Flow,
    consent: Consent,
    catcher: _Catcher | None,
    route: _Route,
    link: str,
    redirect_uri: str,
) -> tuple[dict[str, str], bool]:
    """The redirect's query, caught or pasted, and whether it was a bare code."""
    wait = flow.request.wait.total_seconds()
    whom = flow.asked.label if flow.asked is not None else f"the {flow.noun}"
    if catcher is not None:
        consent.tell(
            f"Opening {flow.title}'s consent page in your browser: sign in with the account "
            f"that manages {whom} and approve. If no browser opens, visit:"
        )
        consent.show_link(link)
        consent.tell(
            f"Waiting up to {format_span(wait)} for the browser to come back to {redirect_uri}"
        )
        opened = in_daemon_thread(lambda: consent.open_browser(link), name="nfdoctor-browser")
        opened.add_done_callback(_ignore_result)
        try:
            query = await asyncio.wait_for(catcher.received(), wait)
        except asyncio.TimeoutError:
            raise AuthorizationError(
                f"the browser did not come back to {redirect_uri} within {format_span(wait)}; "
                "nothing was stored: run again (or with --no-browser, and paste the address "
                "the browser ends on)"
            ) from None
        return query, False
    if flow.request.no_browser:
        consent.tell(
            f"Open this link in a browser, sign in with the account that manages {whom} and "
            "approve:"
        )
    else:
        consent.tell(
            f"Opening {flow.title}'s consent page in your browser: sign in with the account "
            f"that manages {whom} and approve. If no browser opens, visit:"
        )
        opened = in_daemon_thread(lambda: consent.open_browser(link), name="nfdoctor-browser")
        opened.add_done_callback(_ignore_result)
    consent.show_link(link)
    if route.configured is None and not flow.plan.sends_redirect_uri:
        lands = f"the redirect URL registered in {flow.plan.console}"
    else:
        lands = route.configured or redirect_uri
    if _loopback_host(urlsplit(lands).hostname) is not None:
        lands += " (nothing answers there now: the address bar still has it)"
    consent.tell(
        f"The browser then goes to {lands}: paste here the whole address it ends on (or just "
        "the code), then press Enter:"
    )
    try:
        line = await asyncio.wait_for(
            in_daemon_thread(consent.read_line, name="nfdoctor-paste"), wait
        )
    except asyncio.TimeoutError:
        raise AuthorizationError(
            f"nothing was pasted within {format_span(wait)}; nothing was stored: run again"
        ) from None
    if line is None:
        raise AuthorizationError(
            "the input ended before an address was pasted; nothing was stored: run again "
            "and paste the address the browser ends on"
        )
    return _parse_paste(line)


def _ignore_result(future: asyncio.Future[bool]) -> None:
    # A browser that could not be opened is not a failure: the link was printed.
    if not future.cancelled():
        future.exception()


async def _exchange_and_store(
    flow: _Flow,
    callback: _Callback,
    redirect_uri: str,
    verifier: str | None,
    transport: httpx.AsyncBaseTransport | None,
) -> CheckResult:
    env, plan, name = flow.env, flow.plan, flow.name
    known = {a.account_id: a for a in flow.configured}
    named = callback.account
    where = f"platforms.{name}.{flow.platform.accounts_key}"
    if named is not None and named not in known:
        raise AuthorizationError(
            f"the seller authorised {flow.noun} {_shown(named)}, which is not in {where}; "
            "nothing was stored: add it to the config, or authorise the right one"
        )
    if flow.asked is not None and named is not None and named != flow.asked.account_id:
        raise AuthorizationError(
            f"the seller authorised {flow.noun} {named}, not {flow.asked.account_id} (--shop); "
            f"nothing was stored: authorise again signed in as {flow.asked.label}'s seller",
            next_command=flow.again(),
        )
    hint = flow.asked.account_id if flow.asked is not None else named
    if hint is None and plan.exchange_needs_account:
        if len(flow.configured) > 1:
            raise AuthorizationError(
                f"the redirect does not say which {flow.noun} was authorised (no "
                f"{plan.account_param}); nothing was stored: run again with --shop",
                next_command=f"nfdoctor token authorize {name} --shop ID",
            )
        hint = flow.configured[0].account_id
    store = flow.store
    session = PlatformSession(
        config=flow.prepared.loaded.config,
        secrets=flow.prepared.secrets,
        token_store=store,
        redactor=env.redactor,
        clock=env.clock,
        accounts={name: flow.configured},
        call_timeout_s=MAX_CALL_TIMEOUT_S,
        transport=transport,
    )
    async with session:
        client = session.client(Account(platform=name, account_id=hint or ""), access_token="")
        try:
            grant = await plan.exchange(
                ExchangeInputs(
                    section=flow.section,
                    client=client,
                    code=callback.code,
                    redirect_uri=redirect_uri,
                    code_verifier=verifier,
                    account_id=hint,
                    secret_found=env.redactor.add,
                )
            )
        except TaxonomyError as exc:
            raise _refused(flow, exc) from None
        for value in (grant.tokens.access_token, grant.tokens.refresh_token):
            if value:
                env.redactor.add(value)
        account = known[_decide_account(flow, grant, hint)]
        stored = StoredToken.from_token_set(name, account.account_id, grant.tokens, now=env.clock())
        if grant.never_expires:
            stored = dataclasses.replace(stored, access_expires_at=None)
        try:
            saved = await in_daemon_thread(
                lambda: _save(store, stored), name="nfdoctor-token-store"
            )
        except (StateError, DatabaseError) as exc:
            # The platform issued a pair that may have replaced the old one: never lose it.
            path = await in_daemon_thread(lambda: _recovery_file(env, stored))
            raise AuthorizationError(
                f"{flow.title} issued new tokens for {account.label} but they could not be "
                f"stored: {exc.message}; they are in {path} (0600): fix the store, then "
                f"nfdoctor token import --from {path}",
                next_command=f"nfdoctor token import --from {path}",
            ) from None
        verifying = session.client(
            account, access_token=saved.access_token, refresh_token=saved.refresh_token
        )
        try:
            ping: PingResult | TaxonomyError = await verifying.ping()
        except TaxonomyError as exc:
            ping = exc
    return _result(flow, account, store, saved, grant, ping)


def _save(store: TokenStore, token: StoredToken) -> StoredToken:
    """Store the new pair under the account's lease, over whatever was there (compare and
    set on the version read, so a refresher that saved meanwhile is not silently lost)."""
    owner = run_owner()
    with store.hold(
        token.platform, token.account_id, owner=owner, lease_s=LEASE_S, wait_s=LEASE_WAIT_S
    ):
        current = store.get(token.platform, token.account_id)
        return store.save(token, expected_version=current.version if current else 0, owner=owner)


def _recovery_file(env: Environment, token: StoredToken) -> Path:
    """The pair in a 0600 token file, where an interrupted refresh leaves its pair too."""
    return write_recovery_file(
        env.state_dir / RECOVERY_DIR, token, now=env.clock(), tag="authorize"
    )


def _refused(flow: _Flow, exc: TaxonomyError) -> AuthorizationError:
    """The one line for a failed exchange: the code is spent either way."""
    lifetime = format_span(flow.plan.code_lifetime.total_seconds())
    if exc.category in (
        Category.REFRESH_TOKEN_INVALID,
        Category.TOKEN_INVALID,
        Category.TOKEN_EXPIRED,
        Category.BAD_PARAMETERS,
    ):
        said = ": ".join(part for part in (exc.code, exc.platform_message) if part)
        message = (
            f"{flow.title} refused the authorization code{f' ({said})' if said else ''}: a code "
            f"is single use and lives {lifetime}; nothing was stored: authorise again"
        )
    else:
        said = f" ({exc.platform_message})" if exc.platform_message else ""
        message = (
            f"{flow.title} authorization failed: {exc.message}{said}; nothing was stored, and "
            "the code is spent: authorise again"
        )
    return AuthorizationError(message, next_command=flow.again())


def _decide_account(flow: _Flow, grant: Grant, hint: str | None) -> str:
    """The account the tokens are stored for: the one asked or named, which the platform's
    answer must not contradict; else the one configured account the answer names."""
    granted = grant.account_ids
    noun = flow.noun
    if hint is not None:
        if granted and hint not in granted:
            raise AuthorizationError(
                f"the authorization is for {noun} {', '.join(_shown(g) for g in granted)}, not "
                f"{hint}; nothing was stored: authorise again signed in as {hint}'s seller",
                next_command=flow.again(hint),
            )
        return hint
    if not granted:
        raise AuthorizationError(
            f"{flow.title} did not say which {noun} the authorization is for; nothing was "
            "stored: authorise again with --shop",
            next_command=f"nfdoctor token authorize {flow.name} --shop ID",
        )
    listed = {a.account_id for a in flow.configured}
    ours = [g for g in granted if g in listed]
    where = f"platforms.{flow.name}.{flow.platform.accounts_key}"
    if not ours:
        raise AuthorizationError(
            f"the authorization is for {noun} {', '.join(_shown(g) for g in granted)}, not in "
            f"{where}; nothing was stored: add it to the config and authorise again"
        )
    if len(ours) > 1:
        raise AuthorizationError(
            f"the authorization reaches several configured {noun}s ({', '.join(ours)}); "
            "nothing was stored: authorise again with --shop",
            next_command=f"nfdoctor token authorize {flow.name} --shop {ours[0]}",
        )
    return ours[0]


def _when(flow: _Flow, moment: datetime | None, what: str) -> str:
    if moment is None:
        return f"{what}: no expiry"
    zone = ZoneInfo(flow.prepared.loaded.config.timezone)
    left = (moment - flow.env.clock()).total_seconds()
    local = moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %z")
    return f"{what} expires in {format_span(max(left, 0))} ({local})"


def _result(
    flow: _Flow,
    account: Account,
    store: TokenStore,
    saved: StoredToken,
    grant: Grant,
    ping: PingResult | TaxonomyError,
) -> CheckResult:
    details = [
        f"stored in {store.describe()} (version {saved.version})",
        _when(flow, saved.access_expires_at, "access token"),
    ]
    if saved.refresh_token:
        details.append(_when(flow, saved.refresh_expires_at, "refresh token"))
    else:
        details.append(f"no refresh token ({flow.title} issues none): authorise again when it dies")
    details += grant.details
    title = f"{flow.title}: authorization"
    check = f"nfdoctor check {flow.name} --shop {account.account_id}"
    if isinstance(ping, TaxonomyError):
        return CheckResult(
            id=CHECK_ID,
            title=title,
            status=Status.CRITICAL,
            summary=f"new tokens stored, but the API refused them: {ping.message}",
            details=tuple(details),
            hint=_HINT,
            next_command=check,
            subject=account.label,
        )
    details += [f"response shape changed: {problem}" for problem in ping.shape_problems]
    return CheckResult(
        id=CHECK_ID,
        title=title,
        status=Status.OK,
        summary=f"new tokens stored and accepted by the API ({format_span(ping.latency_s)})",
        details=tuple(details),
        next_command=check,
        metrics=(Metric(name="latency", value=ping.latency_s, unit="s"),),
        subject=account.label,
    )
