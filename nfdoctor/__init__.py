"""nfdoctor: the operator's troubleshooting toolkit for NextFlow CRM's multichannel integrations."""

from __future__ import annotations

__version__ = "0.1.0"
