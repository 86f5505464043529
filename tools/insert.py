"""insert: paste an image file or render text at a place or into a box, or generate an
object there with a diffusion model (kind ``generate``).

Placement: ``box`` when given, else ``place`` (a phrase grounded like ``ground``:
"the top-right corner", "the center", "the face"...), else the bounding box of the
current mask, else the selected detection's box, else the whole image (centred).
A pasted photo without transparency can have its background removed
(``remove_background``: GrabCut from a border-inset rectangle); ``shadow`` adds a soft
drop shadow under it. Recolouring a grounded object is the ``recolor`` tool. The pasted image is
scaled to fit the box (keeping its aspect, times ``scale``) and keeps its own
alpha; text is rendered with the font that ships with Pillow. ``result.mask`` is
where the image changed (the paste's alpha times ``opacity``).

``kind="generate"`` paints ``prompt`` into a region with a model (``state.models``): the region
is ``box``/``place`` when given, else the current mask (its own shape), else the selected
detection (its mask or box). The engine is always ``diffusion`` (``tools/backends``
``BACKENDS["insert"]``; kinds image and text are the ``embedded`` engine, so insert has no
``backend`` argument: ``kind`` decides). ``technique`` is how the diffusion engine paints, not
which engine runs: ``inpaint`` = diffusion inpainting (role ``inpaint``; PowerPaint ``P_obj``
task prompt when the checkpoint has it), ``shape`` = PowerPaint shape-guided insertion (role
``inpaint``, ``fitting_degree``), ``blended`` = Blended Latent Diffusion with a plain
text-to-image model (role ``text2image``); ``auto`` = inpaint when the inpaint model is
available, else blended when a text2image model is (``resolve_technique``). Without a model
manager it is ``NeedsModelError`` (exit code 3). Pixels outside the region keep their exact
values. ``result.backend`` is "embedded" or "diffusion"; ``metrics["technique"]`` and
``metrics["pipeline"]`` say how.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont, features
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from imagent.errors import MaskError, ToolArgumentError
from imagent.tools import masks as M
from imagent.tools.imageio import load_image
from imagent.tools.backends import EMBEDDED, resolve_backend, resolve_technique
from imagent.tools.models import model_available, step_reporter
from imagent.tools.types import ToolResult, ToolState

NAME = "insert"
DESCRIPTION = (
    "Add an image file (kind='image', path=...) or text (kind='text', text=...) at a place: the "
    "'box' argument, else 'place' (a phrase such as 'the top-right corner'), else the current "
    "mask's or detection's box, else the image centre. The pasted image keeps its transparency "
    "or, with remove_background=true, is cut out of its background; shadow=true adds a soft "
    "drop shadow; text uses 'color', 'font_size' and 'outline'. kind='generate' paints "
    "'prompt' (e.g. 'a red balloon') into the current mask (or box/place) with a diffusion "
    "model (model profile only).")

MAX_TEXT_CHARS = 2000


def parse_color(color: str, *, what: str = "color") -> tuple[int, int, int]:
    """RGB of a CSS colour name or #hex; ``ToolArgumentError`` quoting the bad value."""
    try:
        rgb = ImageColor.getrgb(str(color).strip())
    except (ValueError, AttributeError):
        raise ToolArgumentError(f"unknown {what} {color!r}",
                                hint="use a colour name like 'white', 'red', 'navy' or a hex "
                                     "code like '#ff8800'") from None
    return tuple(int(v) for v in rgb[:3])  # type: ignore[return-value]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["image", "text", "generate"] = Field(
        ..., description="'image' to paste a file, 'text' to write text, 'generate' to paint "
                         "'prompt' with a diffusion model.")
    path: str | None = Field(None, max_length=4096, description="kind='image': the image file "
                                                                "to paste (PNG transparency kept).")
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS,
                             description="kind='text': the text to write (\\n for new lines).")
    box: list[int] | None = Field(None, min_length=4, max_length=4,
                                  description="Where to put it: x0,y0,x1,y1 in px. Default: the "
                                              "current mask's box, the detection's box, or the "
                                              "whole image.")
    scale: float = Field(1.0, gt=0.0, le=10.0, description="Size relative to fitting the box.")
    opacity: float = Field(1.0, ge=0.0, le=1.0, description="0 = invisible, 1 = opaque.")
    color: str = Field("white", max_length=64, description="Text colour: a name or #hex.")
    font_size: int | None = Field(None, ge=4, le=2000, description="Text size in px; default: "
                                                                   "as large as fits the box.")
    outline: int = Field(0, ge=0, le=50, description="Text outline width in px (contrasting "
                                                     "colour).")
    feather: int = Field(0, ge=0, le=200, description="Soften the pasted edge by this many px.")
    place: str | None = Field(None, max_length=200,
                              description="Where to put it, as a phrase: 'the top-right corner', "
                                          "'the center', 'the bottom half', 'the face'... "
                                          "(used when no box is given).")
    remove_background: bool = Field(False, description="kind='image': cut the pasted photo's "
                                                       "subject out of its background (GrabCut) "
                                                       "before pasting.")
    shadow: bool = Field(False, description="Add a soft drop shadow under the pasted content.")
    shadow_opacity: float = Field(0.5, ge=0.0, le=1.0, description="Darkness of the shadow.")
    shadow_offset: list[int] | None = Field(None, min_length=2, max_length=2,
                                            description="Shadow offset [dx, dy] in px; default "
                                                        "3% of the pasted size, down-right.")
    shadow_blur: int | None = Field(None, ge=0, le=200, description="Shadow softness (Gaussian "
                                                                    "sigma px); default 2% of "
                                                                    "the pasted size.")
    # --- kind='generate'
    prompt: str | None = Field(None, max_length=1000, description="kind='generate': what to "
                                                                  "paint, e.g. 'a red balloon'.")
    negative_prompt: str = Field("", max_length=1000, description="kind='generate': what it must "
                                                                  "not show.")
    technique: Literal["auto", "inpaint", "blended", "shape"] = Field(
        "auto", description="kind='generate': how the diffusion model paints (not which engine "
                            "runs): 'inpaint' (diffusion inpainting), 'shape' (PowerPaint "
                            "shape-guided: follows the mask outline by fitting_degree), "
                            "'blended' (Blended Latent Diffusion, text-to-image model); 'auto' = "
                            "inpaint when available, else blended.")
    fitting_degree: float = Field(0.5, ge=0.0, le=1.0, description="technique='shape': 1 = follow "
                                                                    "the mask's shape closely, "
                                                                    "0 = fill like context.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="kind='generate': random seed; the "
                                                          "same seed gives the same result.")
    num_inference_steps: int = Field(30, ge=1, le=500, description="kind='generate': denoising "
                                                                   "steps.")
    guidance_scale: float | None = Field(None, ge=0.0, le=50.0,
                                         description="kind='generate': text guidance; None = "
                                                     "7.5.")
    strength: float = Field(1.0, gt=0.0, le=1.0, description="kind='generate' (inpaint/shape): "
                                                              "how much of the region is "
                                                              "re-generated (1 = all).")
    num_candidates: int = Field(1, ge=1, le=8, description="kind='generate': results to "
                                                           "generate; the best (CLIP when "
                                                           "configured, else seam/colour "
                                                           "figures) is kept.")

    @field_validator("color")
    @classmethod
    def _color_known(cls, v: str) -> str:
        try:
            parse_color(v)
        except ToolArgumentError as exc:
            raise ValueError(f"{exc.message}; {exc.hint}") from None
        return v

    @model_validator(mode="after")
    def _kind_needs(self) -> "Args":
        if self.kind == "image" and not self.path:
            raise ValueError("kind='image' needs path = the image file to paste")
        if self.kind == "text" and not (self.text or "").strip():
            raise ValueError("kind='text' needs a non-empty text")
        if self.kind == "generate" and not (self.prompt or "").strip():
            raise ValueError("kind='generate' needs prompt = what to paint, e.g. 'a red balloon'")
        if self.kind != "generate" and self.technique != "auto":
            raise ValueError(f"technique={self.technique!r} only applies to kind='generate'")
        return self


