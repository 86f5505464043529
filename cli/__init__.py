"""The ``imagent`` command line.

Kept import-light: parsing and ``--help`` import only the standard library;
each command imports what it needs when it runs (``imagent --help`` never
imports torch, numpy or PIL).

Exit codes: 0 ok, 1 bad input, 2 usage, 3 model or backend unavailable, 4 internal error,
5 the edit failed its check (nothing reported done), 6 a question back (needs an answer).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, Sequence

EPILOG = """examples:
  imagent edit photo.jpg "remove the flag in the top-left corner" "make it a bit brighter" -o out.png
  imagent ask "extend the picture to the right by 25%"       (continues the latest session)
  imagent log                     imagent undo                imagent checkout 2
  imagent diff 0 3 -o diff.png    imagent replay --verify     imagent export -o session.zip
  imagent verify --all            (decode every image, check every version's references)

exit codes: 0 ok, 1 bad input, 2 usage, 3 model or backend unavailable, 4 internal error,
  5 the edit failed its check (nothing reported done, no -o written),
  6 the assistant asked a question back (needs an answer, no -o written).
settings: defaults < config.toml (user config dir, or IMAGENT_CONFIG) < IMAGENT_* environment < flags.
"""


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument("--profile", choices=["offline", "models"], default=None,
                   help="offline: embedded default, needs no weights; models: model backends where present")
    g.add_argument("--home", default=None, help="session store folder (default: IMAGENT_HOME or the user data dir)")
    g.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _session_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session", "-s", default=None, metavar="NAME",
                   help="session name or id (default: the most recent session)")


def _pointing_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pointing (the first request uses it: \"remove this\", \"brighten here\")")
    g = g.add_mutually_exclusive_group()
    g.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box on the image (pixels, x1/y1 exclusive)")
    g.add_argument("--point", metavar="X,Y", help="a point on the image (pixels)")
    g.add_argument("--mask", metavar="FILE", help="a mask image of the image's size (white = the area)")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="imagent", description="imagent — edit images by saying what you want. Every edit is a "
        "version you can undo, branch, replay and export.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    parser.add_argument("--version", action="version", version="imagent 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common])

    p = add("edit", "open IMAGE in a new session and apply one or more requests")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("requests", nargs="+", metavar="REQUEST")
    p.add_argument("-o", "--output", metavar="OUT", help="write the final image here (.png/.jpg/.webp)")
    p.add_argument("--session", "-s", metavar="NAME", help="name for the new session")
    p.add_argument("--seed", type=int, default=None, help="seed for every random choice (default 0)")
    p.add_argument("--planner", choices=["rules", "llm", "auto"], default=None)
    _pointing_opts(p)

    p = add("ask", "apply one or more requests to an existing session")
    p.add_argument("requests", nargs="+", metavar="REQUEST")
    _session_opt(p)
    p.add_argument("-o", "--output", metavar="OUT", help="write the final image here")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--planner", choices=["rules", "llm", "auto"], default=None)
    _pointing_opts(p)

    p = add("plan", "print the plan for a request without running it ('-' reads one request per line from stdin)")
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("--image", metavar="IMG", help="an image, for its size")
    p.add_argument("--planner", choices=["rules", "llm", "auto"], default=None)

    add("sessions", "list sessions, most recent first")
    p = add("log", "show the version tree of a session")
    _session_opt(p)
    for name, help in (("undo", "move the head back to the parent version"),
                       ("redo", "move the head forward again")):
        p = add(name, help)
        _session_opt(p)
        p.add_argument("--steps", type=int, default=1)
    p = add("checkout", "make VERSION the current version (a sequence number, id or id prefix)")
    p.add_argument("version", metavar="VERSION")
    _session_opt(p)
    p = add("show", "write a version's image to a file")
    p.add_argument("version", metavar="VERSION", nargs="?", default="head")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    _session_opt(p)
    p = add("diff", "compare two versions: changed-pixel figures and a difference image")
    p.add_argument("a", metavar="V1")
    p.add_argument("b", metavar="V2")
    p.add_argument("-o", "--output", metavar="FILE", help="write the difference image here")
    _session_opt(p)
    p = add("replay", "re-run the stored tool calls from the original image with the stored seeds")
    p.add_argument("--verify", action="store_true", help="compare each replayed image with the stored one")
    _session_opt(p)
    p = add("export", "export the session as a bundle (zip), or its requests as a script")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--script", action="store_true", help="write a YAML script of the requests instead")
    _session_opt(p)
    p = add("import", "import a session bundle")
    p.add_argument("bundle", metavar="FILE")
    p.add_argument("--name", default=None, help="name for the imported session")
    add("gc", "delete image blobs no version refers to")
    p = add("delete", "delete a session (its blobs are freed by gc)")
    p.add_argument("name", metavar="NAME")
    p = add("verify", "check a session's stored versions: every image decodes at its size, every "
            "parent and blob exists, every tool call is valid")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--session", "-s", default=None, metavar="NAME",
                   help="session name or id (default: the most recent session)")
    g.add_argument("--all", action="store_true", help="every session, and the store's own consistency")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub, common)
    return parser


# -- output helpers ---------------------------------------------------------------------------
def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _settings(args: argparse.Namespace):
    from imagent.assistant.config import load_settings

    return load_settings({"profile": args.profile, "home": args.home,
                          "seed": getattr(args, "seed", None), "planner": getattr(args, "planner", None)})


def _store(args: argparse.Namespace):
    from imagent.sessions import Store

    return Store(_settings(args).home_path)


def _session(store, args: argparse.Namespace):
    from imagent.errors import SessionNotFound

    name = getattr(args, "session", None)
    if name:
        return store.get_session(name)
    sess = store.latest_session()
    if sess is None:
        raise SessionNotFound("there is no session yet", hint='start one with: imagent edit IMAGE "request"')
    return sess


def _version_line(v) -> str:
    return f"version {v.seq} ({v.short_id})"


# -- commands -------------------------------------------------------------------------------------
# Turn outcomes (``Turn.status``): done, asked (a question back), failed (the result check
# failed: nothing is done), moved (undo/redo/checkout), looked (history/compare).
OK_STATUSES = ("done", "moved", "looked")


def status_exit_code(status: str) -> int:
    """The exit code of a turn outcome: 0 for the OK ones, 5 for a failed check, 6 for a question."""
    from imagent.errors import EXIT_CHECK_FAILED, EXIT_QUESTION

    return {"failed": EXIT_CHECK_FAILED, "asked": EXIT_QUESTION}.get(status, 0)


def check_image_output(path: str, settings) -> str:
    """Refuse an image output path before any work: the extension, the folder, the store home.

    The path rules are the store's export rules (``sessions.store.safe_output_path``:
    no directories, an existing folder, nothing inside the store home).
    """
    from pathlib import Path

    from imagent.errors import InputError
    from imagent.sessions.store import safe_output_path
    from imagent.tools.imageio import SAVE_FORMATS

    suffix = Path(path).suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise InputError(f"cannot write the image as {suffix or '(no extension)'!r} ({path!r})",
                         hint="use one of " + ", ".join(SAVE_FORMATS))
    return str(safe_output_path(path, forbidden_roots=(settings.home_path,)))


def cmd_edit(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # Before any work (before a session exists): a bad -o would otherwise fail after the edit.
    out_target = check_image_output(args.output, settings) if args.output else None

    from imagent.assistant.core import Assistant

    pointing = {k: getattr(args, k, None) for k in ("box", "point", "mask")}
    pointing = {k: v for k, v in pointing.items() if v is not None}
    if pointing and args.command == "edit":  # checked against the image before a session exists
        from imagent.tools.imageio import load_image
        from imagent.tools.selection import make_selection

        make_selection(load_image(args.image, max_pixels=settings.max_pixels).image.size, **pointing)
    if args.command == "edit":
        assistant = Assistant.open(args.image, session=args.session, settings=settings)
    else:
        assistant = Assistant.open(None, session=args.session, settings=settings)
    turns, statuses = [], []
    with assistant:
        if pointing:
            assistant.select(**pointing)  # before any request: a bad one changes nothing
        for i, request in enumerate(args.requests):
            if i == 1:
                assistant.clear_selection()  # the selection is the first request's
            turn = assistant.ask(request)
            status = turn.status
            turns.append(turn)
            statuses.append(status)
            if not args.json:
                print(f"> {request}")
                print(f"  {turn.reply}")
            if status not in OK_STATUSES:
                break  # a failed check or a question: the later requests would build on it
        final = statuses[-1] if statuses else "done"
        code = status_exit_code(final)
        skipped = len(args.requests) - len(turns)
        out = str(assistant.save(out_target)) if out_target and code == 0 else None
        note = assistant.last_save.get("note") if out else None
        if args.json:
            _print_json({"session": {"id": assistant.session.id, "name": assistant.session.name},
                         "turns": [{**t.to_dict(), "status": st} for t, st in zip(turns, statuses, strict=True)],
                         "status": final, "exit_code": code, "skipped": args.requests[len(turns):],
                         "output": out, "alpha_flattened": note is not None,
                         "notes": [note] if note else [], "head": assistant.head.to_dict()})
        else:
            print(f"session {assistant.session.name}: now at {_version_line(assistant.head)}")
            if out:
                print(f"wrote {out}")
            if note:
                print(f"note: {note}")
            if code:
                _explain_stop(final, assistant.session.name, skipped, bool(out_target))
    return code


def _explain_stop(status: str, session: str, skipped: int, had_output: bool) -> None:
    why = ("the edit failed its check; nothing was reported done" if status == "failed"
           else "the assistant asked a question back; the request needs an answer")
    notes = [why]
    if skipped:
        notes.append(f"{skipped} later request(s) not run")
    if had_output:
        notes.append("no -o written")
    print("imagent: " + "; ".join(notes), file=sys.stderr)
    if status == "asked":
        print(f'  hint: answer with: imagent ask --session {session} "<the request, more precisely>"',
              file=sys.stderr)
    else:
        print(f'  hint: try another wording, or look at it with: imagent log --session {session}',
              file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    from imagent.assistant.core import make_planner
    from imagent.planners.base import PlanContext

    settings = _settings(args)
    planner = make_planner(settings)
    size = None
    if args.image:
        from imagent.tools.imageio import load_image

        loaded = load_image(args.image, max_pixels=settings.max_pixels)
        image, size = loaded.image, loaded.image.size
    ctx = PlanContext(image_size=size, seed=settings.seed, image=image if args.image else None,
                      has_alpha=(loaded.alpha is not None) if args.image else None)
    requests = [line.strip() for line in sys.stdin if line.strip()] if args.request == "-" else [args.request]
    for request in requests:
        plan = planner.plan(request, ctx)
        if args.json:
            print(json.dumps({"request": request, **plan.to_json_dict()}))
        elif plan.question:
            print(f"? {plan.question}")
        elif plan.action:
            print(f"{plan.action}: {plan.reply}")
        else:
            for step in plan.steps:
                target = f" [{step.target}]" if step.target else ""
                needs = f" (needs the {step.needs_model} model)" if step.needs_model else ""
                print(f"{step.kind}{target}{needs}: " + " → ".join(str(c) for c in step.calls))
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    store = _store(args)
    with _closing(store):
        sessions = store.list_sessions()
        if args.json:
            _print_json([{"id": s.id, "name": s.name, "head": s.head_id, "source": s.source,
                          "created_at": s.created_at, "updated_at": s.updated_at} for s in sessions])
        elif not sessions:
            print('no sessions yet — start one with: imagent edit IMAGE "request"')
        else:
            for s in sessions:
                head = store.head(s)
                print(f"{s.name:<32} {_version_line(head):<24} updated {s.updated_at}  {s.source or ''}")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    store = _store(args)
    with _closing(store):
        sess = _session(store, args)
        if args.json:
            _print_json({"session": {"id": sess.id, "name": sess.name, "head": sess.head_id},
                         "versions": [v.to_dict() for v in store.log(sess)]})
        else:
            print(f"session {sess.name}")
            print(store.log_tree(sess))
    return 0


def cmd_move(args: argparse.Namespace) -> int:
    store = _store(args)
    with _closing(store):
        sess = _session(store, args)
        if args.command == "checkout":
            v = store.checkout(sess, args.version)
        else:
            op = store.undo if args.command == "undo" else store.redo
            for _ in range(max(1, args.steps)):
                v = op(sess)
        if args.json:
            _print_json({"session": sess.name, "head": v.to_dict()})
        else:
            print(f"{args.command}: now at {_version_line(v)} — {v.request}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from imagent.tools.imageio import alpha_flatten_note, save_image

    store = _store(args)
    with _closing(store):
        sess = _session(store, args)
        v = store.get_version(sess, args.version)
        alpha = store.load_alpha(v)
        path = save_image(store.load_image(v), args.output, alpha=alpha,
                          provenance={"imagent:session": sess.id, "imagent:version": v.id,
                                      "imagent:request": v.request})
        note = alpha_flatten_note(path, alpha)  # JPEG: flattened onto white, never silently
        if args.json:
            _print_json({"version": v.to_dict(), "output": str(path), "alpha": alpha is not None,
                         "alpha_flattened": note is not None, "notes": [note] if note else []})
        else:
            print(f"wrote {_version_line(v)} to {path}")
            if note:
                print(f"note: {note}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    store = _store(args)
    with _closing(store):
        sess = _session(store, args)
        d = store.diff(sess, args.a, args.b)
        out = None
        if args.output:
            from imagent.tools.imageio import save_image

            out = str(save_image(d.image, args.output))
        figures = {k: getattr(d, k) for k in ("changed_fraction", "changed_fraction_over_8", "mean_abs",
                                               "max_abs", "bbox", "size_changed")}
        if args.json:
            _print_json({"a": args.a, "b": args.b, **figures, "output": out})
        else:
            print(f"diff {args.a} → {args.b}: {figures['changed_fraction']:.2%} of pixels changed "
                  f"({figures['changed_fraction_over_8']:.2%} by more than 8 levels), mean |Δ| "
                  f"{figures['mean_abs']:.2f}, max |Δ| {figures['max_abs']}, changed box {figures['bbox']}"
                  + (" (sizes differ: compared the common area)" if figures["size_changed"] else ""))
            if out:
                print(f"wrote the difference image to {out}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from imagent.assistant.core import Assistant

    with Assistant.open(None, session=args.session, settings=_settings(args)) as assistant:
        report = assistant.replay(verify=args.verify)
        rows = report.rows if hasattr(report, "rows") else report
        if args.json:
            _print_json(report.to_dict() if hasattr(report, "to_dict") else rows)
        else:
            for r in rows:
                mark = "" if not args.verify else ("  ok" if r["match"] else "  MISMATCH")
                print(f"version {r['seq']:>3} ({r['id'][:8]}){mark}")
        ok = all(r["match"] for r in rows) if args.verify else True
        if args.verify and not args.json:
            print("replay verified: every version reproduced bit-identically" if ok
                  else "replay differs from the stored images (see MISMATCH lines)")
    return 0 if ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from imagent.assistant.core import Assistant

    with Assistant.open(None, session=args.session, settings=_settings(args)) as assistant:
        path = assistant.export(args.output, script=args.script)
        if args.json:
            _print_json({"session": assistant.session.name, "output": str(path), "script": args.script})
        else:
            print(f"exported {'the request script of ' if args.script else ''}session "
                  f"{assistant.session.name} to {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    store = _store(args)
    with _closing(store):
        sess = store.import_bundle(args.bundle, name=args.name)
        if args.json:
            _print_json({"id": sess.id, "name": sess.name, "head": sess.head_id})
        else:
            print(f"imported session {sess.name} ({len(store.log(sess))} versions)")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    store = _store(args)
    with _closing(store):
        stats = store.gc()
        if args.json:
            _print_json(stats)
        else:
            print("gc: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    store = _store(args)
    with _closing(store):
        sess = store.get_session(args.name)
        store.delete_session(sess.id)
        if args.json:
            _print_json({"deleted": sess.name})
        else:
            print(f"deleted session {sess.name} (run `imagent gc` to free its images)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from imagent.errors import ImagentError
    from imagent.tools.registry import default_registry
    from imagent.tools.types import ToolCall

    store = _store(args)
    with _closing(store):
        sessions = store.list_sessions() if args.all else [_session(store, args)]
        registry = default_registry()
        reports = []
        for sess in sessions:
            report = store.verify_session(sess)  # parents, blobs: exist, hash, decode, declared size
            for v in store.log(sess):
                for i, call in enumerate(v.tool_calls, 1):
                    try:
                        registry.validate(ToolCall(**call))
                    except ImagentError as exc:
                        report["problems"].append({"version": v.seq, "id": v.short_id,
                                                   "problem": f"tool call {i}: {exc.message}"})
                    except Exception as exc:  # noqa: BLE001 -- not even a {name, args} call
                        report["problems"].append({"version": v.seq, "id": v.short_id,
                                                   "problem": f"tool call {i} is malformed: {exc}"})
            report["problems"].sort(key=lambda p: -1 if p["version"] is None else p["version"])
            reports.append(report)
        # The store-wide check (Store.verify) finds what no session owns: database damage,
        # versions of a deleted session, damaged blobs nothing refers to. What it says about
        # a session's own versions the per-session reports above already say.
        store_problems = [p for p in store.verify() if p.startswith(("database:", "versions of unknown"))
                          or "(unreferenced)" in p or ": unreadable" in p] if args.all else []
    total = sum(len(r["problems"]) for r in reports) + len(store_problems)
    if args.json:
        _print_json({"ok": total == 0, "sessions": reports, "store": store_problems,
                     "versions": sum(r["versions"] for r in reports), "problems": total})
    else:
        if not reports:
            print("no sessions to verify")
        for r in reports:
            n = len(r["problems"])
            print(f"session {r['session']} ({r['id'][:8]}): {r['versions']} version(s) checked, "
                  + ("no problems" if not n else f"{n} problem(s)"))
            for p in r["problems"]:
                where = "session" if p["version"] is None else f"version {p['version']} ({p['id']})"
                print(f"  {where}: {p['problem']}")
        if store_problems:
            print(f"store {store.home}: {len(store_problems)} problem(s)")
            for p in store_problems:
                print(f"  {p}")
        if total:
            print("verify: problems found; `imagent checkout` a good version, or restore the session "
                  "from an exported bundle (`imagent import`)", file=sys.stderr)
    return 1 if total else 0


class _closing:
    def __init__(self, store) -> None:
        self.store = store

    def __enter__(self):
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()


# Commands that live in modules of their own. Each module keeps stdlib-only imports at
# module level (``--help`` must stay fast) and defines ``register(sub, common)``, which
# adds its sub-parser(s) with ``parents=[common]`` and ``set_defaults(handler=fn)``;
# ``fn(args) -> int`` is the exit code.
COMMAND_MODULES: tuple[str, ...] = ("imagent.cli.cmd_chat", "imagent.cli.cmd_run",
                                    "imagent.cli.cmd_models", "imagent.cli.cmd_tool")

COMMANDS = {"edit": cmd_edit, "ask": cmd_edit, "plan": cmd_plan, "sessions": cmd_sessions, "log": cmd_log,
            "undo": cmd_move, "redo": cmd_move, "checkout": cmd_move, "show": cmd_show, "diff": cmd_diff,
            "replay": cmd_replay, "export": cmd_export, "import": cmd_import, "gc": cmd_gc,
            "delete": cmd_delete, "verify": cmd_verify}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted; nothing was committed for the unfinished request", file=sys.stderr)
        return 130
    except Exception as exc:  # every error leaves through here with its exit code
        from imagent.assistant.errors import as_imagent_error

        err = as_imagent_error(exc)
        if os.environ.get("IMAGENT_DEBUG"):
            import traceback

            traceback.print_exc()
        if getattr(args, "json", False):
            print(json.dumps(err.to_dict()), file=sys.stderr)
        else:
            print(f"imagent: error: {err.message}", file=sys.stderr)
            if err.hint:
                print(f"  hint: {err.hint}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
