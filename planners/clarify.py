"""Asking back: the "which one?" / "is it this one?" question when grounding is ambiguous or
weak, and reading the answer.

A question lists each candidate as a phrase that names it exactly: its position words and
its box ("the man on the left (box 12,30,200,400)"), so the answer, composed into the
original request, grounds to that region and nothing else. The answer may be a number
("2", "#2", "the second"), "yes" when there is one candidate, the choice's text, or a word
that only one choice contains ("left").
"""

from __future__ import annotations

import re
from typing import Any

from imagent.planners.base import Plan, Step
from imagent.tools.referent import ordinal_word, parse_number, parse_ordinal

MAX_CHOICES = 6
_YES = frozenset("yes y yeah yep yup sure ok okay correct right that one this one it is "
                 "exactly indeed".split())


def _noun(step: Step, grounding: Any) -> str:
    ref = getattr(grounding, "referent", None)
    if ref is not None and (ref.noun or ref.colour):
        return ref.detector_text()
    target = (step.target or "one").strip()
    return target[4:] if target.lower().startswith("the ") else target


def question(step: Step, grounding: Any, reason: str, *, planner: str = "") -> Plan:
    """The question (a Plan with ``question`` and ``choices``) for a step whose grounding was
    ambiguous (``grounding.ambiguous``) or weak (``reason``)."""
    dets = list(grounding.detections)[:MAX_CHOICES]
    noun = _noun(step, grounding)
    xs = [(d.box[0] + d.box[2]) / 2 for d in dets]
    ys = [(d.box[1] + d.box[3]) / 2 for d in dets]
    horizontal = (max(xs) - min(xs)) >= (max(ys) - min(ys))
    order = sorted(range(len(dets)), key=lambda i: xs[i] if horizontal else ys[i])
    first, last, axis = ("left", "right", "from the left") if horizontal else ("top", "bottom", "from the top")
    choices, lines = [], []
    for rank, i in enumerate(order):
        d = dets[i]
        if len(order) == 1:
            where = " ".join(w for w in d.position if w not in ("middle", "center")) or "center"
            phrase = f"the {noun} at the {where}" if where != "whole" else f"the {noun}"
        elif rank == 0:
            phrase = f"the {noun} on the {first}" if horizontal else f"the {noun} at the {first}"
        elif rank == len(order) - 1:
            phrase = f"the {noun} on the {last}" if horizontal else f"the {noun} at the {last}"
        else:
            phrase = f"the {ordinal_word(rank + 1)} {noun} {axis}"
        box = ",".join(str(int(v)) for v in d.box)
        choices.append(f"{phrase} (box {box})")
        lines.append(f"{rank + 1}. {phrase} (box {box}, score {d.score:.2f})")
    target = (step.target_full or step.target or "it").strip()
    if grounding.ambiguous:
        text = (f"I found {len(grounding.detections)} candidates for \"{target}\" and cannot tell "
                f"which one you mean. Which one?\n")
    else:
        text = (f"I am not sure I found \"{target}\": {reason}. "
                + ("Is it this one?\n" if len(choices) == 1 else "Is it one of these?\n"))
    text += "\n".join(lines)
    text += "\nAnswer with a number" + (" (or yes)" if len(choices) == 1 else "") + \
        ", or point at it with a box: \"box x0,y0,x1,y1\"."
    return Plan(steps=[step], question=text, choices=choices, planner=planner)


def resolve_choice(choices: list[str], answer: str) -> str | None:
    """The choice an answer picks: its number ("2", "#2", "the second"), "yes" for a single
    choice, its text, or a word that only one choice contains ("left"). None when the answer
    picks no single choice."""
    if not choices:
        return None
    text = " ".join(answer.strip().lower().rstrip(".!?").split())
    if len(choices) == 1 and (text in _YES or text.split(" ")[0].strip(",") in _YES):
        return choices[0]
    text = re.sub(r"^(?:the|option|choice|number|no\.?|#)\s*", "", text).strip()
    text = re.sub(r"\s+(?:one|option)$", "", text).strip()
    n = None
    if re.fullmatch(r"#?\d+", text):
        n = int(text.lstrip("#"))
    elif parse_ordinal(text) is not None:
        n = parse_ordinal(text)
    elif parse_number(text) is not None and text not in ("a", "an"):
        n = parse_number(text)
    if n is not None:
        if n < 0:
            return choices[n] if -len(choices) <= n else None
        return choices[n - 1] if 1 <= n <= len(choices) else None
    lowered = [c.lower() for c in choices]
    if text in lowered:
        return choices[lowered.index(text)]
    hits = [c for c, low in zip(choices, lowered, strict=True) if text and (text in low or low in text)]
    if len(hits) == 1:
        return hits[0]
    # A fragment ("left", "bottom-right"): every word of the answer is in exactly one choice.
    words = set(re.findall(r"[a-z0-9-]+", text)) - {"the", "a", "an", "on", "in", "at", "of", "to", "one"}
    if not words:
        return None
    top = [c for c, low in zip(choices, lowered, strict=True) if words <= set(re.findall(r"[a-z0-9-]+", low))]
    return top[0] if len(top) == 1 else None


def compose_answer(request: str, plan: Plan | None, answer: str, choice: str | None) -> str:
    """The request to plan after a clarifying question.

    A chosen choice replaces the target phrase of the step the question was about ("remove
    the man" + "the man on the left (box …)" → "remove the man on the left (box …)"); a
    choice with no such step is taken as the request itself (or, when it shows one example in
    double quotes, the example). A free answer is planned as it is."""
    if choice is None:
        return answer.strip()
    for step in (plan.steps if plan else []):
        for target in (step.target_full, step.target):
            if target and target.lower() in request.lower():
                i = request.lower().index(target.lower())
                return request[:i] + choice + request[i + len(target):]
    quoted = re.findall(r'"([^"]+)"', choice)
    return quoted[0] if len(quoted) == 1 else choice


__all__ = ["MAX_CHOICES", "compose_answer", "question", "resolve_choice"]
