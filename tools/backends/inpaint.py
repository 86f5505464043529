"""Diffusion inpainting (role ``inpaint``): remove, insert, shape-guided insert, outpaint.

The model is a diffusers inpainting pipeline (SD 1.x/2.x or SDXL inpainting, loaded through
``AutoPipelineForInpainting``). When its tokenizer holds the PowerPaint task tokens ``P_ctxt``,
``P_obj`` and ``P_shape`` (PowerPaint v1 in diffusers layout; a token may also be stored as
``P_ctxt_0 .. P_ctxt_{n-1}``, PowerPaint's multi-vector form), the task prompts are used:

- removal: ``P_ctxt`` positive, ``P_obj`` negative, at a high guidance scale (12);
- insertion: ``prompt P_obj``;
- shape-guided insertion: the embeddings of ``prompt P_shape`` and ``prompt P_ctxt`` mixed by
  ``fitting_degree`` (1 = follow the mask's shape, 0 = fill like context);
- outpainting: ``P_ctxt`` positive, ``P_obj`` negative.

With a plain inpainting model, removal uses a context-fill prompt and a negative object prompt.
``resample_count > 0`` switches to RePaint-style resampling (``repaint.py``).

SDXL inpainting (a pipeline with ``text_encoder_2``) gets plain text prompts, encoded by the
pipeline itself with both text encoders: PowerPaint's task tokens are trained embeddings of the
SD 1.5 text encoder, so they are not looked up on SDXL (removal uses the context-fill and
negative object prompts, ``fitting_degree`` is ignored as with any plain model), and RePaint
(which drives the UNet with SD 1.x/2.x prompt embeddings only) is refused with a
``ToolArgumentError`` when ``resample_count > 0`` is asked of an SDXL model. Every entry works
on a padded crop around the mask at the model's native resolution and pastes back through the
mask: pixels where the mask is 0 keep their exact values.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

from imagent.tools.backends import _common as C

ROLE = "inpaint"
POWERPAINT_TOKENS = ("P_ctxt", "P_obj", "P_shape")
CONTEXT_PROMPT = ("empty background, the surrounding scene continues seamlessly, nothing there, "
                  "high quality photo")
OBJECT_NEGATIVE = ("object, person, people, animal, text, letters, watermark, logo, sign, frame, "
                   "border, artifacts, blurry, distorted")
POWERPAINT_REMOVE_GUIDANCE = 12.0
DEFAULT_GUIDANCE = 7.5


def powerpaint_tokens(tokenizer: Any) -> dict[str, str] | None:
    """``{"P_ctxt": text, ...}`` when the tokenizer holds all three task tokens, else None.
    A multi-vector token stored as ``P_ctxt_0 ..`` maps to ``"P_ctxt_0 P_ctxt_1 .."``."""
    if tokenizer is None:
        return None
    vocab = tokenizer.get_vocab()
    out: dict[str, str] = {}
    for tok in POWERPAINT_TOKENS:
        if tok in vocab:
            out[tok] = tok
        elif f"{tok}_0" in vocab:
            n = 0
            while f"{tok}_{n}" in vocab:
                n += 1
            out[tok] = " ".join(f"{tok}_{i}" for i in range(n))
        else:
            return None
    return out


def cached_powerpaint_tokens(manager: Any, pipe: Any) -> dict[str, str] | None:
    """``powerpaint_tokens`` of the pipeline's tokenizer, looked up once per loaded pipeline
    (``get_vocab`` builds the whole vocabulary dict, ~50k entries for CLIP)."""
    key = (ROLE, "powerpaint-tokens", id(pipe))
    if key not in manager.extras:
        manager.extras[key] = powerpaint_tokens(getattr(pipe, "tokenizer", None))
    return manager.extras[key]


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def task_prompts(task: str, prompt: str, negative_prompt: str,
                 tokens: dict[str, str] | None) -> tuple[str, str, str, str]:
    """(prompt A, prompt B, negative A, negative B) for a task: remove, insert, shape, outpaint,
    context (a background / local edit that should blend like context)."""
    if tokens is None:
        if task in ("remove", "outpaint"):
            p = _join(prompt, CONTEXT_PROMPT) if task == "remove" else _join(prompt or CONTEXT_PROMPT)
            n = _join(negative_prompt, OBJECT_NEGATIVE)
            return p, p, n, n
        return prompt, prompt, negative_prompt, negative_prompt
    ctxt, obj, shape = tokens["P_ctxt"], tokens["P_obj"], tokens["P_shape"]
    if task in ("remove", "outpaint"):
        p, n = _join(prompt, ctxt), _join(negative_prompt, obj)
        return p, p, n, n
    if task == "shape":
        return _join(prompt, shape), _join(prompt, ctxt), negative_prompt, negative_prompt
    if task == "context":
        p = _join(prompt, ctxt)
        return p, p, negative_prompt, negative_prompt
    p = _join(prompt, obj)  # insert
    return p, p, negative_prompt, negative_prompt


def native_size(pipe: Any) -> int:
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)


def _embeds(pipe: Any, a: str, b: str, na: str, nb: str, fitting: float, cfg: bool, device: Any):
    """Prompt embeddings, interpolated ``fitting * A + (1 - fitting) * B`` (PowerPaint)."""
    pa, nea = pipe.encode_prompt(a, device, 1, cfg, negative_prompt=na)
    if (a, na) == (b, nb):
        return pa, nea
    pb, neb = pipe.encode_prompt(b, device, 1, cfg, negative_prompt=nb)
    pe = fitting * pa + (1.0 - fitting) * pb
    ne = None if nea is None else fitting * nea + (1.0 - fitting) * neb
    return pe, ne


def _run(manager: Any, task: str, image: Image.Image, mask: np.ndarray, prompt: str,
         negative_prompt: str, *, seed: int, num_inference_steps: int,
         guidance_scale: float | None, strength: float, fitting_degree: float = 1.0,
         num_candidates: int = 1, feather: int = 4, margin: float = 0.5,
         resample_count: int = 0, jump_length: int = 5,
         on_step: C.OnStep | None = None, cancel: threading.Event | None = None,
         info: dict | None = None) -> Image.Image:
    import torch

    C.check_cancel(cancel)
    m = C.require_mask(mask, image)
    pipe = manager.get(ROLE)
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    if sdxl and resample_count > 0:
        from imagent.errors import ToolArgumentError

        raise ToolArgumentError(
            f"RePaint resampling (resample_count={resample_count!r}) is not available with the "
            f"SDXL inpainting model {manager.model_id(ROLE)!r}",
            hint="use resample_count=0 with SDXL, or configure an SD 1.x/2.x inpainting model "
                 "for the 'inpaint' role")
    # PowerPaint task tokens belong to SD 1.5's text encoder: SDXL always gets plain prompts
    tokens = None if sdxl else cached_powerpaint_tokens(manager, pipe)
    a, b, na, nb = task_prompts(task, prompt, negative_prompt, tokens)
    if guidance_scale is None:
        guidance_scale = (POWERPAINT_REMOVE_GUIDANCE if tokens and task == "remove"
                          else DEFAULT_GUIDANCE)
    crop = C.crop_for_model(image, m, native=native_size(pipe), margin=margin)
    w, h = crop.size
    cfg = guidance_scale > 1.0
    use_repaint = resample_count > 0  # (refused above for SDXL)
    per = (C.steps_run(num_inference_steps, strength) if not use_repaint else
           _repaint().total_steps(num_inference_steps, jump_length, resample_count))
    total = per * max(1, int(num_candidates))
    candidates: list[Image.Image] = []
    with torch.no_grad():
        prompt_kw: dict[str, Any]
        if sdxl:
            prompt_kw = {"prompt": a, "negative_prompt": na or None}
        else:
            # the manager's device (pipe._execution_device walks every module: slow per call);
            # with CPU offload the pipeline decides where the text encoder runs
            device = pipe._execution_device if manager.offload else manager.device
            pe, ne = _embeds(pipe, a, b, na, nb, float(fitting_degree), cfg, device)
            prompt_kw = {"prompt_embeds": pe, "negative_prompt_embeds": ne}
        for k in range(max(1, int(num_candidates))):
            gen = C.make_generator(seed + k)
            if use_repaint:
                out = _repaint().repaint(
                    pipe, crop.image, crop.mask, prompt_embeds=pe,
                    negative_prompt_embeds=ne if ne is not None else torch.zeros_like(pe),
                    guidance_scale=guidance_scale, num_inference_steps=num_inference_steps,
                    generator=gen, jump_length=jump_length, resample_count=resample_count,
                    on_step=on_step, cancel=cancel, step_offset=k * per, total=total)
            else:
                offset = k * per

                def report(step: int, _total: int, offset: int = offset) -> None:
                    if on_step is not None:
                        on_step(offset + step, total)

                out = pipe(**prompt_kw, image=crop.image, mask_image=C.mask_image(crop.mask),
                           height=h, width=w, strength=float(strength),
                           guidance_scale=float(guidance_scale),
                           num_inference_steps=int(num_inference_steps), generator=gen,
                           callback_on_step_end=C.step_callback(report, cancel, per),
                           output_type="pil").images[0]
            candidates.append(C.paste_back(image, m, out, crop.box, feather=feather))
    best, scores = rank(manager, image, m, candidates, prompt if task != "remove" else "")
    if info is not None:
        info.update({"backend": "powerpaint" if tokens else ("repaint" if use_repaint
                                                             else "diffusers-inpaint"),
                     "model": manager.model_id(ROLE), "sdxl": sdxl, "task": task, "prompt": a,
                     "negative_prompt": na, "guidance_scale": guidance_scale,
                     "crop": list(crop.box), "model_size": [w, h], "steps": per,
                     "candidates": len(candidates), "scores": scores, "chosen": best})
    return candidates[best]


def _repaint():
    from imagent.tools.backends import repaint

    return repaint


def rank(manager: Any, image: Image.Image, mask: np.ndarray, candidates: list[Image.Image],
         prompt: str) -> tuple[int, list[float]]:
    """Index of the best candidate and every score: CLIP similarity to ``prompt`` when a CLIP
    model is available (and there is a prompt), else the model-free seam/colour figures."""
    if len(candidates) == 1:
        return 0, [0.0]
    if prompt and manager.available("clip"):
        from imagent.tools.backends.clip_rank import clip_scores

        scores = clip_scores(manager, candidates, prompt, mask=mask)
    else:
        scores = [C.simple_figures(image, c, mask) for c in candidates]
    return int(np.argmax(scores)), [round(float(s), 4) for s in scores]


# ---------------------------------------------------------------------- entry functions
def inpaint_remove(manager: Any, image: Image.Image, mask: np.ndarray, *, seed: int = 0,
                   num_inference_steps: int = 30, guidance_scale: float | None = None,
                   strength: float = 1.0, prompt: str = "", negative_prompt: str = "",
                   num_candidates: int = 1, feather: int = 4, margin: float = 0.5,
                   resample_count: int = 0, jump_length: int = 5,
                   on_step: C.OnStep | None = None, cancel: threading.Event | None = None,
                   info: dict | None = None) -> Image.Image:
    """Remove what the mask covers and fill it like its surroundings."""
    return _run(manager, "remove", image, mask, prompt, negative_prompt, seed=seed,
                num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                strength=strength, num_candidates=num_candidates, feather=feather,
                margin=margin, resample_count=resample_count, jump_length=jump_length,
                on_step=on_step, cancel=cancel, info=info)


def inpaint_insert(manager: Any, image: Image.Image, mask: np.ndarray, prompt: str, *,
                   seed: int = 0, num_inference_steps: int = 30,
                   guidance_scale: float | None = None, strength: float = 1.0,
                   negative_prompt: str = "", task: str = "insert", num_candidates: int = 1,
                   feather: int = 4, margin: float = 0.5, resample_count: int = 0,
                   jump_length: int = 5, on_step: C.OnStep | None = None,
                   cancel: threading.Event | None = None, info: dict | None = None) -> Image.Image:
    """Paint ``prompt`` into the mask. ``task="insert"`` (an object: PowerPaint ``P_obj``) or
    ``"context"`` (a local/background edit that blends like scenery: ``P_ctxt``)."""
    if task not in ("insert", "context"):
        from imagent.errors import ToolArgumentError

        raise ToolArgumentError(f"unknown inpaint task {task!r}", hint="use 'insert' or 'context'")
    return _run(manager, task, image, mask, prompt, negative_prompt, seed=seed,
                num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                strength=strength, num_candidates=num_candidates, feather=feather,
                margin=margin, resample_count=resample_count, jump_length=jump_length,
                on_step=on_step, cancel=cancel, info=info)


def inpaint_shape(manager: Any, image: Image.Image, mask: np.ndarray, prompt: str, *,
                  fitting_degree: float = 0.5, seed: int = 0, num_inference_steps: int = 30,
                  guidance_scale: float | None = None, strength: float = 1.0,
                  negative_prompt: str = "", num_candidates: int = 1, feather: int = 4,
                  margin: float = 0.5, on_step: C.OnStep | None = None,
                  cancel: threading.Event | None = None, info: dict | None = None) -> Image.Image:
    """Shape-guided insertion: ``prompt`` following the mask's outline by ``fitting_degree``
    (PowerPaint: P_shape/P_ctxt embedding mix; a plain model ignores the degree)."""
    if not 0.0 <= fitting_degree <= 1.0:
        from imagent.errors import ToolArgumentError

        raise ToolArgumentError(f"fitting_degree must be in [0, 1], got {fitting_degree!r}",
                                hint="1 = follow the mask's shape closely, 0 = fill like context")
    return _run(manager, "shape", image, mask, prompt, negative_prompt, seed=seed,
                num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                strength=strength, fitting_degree=fitting_degree, num_candidates=num_candidates,
                feather=feather, margin=margin, on_step=on_step, cancel=cancel, info=info)


def inpaint_outpaint(manager: Any, canvas: Image.Image, mask: np.ndarray, *, prompt: str = "",
                     seed: int = 0, num_inference_steps: int = 30,
                     guidance_scale: float | None = None, strength: float = 1.0,
                     negative_prompt: str = "", num_candidates: int = 1, feather: int = 8,
                     margin: float = 0.5, on_step: C.OnStep | None = None,
                     cancel: threading.Event | None = None, info: dict | None = None) -> Image.Image:
    """Fill the new area of an extended ``canvas`` (``mask`` = 1 on the new area; the canvas is
    what tools.outpaint builds, pre-filled or not)."""
    return _run(manager, "outpaint", canvas, mask, prompt, negative_prompt, seed=seed,
                num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                strength=strength, num_candidates=num_candidates, feather=feather,
                margin=margin, on_step=on_step, cancel=cancel, info=info)
