"""Print the current output of every command in the guided tour (examples/README.md), at 80 columns.

Run it after a bundled model or a renderer changes, and paste the lines the tour shows from what
it prints (tests/test_tour.py says which line went stale):

    .venv/bin/python scripts/tour_output.py            # every command
    .venv/bin/python scripts/tour_output.py sense      # only commands containing "sense"
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def main() -> None:
    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    text = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    commands = [
        line.strip()
        for block in FENCE.findall(text)
        for line in block.splitlines()
        if line.strip().startswith("bertprobe ") and wanted in line
    ]
    env = {**os.environ, "COLUMNS": "80", "HF_HUB_OFFLINE": "1"}
    for command in commands:
        print(f"$ {command}", flush=True)
        args = [sys.executable, "-m", "bertprobe", *shlex.split(command)[1:]]
        subprocess.run(args, cwd=ROOT, env=env, check=False, stderr=subprocess.STDOUT)
        print(flush=True)


if __name__ == "__main__":
    main()
