"""Quick start, part 1: set everything up and run `nfdoctor diagnose` on the demo CRM.

python3 scripts/demo.py [extra diagnose options, e.g. --output json]
"""

from __future__ import annotations

import subprocess
import sys

from _bootstrap import ROOT, ensure_venv

MEANING = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def main() -> int:
    """Build the demo database, then diagnose it; exit 0 when nfdoctor judged the system."""
    python = ensure_venv()
    demo_dir = ROOT / "demo"
    demo_dir.mkdir(exist_ok=True)
    build = (
        "import datetime, pathlib;"
        "from nfdoctor.store.demo import build_demo_database as b;"
        f"s = b(pathlib.Path({str(demo_dir / 'crm.db')!r}), seed=7, overwrite=True,"
        " now=datetime.datetime.now(datetime.timezone.utc));"
        "print(f'demo CRM database: {s}')"
    )
    subprocess.run([str(python), "-c", build], check=True, stdout=sys.stderr)
    command = [
        str(python),
        "-m",
        "nfdoctor",
        "diagnose",
        "--config",
        str(ROOT / "examples" / "demo.yaml"),
        *sys.argv[1:],
    ]
    print("$ nfdoctor " + " ".join(command[3:]), file=sys.stderr)
    code = subprocess.run(command).returncode
    print(f"\nnfdoctor exited {code} ({MEANING.get(code, 'error')})", file=sys.stderr)
    # 1 and 2 are findings about the demo system, which is what the demo is for.
    return 0 if code in (0, 1, 2) else code


if __name__ == "__main__":
    sys.exit(main())
