"""Refreshing one account's tokens without ever losing a refresh token.

The protocol (the CRM's, crm-schema.md v1.1, for every store):

1. A journal left by a run that stopped comes first: an *answered* refresh is recovered
   (parsed and saved), a refresh that was *on the wire* is reported as "outcome unknown" with
   the steps, and nothing is refreshed on top of it unless the operator says so
   (``retry_unknown``).
2. Take the account's lease (the CRM store: the lease in ``channel_credentials``; the file and
   keyring stores: a lock file). A second refresher waits, then finds the pair changed and
   does nothing.
3. Inside it, re-read; refresh only if still needed (due, or not refreshed by someone else
   while this run waited, or ``force``).
4. Journal ``sending``; send the refresh once (never retried: it spends a single-use token);
   journal the answer the moment it arrives, before parsing it.
5. An error in the answer (inside HTTP 200 too: Zalo ``error_name``, Lazada string codes, a
   missing ``access_token``) is a failure, never stored. "Invalid refresh token" while the store
   holds a newer pair means another refresher won: adopt that pair, never wipe it.
6. Save with compare-and-set on the version read in 3. A save that fails after the platform
   issued a pair writes it to a 0600 recovery file, and the result names the command that
   restores it; the journal stays, so the next run saves it on its own.
7. Clear the journal, release the lease, and verify the new access token with a ping.

The one window no journal can close is the request's time on the wire: killed then, nobody
knows whether the platform rotated the token. For Shopee and Zalo (single use) a rotated
token that never arrived means authorising the shop again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal, TypeVar

from nfdoctor.durations import format_span
from nfdoctor.errors import DatabaseError, LeaseBusyError, StateError
from nfdoctor.platforms.base import PlatformClient
from nfdoctor.platforms.errors import RefreshTokenInvalidError, TaxonomyError
from nfdoctor.platforms.spec import Account
from nfdoctor.state.documents import write_json
from nfdoctor.state.locks import ensure_private_dir
from nfdoctor.threads import in_daemon_thread
from nfdoctor.tokens.journal import JournalEntry, RefreshJournal
from nfdoctor.tokens.owners import gone
from nfdoctor.tokens.store import StoredToken, TokenStore, token_document

__all__ = [
    "REFRESHER_PREFIX",
    "Outcome",
    "RefreshPolicy",
    "RefreshResult",
    "Refresher",
    "refresh_due",
    "run_owner",
    "write_recovery_file",
]

Outcome = Literal[
    "refreshed",
    "fresh",
    "recovered",
    "adopted",
    "unknown",
    "spent",
    "failed",
    "busy",
    "not_saved",
    "no_token",
    "no_refresh_token",
]
T = TypeVar("T")

#: clients the refresher uses: (access token) -> a client for the account
ClientFactory = Callable[[str], PlatformClient]


#: how a refresh by nfdoctor signs ``updated_by`` (an import or an authorisation does not)
REFRESHER_PREFIX = "nfdoctor@"
#: where pairs a store refused are kept, in the state dir
RECOVERY_DIR = "token-recovery"


def run_owner(role: str = "") -> str:
    """Who this run is, in leases and ``updated_by``: ``nfdoctor@host:pid:nonce`` for a
    refresh, ``nfdoctor <role>@host:pid:nonce`` for an import or an authorisation."""
    who = f"nfdoctor {role}@" if role else REFRESHER_PREFIX
    return f"{who}{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def refresh_due(
    token: StoredToken, now: datetime, *, percent_left: float, at_least: timedelta
) -> bool:
    """Whether the access token is inside its refresh margin: less than ``percent_left`` of
    its lifetime (from when it was stored) or less than ``at_least`` is left. A 4-hour Shopee
    token and a 30-day Lazada one are judged by their own lifetimes."""
    if token.access_expires_at is None:
        return False  # never expires (a Facebook Page token)
    left = token.access_expires_at - now
    margin = at_least
    if token.updated_at is not None and token.access_expires_at > token.updated_at:
        margin = max(margin, (token.access_expires_at - token.updated_at) * (percent_left / 100))
    return left <= margin


@dataclass(frozen=True, kw_only=True)
class RefreshPolicy:
    """When to refresh, and how long to hold and wait for the lease."""

    force: bool = False
    #: only accounts inside the margin (``--due``, for cron)
    due_only: bool = False
    #: try once more after a refresh whose outcome is unknown (the operator's decision)
    retry_unknown: bool = False
    due: Callable[[StoredToken, datetime], bool] = field(
        default=lambda token, now: refresh_due(
            token, now, percent_left=25.0, at_least=timedelta(hours=1)
        )
    )
    #: a pair another refresh (``updated_by`` ``nfdoctor@…``) wrote less than this long ago is
    #: fresh: twenty processes, or two hosts, firing together refresh once
    recent: timedelta = timedelta(seconds=60)
    #: the lease outlives the request's timeout, so a live refresher never loses it
    lease_s: float = 120.0
    wait_s: float = 60.0


@dataclass(frozen=True, kw_only=True)
class RefreshResult:
    """What happened to one account."""

    account: Account
    outcome: Outcome
    message: str
    #: the pair stored now (after the refresh, the recovery or the adoption)
    token: StoredToken | None = None
    details: tuple[str, ...] = ()
    error: TaxonomyError | None = None
    #: where a pair that could not be saved was written
    recovery_file: Path | None = None
    #: the new access token answered a ping (None: not tried)
    verified: bool | None = None
    #: the ping's failure, when it failed
    verify_error: TaxonomyError | None = None


class Refresher:
    """Refreshes accounts of one store, journaling in ``journal_dir``."""

    def __init__(
        self,
        *,
        store: TokenStore,
        state_dir: Path,
        owner: str,
        clock: Callable[[], datetime],
        policy: RefreshPolicy,
    ) -> None:
        self.store = store
        self.journal_dir = state_dir / "token-journal"
        self.recovery_dir = state_dir / RECOVERY_DIR
        self.owner = owner
        self.clock = clock
        self.policy = policy

    async def refresh(self, account: Account, client_for: ClientFactory) -> RefreshResult:
        """Refresh ``account`` (recovering an interrupted refresh first)."""
        journal = RefreshJournal(self.journal_dir, account.platform, account.account_id)
        entry = _interrupted(await _thread(journal.read), self.owner)
        if entry is not None and entry.state == "answered":
            return await self._recover(account, entry, journal, client_for)
        if entry is not None and not self.policy.retry_unknown:
            return _unknown(account, entry)
        seen = await _thread(lambda: self.store.get(account.platform, account.account_id))
        if seen is None:
            return RefreshResult(
                account=account,
                outcome="no_token",
                message=f"no token stored ({self.store.describe()}): authorise the account",
            )
        if not seen.refresh_token:
            return RefreshResult(
                account=account,
                outcome="no_refresh_token",
                message="no refresh token: this platform issues none (Facebook: a Page token "
                "made from a long-lived User token does not expire; when it dies, authorise "
                "the Page again)",
                token=seen,
            )
        try:
            return await self._leased(account, journal, entry, seen, client_for)
        except LeaseBusyError as exc:
            return RefreshResult(account=account, outcome="busy", message=exc.message, token=seen)

    async def _leased(
        self,
        account: Account,
        journal: RefreshJournal,
        unknown: JournalEntry | None,
        seen: StoredToken,
        client_for: ClientFactory,
    ) -> RefreshResult:
        policy = self.policy
        hold = self.store.hold(
            account.platform,
            account.account_id,
            owner=self.owner,
            lease_s=policy.lease_s,
            wait_s=policy.wait_s,
        )
        await _thread(hold.__enter__)
        try:
            # A run of this host that held the lease before and died leaves its journal: seen
            # only now that the lease is ours.
            late = (
                _interrupted(await _thread(journal.read), self.owner) if unknown is None else None
            )
            if late is not None and late.state == "answered":
                return await self._recover(account, late, journal, client_for, held=True)
            if late is not None and not policy.retry_unknown:
                return _unknown(account, late)
            unknown = unknown or late
            current = await _thread(lambda: self.store.get(account.platform, account.account_id))
            if current is None or not current.refresh_token:
                return RefreshResult(
                    account=account, outcome="no_token", message="the stored pair vanished"
                )
            if unknown is not None:
                # The operator chose to try the stored refresh token once more.
                await _thread(journal.clear)
            elif not policy.force:
                if current.version != seen.version or self._recently_refreshed(current):
                    by = current.updated_by or "another refresher"
                    ago = ""
                    if current.updated_at is not None:
                        seconds = (self.clock() - current.updated_at).total_seconds()
                        ago = f" {format_span(max(seconds, 0))} ago"
                    return RefreshResult(
                        account=account,
                        outcome="fresh",
                        message=f"already refreshed{ago} by {by}: nothing to do (--force "
                        "refreshes anyway)",
                        token=current,
                    )
                if policy.due_only and not policy.due(current, self.clock()):
                    return RefreshResult(
                        account=account,
                        outcome="fresh",
                        message=_not_due_text(current, self.clock()),
                        token=current,
                    )
            return await self._send(account, journal, current, client_for)
        finally:
            await _thread(lambda: hold.__exit__(None, None, None))

    def _recently_refreshed(self, token: StoredToken) -> bool:
        """Written by another nfdoctor refresh within ``policy.recent``."""
        if token.updated_at is None or token.updated_by == self.owner:
            return False
        if not (token.updated_by or "").startswith(REFRESHER_PREFIX):
            return False
        return self.clock() - token.updated_at < self.policy.recent

    async def _send(
        self,
        account: Account,
        journal: RefreshJournal,
        current: StoredToken,
        client_for: ClientFactory,
    ) -> RefreshResult:
        assert current.refresh_token is not None
        await _thread(
            lambda: journal.sending(
                owner=self.owner, started_at=self.clock(), version_read=current.version
            )
        )
        client = client_for(current.access_token)
        client.on_refresh_response = journal.answered
        try:
            tokens = await client.refresh(current.refresh_token)
        except RefreshTokenInvalidError as exc:
            await _thread(journal.clear)
            latest = await _thread(lambda: self.store.get(account.platform, account.account_id))
            if latest is not None and latest.version != current.version:
                return RefreshResult(
                    account=account,
                    outcome="adopted",
                    message="the platform refused the refresh token, and the store holds a "
                    f"newer pair (by {latest.updated_by or 'another refresher'}): another "
                    "refresher won; using its pair",
                    token=latest,
                )
            return RefreshResult(
                account=account,
                outcome="spent",
                message=f"the platform refused the refresh token ({exc.message}): it is "
                "expired, already used or revoked; the shop must authorise the app again",
                token=current,
                error=exc,
            )
        except TaxonomyError as exc:
            entry = await _thread(journal.read)
            if entry is not None and entry.state == "answered":
                # The platform answered, with an error: nothing was issued.
                await _thread(journal.clear)
                return RefreshResult(
                    account=account,
                    outcome="failed",
                    message=f"the refresh failed: {exc.message}",
                    token=current,
                    error=exc,
                )
            return _unknown(account, entry, cause=exc)
        new = StoredToken.from_token_set(
            account.platform, account.account_id, tokens, now=self.clock()
        )
        return await self._save(account, journal, new, current.version, "refreshed", client_for)

    async def _recover(
        self,
        account: Account,
        entry: JournalEntry,
        journal: RefreshJournal,
        client_for: ClientFactory,
        *,
        held: bool = False,
    ) -> RefreshResult:
        """A refresh was answered and its process stopped before saving: save it now (under
        the lease, which ``held`` says this run already has)."""
        policy = self.policy
        hold = (
            contextlib.nullcontext()
            if held
            else self.store.hold(
                account.platform,
                account.account_id,
                owner=self.owner,
                lease_s=policy.lease_s,
                wait_s=policy.wait_s,
            )
        )
        try:
            await _thread(hold.__enter__)
        except LeaseBusyError as exc:
            return RefreshResult(account=account, outcome="busy", message=exc.message)
        try:
            current = await _thread(lambda: self.store.get(account.platform, account.account_id))
            client = client_for(current.access_token if current else "")
            try:
                tokens = client.auth.parse_refresh(entry.response())
            except TaxonomyError as exc:
                await _thread(journal.clear)
                return RefreshResult(
                    account=account,
                    outcome="failed",
                    message=f"an interrupted refresh had been refused: {exc.message}",
                    token=current,
                    error=exc,
                )
            new = StoredToken.from_token_set(
                account.platform, account.account_id, tokens, now=self.clock()
            )
            stored_version = current.version if current is not None else 0
            if current is not None and (current.access_token, current.refresh_token) == (
                new.access_token,
                new.refresh_token,
            ):
                # Killed after saving, before clearing the journal: nothing left to do.
                await _thread(journal.clear)
                return RefreshResult(
                    account=account,
                    outcome="recovered",
                    message="recovered the pair an interrupted refresh had received: it had "
                    "been saved already",
                    token=current,
                )
            if stored_version != entry.version_read:
                # Saved by another refresher since: keep the stored pair (newer), and the
                # recovered one in a file, in case the operator knows better.
                path = await _thread(lambda: self._recovery_file(new))
                await _thread(journal.clear)
                return RefreshResult(
                    account=account,
                    outcome="adopted",
                    message="an interrupted refresh's answer is older than the stored pair "
                    f"(version {stored_version}, by "
                    f"{current.updated_by if current else '?'}): kept the stored pair",
                    token=current,
                    recovery_file=path,
                )
            return await self._save(
                account, journal, new, entry.version_read, "recovered", client_for
            )
        finally:
            await _thread(lambda: hold.__exit__(None, None, None))

    async def _save(
        self,
        account: Account,
        journal: RefreshJournal,
        new: StoredToken,
        expected_version: int,
        outcome: Outcome,
        client_for: ClientFactory,
    ) -> RefreshResult:
        try:
            saved = await _thread(
                lambda: self.store.save(new, expected_version=expected_version, owner=self.owner)
            )
        except (StateError, DatabaseError) as exc:
            # The platform issued this pair and the old refresh token may be spent: it must
            # not be lost. The journal stays too, so the next run saves it by itself.
            path = await _thread(lambda: self._recovery_file(new))
            return RefreshResult(
                account=account,
                outcome="not_saved",
                message=f"the platform issued a new pair but it could not be saved: "
                f"{exc.message}; it is in {path} (0600)",
                recovery_file=path,
            )
        await _thread(journal.clear)
        message = (
            "refreshed"
            if outcome == "refreshed"
            else "recovered the pair an interrupted refresh had received, and saved it"
        )
        verified, error = await _verify(client_for(saved.access_token))
        return RefreshResult(
            account=account,
            outcome=outcome,
            message=message,
            token=saved,
            verified=verified,
            verify_error=error,
        )

    def _recovery_file(self, token: StoredToken) -> Path:
        return write_recovery_file(self.recovery_dir, token, now=self.clock())


def write_recovery_file(
    directory: Path, token: StoredToken, *, now: datetime, tag: str = ""
) -> Path:
    """A pair the store refused, kept in a 0600 token file in ``directory`` (the state dir's
    ``token-recovery``): ``nfdoctor token import --from`` stores it once the store is fixed.
    ``tag`` names what issued it (``authorize``), after the time."""
    ensure_private_dir(directory)
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    suffix = f"-{tag}" if tag else ""
    path = directory / f"{token.platform}-{token.account_id}-{stamp}{suffix}.json"
    write_json(path, token_document([token]), mode=0o600)
    return path


def _interrupted(entry: JournalEntry | None, me: str) -> JournalEntry | None:
    """The journal entry of a refresh that stopped, or None: none, this run's own, or one
    that another running process of this host is writing now (the lease orders the two).
    An entry of this process by another run is a finished run's (runs here are one after
    another, each account's refresh in one task)."""
    if entry is None or entry.owner == me:
        return None
    return entry if gone(entry.owner) else None


