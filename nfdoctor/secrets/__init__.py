"""Secret references (``keyring:``, ``env:``, ``file:``, inline), their resolution and redaction."""

from __future__ import annotations

from nfdoctor.secrets.redaction import Redactor
from nfdoctor.secrets.reference import SecretRef

__all__ = ["Redactor", "SecretRef"]