def _fit_font(text: str, size: int | None, box_wh: tuple[int, int], scale: float):
    if not features.check("freetype2"):  # pragma: no cover - Pillow wheels ship FreeType
        return ImageFont.load_default(), "Pillow's bitmap font (no FreeType: size ignored)"
    if size is not None:
        return ImageFont.load_default(size=max(1, int(round(size * scale)))), ""
    bw, bh = box_wh
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    lo, hi, best = 4, max(4, int(bh)), 4
    while lo <= hi:  # the largest size whose text fits the box
        mid = (lo + hi) // 2
        x0, y0, x1, y1 = probe.multiline_textbbox((0, 0), text, font=ImageFont.load_default(size=mid))
        if x1 - x0 <= bw and y1 - y0 <= bh:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return ImageFont.load_default(size=max(1, int(round(best * scale)))), ""


def render_text(text: str, color: str, *, font_size: int | None, box_wh: tuple[int, int],
                scale: float = 1.0, outline: int = 0) -> Image.Image:
    """The text as an RGBA image cropped to its ink."""
    rgb = parse_color(color)
    font, _ = _fit_font(text, font_size, box_wh, scale)
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    stroke = (0, 0, 0, 255) if lum > 127 else (255, 255, 255, 255)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.multiline_textbbox((0, 0), text, font=font, stroke_width=outline)
    layer = Image.new("RGBA", (max(1, x1 - x0), max(1, y1 - y0)), rgb + (0,))
    ImageDraw.Draw(layer).multiline_text((-x0, -y0), text, font=font, fill=rgb + (255,),
                                         stroke_width=outline, stroke_fill=stroke)
    return layer


