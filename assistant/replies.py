"""Reply text: what the assistant says about a request's outcome, in one place.

Every sentence a user reads about an edit is written here: the steps done and the version
they made, a failed result check (never a silent success), a branch made by a concurrent
writer, transparency cut out, filled in or dropped, the planner that planned, and the
read-only answers (history, compare). Figures go to the version's metrics; these functions only word them.
"""

from __future__ import annotations

from typing import Any


def check_summary(outcomes: list, config: Any) -> dict[str, Any]:
    """The version's ``check`` metrics: every step's attempts, the config, the notes."""
    return {"passed": all(o.passed for o in outcomes), "steps": [o.to_dict() for o in outcomes],
            "notes": check_notes(outcomes), "config": config.to_dict()}


def check_notes(outcomes: list) -> list[str]:
    notes = []
    for o in outcomes:
        if o.passed:
            continue
        what = f"{o.kind} {o.target}" if o.target else o.kind
        note = f"the result check of \"{what}\" failed: {'; '.join(o.failures)}"
        if len(o.attempts) > 1:
            note += f" (after {len(o.attempts)} attempts with larger masks and new seeds)"
        notes.append(note)
    return notes


def failed(outcomes: list) -> str:
    """A request whose result check failed: nothing was committed, and why."""
    notes = check_notes(outcomes)
    local = any(o.kind in ("remove", "add", "replace", "local") and not o.passed for o in outcomes)
    return ("not done: " + "; ".join(notes) + ". Nothing was changed; the session is as it was. "
            + ("Try a box around the object (\"box x0,y0,x1,y1\"), a larger region, or another "
               "wording." if local else "Try a stronger wording (\"much warmer\") or another edit."))


def edit_done(steps: list, version: Any, *, branched: bool, alpha_dropped: bool,
              alpha: str | None = None) -> list[str]:
    """The steps done and the version they made; ``alpha`` is the version's transparency
    outcome (``metrics["alpha"]``: "cut out", "flattened", "kept", "dropped" or None)."""
    parts = [f"{'; '.join(s.description for s in steps)} → version {version.seq}"]
    if alpha == "cut out":
        parts[0] += (": the rest is transparent (alpha) — export as PNG or WebP to keep it "
                     "(JPEG flattens it onto white)")
    elif alpha == "flattened":
        parts.append("the image is opaque again (no transparency left)")
    if branched:
        parts.append(f"another process changed this session meanwhile: your edit is kept as "
                     f"branch version {version.seq} (run `imagent checkout {version.seq}` to "
                     f"continue from it)")
    if alpha_dropped:
        parts.append("the image's transparency could not follow the geometry change and was dropped")
    return parts


def moved(step: Any, version: Any) -> str:
    return f"{step.description} → version {version.seq}"


def planned_by(planner: str) -> str:
    return f"planned by the {planner} planner"


def history(session_name: str, tree: str) -> str:
    return f"history of session {session_name}:\n{tree}"


def compare(a: str, b: str, d: Any) -> str:
    return (f"version {a} → {b}: {d.changed_fraction:.1%} of pixels changed "
            f"({d.changed_fraction_over_8:.1%} by more than 8 levels), mean |Δ| {d.mean_abs:.1f}"
            + (f", changed area {d.bbox}" if d.bbox else "")
            + (" (sizes differ: compared the common area)" if d.size_changed else ""))


def join(parts: list[str]) -> str:
    return ". ".join(p for p in parts if p)
