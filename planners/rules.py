"""Rule-based planner: the embedded default (no model, no network).

This is the foundation slice: session words (undo, redo, "go back to version 3"),
removal of a described region, the named global adjustments, outpainting,
extraction, and honest routing of the kinds that need a model (add, replace,
background, style). The planners issue deepens the grammar (instance selectors,
insertion places, several phrasings per kind, context references) and measures
it against ../shared/benchmarks/planner/. Requests it cannot map get a question
back, never a guess that edits the whole image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagent.planners.base import Plan, PlanContext, Step
from imagent.tools.types import ToolCall

_VERBS = (r"remove|erase|delete|get rid of|take out|take away|eliminate|make|turn|convert|"
          r"extend|expand|outpaint|widen|uncrop|rotate|flip|mirror|add|insert|put|place|replace|"
          r"swap|change|cut out|extract|isolate|increase|decrease|boost|reduce|lower|raise|"
          r"brighten|darken|sharpen|blur|soften|invert|desaturate|saturate|undo|redo|crop|"
          r"go back|revert|apply|give|enhance|fix")
_SPLIT = re.compile(rf"\s*(?:;|,?\s+then\s+|,?\s+and then\s+|,?\s+and\s+(?=(?:{_VERBS})\b)|,\s+(?=(?:{_VERBS})\b))\s*")
_POLITE = re.compile(r"^(?:please\s+|could you\s+|can you\s+|would you\s+|i want (?:you )?to\s+|"
                     r"i'd like (?:you )?to\s+|let's\s+|now\s+|also\s+)+")

_WEAK = re.compile(r"\b(a (?:little )?bit|slightly|a little|a touch|somewhat|a tad|subtly|mildly)\b")
_STRONG = re.compile(r"\b(much|a lot|very|way|really|significantly|strongly|heavily|extremely|far)\b")


def _strength(text: str) -> float:
    if _WEAK.search(text):
        return 0.5
    if _STRONG.search(text):
        return 2.0
    return 1.0


@dataclass(frozen=True)
class _Adjust:
    pattern: re.Pattern[str]
    operation: str
    sign: int = 0  # +1 / -1 for directional adjustments, 0 for on/off operations


def _p(expr: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{expr})\b")


# Order matters: more specific phrasings first.
_ADJUSTMENTS: tuple[_Adjust, ...] = (
    _Adjust(_p(r"black and white|black & white|b&w|b/w|grayscale|greyscale|monochrome|desaturate (?:it )?completely"), "black_and_white"),
    _Adjust(_p(r"sepia|old[- ]photo look"), "sepia"),
    _Adjust(_p(r"invert|negative"), "invert"),
    _Adjust(_p(r"auto[- ]?contrast|auto[- ]?levels|fix the levels|auto[- ]?enhance"), "autocontrast"),
    _Adjust(_p(r"(?:more|increase|boost|raise|higher|add) (?:the )?contrast|contrastier|punchier|more punch"), "contrast", +1),
    _Adjust(_p(r"(?:less|decrease|reduce|lower) (?:the )?contrast|flatter|lower contrast"), "contrast", -1),
    _Adjust(_p(r"(?:more|increase|boost|raise) (?:the )?(?:saturation|colou?rs?)|more (?:saturated|vivid|colou?rful|vibrant)|saturate|vivid|vibrant"), "saturation", +1),
    _Adjust(_p(r"(?:less|decrease|reduce|lower) (?:the )?(?:saturation|colou?rs?)|less (?:saturated|vivid|colou?rful)|desaturate|muted|washed out"), "saturation", -1),
    _Adjust(_p(r"warmer|warm(?: it)? up|more warm|warm tones?|golden"), "warmth", +1),
    _Adjust(_p(r"cooler|colder|cool(?: it)? down|cool tones?|bluer"), "warmth", -1),
    _Adjust(_p(r"(?:increase|raise|more|boost) (?:the )?exposure|overexpose"), "exposure", +1),
    _Adjust(_p(r"(?:decrease|lower|less|reduce) (?:the )?exposure|underexpose"), "exposure", -1),
    _Adjust(_p(r"brighter|brighten|lighter|lighten|more light|(?:increase|raise|boost|more) (?:the )?brightness"), "brightness", +1),
    _Adjust(_p(r"darker|darken|dimmer|(?:decrease|lower|reduce|less) (?:the )?brightness"), "brightness", -1),
    _Adjust(_p(r"sharpen|sharper|crisper|more detail(?:ed)?"), "sharpen"),
    _Adjust(_p(r"blur|blurry|blurrier|soften|softer|defocus"), "blur"),
)

# Base amounts per operation (strength multiplies them); the meaning of ``amount``
# is global_edit's: a relative change for brightness/contrast/saturation/exposure/
# warmth, a radius for blur, a gain for sharpen.
_BASE_AMOUNT = {"brightness": 0.25, "contrast": 0.25, "saturation": 0.3, "exposure": 0.5,
                "warmth": 0.3, "sharpen": 1.0, "blur": 2.0}

_STYLE = re.compile(
    r"\b(?:look(?:s)? like|in the style of|style|styled|painting|painted|cartoon|anime|sketch|watercolou?r|"
    r"oil paint|ukiyo|van gogh|pixar|comic|winter|summer|autumn|fall|spring|snow(?:y|ing)?|rain(?:y|ing)?|"
    r"fog(?:gy)?|night(?:time)?|sunset|sunrise|dawn|dusk|stormy|cyberpunk|futuristic|vintage film|"
    r"as if|pencil|3d render|lego|claymation|impressionis\w*|renaissance)\b")

# The object of "add"/"give" that makes it an adjustment rather than a new object.
_ADJUST_OBJECT = re.compile(
    r"^(?:(?:a|an|some|more|extra|bit|of|little|touch|much|lot|slight|subtle|strong)\s+)*"
    r"(?:contrast|brightness|saturation|warmth|exposure|sharpness|blur|sepia|black and white|vignette|"
    r"light|colou?r|vibrance|punch)\b|\b(?:look|effect|filter|tone|feel|finish)$")

_SIDES = ("left", "right", "top", "bottom")
_OUTPAINT = re.compile(r"\b(?:extend|expand|outpaint|widen|uncrop|zoom out|make (?:it|the (?:image|picture|photo)) (?:wider|taller|bigger canvas))\b")

_ROTATE = re.compile(r"\brotate\b(?:.*?\b(-?\d+(?:\.\d+)?)\s*(?:°|degrees?|deg)?)?")
_CHECKOUT = re.compile(r"^(?:go back to|back to|checkout|check out|switch to|restore|return to|revert to|show me)\s+(?:version\s+|v)?(#?\w+)$")


def _clean(text: str) -> str:
    text = text.strip().lower()
    text = re.sub(r"\s+", " ", text)
    text = text.rstrip(".!?")
    return _POLITE.sub("", text).strip()


class RulesPlanner:
    """Deterministic, fast, offline. See the module docstring for what it covers."""

    name = "rules"

    def plan(self, request: str, context: PlanContext | None = None) -> Plan:
        context = context or PlanContext()
        text = _clean(request)
        if not text:
            return Plan(question="The request is empty. What should I change in the image?", planner=self.name)
        steps: list[Step] = []
        for clause in (c for c in _SPLIT.split(text) if c):
            step = self._clause(clause, context)
            if step is None:
                return Plan(question=_question(clause), planner=self.name)
            steps.append(step)
        reply = "; ".join(s.description for s in steps)
        return Plan(steps=steps, reply=reply, planner=self.name)

    # -- one clause -------------------------------------------------------------------
    def _clause(self, text: str, ctx: PlanContext) -> Step | None:
        for matcher in (self._session, self._remove, self._outpaint, self._extract,
                        self._needs_model, self._geometry, self._adjust):
            step = matcher(text, ctx)
            if step is not None:
                return step
        return None

    def _session(self, text: str, ctx: PlanContext) -> Step | None:
        if re.fullmatch(r"(?:undo|revert)(?: (?:that|it|this|the last (?:edit|change|step)|last))?|take (?:that|it) back|go back(?: one step)?", text):
            return Step(kind="undo", calls=[ToolCall(name="undo", args={"steps": 1})], description="undo the last edit")
        if re.fullmatch(r"redo(?: (?:that|it|the last (?:edit|change)))?", text):
            return Step(kind="redo", calls=[ToolCall(name="redo", args={"steps": 1})], description="redo")
        if re.fullmatch(r"(?:go back to|back to|revert to|restore|show) the original(?: image)?|start over", text):
            return Step(kind="checkout", calls=[ToolCall(name="checkout", args={"version": "0"})],
                        description="go back to the original (version 0)")
        m = _CHECKOUT.match(text)
        if m and (m.group(1).lstrip("#").isdigit() or re.fullmatch(r"[0-9a-f]{4,32}", m.group(1))):
            ref = m.group(1).lstrip("#")
            return Step(kind="checkout", calls=[ToolCall(name="checkout", args={"version": ref})],
                        description=f"go to version {ref}")
        return None

    def _remove(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(r"^(?:remove|erase|delete|get rid of|take out|take away|eliminate|clear away|clean up)\s+(.+)$", text)
        if not m:
            return None
        target = re.sub(r"\s+from (?:the )?(?:image|picture|photo|scene)$", "", m.group(1)).strip()
        calls = [
            ToolCall(name="ground", args={"phrase": target}),
            # A few pixels of dilation so the fill covers the object's anti-aliased edge.
            ToolCall(name="build_mask", args={"source": "detections", "index": 0, "dilate": 4, "feather": 0}),
            ToolCall(name="remove", args={"seed": ctx.seed}),
        ]
        return Step(kind="remove", target=target, calls=calls, description=f"remove {target}")

    def _extract(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(r"^(?:cut out|extract|isolate|crop out|segment out)\s+(.+)$", text)
        if not m:
            return None
        target = m.group(1).strip()
        calls = [ToolCall(name="ground", args={"phrase": target}),
                 ToolCall(name="build_mask", args={"source": "detections", "index": 0}),
                 ToolCall(name="extract", args={})]
        return Step(kind="extract", target=target, calls=calls, description=f"cut out {target}")

    def _outpaint(self, text: str, ctx: PlanContext) -> Step | None:
        if not _OUTPAINT.search(text):
            return None
        sides = [s for s in _SIDES if re.search(rf"\b{s}\b", text)]
        if re.search(r"\b(?:all (?:sides|around|directions)|every side|each side)\b", text):
            sides = list(_SIDES)
        elif re.search(r"\bwider|horizontally|both sides|left and right\b", text) and not sides:
            sides = ["left", "right"]
        elif re.search(r"\btaller|vertically|top and bottom\b", text) and not sides:
            sides = ["top", "bottom"]
        elif re.search(r"\bup(?:wards)?\b", text) and not sides:
            sides = ["top"]
        elif re.search(r"\bdown(?:wards)?\b", text) and not sides:
            sides = ["bottom"]
        args: dict = {"seed": ctx.seed}
        aspect = re.search(r"\b(\d{1,2})\s*[:x×/]\s*(\d{1,2})\b", text)
        px = re.search(r"\b(\d+)\s*(?:px|pixels?)\b", text)
        pct = re.search(r"\b(\d+(?:\.\d+)?)\s*(?:%|percent|per cent)", text)
        if aspect and not px and not pct:
            args["aspect"] = f"{aspect.group(1)}:{aspect.group(2)}"
            if sides:
                args["sides"] = sides
            desc = f"extend to {args['aspect']}"
        else:
            sides = sides or list(_SIDES)
            if px:
                for s in sides:
                    args[s] = int(px.group(1))
                desc = f"extend {', '.join(sides)} by {px.group(1)} px"
            else:
                args["percent"] = float(pct.group(1)) if pct else 25.0
                args["sides"] = sides
                desc = f"extend {', '.join(sides)} by {args['percent']:g} %"
        return Step(kind="outpaint", calls=[ToolCall(name="outpaint", args=args)], description=desc)

    def _needs_model(self, text: str, ctx: PlanContext) -> Step | None:
        # Kinds the embedded default routes but cannot carry out: the assistant turns
        # ``needs_model`` into a clear NeedsModelError naming the model.
        if m := re.match(r"^(?:add|insert|put|place|draw|paint in|give (?:him|her|it|them|the \w+))\s+(.+)$", text):
            if _ADJUST_OBJECT.search(m.group(1)):
                return None  # "add more contrast", "give it a sepia look": an adjustment, not an object
            return Step(kind="add", target=None, needs_model="inpaint", description=f"add {m.group(1)}")
        if m := re.match(r"^(?:replace|swap)\s+(.+?)\s+(?:with|by|for)\s+(.+)$", text):
            return Step(kind="replace", target=m.group(1), needs_model="inpaint",
                        description=f"replace {m.group(1)} with {m.group(2)}")
        if re.search(r"\bbackground\b", text) and re.search(r"\b(?:change|replace|make|turn|swap|set|put)\b", text):
            return Step(kind="background", target="the background", needs_model="inpaint",
                        description="change the background")
        if _STYLE.search(text):
            return Step(kind="global", needs_model="instruct", description=text)
        return None

    def _geometry(self, text: str, ctx: PlanContext) -> Step | None:
        if re.search(r"\b(?:flip|mirror)\b", text):
            vertical = re.search(r"\b(?:vertical(?:ly)?|upside down|top to bottom)\b", text)
            op = "flip_vertical" if vertical else "flip_horizontal"
            return Step(kind="global", calls=[ToolCall(name="global_edit", args={"operation": op})],
                        description=op.replace("_", " "))
        if re.search(r"\bupside down\b", text):
            return Step(kind="global", calls=[ToolCall(name="global_edit", args={"operation": "rotate", "value": 180.0})],
                        description="rotate 180°")
        m = _ROTATE.search(text)
        if m:
            if m.group(1):
                angle = float(m.group(1))
            elif re.search(r"\b(?:counter[- ]?clockwise|anti[- ]?clockwise|left)\b", text):
                angle = 90.0
            else:
                angle = -90.0  # "rotate it" / "rotate right" / "clockwise": a quarter turn clockwise
            if re.search(r"\bclockwise\b", text) and not re.search(r"\b(?:counter|anti)[- ]?clockwise\b", text):
                angle = -abs(angle)
            return Step(kind="global", calls=[ToolCall(name="global_edit", args={"operation": "rotate", "value": angle})],
                        description=f"rotate {angle:g}°")
        return None

    def _adjust(self, text: str, ctx: PlanContext) -> Step | None:
        for adj in _ADJUSTMENTS:
            if adj.pattern.search(text):
                args: dict = {"operation": adj.operation}
                if adj.operation in _BASE_AMOUNT:
                    amount = _BASE_AMOUNT[adj.operation] * _strength(text)
                    args["amount"] = round(amount * (adj.sign or 1), 4)
                strength = {0.5: "a bit ", 2.0: "much "}.get(_strength(text), "")
                word = adj.operation.replace("_", " ")
                if adj.sign:
                    desc = f"{strength}{'more' if adj.sign > 0 else 'less'} {word}"
                else:
                    desc = f"{strength}{word}".strip()
                return Step(kind="global", calls=[ToolCall(name="global_edit", args=args)], description=desc)
        return None


def _question(clause: str) -> str:
    return (f"I couldn't tell what edit you want from \"{clause}\". I can remove a described region "
            "(\"remove the flag in the top-left corner\"), adjust the whole image (\"make it a bit "
            "brighter\", \"black and white\"), extend it (\"extend to the right by 25%\"), cut something "
            "out, or undo/redo. What should I do?")
