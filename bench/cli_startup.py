"""How fast the CLI starts: ``imagent --help`` (target: under 0.5 s, no heavy module) and an
offline ``imagent edit`` of a tiny image (the edit itself is negligible, so this is start-up:
imports, building the planner and the tool registry), which must import no model stack.

Runs the installed console script N times each and reports the median and worst wall time;
writes bench/results/cli_startup.json. Not a test: timings are printed, not asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.5
# Never imported by an offline edit (the embedded profile needs no model, no LLM, no TUI).
MODEL_MODULES = ("torch", "transformers", "diffusers", "accelerate", "safetensors", "huggingface_hub",
                 "langchain", "langchain_core", "textual")


def _timed(cmd: list[str], runs: int, **kw) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, **kw)
        times.append(time.perf_counter() - t)
    return times


def _edit(exe: str, runs: int) -> dict:
    """A tiny offline ``imagent edit ... "make it brighter" -o`` in a scratch store."""
    with tempfile.TemporaryDirectory(prefix="imagent-cli-startup-") as tmp:
        import numpy as np
        from PIL import Image

        Image.fromarray(np.full((32, 48, 3), 100, np.uint8)).save(Path(tmp) / "tiny.png")
        env = {**os.environ, "IMAGENT_HOME": str(Path(tmp) / "home"), "IMAGENT_PROFILE": "offline"}
        args = ["edit", "tiny.png", "make it brighter", "-o", "out.png"]
        subprocess.run([exe, *args], check=True, capture_output=True, cwd=tmp, env=env)  # warm
        times = _timed([exe, *args], runs, cwd=tmp, env=env)
        probe = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom imagent.cli import main\n"
             f"rc = main({args!r})\n"
             f"print('MODELS=' + ','.join(m for m in {MODEL_MODULES!r} if m in sys.modules))\n"
             "print(f'RC={rc}')"], capture_output=True, text=True, check=True, cwd=tmp, env=env)
    lines = dict(ln.split("=", 1) for ln in probe.stdout.splitlines() if ln.startswith(("MODELS=", "RC=")))
    models = [m for m in lines.get("MODELS", "").split(",") if m]
    return {"median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4),
            "exit_code": int(lines.get("RC", "-1")), "model_modules_imported": models,
            "pass": not models and lines.get("RC") == "0"}


def main(runs: int = 15) -> int:
    exe = shutil.which("imagent", path=str(Path(sys.executable).parent)) or "imagent"
    times = _timed([exe, "--help"], runs)
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
    edit = result["edit"] = _edit(exe, max(3, runs // 3))
    print(f"imagent edit (tiny image, offline): median {edit['median_s'] * 1000:.0f} ms, worst "
          f"{edit['max_s'] * 1000:.0f} ms over {max(3, runs // 3)} runs — "
          f"{'PASS' if edit['pass'] else 'FAIL'}; model modules imported: "
          f"{edit['model_modules_imported'] or 'none'}")
    out = Path(__file__).parent / "results" / "cli_startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
