"""The refresh journal: what a refresh had done when its process stopped.

A refresh spends a refresh token (single use on Shopee and Zalo) and receives the only pair
that works next. Between the platform's answer and the store's write the new pair exists
nowhere else, so the refresher writes it here first, durably, the moment it arrives:

- ``sending``: written before the request goes out (who, when, the stored version it read).
  Found at start, it means the process stopped while the request was on the wire: the
  platform may or may not have rotated the token. Nobody can know without trying, so the
  next run reports "refresh outcome unknown" and does not refresh again on its own.
- ``answered``: the platform's response, raw (status, content type, body), written before it
  is parsed. Found at start, it is parsed and saved: the run recovers the pair.

One file per account, ``<state dir>/token-journal/<platform>-<account>.json``, mode 0600 in
a 0700 directory (it holds tokens), replaced atomically, removed once the pair is saved.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from nfdoctor.errors import StateError
from nfdoctor.state.documents import JsonDocument

__all__ = ["JOURNAL_FORMAT", "JournalEntry", "RefreshJournal"]

JOURNAL_FORMAT = "nfdoctor.refresh-journal/v1"


@dataclass(frozen=True, kw_only=True)
class JournalEntry:
    """One account's refresh in progress, as its journal file says."""

    state: Literal["sending", "answered"]
    owner: str
    started_at: str
    #: the stored pair's version the refresh presented
    version_read: int
    #: the answer, when it came: status, content type, raw body, method and path (no query:
    #: Shopee and TikTok put signatures and the app secret there)
    status: int | None = None
    content_type: str | None = None
    body: bytes | None = None
    method: str | None = None
    url: str | None = None

    def response(self) -> httpx.Response:
        """The journaled answer as an httpx response, for the platform's own parser."""
        if self.status is None or self.body is None:
            raise ValueError("the journal holds no answer")
        request = httpx.Request(self.method or "POST", self.url or "https://recovered.invalid/")
        headers = {"content-type": self.content_type} if self.content_type else {}
        return httpx.Response(self.status, headers=headers, content=self.body, request=request)

    def __repr__(self) -> str:
        return (
            f"JournalEntry(state={self.state!r}, owner={self.owner!r}, version={self.version_read})"
        )


class RefreshJournal:
    """The journal file of one account."""

    def __init__(self, directory: Path, platform: str, account_id: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{platform}-{account_id}")
        self.path = directory / f"{safe}.json"
        self.document = JsonDocument(
            self.path,
            JOURNAL_FORMAT,
            kind="refresh journal",
            recover=(
                "It holds what an interrupted refresh received: keep it for `nfdoctor token "
                "refresh`, or move it aside once the shop is authorised again"
            ),
        )

    def read(self) -> JournalEntry | None:
        """The entry, or None when no refresh was interrupted."""
        document = self.document.read()
        if document is None:
            return None
        try:
            state = document["state"]
            if state not in ("sending", "answered"):
                raise KeyError("state")
            body = document.get("body")
            return JournalEntry(
                state=state,
                owner=str(document["owner"]),
                started_at=str(document["started_at"]),
                version_read=int(document["version_read"]),
                status=document.get("status"),
                content_type=document.get("content_type"),
                body=base64.b64decode(body) if isinstance(body, str) else None,
                method=document.get("method"),
                url=document.get("url"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"{self.path}: not a refresh journal entry ({exc}); nothing was changed"
            ) from None

    def sending(self, *, owner: str, started_at: datetime, version_read: int) -> None:
        """Before the request goes out."""
        self.document.write(
            {
                "state": "sending",
                "owner": owner,
                "started_at": started_at.isoformat(),
                "version_read": version_read,
            }
        )

    def answered(self, response: httpx.Response) -> None:
        """The moment the answer arrives, before anything parses it."""
        current = self.read()
        if current is None:
            raise StateError(f"{self.path}: the refresh journal vanished while the request ran")
        request = response.request
        document: dict[str, Any] = {
            "state": "answered",
            "owner": current.owner,
            "started_at": current.started_at,
            "version_read": current.version_read,
            "status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "body": base64.b64encode(response.content).decode("ascii"),
            "method": request.method,
            "url": str(request.url.copy_with(query=None)),
        }
        self.document.write(document)

    def clear(self) -> None:
        """The pair is saved (or nothing was issued): forget the refresh."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
