"""The redaction registry: every resolved secret is masked in all output nfdoctor produces.

Besides exact secret values it masks the places secrets travel in by shape: credentials in
URLs (``postgresql://user:pass@``) and signing/token query parameters (Shopee and Lazada
carry ``access_token`` and ``sign`` in the query string, and httpx logs full URLs).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from urllib.parse import quote, quote_plus

MASK = "***"
# A secret shorter than this is not masked by value: masking "1" or "on" everywhere
# would make output unreadable, and such values are not secrets worth the name.
MIN_SECRET_LENGTH = 4

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")
#: every query or form parameter that carries a token, a key or a signature on any platform:
#: Shopee/Lazada ``access_token`` and ``sign``, TikTok's refresh call's ``app_secret``,
#: Facebook's ``input_token`` (debug_token), ``fb_exchange_token`` and ``client_secret``
#: (token exchange), the OAuth ``code``, the webhook handshake's ``hub.verify_token``
_SECRET_PARAMS = (
    "access_token|refresh_token|input_token|fb_exchange_token|sign|signature|client_secret|"
    "app_secret|partner_key|secret_key|oa_secret|appsecret_proof|code|code_verifier|"
    r"password|api_key|apikey|token|verify_token|hub\.verify_token"
)
_QUERY_SECRET = re.compile(rf"(?P<key>[?&;](?:{_SECRET_PARAMS})=)[^&#\s\"'<>]+", re.IGNORECASE)


class Redactor:
    """Holds the secret values resolved in this run and masks them in any text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str) -> None:
        """Register a resolved secret for masking, in every form it can be printed in."""
        candidates = forms_of(secret)
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


def forms_of(secret: str) -> set[str]:
    """``secret`` as it can appear in text: raw, stripped, URL-encoded, JSON- and
    ``repr``-escaped (as text and as bytes, which is how httpx quotes a bad header value),
    and with control characters escaped or removed (as the renderers do)."""
    forms = {secret, secret.strip()}
    for value in list(forms):
        forms.add(quote(value, safe=""))
        forms.add(quote(value))
        forms.add(quote_plus(value))
        forms.add(json.dumps(value)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
        forms.add(repr(value)[1:-1])
        forms.add(repr(value.encode("utf-8"))[2:-1])
        forms.add(value.encode("unicode_escape").decode("ascii"))
        # The plain and table renderers turn \r \n \t into spaces and drop other controls.
        spaced = "".join(" " if c in "\r\n\t" else c for c in value)
        forms.add("".join(c for c in spaced if unicodedata.category(c) != "Cc"))
    return forms


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
