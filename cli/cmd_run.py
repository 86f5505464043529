"""``imagent run SCRIPT``: run a YAML script of requests and control words in a new session.

Module-level imports are standard library only (``imagent --help`` stays fast).
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "run a YAML script of requests (and undo/redo/checkout/export steps) in a new session"
DESCRIPTION = HELP + """.

script format (relative paths are read from the script's folder):
  image: photo.jpg              required
  output: out.png               optional: the final image
  session: NAME                 optional: a name for the new session
  seed: 7                       optional; planner: rules|llm|auto; profile: offline|models
  steps:
  - make it a bit brighter                  a request
  - request: remove the top-left corner     a request with its own seed or settings
    seed: 3
    settings: {planner: rules}
  - request: remove this                    pointing: box: x0,y0,x1,y1 | point: x,y |
    box: 10,20,110,220                        mask: FILE (white = the area; beside the script)
  - undo                                    undo / redo (or `undo: 2`)
  - checkout: 1                             a version number, id prefix, root or head
  - export: v1.png                          the current image (.png/.jpg/.webp), .zip bundle, .yaml script

`imagent export --script -o s.yaml` writes a script that `imagent run s.yaml` reproduces.
The run stops at the first failing step unless --keep-going: an error (its exit code),
a question back (exit code 6) or an edit that failed its check (exit code 5; nothing
reported done). A run that stops early writes no final image (-o / output:).
"""


def register(sub, common) -> None:
    p = sub.add_parser("run", help=HELP, description=DESCRIPTION, parents=[common],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("script", metavar="SCRIPT", help="the YAML script")
    p.add_argument("-o", "--output", metavar="OUT", help="write the final image here (overrides output:)")
    p.add_argument("--session", "-s", metavar="NAME", help="name for the new session (overrides session:)")
    p.add_argument("--seed", type=int, default=None, help="seed for every request (overrides seed:)")
    p.add_argument("--planner", choices=["rules", "llm", "auto"], default=None)
    p.add_argument("--keep-going", "-k", action="store_true",
                   help="run every step even after one fails (the exit code still reports the failure)")
    p.set_defaults(handler=cmd_run)


def _fmt_figures(figures: dict) -> str:
    parts = []
    for k, v in figures.items():
        if k == "changed" and isinstance(v, (int, float)):
            parts.append(f"changed {v:.1%}")
        else:
            parts.append(f"{k} {v}")
    return ", ".join(parts)


def _version(r) -> str:
    return "" if r.version_seq is None else f"{r.version_seq} ({r.version_id[:8]})"


def cmd_run(args: argparse.Namespace) -> int:
    from imagent.assistant.config import load_settings
    from imagent.cli import check_image_output
    from imagent.cli.script import load_script, run_script

    script = load_script(args.script)
    overrides = {"profile": args.profile, "home": args.home, "seed": args.seed, "planner": args.planner}
    layered = {k: getattr(script, k) for k in ("seed", "planner", "profile") if getattr(script, k) is not None}
    layered.update({k: v for k, v in overrides.items() if v is not None})
    settings = load_settings(layered)
    final_output = args.output or script.output
    if final_output is not None:  # a bad output path is refused before the session is created
        check_image_output(str(final_output), settings)
    total = len(script.steps)
    interactive = sys.stdout.isatty() and not args.json

    if interactive:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console()
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                            console=console, transient=True)
        task = progress.add_task("starting", total=total)

        def on_step(phase, step, result):
            if phase == "start":
                progress.update(task, description=f"step {step.index}: {step.label[:50]}")
            else:
                progress.advance(task)
                mark = "[green]ok[/]" if result.ok else "[red]FAILED[/]"
                console.print(f"{mark} step {step.index}/{total}: {step.label}"
                              + (f" → version {_version(result)}" if result.ok and result.version_seq is not None else "")
                              + f"  ({result.seconds:.2f} s)")

        def on_event(event):
            if event.get("kind") == "tool_start":
                progress.update(task, description=f"{event.get('tool')}…")
            elif event.get("kind") == "step" and event.get("total"):
                progress.update(task, description=f"{event.get('tool', 'step')} {event['step']}/{event['total']}")

        with progress:
            result = run_script(script, settings=settings, keep_going=args.keep_going, output=args.output,
                                session=args.session, on_step=on_step, on_event=on_event)
    else:
        def on_step(phase, step, result):
            if args.json or phase == "start":
                return
            status = "ok" if result.ok else "FAILED"
            line = f"[{step.index}/{total}] {status} {step.label}"
            if result.ok and result.version_seq is not None:
                line += f" -> version {_version(result)}"
            print(line + f" ({result.seconds:.2f} s)", flush=True)

        result = run_script(script, settings=settings, keep_going=args.keep_going, output=args.output,
                            session=args.session, on_step=on_step)

    failures = result.failures
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_table(result, rich_output=interactive)
        for f in failures:
            err = f.error or {}
            print(f"step {f.index} failed: {f.label!r}: {err.get('message')}", file=sys.stderr)
            if err.get("hint"):
                print(f"  hint: {err['hint']}", file=sys.stderr)
        skipped = [s for s in result.steps if s.skipped]
        if skipped:
            print(f"stopped after step {failures[0].index}: {len(skipped)} later step(s) not run "
                  "(use --keep-going to run them anyway)", file=sys.stderr)
        print(f"session {result.session_name} ({result.session_id}): now at version {result.head_seq} "
              f"({result.head_id[:8]}), {result.seconds:.2f} s")
        if result.output:
            print(f"wrote {result.output}")
    if failures:
        return int((failures[0].error or {}).get("exit_code") or 1)
    return 0


def _print_table(result, *, rich_output: bool) -> None:
    headers = ("#", "step", "status", "version", "time", "figures")
    rows = []
    for r in result.steps:
        status = "skipped" if r.skipped else ("ok" if r.ok else "FAILED")
        rows.append((str(r.index), r.label if len(r.label) <= 48 else r.label[:45] + "...", status,
                     _version(r), "" if r.skipped else f"{r.seconds:.2f} s",
                     _fmt_figures(r.figures) or (r.output or "")))
    if rich_output:
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
