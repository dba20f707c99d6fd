"""Create the project's virtual environment and install nfdoctor into it, once per change.

Used by scripts/demo.py and scripts/test.py so both work on a machine with only Python 3.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("NFDOCTOR_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv(extras: str = "dev,postgres") -> Path:
    """The venv's python, after installing ``nfdoctor[extras]`` if pyproject.toml changed."""
    if sys.version_info < (3, 10):
        sys.exit(f"nfdoctor needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", file=sys.stderr)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # Debian/Ubuntu without python3-venv
            sys.exit(f"cannot create a virtual environment ({exc}); install python3-venv")
    stamp = VENV / ".nfdoctor-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != digest:
        print(f"installing nfdoctor[{extras}] into {VENV}", file=sys.stderr)
        pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
        log = VENV / "install.log"
        with log.open("w") as output:
            for step in (["install", "--upgrade", "pip"], ["install", "-e", f"{ROOT}[{extras}]"]):
                done = subprocess.run([*pip, *step], stdout=output, stderr=subprocess.STDOUT)
                if done.returncode != 0:
                    sys.stderr.write(log.read_text())
                    sys.exit(f"installing nfdoctor failed (pip {' '.join(step)}); log: {log}")
        stamp.write_text(digest)
    return PYTHON
