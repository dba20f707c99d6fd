"""Serving the simulator on loopback, and writing an nfdoctor config that points at it.

The simulator accepts any request signed with the credentials it issued, so it must never
be reachable from another machine: the server binds 127.0.0.1 and refuses anything else.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from nfdoctor.errors import UsageError
from nfdoctor.fsutil import write_atomically
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.tokens.store import FORMAT as TOKEN_FILE_FORMAT

__all__ = [
    "LOOPBACK",
    "TOKENS_FORMAT",
    "SimulatorServer",
    "check_loopback",
    "tokens_document",
    "write_config",
]

LOOPBACK = "127.0.0.1"


class _HideSimulatedResets(logging.Filter):
    """Drop uvicorn's traceback for resets the fault plan asked for: they are not bugs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from starlette.requests import ClientDisconnect

        from nfdoctor.simulator.faults import SimulatedConnectionReset

        exc = record.exc_info[1] if record.exc_info else None
        # A client that gave up (its timeout) is what the timeout fault is for.
        return not isinstance(exc, (SimulatedConnectionReset, ClientDisconnect))


_RESET_FILTER = _HideSimulatedResets()


def check_loopback(host: str) -> None:
    """Refuse any host but 127.0.0.1."""
    if host != LOOPBACK:
        raise UsageError(
            f"the simulator serves on {LOOPBACK} only (got {host!r}): it accepts the "
            "credentials it issued and must not be reachable from other machines"
        )


