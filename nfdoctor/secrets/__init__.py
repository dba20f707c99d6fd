"""Secret references (``keyring:``, ``env:``, ``file:``, inline), their resolution and redaction.

Import the modules themselves (``nfdoctor.secrets.redaction`` …): this package imports
nothing on its own, so the redactor, which every command needs, stays cheap to import.
"""

from __future__ import annotations
