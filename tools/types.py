"""Plain value types shared by every tool (the contracts of docs/ARCHITECTURE.md).

- Image: ``PIL.Image.Image`` in mode RGB. Alpha is kept aside by the loader.
- Mask: ``numpy.ndarray`` float32, H x W, values in [0, 1]; 1 = region to change.
- Detection: a box in pixels, a score, a label, position words and an optional mask.
- ToolCall: a tool name and its JSON arguments; the same object is planned, run,
  stored in the session and re-run by replay.
- ToolState: what a tool sees (current image, last mask, last detections).
- ToolResult: what a tool returns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field


class ToolCall(BaseModel):
    """One call of a registered tool: ``name`` and its arguments (validated by the registry)."""

    model_config = ConfigDict(frozen=True)

    name: str
    args: dict[str, Any] = Field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {"name": self.name, "args": dict(self.args)}

    def __str__(self) -> str:  # short form for logs: remove(seed=0)
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.name}({inner})"


@dataclass
class Detection:
    """A grounded region. ``box`` is (x0, y0, x1, y1) in pixels, x1/y1 exclusive."""

    box: tuple[int, int, int, int]
    score: float
    label: str
    position: list[str] = field(default_factory=list)  # e.g. ["left", "top"]
    mask: np.ndarray | None = None  # float32 H x W of the whole image, optional

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": round(float(self.score), 4), "label": self.label,
                "position": list(self.position), "has_mask": self.mask is not None}


@dataclass
class ToolState:
    """The working state a sequence of tool calls threads through.

    ``image`` is the current RGB image; ``mask`` the last mask built (or given by
    the user); ``detections`` the last grounding result; ``original`` the image at
    the start of the request (for checks).
    """

    image: Image.Image
    mask: np.ndarray | None = None
    detections: list[Detection] = field(default_factory=list)
    original: Image.Image | None = None
    events: Any = None  # optional callable(event: dict) for progress; None = silent
    cancel: threading.Event | None = None  # set by another thread to stop the request
    # The model manager (tools/models.py) when the profile allows model backends; None on
    # the embedded default. Tools whose ``backend`` is "auto" use a model only when it is set.
    models: Any = None
    # The current transparency (a PIL "L" image the size of ``image``; None = opaque). The
    # assistant sets it from the version's alpha; ``apply_result`` changes it only for a
    # cut-out (``extra["rgba"]``) and drops it when the geometry changes. It becomes the new
    # version's alpha.
    alpha: Image.Image | None = None

    def emit(self, **event: Any) -> None:
        if self.events is not None:
            self.events(event)

    def check_cancelled(self) -> None:
        """Raise ``Cancelled`` if the request was cancelled. Long tools call this between
        steps (every diffusion step, every PatchMatch tile); the registry calls it before
        every tool call."""
        if self.cancel is not None and self.cancel.is_set():
            from imagent.errors import Cancelled

            raise Cancelled("the request was cancelled; nothing was committed",
                            hint="the session is unchanged; send the request again to redo it")


@dataclass
class ToolResult:
    """What a tool returns. Fields left None mean "unchanged"."""

    image: Image.Image | None = None
    mask: np.ndarray | None = None
    detections: list[Detection] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    backend: str = ""  # the engine: "embedded", "diffusion", "lama", "grounding-dino", "sam", "instruct-pix2pix"
    model_ids: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"rgba": Image} for extract

    def summary(self) -> dict[str, Any]:
        """The short observation a planner or a log sees (no pixels)."""
        out: dict[str, Any] = {"message": self.message, "backend": self.backend,
                               "metrics": self.metrics}
        if self.detections is not None:
            out["detections"] = [d.to_dict() for d in self.detections]
        if self.image is not None:
            out["image_size"] = list(self.image.size)
        if self.mask is not None:
            out["mask_fraction"] = round(float((self.mask > 0.5).mean()), 4)
        return out