class SimulatorServer:
    """A uvicorn server on a socket bound before start, so port 0 gives a known port."""

    def __init__(
        self, app: ASGIApp, *, host: str = LOOPBACK, port: int = 0, log_level: str = "warning"
    ) -> None:
        import uvicorn

        check_loopback(host)
        if not 0 <= port <= 65535:
            raise UsageError(f"--port: expected 0-65535, got {port}")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Restarting on the same --port right after Ctrl-C must not wait out TIME_WAIT.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        # The simulated apps send their own (skewable) Date header; uvicorn's would duplicate it.
        config = uvicorn.Config(
            app, log_level=log_level, date_header=False, server_header=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_RESET_FILTER)  # idempotent for one object
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C) or :meth:`stop`."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start_in_thread(self, timeout: float = 10.0) -> None:
        """Serve from a background thread; return once it accepts connections."""
        self._thread = threading.Thread(target=self.run, name="nfdoctor-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the simulator server did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)


#: ``format`` of the tokens file: the file token store's own
TOKENS_FORMAT = TOKEN_FILE_FORMAT


def tokens_document(state: SimulatorState) -> dict[str, Any]:
    """Every account's current tokens, in the token store's file format.

    ``{"format": "nfdoctor.tokens/v1", "tokens": {platform: {account_id: {access_token,
    access_expires_at, refresh_token, refresh_expires_at, updated_at}}}}``; times are ISO 8601
    in UTC, ``null`` where there is no refresh token or no expiry (Facebook).
    """

    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(timezone.utc).isoformat() if moment is not None else None

    updated = iso(state.clock())
    tokens: dict[str, dict[str, dict[str, Any]]] = {}
    for platform, accounts in state.accounts.items():
        for account in accounts:
            access = state.current(platform, account.account_id, "access")
            refresh = state.current(platform, account.account_id, "refresh")
            if access is None:
                continue
            tokens.setdefault(platform, {})[account.account_id] = {
                "access_token": access.value,
                "access_expires_at": iso(access.expires_at),
                "refresh_token": refresh.value if refresh else None,
                "refresh_expires_at": iso(refresh.expires_at) if refresh else None,
                "updated_at": updated,
            }
    return {"format": TOKENS_FORMAT, "tokens": tokens}


def write_config(
    path: Path, base_url: str, state: SimulatorState, *, database_path: Path | None = None
) -> list[Path]:
    """Write a config pointing every platform at the simulator; secrets as 0600 ``file:`` refs.

    Every account of every platform is listed. Secret files go to ``<config stem>-secrets/``
    next to the config, together with ``tokens.json`` (see :func:`tokens_document`), which the
    config's ``tokens`` section names (``store: file``, path relative to the config). The token
    hosts are set too (Lazada and TikTok ``auth_url``, Zalo ``oauth_url``). Returns every file
    written, the config first.
    """
    import yaml

    base = base_url.rstrip("/")
    if not path.parent.is_dir():
        raise UsageError(f"--write-config: directory {path.parent} does not exist")
    secrets_dir = path.parent / f"{path.stem}-secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(secrets_dir, 0o700)  # mkdir's mode passes through the umask, or it existed
    written: list[Path] = []

    def secret(name: str, value: str) -> str:
        target = secrets_dir / name
        write_atomically(target, value + "\n", mode=0o600)
        written.append(target)
        return f"file:{secrets_dir.name}/{name}"

    shopee = state.accounts["shopee"]
    lazada = state.accounts["lazada"]
    tiktok = state.accounts["tiktok"]
    facebook = state.accounts["facebook"]
    zalo = state.accounts["zalo"]
    config: dict[str, Any] = {
        "crm": {
            "base_url": f"{base}/crm",
            "status_url": f"{base}/crm/api/status",
            "api_key": secret("crm-api-key", state.crm_api_key),
        },
        "ai": {
            "endpoint": f"{base}/crm/api/ai/reply",
            "api_key": secret("ai-api-key", state.crm_api_key),
        },
        "platforms": {
            "shopee": {
                "base_url": f"{base}/shopee",
                "webhook_url": f"{base}/crm/webhooks/shopee",
                "partner_id": state.shopee_partner_id,
                "partner_key": secret("shopee-partner-key", state.shopee_partner_key),
                "shops": [{"shop_id": int(a.account_id), "name": a.name} for a in shopee],
            },
            "lazada": {
                "base_url": f"{base}/lazada/rest",
                "auth_url": f"{base}/lazada-auth/rest",
                "webhook_url": f"{base}/crm/webhooks/lazada",
                "app_key": state.lazada_app_key,
                "app_secret": secret("lazada-app-secret", state.lazada_app_secret),
                "shops": [{"seller_id": a.account_id, "name": a.name} for a in lazada],
            },
            "tiktok": {
                "base_url": f"{base}/tiktok",
                "auth_url": f"{base}/tiktok-auth",
                "webhook_url": f"{base}/crm/webhooks/tiktok",
                "app_key": state.tiktok_app_key,
                "app_secret": secret("tiktok-app-secret", state.tiktok_app_secret),
                "shops": [
                    {"shop_id": a.account_id, "shop_cipher": a.extra["cipher"], "name": a.name}
                    for a in tiktok
                ],
            },
            "facebook": {
                # The client appends graph_version: {base}/facebook/v21.0/...
                "base_url": f"{base}/facebook",
                "webhook_url": f"{base}/crm/webhooks/facebook",
                "app_id": state.facebook_app_id,
                "app_secret": secret("facebook-app-secret", state.facebook_app_secret),
                "verify_token": secret("facebook-verify-token", state.facebook_verify_token),
                "graph_version": state.facebook_version,
                "pages": [{"page_id": a.account_id, "name": a.name} for a in facebook],
            },
            "zalo": {
                "base_url": f"{base}/zalo",
                "oauth_url": f"{base}/zalo-oauth/v4",
                "webhook_url": f"{base}/crm/webhooks/zalo",
                "app_id": state.zalo_app_id,
                "secret_key": secret("zalo-secret-key", state.zalo_secret_key),
                "oas": [
                    {
                        "oa_id": a.account_id,
                        "name": a.name,
                        "oa_secret": secret(f"zalo-oa-secret-{a.account_id}", a.extra["oa_secret"]),
                    }
                    for a in zalo
                ],
            },
        },
        "tokens": {"store": "file", "path": f"{secrets_dir.name}/tokens.json"},
    }
    if database_path is not None:
        config["database"] = {"url": f"sqlite:///{database_path.resolve()}"}

    tokens_path = secrets_dir / "tokens.json"
    write_atomically(tokens_path, json.dumps(tokens_document(state), indent=2) + "\n", mode=0o600)
    written.append(tokens_path)

    count = state.accounts_per_platform
    accounts = f"{count} accounts" if count > 1 else "1 account"
    header = (
        "# Written by `nfdoctor simulator`: every platform points at the local simulator\n"
        f"# ({base}), {accounts} per platform, token hosts included (auth_url,\n"
        "# oauth_url). Secrets are file: references to 0600 files in\n"
        f"# {secrets_dir.name}/; the tokens the simulator issued at start are in\n"
        f"# {secrets_dir.name}/tokens.json, the file token store that `tokens:` names\n"
        "# (see nfdoctor/simulator/README.md).\n"
    )
    text = header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    write_atomically(path, text)  # no secret in it: only file: references
    written.insert(0, path)
    return written
