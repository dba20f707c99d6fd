"""What the platforms' authorization (consent) flows share: redirect URIs, consent pages,
the redirect back, and the record of every token request.

Each platform's module serves its own authorize URL, consent page and code exchange, in its
own shapes (platforms.md §2.3, §3.3, §4.3, §5.3, §6.3); the state keeps the consents, the
codes and the tokens (:meth:`~nfdoctor.simulator.state.SimulatorState.new_consent` …). A
consent page is plain HTML with one absolute ``<a href>`` per choice, so a test can play the
browser: GET the page, pick the link of an account, GET it without following redirects and
read ``Location``.
"""

from __future__ import annotations

import html
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from nfdoctor.simulator.base import SCOPE_KEY, request_now
from nfdoctor.simulator.model import Token, TokenEvent, TokenEventKind

if TYPE_CHECKING:
    from nfdoctor.simulator.state import SimulatorState

__all__ = [
    "CONSENT_LIFETIME",
    "ISSUED_KEY",
    "ConsentLink",
    "consent_page",
    "host_url",
    "record_token_event",
    "redirect_allowed",
    "redirect_to",
    "token_issued",
    "token_refused",
    "with_query",
]

#: how long a consent page's links work (the seller takes a while to decide)
CONSENT_LIFETIME = timedelta(hours=1)
#: key, in the fault injector's per-request info, of the token events a request issued
ISSUED_KEY = "issued"


def redirect_allowed(uri: str | None, registered: str | None = None) -> bool:
    """Whether the simulator redirects a browser to ``uri``: an absolute http(s) URL without a
    fragment (RFC 6749 §3.1.2) whose host is loopback, or exactly the ``registered`` one.

    Real platforms accept only the callback registered for the app; the simulator accepts
    any loopback one too, so a tool's local callback port need not be registered first.
    """
    if not uri:
        return False
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host or parts.fragment:
        return False
    if registered is not None and uri == registered:
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its own query string."""
    parts = urlsplit(url)
    added = urlencode(params)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def host_url(request: Request, path: str) -> str:
    """The absolute URL of ``path`` on the host (mount) that received ``request``."""
    root: str = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}{path}"


@dataclass(frozen=True)
class ConsentLink:
    """One choice of a consent page: its absolute URL and what it says."""

    href: str
    text: str
    #: the account the link grants (``data-account``); None for a refusal or "all"
    account: str | None = None
    #: ``approve`` or ``deny`` (``data-decision``)
    decision: str = "approve"


def consent_page(title: str, intro: str, links: Sequence[ConsentLink]) -> Response:
    """The consent page: a title, a line saying who asks for what, and one link per choice."""
    items = "\n".join(
        '<li><a href="{href}" data-decision="{decision}"{account}>{text}</a></li>'.format(
            href=html.escape(link.href),
            decision=html.escape(link.decision),
            account=(
                f' data-account="{html.escape(link.account)}"' if link.account is not None else ""
            ),
            text=html.escape(link.text),
        )
        for link in links
    )
    body = (
        '<!DOCTYPE html>\n<html lang="vi">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(intro)}</p>\n"
        f"<ul>\n{items}\n</ul>\n</body>\n</html>\n"
    )
    # A consent page must not be cached or framed: it grants access with one click.
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(body, headers=headers)


def redirect_to(url: str) -> Response:
    """A 302 to ``url`` (the app's callback), as the platforms answer a decision."""
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def record_token_event(request: Request, state: SimulatorState, event: TokenEvent) -> TokenEvent:
    """Keep ``event`` in ``state.token_events``; an issue is also noted on the request, so a
    ``drop_after_issue`` fault can cut the connection after it (and mark it undelivered)."""
    state.record_token_event(event)
    if event.outcome == "issued":
        info = request.scope.get(SCOPE_KEY)
        if isinstance(info, dict):
            info.setdefault(ISSUED_KEY, []).append(event)
    return event


def token_issued(
    request: Request,
    state: SimulatorState,
    *,
    platform: str,
    kind: TokenEventKind,
    account: str | None,
    access: Token,
    refresh: Token | None = None,
    spent: str | None = None,
) -> TokenEvent:
    """Record that ``request`` got a new token (and refresh token), spending ``spent``."""
    event = TokenEvent(
        platform=platform,
        account=account,
        kind=kind,
        outcome="issued",
        at=request_now(request, state),
        access_token=access.value,
        refresh_token=refresh.value if refresh is not None else None,
        spent=spent,
    )
    return record_token_event(request, state, event)


def token_refused(
    request: Request,
    state: SimulatorState,
    *,
    platform: str,
    kind: TokenEventKind,
    account: str | None,
    error: str,
) -> TokenEvent:
    """Record that the platform refused ``request``'s token request with ``error``."""
    event = TokenEvent(
        platform=platform,
        account=account,
        kind=kind,
        outcome="refused",
        at=request_now(request, state),
        error=error,
    )
    return record_token_event(request, state, event)