def _placement(state: ToolState, box: list[int] | None,
               place: str | None = None) -> tuple[tuple[int, int, int, int], str]:
    size = state.image.size
    if box is not None:
        return M.check_box(box, size), "the given box"
    if place:
        from imagent.tools.ground import ground

        dets, note = ground(state.image, place)
        return dets[0].box, f"{place!r} ({note})"
    if state.mask is not None:
        m = M.check_mask(state.mask, state.image, allow_empty=True)
        bb = M.mask_bbox(m)
        if bb is not None:
            return bb, "the current mask's box"
    if state.detections:
        return M.check_box(state.detections[0].box, size), \
            f"the box of {state.detections[0].label!r}"
    return (0, 0, size[0], size[1]), "the whole image (centred)"


def remove_background(sticker: Image.Image, *, inset: float = 0.05,
                      seed: int = 0) -> tuple[Image.Image, float]:
    """The sticker with its background made transparent by GrabCut, initialised with a
    rectangle ``inset`` of the size inside its border (the border is background).
    Returns (RGBA image, fraction of the pixels kept)."""
    rgb = np.asarray(sticker.convert("RGB"), np.uint8)
    h, w = rgb.shape[:2]
    if min(w, h) < 8:
        raise ToolArgumentError(f"insert: the pasted image is {w}x{h}, too small to remove its "
                                "background", hint="use remove_background=false")
    dx, dy = max(1, int(round(w * inset))), max(1, int(round(h * inset)))
    gc = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))
    cv2.grabCut(np.ascontiguousarray(rgb[..., ::-1]), gc, (dx, dy, w - 2 * dx, h - 2 * dy),
                bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.float32)
    if fg.sum() == 0:
        raise ToolArgumentError("insert: background removal kept nothing of the pasted image",
                                hint="use remove_background=false, or a PNG with transparency")
    fg = M.fill_holes(fg)
    alpha = M.feather(fg, 1, where="inside") if min(w, h) >= 16 else fg
    out = sticker.convert("RGBA")
    if "A" in sticker.getbands():
        alpha = np.minimum(alpha, np.asarray(sticker.getchannel("A"), np.float32) / 255.0)
    out.putalpha(Image.fromarray(np.round(alpha * 255.0).astype(np.uint8)))
    return out, float((alpha >= 0.5).mean())


