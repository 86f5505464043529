"""How fast `imagent chat IMAGE` starts to an interactive screen (target: under 1.5 s).

Runs the installed console script in a pseudo-terminal (120×40) on the demo photo
with a fresh store, N times. "Interactive" is the moment the app has shown the
session — the image pane, history and status bar filled from the first state
snapshot, the input line focused: the app writes the elapsed time to the file in
IMAGENT_TUI_READY_FILE then. The wall time counted here runs from spawning the
process (Python start and imports included) to that file appearing; then ctrl+q
quits and the exit code is checked.

The pty reports a pixel size and answers the device-attributes query like an
xterm without Sixel. Two modes: `auto` (the terminal is queried for Kitty/Sixel
graphics: the Kitty query has no answer here and costs textual-image's 0.1 s
timeout, as in any terminal without it) and `halfcell` (IMAGENT_TUI_IMAGE=halfcell,
no query). Writes bench/results/tui_startup.json. Not a test: figures are printed,
not asserted.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

TARGET_S = 1.5
ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "assets" / "astronaut.png"


def _drain(fd: int, stop: threading.Event) -> None:
    """Read the app's output; answer the primary device-attributes query as an xterm without
    Sixel would (every VT100-style terminal answers it), so the graphics probe sees a real reply."""
    while not stop.is_set():
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        if b"\x1b[c" in data:
            os.write(fd, b"\x1b[?62;22c")


def start_once(exe: str, mode: str, home: Path) -> tuple[float, float, int]:
    """(wall seconds to interactive, app-measured seconds, exit code)."""
    ready = home / f"ready-{time.monotonic_ns()}"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 120 * 9, 40 * 18))
    env = {**os.environ, "IMAGENT_HOME": str(home / "store"), "IMAGENT_TUI_READY_FILE": str(ready),
           "IMAGENT_TUI_IMAGE": mode, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(master, stop), daemon=True)
    reader.start()
    t0 = time.perf_counter()
    proc = subprocess.Popen([exe, "chat", str(PHOTO)], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    os.close(slave)
    try:
        while not ready.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"imagent chat exited early with code {proc.returncode}")
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("imagent chat did not become interactive within 60 s")
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        time.sleep(0.05)
        inner = float(ready.read_text().strip() or "nan")
        os.write(master, b"\x11")  # ctrl+q
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stop.set()
        os.close(master)
    return wall, inner, code


def main(runs: int = 5) -> int:
    exe = shutil.which("imagent", path=str(Path(sys.executable).parent)) or "imagent"
    result: dict = {"runs": runs, "target_s": TARGET_S, "photo": str(PHOTO.relative_to(ROOT)), "modes": {}}
    with tempfile.TemporaryDirectory(prefix="imagent-tui-bench-") as tmp:
        for mode in ("halfcell", "auto"):
            walls, inners, codes = [], [], []
            start_once(exe, mode, Path(tmp))  # warm the file cache once
            for _ in range(runs):
                wall, inner, code = start_once(exe, mode, Path(tmp))
                walls.append(wall)
                inners.append(inner)
                codes.append(code)
            med = statistics.median(walls)
            result["modes"][mode] = {"median_s": round(med, 4), "max_s": round(max(walls), 4),
                                     "min_s": round(min(walls), 4),
                                     "app_ready_median_s": round(statistics.median(inners), 4),
                                     "exit_codes": codes, "pass": med < TARGET_S and not any(codes)}
            print(f"imagent chat ({mode}): interactive after median {med:.2f} s, best {min(walls):.2f} s, "
                  f"worst {max(walls):.2f} s over {runs} runs (in-app: {statistics.median(inners):.2f} s "
                  f"from App creation); quit with exit codes {codes} — "
                  f"{'PASS' if result['modes'][mode]['pass'] else 'FAIL'} (target < {TARGET_S} s)")
    result["pass"] = all(m["pass"] for m in result["modes"].values())
    out = Path(__file__).parent / "results" / "tui_startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
