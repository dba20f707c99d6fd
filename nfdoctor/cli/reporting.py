"""Transitional: ``check_write_target`` moved to :mod:`nfdoctor.cli.options`."""

from __future__ import annotations

from nfdoctor.cli.options import check_write_target

__all__ = ["check_write_target"]