def paste(image: Image.Image, sticker: Image.Image, box: tuple[int, int, int, int], *,
          scale: float = 1.0, opacity: float = 1.0, feather: int = 0,
          fit: bool = True, shadow: bool = False, shadow_opacity: float = 0.5,
          shadow_offset: list[int] | None = None,
          shadow_blur: int | None = None) -> tuple[Image.Image, np.ndarray]:
    """Composite RGBA ``sticker`` centred in ``box`` (fit to it when ``fit``), with an
    optional soft drop shadow (the sticker's alpha, offset, blurred, darkened).

    Returns (new image, float32 mask of where it changed).
    """
    W, H = image.size
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    sw, sh = sticker.size
    f = (min(bw / sw, bh / sh) * scale) if fit else 1.0
    nw, nh = max(1, int(round(sw * f))), max(1, int(round(sh * f)))
    if nw * nh > 100_000_000:
        raise ToolArgumentError(f"insert: the pasted image would be {nw}x{nh}, too large",
                                hint="use a smaller scale")
    st = sticker.convert("RGBA")
    if (nw, nh) != (sw, sh):
        st = st.resize((nw, nh), Image.Resampling.LANCZOS)
    px, py = int(round((x0 + x1) / 2 - nw / 2)), int(round((y0 + y1) / 2 - nh / 2))
    alpha = np.zeros((H, W), np.float32)
    layer = np.zeros((H, W, 3), np.float32)
    # overlap of the sticker with the canvas
    cx0, cy0, cx1, cy1 = max(0, px), max(0, py), min(W, px + nw), min(H, py + nh)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ToolArgumentError(f"insert: the pasted content at {[px, py, px + nw, py + nh]} "
                                f"falls outside the {W}x{H} image", hint="use a box inside the image")
    arr = np.asarray(st, dtype=np.float32)
    sub = arr[cy0 - py:cy1 - py, cx0 - px:cx1 - px]
    layer[cy0:cy1, cx0:cx1] = sub[..., :3]
    alpha[cy0:cy1, cx0:cx1] = sub[..., 3] / 255.0
    if feather:
        alpha = M.feather(alpha, feather, where="inside")
    alpha *= float(opacity)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    changed = alpha
    if shadow and shadow_opacity > 0:
        size = max(nw, nh)
        ox, oy = shadow_offset if shadow_offset is not None else \
            (max(1, round(0.03 * size)), max(1, round(0.03 * size)))
        sigma = shadow_blur if shadow_blur is not None else max(1, round(0.02 * size))
        sh = np.zeros_like(alpha)
        sx0, sy0 = max(0, -int(ox)), max(0, -int(oy))
        dx0, dy0 = max(0, int(ox)), max(0, int(oy))
        hh, ww = alpha.shape[0] - abs(int(oy)), alpha.shape[1] - abs(int(ox))
        if hh > 0 and ww > 0:
            sh[dy0:dy0 + hh, dx0:dx0 + ww] = alpha[sy0:sy0 + hh, sx0:sx0 + ww]
        if sigma > 0:
            sh = cv2.GaussianBlur(sh, (0, 0), sigmaX=float(sigma))
        sh = np.clip(sh * float(shadow_opacity), 0.0, 1.0)
        sh[sh < 1.0 / 512] = 0.0  # the far tail of the blur changes nothing visible
        base = base * (1.0 - sh[..., None])
        changed = np.maximum(alpha, sh)
    out = base * (1.0 - alpha[..., None]) + layer * alpha[..., None]
    out_u8 = np.where(changed[..., None] > 0, np.clip(np.round(out), 0, 255).astype(np.uint8),
                      np.asarray(image.convert("RGB")))
    return Image.fromarray(out_u8), changed.astype(np.float32)


def _generate_region(state: ToolState, box: list[int] | None,
                     place: str | None) -> tuple[np.ndarray, str]:
    """The region kind='generate' paints into: box/place, else the current mask, else the
    selected detection's mask or box."""
    size = state.image.size
    if box is not None or place:
        b, where = _placement(state, box, place)
        return M.box_mask(size, b), f"{where} {list(b)}"
    if state.mask is not None:
        return M.check_mask(state.mask, state.image, allow_empty=False), "the current mask"
    if state.detections:
        det = state.detections[0]
        m = det.mask if det.mask is not None else M.box_mask(size, det.box)
        return M.check_mask(m, state.image, allow_empty=False), f"the region of {det.label!r}"
    raise MaskError("insert kind='generate' needs a region, and there is none",
                    hint="select where it goes (ground + build_mask), or give box=[x0,y0,x1,y1] "
                         "or place='the top-right corner'")


