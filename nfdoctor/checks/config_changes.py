"""Recent configuration changes: what changed since the last run, by key path, secrets masked.

Each run takes a snapshot of the effective config (defaults filled in) and compares it with
the previous one kept under the XDG state dir. Secret values are never stored: a secret is
kept as an HMAC fingerprint under a random per-host key, so a rotated key shows up as
"secret value changed" and nothing in the state file can be reversed into the secret.
Changes are kept as a short history so a cron run does not "use up" a change before the
operator looks: every change within ``thresholds.config_change_recent`` is reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from nfdoctor.checks.base import Check, CheckContext
from nfdoctor.durations import format_span
from nfdoctor.errors import StateError
from nfdoctor.fsutil import FileRefusedError, os_reason, read_regular_file
from nfdoctor.hints import HINTS
from nfdoctor.results import CheckResult, Metric, Status
from nfdoctor.state.documents import decode_json, read_state_bytes, write_json
from nfdoctor.state.locks import FileStateLock

STATE_VERSION = 1
MAX_HISTORY = 50
#: a snapshot of a large config and 50 changes is tens of KiB
MAX_STATE_BYTES = 4 * 1024 * 1024
_FINGERPRINT_PREFIX = "secret:"


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested data as ``{"platforms.shopee.shops[0].shop_id": "220001", ...}``."""
    flat: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        if not value:
            flat[prefix] = "[]"
        for index, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}[{index}]"))
    else:
        flat[prefix] = json.dumps(value, ensure_ascii=False)
    return flat


