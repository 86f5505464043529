"""Model backends: the generative and detection models behind the tools.

Every module here imports torch / diffusers / transformers inside its functions only, so
``import imagent.tools.backends.inpaint`` is cheap and the embedded path never loads them.
Each entry function takes the ``ModelManager`` (``imagent.tools.models``) first, gets its model
through ``manager.get(role)`` and works on PIL images and float32 H x W masks:

- ``inpaint``: ``inpaint_remove``, ``inpaint_insert``, ``inpaint_shape``, ``inpaint_outpaint``
  (diffusers inpainting; PowerPaint task prompts when the tokenizer holds them; RePaint-style
  resampling as an option)
- ``blended``: ``blended_edit`` (Blended Latent Diffusion for plain text-to-image models)
- ``ip2p``: ``instruct_edit`` (InstructPix2Pix)
- ``lama``: ``lama_remove`` (TorchScript LaMa)
- ``grounding_dino``: ``ground`` (GroundingDINO -> Detections)
- ``sam``: ``segment`` (SAM masks from boxes / points)
- ``original_gdino`` / ``original_sam``: the original checkpoints (need torchvision)
- ``clip_rank``: ``clip_scores`` (rank candidates by CLIP similarity)

Which backend a tool runs is declared here too: ``BACKENDS`` (tool -> engines -> model role),
one vocabulary for every tool ("embedded" = the no-weights algorithm; "diffusion", "lama",
"grounding-dino", "sam", "instruct-pix2pix" = model engines), and ``resolve_backend`` is the one
place "auto" is decided.

Progress: ``on_step(step, total)`` after every denoising step. Cancellation: when the
``cancel`` event is set the backend raises ``imagent.errors.Cancelled`` within one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal

from imagent.errors import ToolArgumentError


BACKEND_ROLES = {
    "inpaint": "inpaint", "blended": "text2image", "ip2p": "instruct", "lama": "lama",
    "grounding_dino": "grounding", "sam": "segmentation", "clip_rank": "clip",
}


# ------------------------------------------------------------------------------ backend table
# Which engine runs a tool: one vocabulary for every tool, one table, one resolver. Light on
# purpose (no torch): the tools import it at module level.
#
# "embedded" is the no-weights algorithm everywhere; model engines have one name across the
# tools, each needing one model role (``tools/models.py`` ROLES). "auto" = the first model engine
# of the tool (table order) whose model ``state.models`` has, else "embedded". A tool whose
# request the embedded engine cannot do passes ``allowed`` without it; "auto" then means that
# model, and a missing manager is ``NeedsModelError`` instead of ``ModelUnavailableError``.

AUTO = "auto"
EMBEDDED = "embedded"


@dataclass(frozen=True)
class Engine:
    """One engine of one tool: its name, the model role it needs (None = embedded) and what it
    does for that tool."""

    name: str
    role: str | None
    does: str


BACKENDS: dict[str, tuple[Engine, ...]] = {
    "ground": (
        Engine(EMBEDDED, None, "places, explicit boxes, colour regions and the classical OpenCV "
                               "detectors (faces, people, text...)"),
        Engine("grounding-dino", "grounding", "GroundingDINO open-vocabulary detection"),
    ),
    "build_mask": (
        Engine(EMBEDDED, None, "GrabCut refinement of the box/ellipse (when refine=true)"),
        Engine("sam", "segmentation", "SAM mask from the box as prompt"),
    ),
    "remove": (
        Engine(EMBEDDED, None, "PatchMatch texture fill (algorithm='telea': OpenCV Telea; Telea "
                               "is also the stated fallback when PatchMatch cannot load)"),
        Engine("diffusion", "inpaint", "diffusion inpainting (PowerPaint task prompts when the "
                                       "checkpoint has them)"),
        Engine("lama", "lama", "LaMa"),
    ),
    "outpaint": (
        Engine(EMBEDDED, None, "PatchMatch fill of the new area from a band of the image "
                               "(algorithm='reflect': the mirrored edge; also the fallback when "
                               "PatchMatch cannot load)"),
        Engine("diffusion", "inpaint", "diffusion inpainting of the new area"),
    ),
    "insert": (
        Engine(EMBEDDED, None, "paste an image file / render text (kind image, text)"),
        Engine("diffusion", "inpaint", "generate into a region (kind generate); the role follows "
                                       "the technique (TECHNIQUES)"),
    ),
    "global_edit": (
        Engine(EMBEDDED, None, "the classical adjustments (every operation but instruct)"),
        Engine("instruct-pix2pix", "instruct", "InstructPix2Pix (operation instruct)"),
    ),
    "recolor": (Engine(EMBEDDED, None, "classical recolouring in Lab"),),
    "extract": (Engine(EMBEDDED, None, "cut-out through the mask"),),
}

# Techniques of a model engine that need another role than the engine's own, in "auto" order
# (``auto`` = the first one whose role is available, else the first). Only insert has them: how
# the diffusion engine paints, not which engine runs.
TECHNIQUES: dict[tuple[str, str], dict[str, str]] = {
    ("insert", "diffusion"): {"inpaint": "inpaint", "blended": "text2image", "shape": "inpaint"},
}
AUTO_TECHNIQUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("insert", "diffusion"): ("inpaint", "blended"),
}


def backend_for_algorithm(backend: str, algorithm: str) -> str:
    """The backend a call runs when it names an embedded ``algorithm`` (remove, outpaint):
    naming one with "auto" chooses the embedded engine; with a model engine it is a
    ``ValueError`` (pydantic reports it as the call's argument error)."""
    if algorithm == AUTO:
        return backend
    if backend == AUTO:
        return EMBEDDED
    if backend != EMBEDDED:
        raise ValueError(f"algorithm={algorithm!r} is an embedded fill; it does not apply to "
                         f"backend={backend!r} (use algorithm='auto')")
    return backend


def backend_choices(tool: str) -> tuple[str, ...]:
    """The values a tool's ``backend`` argument takes: "auto" then its engines."""
    return (AUTO,) + tuple(e.name for e in BACKENDS[tool])


def backend_literal(tool: str) -> Any:
    """``Literal["auto", ...engines]`` for a tool's ``backend`` field (pydantic)."""
    return Literal[backend_choices(tool)]  # type: ignore[valid-type]


def engine_role(tool: str, engine: str, technique: str | None = None) -> str | None:
    """The model role ``engine`` needs for ``tool`` (None for embedded); a technique with its
    own role (TECHNIQUES) decides it."""
    techs = TECHNIQUES.get((tool, engine))
    if techs and technique in techs:
        return techs[technique]
    for e in BACKENDS[tool]:
        if e.name == engine:
            return e.role
    raise ToolArgumentError(f"{tool}: unknown backend {engine!r}",
                            hint=f"{tool} backends: " + ", ".join(backend_choices(tool)))


def backends_table() -> dict[str, dict[str, str | None]]:
    """``{tool: {engine: role}}`` (for documentation and ``describe``)."""
    return {tool: {e.name: e.role for e in engines} for tool, engines in BACKENDS.items()}


def resolve_technique(tool: str, engine: str, requested: str, state: Any) -> str:
    """An explicit technique as given; "auto" = the first technique of AUTO_TECHNIQUES whose
    role's model is available, else the first (whose missing model then errors clearly)."""
    techs = TECHNIQUES[(tool, engine)]
    if requested != AUTO:
        if requested not in techs:
            raise ToolArgumentError(f"{tool}: unknown technique {requested!r}",
                                    hint="techniques: " + ", ".join((AUTO,) + tuple(techs)))
        return requested
    from imagent.tools.models import model_available

    order = AUTO_TECHNIQUES[(tool, engine)]
    for t in order:
        if model_available(state, techs[t]):
            return t
    return order[0]


def resolve_backend(tool: str, requested: str, state: Any, *,
                    allowed: Iterable[str] | None = None, prefer_model: bool = True,
                    technique: str | None = None, what: str | None = None) -> str:
    """The engine a call of ``tool`` runs: the one place "auto" is decided.

    - ``requested`` is the ``backend`` argument ("auto" or a name of ``BACKENDS[tool]``).
    - ``allowed``: the engines that can do this particular call (default: all of the tool's);
      an explicit backend outside it is ``ToolArgumentError``.
    - ``prefer_model=False``: "auto" keeps the embedded engine even where a model is available
      (e.g. ground for a pure place, build_mask for a region that already has its outline).
    - "auto" = the first allowed model engine whose role's model ``state.models`` has
      (``model_available``), else "embedded"; where embedded is not allowed, the first model
      engine.
    - A model engine while ``state.models`` is None is ``no_manager_error`` (naming the model,
      its role and ``--profile models``); ``NeedsModelError`` when embedded is not allowed.
      Never a silent fallback: the stored call names the engine that ran.
    """
    from imagent.tools.models import model_available, no_manager_error

    names = [e.name for e in BACKENDS[tool]]
    ok = [n for n in names if allowed is None or n in set(allowed)]
    if not ok:
        raise ToolArgumentError(f"{tool}: no backend can do this call")
    if requested == AUTO:
        models = [n for n in ok if n != EMBEDDED]
        chosen = None
        if prefer_model:
            chosen = next((n for n in models
                           if model_available(state, engine_role(tool, n, technique) or "")), None)
        if chosen is None:
            chosen = EMBEDDED if EMBEDDED in ok else models[0]
    elif requested not in names:
        raise ToolArgumentError(f"{tool}: unknown backend {requested!r}",
                                hint=f"{tool} backends: " + ", ".join(backend_choices(tool)))
    elif requested not in ok:
        raise ToolArgumentError(f"{tool}: backend={requested!r} cannot do " + (what or "this call"),
                                hint="use backend=" + " or ".join(repr(n) for n in ok)
                                     + " (or 'auto')")
    else:
        chosen = requested
    if chosen != EMBEDDED and getattr(state, "models", None) is None:
        role = engine_role(tool, chosen, technique) or ""
        raise no_manager_error(tool, role, what or f"backend={chosen!r}",
                               needs=EMBEDDED not in ok)
    return chosen
