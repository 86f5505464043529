"""Planner benchmark: operation accuracy, confusion matrix, target-word hit rate, speed.

Reads ../shared/benchmarks/planner/*.jsonl (resolved from this script: repo_root.parent /
"shared"), maps each dataset's label to the expected edit kind (the table in that folder's
README), plans every row with the rule-based planner and writes bench/results/planner.json.

    .venv/bin/python bench/planner.py [--shared DIR] [--show-misses N]

Exit status 0 even when a target fails (the summary prints FAIL); 1 only when the data is
missing or a row raised an exception (which the planner must never do).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LABELS = {
    "remove": "remove", "Object Removal": "remove",
    "add": "add", "Object Addition": "add",
    "replace": "replace", "Object Replacement": "replace",
    "adjust": "local", "Texture Change": "local",
    "background": "background", "Background Change": "background",
    "style": "global", "Style Change": "global", "global": "global",
    "extract": "extract",
}
UNSCORED = {"action", "compose", "Action Change"}

# dataset file -> (request field, label field or None)
FILES = {
    "imgedit_basic.jsonl": ("prompt", "edit_type"),
    "editeval_v1.jsonl": ("instruction", "task"),
    "emu_edit_global_weather_subset.jsonl": ("instruction", "task"),
    "imgedit_uge.jsonl": ("prompt", None),
    "ggip2p_spatial_instructions.jsonl": ("instruct", None),
    "ggip2p_instruct_target.jsonl": ("sentence", None),
}
TARGETS = {"imgedit_basic.jsonl": 0.92, "editeval_v1.jsonl": 0.95}
PRONOUNS = {"her", "him", "them", "his", "their", "she", "he", "they", "hers", "theirs"}
PERSON_WORDS = {"him", "her", "them", "his", "their", "he", "she", "they", "man", "woman", "men",
                "women", "boy", "girl", "boys", "girls", "person", "people", "child", "children",
                "kid", "kids", "baby", "lady", "guy", "player", "bride", "groom", "couple", "family"}
WHOLE_TARGETS = {"the background"}


def _fold(word: str) -> str:
    w = word.lower().strip(".,;:!?\"'()")
    if w.endswith("'s"):
        w = w[:-2]
    for suf, rep in (("ies", "y"), ("ves", "f"), ("ses", "s"), ("xes", "x"), ("ches", "ch"),
                     ("shes", "sh"), ("men", "man"), ("s", "")):
        if w.endswith(suf) and len(w) > len(suf) + 1:
            return w[: -len(suf)] + rep
    return w


def target_hit(label: str, target: str | None) -> bool:
    """The README's rule: the target contains the labelled word (case-insensitive, singular/
    plural folded); a pronoun label also counts when the target is a person word."""
    if not target:
        return False
    tokens = [_fold(t) for t in target.replace("-", " ").split()]
    want = [_fold(t) for t in label.replace("-", " ").split()]
    n = len(want)
    if any(tokens[i:i + n] == want for i in range(len(tokens) - n + 1)):
        return True
    if label.lower() in PRONOUNS:
        return any(t in PERSON_WORDS or _fold(t) in PERSON_WORDS for t in target.lower().split())
    return False


def first_edit(plan):
    for s in plan.steps:
        if not s.is_session:
            return s
    return plan.steps[0] if plan.steps else None


def predicted_kind(plan) -> str:
    if plan.is_question:
        return "question"
    step = first_edit(plan)
    return step.kind if step else ("action" if plan.action else "none")


def run(shared: Path, show_misses: int) -> dict:
    from imagent.planners.base import PlanContext
    from imagent.planners.rules import RulesPlanner

    planner = RulesPlanner()
    folder = shared / "benchmarks" / "planner"
    if not folder.is_dir():
        print(f"error: benchmark data not found at {folder}", file=sys.stderr)
        sys.exit(1)
    # warm up (lazy registry import on the first adjustment)
    planner.plan("make it brighter", PlanContext())
    times: list[float] = []
    errors: list[dict] = []
    results: dict = {"datasets": {}}
    all_rows = 0
    for name, (field, label_field) in FILES.items():
        path = folder / name
        if not path.exists():
            print(f"warning: {path} is missing", file=sys.stderr)
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        stats: dict = {"rows": len(rows), "plans": 0, "questions": 0, "exceptions": 0}
        confusion: dict[str, Counter] = defaultdict(Counter)
        per_label: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        misses: list[tuple[str, str, str]] = []
        hit = [0, 0]
        whole = [0, 0]
        whole_strict = [0, 0]
        target_misses: list[tuple[str, str, str | None]] = []
        for row in rows:
            request = row.get(field) or ""
            all_rows += 1
            t0 = time.perf_counter()
            try:
                plan = planner.plan(request, PlanContext())
            except Exception as exc:  # noqa: BLE001 - the benchmark counts them
                stats["exceptions"] += 1
                errors.append({"file": name, "request": request, "error": f"{type(exc).__name__}: {exc}"})
                continue
            times.append((time.perf_counter() - t0) * 1000.0)
            if plan.is_question:
                stats["questions"] += 1
            else:
                stats["plans"] += 1
            kind = predicted_kind(plan)
            if label_field:
                label = row.get(label_field, "")
                if label in LABELS:
                    want = LABELS[label]
                    confusion[want][kind] += 1
                    per_label[label][1] += 1
                    if kind == want:
                        per_label[label][0] += 1
                    else:
                        misses.append((label, kind, request))
            if name == "ggip2p_instruct_target.jsonl":
                label = row.get("target", "")
                step = first_edit(plan)
                tgt = step.target if step else None
                if label:
                    hit[1] += 1
                    if target_hit(label, tgt):
                        hit[0] += 1
                    else:
                        target_misses.append((label, request, tgt))
                else:
                    whole[1] += 1
                    whole_strict[1] += 1
                    if step is not None and (tgt is None or tgt in WHOLE_TARGETS):
                        whole[0] += 1
                    if step is not None and step.kind == "global" and tgt is None:
                        whole_strict[0] += 1
        if per_label:
            scored = sum(v[1] for v in per_label.values())
            correct = sum(v[0] for v in per_label.values())
            stats["scored"] = scored
            stats["accuracy"] = round(correct / scored, 4) if scored else None
            stats["per_label"] = {k: {"correct": v[0], "total": v[1], "accuracy": round(v[0] / v[1], 4)}
                                  for k, v in sorted(per_label.items())}
            stats["confusion"] = {k: dict(v.most_common()) for k, v in sorted(confusion.items())}
            stats["sample_misses"] = [{"label": a, "predicted": b, "request": c} for a, b, c in misses[:40]]
        if hit[1]:
            stats["target_hit_rate"] = round(hit[0] / hit[1], 4)
            stats["target_rows"] = hit[1]
            stats["whole_image_recognised"] = round(whole[0] / whole[1], 4)
            stats["whole_image_rows"] = whole[1]
            stats["whole_image_global_no_target"] = round(whole_strict[0] / whole_strict[1], 4)
            stats["sample_target_misses"] = [{"label": a, "request": b, "target": c}
                                             for a, b, c in target_misses[:40]]
        results["datasets"][name] = stats
        if show_misses:
            for a, b, c in misses[:show_misses]:
                print(f"  MISS [{name}] {a} -> {b}: {c}")
            for a, b, c in target_misses[:show_misses]:
                print(f"  TARGET-MISS label={a!r} target={c!r}: {b}")
    results["rows"] = all_rows
    results["exceptions"] = errors[:50]
    results["exception_count"] = len(errors)
    results["median_ms"] = round(statistics.median(times), 4) if times else None
    results["p95_ms"] = round(sorted(times)[int(0.95 * (len(times) - 1))], 4) if times else None
    results["planner"] = planner.name
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    return results


def verdicts(res: dict) -> list[tuple[str, bool, str]]:
    ds = res["datasets"]
    out = []
    for name, goal in TARGETS.items():
        acc = ds.get(name, {}).get("accuracy")
        out.append((f"{name} operation accuracy >= {goal:.0%}", acc is not None and acc >= goal,
                    f"{acc:.1%}" if acc is not None else "n/a"))
    t = ds.get("ggip2p_instruct_target.jsonl", {})
    hr, wr = t.get("target_hit_rate"), t.get("whole_image_recognised")
    out.append(("target-word hit rate >= 90%", hr is not None and hr >= 0.9, f"{hr:.1%}" if hr is not None else "n/a"))
    out.append(("whole-image recognised >= 90%", wr is not None and wr >= 0.9, f"{wr:.1%}" if wr is not None else "n/a"))
    out.append(("every row gives a plan or a question", res["exception_count"] == 0,
                f"{res['exception_count']} exceptions in {res['rows']} rows"))
    ms = res["median_ms"]
    out.append(("median < 2 ms per request", ms is not None and ms < 2.0, f"{ms:.3f} ms" if ms is not None else "n/a"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--show-misses", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "planner.json")
    args = ap.parse_args(argv)
    res = run(args.shared, args.show_misses)
    res["targets"] = [{"target": n, "pass": ok, "measured": m} for n, ok, m in verdicts(res)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")

    print(f"planner benchmark ({res['planner']}): {res['rows']} requests, median "
          f"{res['median_ms']} ms, p95 {res['p95_ms']} ms")
    for name, st in res["datasets"].items():
        line = f"  {name:40s} rows {st['rows']:5d}  plans {st['plans']:5d}  questions {st['questions']:4d}"
        if "accuracy" in st:
            line += f"  accuracy {st['accuracy']:.1%} of {st['scored']} scored"
        print(line)
        for label, v in st.get("per_label", {}).items():
            print(f"      {label:22s} {v['correct']:4d}/{v['total']:<4d} {v['accuracy']:.1%}")
        if "target_hit_rate" in st:
            print(f"      target-word hit rate {st['target_hit_rate']:.1%} of {st['target_rows']}; "
                  f"whole-image recognised {st['whole_image_recognised']:.1%} of {st['whole_image_rows']} "
                  f"(as global with no target: {st['whole_image_global_no_target']:.1%})")
    for name, st in res["datasets"].items():
        if "confusion" in st:
            print(f"  confusion {name} (expected -> predicted):")
            for want, got in st["confusion"].items():
                print(f"      {want:10s} " + ", ".join(f"{k} {v}" for k, v in got.items()))
    print("targets:")
    for n, ok, m in verdicts(res):
        print(f"  {'PASS' if ok else 'FAIL'}  {n}: {m}")
    print(f"results: {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0 if res["exception_count"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
