"""``imagent models list | pull ROLE|ID | verify [ROLE...] | rm ROLE|ID``.

Stdlib-only at module level (``imagent --help`` stays fast); the model manager is imported
when a command runs. ``list`` shows what each role is configured to, whether it is on this
machine and its size; ``pull`` downloads a hub model (huggingface_hub, safetensors and configs
only); ``verify`` checks that every configured role is present (``--load`` also loads it) and
exits 3 naming what is missing; ``rm`` deletes a hub model from the Hugging Face cache (never a
local folder of yours).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("models", help="list, download, verify or remove the model backends' weights",
                       description="list, download, verify or remove the model backends' weights")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.add_parser("list", parents=[common], help="the model of every role: configured id, present, size")
    q = msub.add_parser("pull", parents=[common], help="download the model of ROLE (or a hub ID)")
    q.add_argument("target", metavar="ROLE|ID")
    q = msub.add_parser("verify", parents=[common],
                        help="check that every configured model (or the ROLEs given) is present")
    q.add_argument("roles", nargs="*", metavar="ROLE")
    q.add_argument("--load", action="store_true", help="also load each model (slow)")
    q = msub.add_parser("rm", parents=[common], help="delete a hub model from the Hugging Face cache")
    q.add_argument("target", metavar="ROLE|ID")
    p.set_defaults(handler=run)


def _manager(args: argparse.Namespace):
    from imagent.assistant.config import load_settings
    from imagent.tools.models import manager_from_settings

    settings = load_settings({"profile": getattr(args, "profile", None),
                              "home": getattr(args, "home", None)})
    return manager_from_settings(settings, shared=False)


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def run(args: argparse.Namespace) -> int:
    from imagent.errors import ModelUnavailableError, UsageError
    from imagent.tools import models as MM

    action = getattr(args, "models_command", None)
    if not action:
        raise UsageError("imagent models needs an action", hint="imagent models list | pull ROLE | "
                         "verify | rm ROLE")
    mgr = _manager(args)
    if action == "list":
        rows = mgr.describe()
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for r in rows:
                state = "present" if r["present"] else ("not configured" if not r["model"] else "missing")
                print(f"{r['role']:<15} {r['model'] or '-':<52} {state:<14} {_human(r['size_bytes']):>9}"
                      f"  {r['help']}")
        return 0
    if action in ("pull", "rm"):
        target = args.target
        if target in MM.ROLES:
            role, mid = target, mgr.model_id(target)
            if not mid:
                raise UsageError(f"no model is configured for the {role} role",
                                 hint=f"set model_{role} (IMAGENT_MODEL_{role.upper()}) first")
        else:
            role, mid = None, target
        if MM.is_local(mid) or (role in MM.FILE_ROLES):
            raise UsageError(f"{mid!r} is a local path, not a hub id: imagent does not "
                             f"{'download' if action == 'pull' else 'delete'} it",
                             hint="copy the file or folder there yourself, or use a hub id")
        if action == "pull":
            path = MM.pull(mid)
            out = {"model": mid, "role": role, "path": str(path), "size_bytes": MM._tree_size(path)}
            print(json.dumps(out) if args.json else f"pulled {mid} to {path} ({_human(out['size_bytes'])})")
            return 0
        freed = _remove_from_cache(mid)
        print(json.dumps({"model": mid, "freed_bytes": freed}) if args.json
              else f"removed {mid} from the Hugging Face cache ({_human(freed)} freed)")
        return 0
    if action == "verify":
        roles = args.roles or [r for r in MM.ROLES if mgr.model_id(r)]
        for r in roles:
            if r not in MM.ROLES:
                raise UsageError(f"unknown model role {r!r}", hint=f"roles: {', '.join(MM.ROLES)}")
        problems: list[ModelUnavailableError] = []
        rows = []
        for r in roles:
            try:
                path = mgr.resolve(r)
                if args.load:
                    mgr.get(r)
                rows.append({"role": r, "model": mgr.model_id(r), "ok": True, "path": str(path)})
            except ModelUnavailableError as exc:
                problems.append(exc)
                rows.append({"role": r, "model": mgr.model_id(r), "ok": False, "error": exc.message,
                             "hint": exc.hint})
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                print(f"{row['role']:<15} {row['model'] or '-':<52} "
                      + ("ok" if row["ok"] else "MISSING"))
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more model(s) missing)" if len(problems) > 1 else ""
            raise ModelUnavailableError(first.message + more, hint=first.hint)
        return 0
    raise UsageError(f"unknown models action {action!r}", hint="list, pull, verify or rm")


def _remove_from_cache(model_id: str) -> int:
    from huggingface_hub import scan_cache_dir

    from imagent.errors import UsageError

    info = scan_cache_dir()
    for repo in info.repos:
        if repo.repo_id == model_id:
            strategy = info.delete_revisions(*[rev.commit_hash for rev in repo.revisions])
            strategy.execute()
            return int(strategy.expected_freed_size)
    raise UsageError(f"{model_id!r} is not in the Hugging Face cache", hint="see: imagent models list")