def _run_generate(args: Args, state: ToolState) -> ToolResult:
    from imagent.tools.backends import engine_role

    technique = resolve_technique(NAME, "diffusion", args.technique, state)
    engine = resolve_backend(NAME, "auto", state, allowed=("diffusion",), technique=technique,
                             what=f"kind='generate' ({args.prompt!r})")
    role = engine_role(NAME, engine, technique)
    mgr = state.models
    region, where = _generate_region(state, args.box, args.place)
    state.emit(kind="progress", tool=NAME, message=f"generating {args.prompt!r} ({technique})")
    info: dict[str, Any] = {}
    common = dict(seed=args.seed, num_inference_steps=args.num_inference_steps,
                  negative_prompt=args.negative_prompt, num_candidates=args.num_candidates,
                  feather=args.feather or 4, on_step=step_reporter(state, NAME),
                  cancel=state.cancel, info=info)
    prompt = (args.prompt or "").strip()
    if technique == "blended":
        from imagent.tools.backends.blended import blended_edit

        out = blended_edit(mgr, state.image, region, prompt,
                           guidance_scale=7.5 if args.guidance_scale is None else args.guidance_scale,
                           **common)
    elif technique == "shape":
        from imagent.tools.backends.inpaint import inpaint_shape

        out = inpaint_shape(mgr, state.image, region, prompt, fitting_degree=args.fitting_degree,
                            guidance_scale=args.guidance_scale, strength=args.strength, **common)
    else:
        from imagent.tools.backends.inpaint import inpaint_insert

        out = inpaint_insert(mgr, state.image, region, prompt, task="insert",
                             guidance_scale=args.guidance_scale, strength=args.strength, **common)
    pipeline = str(info.get("backend", technique))  # e.g. powerpaint, blended-latent-diffusion
    model_ids = {role: mgr.model_id(role)}
    if args.num_candidates > 1 and model_available(state, "clip"):
        model_ids["clip"] = mgr.model_id("clip")
    frac = float((region > 0).mean())
    metrics: dict[str, Any] = {k: v for k, v in info.items() if k not in ("model", "backend")}
    metrics.update(backend=engine, pipeline=pipeline, technique=technique,
                   changed_fraction=round(frac, 4),
                   box=list(M.mask_bbox(region, 1e-6) or ()), seed=int(args.seed))
    res = ToolResult(image=out, mask=region.astype(np.float32), backend=engine, metrics=metrics,
                     model_ids=model_ids,
                     message=f"generated {prompt!r} into {where} with {pipeline} "
                             f"({mgr.model_id(role)})")
    res.extra["resolved_args"] = {"technique": technique}  # names what ran: replay is exact
    return res


def run(args: Args, state: ToolState) -> ToolResult:
    if args.kind == "generate":
        return _run_generate(args, state)
    box, where = _placement(state, args.box, args.place)
    bw, bh = box[2] - box[0], box[3] - box[1]
    if args.kind == "image":
        loaded = load_image(args.path)  # type: ignore[arg-type]
        sticker = loaded.image.convert("RGBA")
        if loaded.alpha is not None:
            sticker.putalpha(loaded.alpha)
        kept = None
        if args.remove_background:
            sticker, kept = remove_background(sticker)
        out, changed = paste(state.image, sticker, box, scale=args.scale, opacity=args.opacity,
                             feather=args.feather, shadow=args.shadow,
                             shadow_opacity=args.shadow_opacity,
                             shadow_offset=args.shadow_offset, shadow_blur=args.shadow_blur)
        what = f"image {args.path!r}" + (f" (background removed, {kept:.0%} kept)"
                                         if kept is not None else "")
    else:
        layer = render_text(args.text or "", args.color, font_size=args.font_size,
                            box_wh=(bw, bh), scale=args.scale, outline=args.outline)
        out, changed = paste(state.image, layer, box, scale=1.0, opacity=args.opacity,
                             feather=args.feather, fit=False, shadow=args.shadow,
                             shadow_opacity=args.shadow_opacity,
                             shadow_offset=args.shadow_offset, shadow_blur=args.shadow_blur)
        what = f"text {args.text!r}"
    if not (changed > 0).any():
        raise ToolArgumentError(f"insert: {what} changes no pixel (opacity={args.opacity:g})",
                                hint="raise the opacity or check the image's transparency")
    frac = float((changed > 0).mean())
    return ToolResult(image=out, mask=changed, backend=EMBEDDED,
                      message=f"inserted {what} into {where} {list(box)}",
                      metrics={"changed_fraction": round(frac, 4), "box": list(box)})
