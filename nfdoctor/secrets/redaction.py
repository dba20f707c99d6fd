"""The redaction registry: every resolved secret is masked in all output nfdoctor produces.

Besides exact secret values it masks the places secrets travel in by shape: credentials in
URLs (``postgresql://user:pass@``) and signing/token query parameters (Shopee and Lazada
carry ``access_token`` and ``sign`` in the query string, and httpx logs full URLs).
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
# A secret shorter than this is not masked by value: masking "1" or "on" everywhere
# would make output unreadable, and such values are not secrets worth the name.
MIN_SECRET_LENGTH = 4

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")
_SECRET_PARAMS = (
    "access_token|refresh_token|sign|signature|client_secret|app_secret|partner_key|"
    "secret_key|appsecret_proof|code|password|api_key|apikey|token"
)
_QUERY_SECRET = re.compile(rf"(?P<key>[?&;](?:{_SECRET_PARAMS})=)[^&#\s\"']+", re.IGNORECASE)


class Redactor:
    """Holds the secret values resolved in this run and masks them in any text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str) -> None:
        """Register a resolved secret (and its stripped form) for masking."""
        candidates = {secret, secret.strip()}
        with self._lock:
            for value in candidates:
                if len(value) >= MIN_SECRET_LENGTH:
                    self._secrets.add(value)
            self._pattern = None

    def redact(self, text: str) -> str:
        """``text`` with every registered secret, URL password and secret query value masked."""
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        text = _URL_CREDENTIALS.sub(lambda m: m.group("scheme") + MASK + "@", text)
        return _QUERY_SECRET.sub(lambda m: m.group("key") + MASK, text)

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._secrets:
                # Longest first, so a secret that contains another is masked whole.
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
            return self._pattern


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record's message and masks it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its redacted rendering; always keep the record."""
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            # Format the traceback now, redacted, so no handler formats the raw one later.
            formatter = logging.Formatter()
            record.exc_text = self.redactor.redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
