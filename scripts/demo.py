"""Quick start, part 1: set everything up, start the simulator, run `nfdoctor diagnose`.

python3 scripts/demo.py [extra diagnose options, e.g. --output json or --lang vi]

The simulator serves Shopee, Lazada, TikTok Shop, Facebook and Zalo on 127.0.0.1 with two
shops each, playing examples/demo-scenario.yaml (an expired Zalo token, a Facebook rate
limit, a TikTok API change, a Lazada connection drop…), and the demo CRM database of those
shops (their orders and chats, with the duplicates a CRM collects).
nfdoctor then diagnoses it exactly as it would the real thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _bootstrap import ROOT, ensure_venv

MEANING = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def start_simulator(python: Path, demo_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the simulator; return it once it serves and its config is written."""
    config = demo_dir / "nfdoctor.yaml"
    log = demo_dir / "simulator.log"
    # demo/ is the demo's own scratch directory: start from a fresh database and config.
    config.unlink(missing_ok=True)
    (demo_dir / "crm.db").unlink(missing_ok=True)
    command = [
        str(python),
        "-m",
        "nfdoctor",
        "simulator",
        "--tls",
        "--shops",
        "2",
        "--faults",
        str(ROOT / "examples" / "demo-scenario.yaml"),
        "--database",
        f"sqlite:///{demo_dir / 'crm.db'}",
        "--write-config",
        str(config),
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=log_file)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.stderr.write(log.read_text(encoding="utf-8", errors="replace"))
            raise SystemExit(f"the simulator exited with {process.returncode}")
        if config.exists() and b"listening on" in log.read_bytes():
            for line in log.read_text(encoding="utf-8").splitlines():
                print(line, file=sys.stderr)
            return process, config
        time.sleep(0.1)
    process.kill()
    raise SystemExit("the simulator did not start within 60 s; see demo/simulator.log")


def main() -> int:
    """Diagnose the simulated shops; exit 0 when nfdoctor judged the system."""
    python = ensure_venv()
    demo_dir = ROOT / "demo"
    demo_dir.mkdir(exist_ok=True)
    simulator, config = start_simulator(python, demo_dir)
    try:
        command = [str(python), "-m", "nfdoctor", "diagnose", "--config", str(config)]
        command += sys.argv[1:]
        print("$ nfdoctor " + " ".join(command[3:]), file=sys.stderr)
        # nfdoctor's own state (the config-change history) for the demo alone: each demo is a
        # first run, not a change from the last demo's port.
        shutil.rmtree(demo_dir / "state", ignore_errors=True)
        env = {**os.environ, "XDG_STATE_HOME": str(demo_dir / "state")}
        code = subprocess.run(command, env=env).returncode
    finally:
        simulator.terminate()
        try:
            simulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            simulator.kill()
    print(f"\nnfdoctor exited {code} ({MEANING.get(code, 'error')})", file=sys.stderr)
    # 1 and 2 are findings about the simulated shops, which is what the demo is for.
    return 0 if code in (0, 1, 2) else code


if __name__ == "__main__":
    sys.exit(main())
