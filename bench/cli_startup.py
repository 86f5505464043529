"""How fast `imagent --help` answers (target: under 0.5 s), and that it imports no heavy module.

Runs the installed console script N times and reports the median and worst wall
time; writes bench/results/cli_startup.json. Not a test: timings are printed, not asserted.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5


def main(runs: int = 15) -> int:
    exe = shutil.which("imagent", path=str(Path(sys.executable).parent)) or "imagent"
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom imagent.cli import main\n"
         "try: main(['--help'])\nexcept SystemExit: pass\n"
         "print('HEAVY=' + ','.join(m for m in ('torch','numpy','PIL','pydantic') if m in sys.modules))"],
        capture_output=True, text=True, check=True)
    line = next(ln for ln in probe.stdout.splitlines() if ln.startswith("HEAVY="))
    heavy = [m for m in line[len("HEAVY="):].split(",") if m]
    result = {"runs": runs, "median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4),
              "target_s": TARGET_S, "pass": statistics.median(times) < TARGET_S and not heavy,
              "heavy_modules_imported": heavy}
    print(f"imagent --help: median {result['median_s'] * 1000:.0f} ms, worst {result['max_s'] * 1000:.0f} ms "
          f"over {runs} runs (target < {TARGET_S * 1000:.0f} ms) — {'PASS' if result['pass'] else 'FAIL'}; "
          f"heavy modules imported: {heavy or 'none'}")
    out = Path(__file__).parent / "results" / "cli_startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
