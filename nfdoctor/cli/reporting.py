"""Transitional: ``check_write_target`` moved to :mod:`nfdoctor.cli.common`."""

from __future__ import annotations

from nfdoctor.cli.common import check_write_target

__all__ = ["check_write_target"]
