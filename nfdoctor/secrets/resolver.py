"""Turning secret references into values, registering each value for redaction."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from nfdoctor.errors import ConfigError, ConfigProblem, KeyringUnavailableError, SecretError
from nfdoctor.fsutil import FileRefusedError, expand_user, os_reason, read_regular_file
from nfdoctor.secrets import keyring_access
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.secrets.reference import SecretRef

# A secret file larger than this is certainly not a key, and reading it whole could hurt.
MAX_SECRET_FILE_BYTES = 64 * 1024


class ResolvedSecrets:
    """The config's secrets, resolved once before a run: value by key path.

    Commands resolve every reference up front (a missing secret stops the run before anything
    is measured or written), then hand this to whatever needs a secret: nothing resolves a
    reference again in the middle of a run.
    """

    def __init__(self, values: Mapping[str, str], *, source: str = "") -> None:
        self._values = dict(values)
        self._source = source

    def get(self, key_path: str) -> str:
        """The value of the secret at ``key_path`` (``platforms.shopee.partner_key``)."""
        try:
            return self._values[key_path]
        except KeyError:
            raise ConfigError(
                ConfigProblem(file=self._source, key_path=key_path, message="missing")
            ) from None

    def __contains__(self, key_path: object) -> bool:
        return key_path in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ResolvedSecrets({sorted(self._values)!r})"  # the key paths, never a value


class SecretResolver:
    """Resolves :class:`SecretRef` values in a fixed order of sources; caches per run."""

    def __init__(
        self,
        *,
        redactor: Redactor,
        environ: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        keyring_timeout_s: float = 3.0,
    ) -> None:
        self.redactor = redactor
        self.environ = os.environ if environ is None else environ
        self.base_dir = base_dir or Path.cwd()
        self.keyring_timeout_s = keyring_timeout_s
        self._cache: dict[SecretRef, str] = {}

    def resolve(self, ref: SecretRef, *, where: str) -> str:
        """The secret's value; ``where`` (``file:line: key``) prefixes any error message."""
        if ref in self._cache:
            return self._cache[ref]
        try:
            value = self._lookup(ref)
        except KeyringUnavailableError as exc:
            raise KeyringUnavailableError(f"{where}: {exc.message}") from None
        except SecretError as exc:
            raise SecretError(f"{where}: {exc.message}") from None
        self.redactor.add(value)
        self._cache[ref] = value
        return value

    def _lookup(self, ref: SecretRef) -> str:
        if ref.kind == "inline":
            return ref.target
        if ref.kind == "env":
            value = self.environ.get(ref.target)
            if value is None:
                raise SecretError(
                    f"environment variable {ref.target} is not set "
                    "(cron and systemd do not inherit your shell's environment)"
                )
            if not value.strip():
                raise SecretError(f"environment variable {ref.target} is empty")
            return value
        if ref.kind == "file":
            return self._read_file(ref.target)
        service, _, name = ref.target.partition("/")
        value = keyring_access.get_password(service, name, timeout_s=self.keyring_timeout_s)
        if value is None:
            raise SecretError(
                f"the OS keyring has no entry {service}/{name} "
                f"(store it with: keyring set {service} {name})"
            )
        return value

    def _read_file(self, target: str) -> str:
        try:
            path = expand_user(target)
        except ValueError as exc:
            raise SecretError(f"secret file {exc}") from None
        if not path.is_absolute():
            path = self.base_dir / path
        try:
            data = read_regular_file(path, limit=MAX_SECRET_FILE_BYTES)
        except FileRefusedError as exc:
            if exc.too_large:
                raise SecretError(
                    f"secret file {path} {exc.reason}; expected a small key file"
                ) from None
            raise SecretError(f"secret file {path} {exc.reason}") from None
        except FileNotFoundError:
            raise SecretError(f"secret file {path} does not exist") from None
        except PermissionError:
            raise SecretError(f"secret file {path} is not readable (permission denied)") from None
        except OSError as exc:
            raise SecretError(f"secret file {path} cannot be read: {os_reason(exc)}") from None
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise SecretError(f"secret file {path} is not UTF-8 text") from None
        if not value:
            raise SecretError(f"secret file {path} is empty")
        return value
