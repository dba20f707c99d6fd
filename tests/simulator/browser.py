"""A test "browser" for the simulated consent pages: read the page's links, follow one
without following the redirect, and read where it sends the browser."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.simulator import call


@dataclass(frozen=True)
class Link:
    """One ``<a>`` of a consent page."""

    href: str
    text: str
    account: str | None
    decision: str | None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[Link] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            attrs = self._open
            self.links.append(
                Link(
                    href=attrs.get("href") or "",
                    text="".join(self._text),
                    account=attrs.get("data-account"),
                    decision=attrs.get("data-decision"),
                )
            )
            self._open = None


def links_of(page: httpx.Response) -> list[Link]:
    """The links of a consent page (which must be an HTML 200)."""
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    parser = _Links()
    parser.feed(page.text)
    return parser.links


def pick(page: httpx.Response, *, account: str | None = None, decision: str = "approve") -> Link:
    """The one link of ``page`` for that account (None: the link naming no account)."""
    found = [
        link for link in links_of(page) if link.account == account and link.decision == decision
    ]
    assert len(found) == 1, links_of(page)
    return found[0]


def follow(app: Any, link: Link) -> httpx.Response:
    """GET the link (an absolute URL on the simulator), redirects not followed."""
    assert link.href.startswith("http://sim.test/"), link.href
    return call(app, "GET", link.href)


def redirect_query(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """Where a 302 sends the browser: the URL without its query, and the query."""
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    base = f"{location.scheme}://{location.netloc}{location.path}"
    return base, dict(parse_qsl(location.query, keep_blank_values=True))


def consent(
    app: Any, page: httpx.Response, *, account: str | None = None, decision: str = "approve"
) -> tuple[str, dict[str, str]]:
    """Choose on the consent page as a seller would: where the browser goes, with what."""
    return redirect_query(follow(app, pick(page, account=account, decision=decision)))
