"""``python -m nfdoctor``."""

from __future__ import annotations

from nfdoctor.cli.app import main

if __name__ == "__main__":
    main()