def _host_key(state_dir: Path) -> bytes:
    """The per-host HMAC key for secret fingerprints, created 0600 on first use."""
    path = state_dir / "fingerprint.key"
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)  # another run created it first
    except OSError as exc:
        raise StateError(f"cannot create {path}: {os_reason(exc)}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key


def _read_key(path: Path) -> bytes:
    try:
        return bytes.fromhex(read_regular_file(path, limit=1024).decode("ascii").strip())
    except FileNotFoundError:
        raise
    except FileRefusedError as exc:
        raise StateError(f"{path} {exc.reason}; move it aside") from None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {os_reason(exc)}") from None
    except ValueError:
        raise StateError(f"{path} is not a hex key; move it aside") from None


def snapshot(ctx: CheckContext, host_key: bytes) -> dict[str, str]:
    """The effective config flattened, each secret replaced by its fingerprint."""
    loaded = ctx.loaded
    flat = flatten(loaded.config.model_dump(mode="json"))
    for key, value in flat.items():
        # A value carrying a secret by shape (a password inside database.url, a token in
        # a URL) is stored like a secret: masked text plus a fingerprint of the original.
        masked = ctx.redactor.redact(value)
        if masked != value:
            digest = hmac.new(host_key, value.encode(), hashlib.sha256).hexdigest()[:16]
            flat[key] = f"{_FINGERPRINT_PREFIX}{masked}#{digest}"
    for secret in loaded.secrets:
        value = ctx.secrets.get(secret.key_path)
        digest = hmac.new(host_key, value.encode(), hashlib.sha256).hexdigest()[:16]
        flat[secret.key_path] = f"{_FINGERPRINT_PREFIX}{secret.ref.display()}#{digest}"
    return flat


def describe_change(key: str, old: str | None, new: str | None) -> str:
    """One line for one changed key; secrets say only what kind of change it was."""
    if old is None:
        return f"{key}: added" + ("" if _is_secret(new) else f" ({new})")
    if new is None:
        return f"{key}: removed"
    if _is_secret(old) or _is_secret(new):
        old_ref, new_ref = (v.partition("#")[0] if v else "" for v in (old, new))
        if old_ref != new_ref:
            return f"{key}: secret reference changed ({_ref(old_ref)} → {_ref(new_ref)})"
        return f"{key}: secret value changed"
    return f"{key}: {old} → {new}"


def _is_secret(value: str | None) -> bool:
    return bool(value and value.startswith(_FINGERPRINT_PREFIX))


def _ref(value: str) -> str:
    return value.removeprefix(_FINGERPRINT_PREFIX)


def diff(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Every changed key, in key order."""
    keys = sorted(set(old) | set(new))
    return [describe_change(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


class ConfigChangesCheck(Check):
    """Compares the config with the last run's snapshot and keeps a short change history."""

    id = "config.changes"
    title = "Recent configuration changes"

    def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """WARNING while a change is recent; the state file records the new snapshot."""
        loaded = ctx.loaded
        recent = loaded.config.thresholds.config_change_recent
        state_dir = ctx.state_dir
        config_id = hashlib.sha256(str(loaded.path.resolve()).encode()).hexdigest()[:12]
        state_file = state_dir / f"config-{config_id}.json"
        now = ctx.clock()
        lock = FileStateLock(
            state_dir / f"config-{config_id}.json.lock",
            what=f"the config change history {state_file}",
        )
        with lock:  # creates the state dir 0700 when missing
            current = snapshot(ctx, _host_key(state_dir))
            state = _read_state(state_file)
            history: list[dict[str, Any]] = state.get("history", [])
            previous = state.get("snapshot")
            changes = diff(previous, current) if previous is not None else []
            if changes:
                history.append({"at": now.isoformat(), "changes": changes})
            write_json(
                state_file,
                {
                    "version": STATE_VERSION,
                    "config_path": str(loaded.path.resolve()),
                    "taken_at": now.isoformat(),
                    "snapshot": current,
                    "history": history[-MAX_HISTORY:],
                },
            )
        return [self._report(previous is None, history, now, recent, ctx)]

    def _report(
        self,
        first_run: bool,
        history: list[dict[str, Any]],
        now: datetime,
        recent: timedelta,
        ctx: CheckContext,
    ) -> CheckResult:
        if first_run:
            return self.result(Status.OK, "first run: baseline recorded; later runs report changes")
        window = [e for e in history if now - datetime.fromisoformat(e["at"]) <= recent]
        changed = [line for event in window for line in event["changes"]]
        if not changed:
            last = ""
            if history:
                age = now - datetime.fromisoformat(history[-1]["at"])
                last = f"; last change {format_span(age.total_seconds())} ago"
            return self.result(
                Status.OK,
                f"no changes in the last {format_span(recent.total_seconds())}{last}",
                metrics=[Metric(name="recent_changes", value=0.0)],
            )
        latest = datetime.fromisoformat(window[-1]["at"])
        ago = format_span((now - latest).total_seconds())
        zone = ctx.config.timezone
        details = []
        for event in window:
            local = datetime.fromisoformat(event["at"]).astimezone(ZoneInfo(zone))
            details += [f"{local:%Y-%m-%d %H:%M} {line}" for line in event["changes"]]
        return self.result(
            Status.WARNING,
            f"{len(changed)} change(s) in the last {format_span(recent.total_seconds())}, "
            f"latest {ago} ago: {changed[-1]}",
            details=details,
            hint=HINTS["config.changes"],
            next_command="nfdoctor config show",
            metrics=[Metric(name="recent_changes", value=float(len(changed)))],
        )


def _read_state(path: Path) -> dict[str, Any]:
    """The last snapshot and its history; empty (a new baseline) when absent or unreadable.

    A corrupt history must not stop diagnosis: it is set aside as ``<file>.corrupt`` (kept for
    whoever wants to look) and a new baseline begins. A FIFO or device is not ours to
    replace: StateError.
    """
    data = read_state_bytes(path, limit=MAX_STATE_BYTES, kind="config change history")
    if data is None:
        return {}
    try:
        document = decode_json(
            data, str(path), recover="A new baseline is taken.", kind="config change history"
        )
    except StateError:
        with contextlib.suppress(OSError):
            os.replace(path, path.with_name(path.name + ".corrupt"))
        return {}
    if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
        return {}
    return document
