"""Quick start, part 2: set everything up and run the whole test suite.

python3 scripts/test.py [pytest options]      e.g. -k config, -m "not slow"
"""

from __future__ import annotations

import subprocess
import sys

from _bootstrap import ROOT, ensure_venv


def main() -> int:
    """Run pytest in the project's venv; "no tests collected" counts as a failure."""
    python = ensure_venv()
    code = subprocess.run([str(python), "-m", "pytest", *sys.argv[1:]], cwd=ROOT).returncode
    return 1 if code == 5 else code


if __name__ == "__main__":
    sys.exit(main())