def _not_due_text(token: StoredToken, now: datetime) -> str:
    if token.access_expires_at is None:
        return "not due: the access token does not expire"
    left = (token.access_expires_at - now).total_seconds()
    return f"not due: the access token has {format_span(max(left, 0))} left"


def _unknown(
    account: Account, entry: JournalEntry | None, cause: TaxonomyError | None = None
) -> RefreshResult:
    started = entry.started_at if entry is not None else "?"
    owner = entry.owner if entry is not None else "?"
    why = f" ({cause.message})" if cause is not None else ""
    return RefreshResult(
        account=account,
        outcome="unknown",
        message=f"refresh outcome unknown: a refresh sent at {started} by {owner} got no "
        f"answer{why}; the platform may have rotated the token",
        details=(
            "1. Do not use the stored pair's refresh token elsewhere meanwhile.",
            "2. Try it once: nfdoctor token refresh "
            f"{account.platform} --shop {account.account_id} --retry-unknown",
            "3. If the platform refuses it as used or expired, authorise the shop again: "
            f"nfdoctor token authorize {account.platform} --shop {account.account_id}",
        ),
        error=cause,
    )


async def _verify(client: PlatformClient) -> tuple[bool, TaxonomyError | None]:
    try:
        await client.ping()
    except TaxonomyError as exc:
        return False, exc
    return True, None


async def _thread(fn: Callable[[], T]) -> T:
    """Blocking store and journal work in a daemon thread (a database lease may wait)."""
    return await in_daemon_thread(fn, name="nfdoctor-token")
