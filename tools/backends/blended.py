"""Blended Latent Diffusion (Avrahami et al. 2023) for plain text-to-image models (role
``text2image``; a 4-channel UNet).

The diffusers text-to-image pipeline runs as usual (DDIM stepping, the pipeline's scheduler
config); its step callback does the blending: after every step the latents outside the mask are
replaced by the original image's latents noised to the next timestep, with the mask shrinking
progressively (dilated by ``shrink_px`` latent pixels at the first step, down to the mask itself
at the last — thin objects survive the coarse latent grid). Background reconstruction: the
decoded result is pasted into the original through the mask at full resolution, so every pixel
outside the mask keeps its value. Several candidates are ranked by CLIP (when configured) or by
the model-free seam/colour figures.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

from imagent.tools import masks as M
from imagent.tools.backends import _common as C

ROLE = "text2image"


def shrink_schedule(mask: np.ndarray, steps: int, shrink_px: int) -> list[np.ndarray]:
    """One mask per step: dilated by ``shrink_px`` at step 0, linearly down to 0 at the end."""
    out = []
    binary = (mask >= 0.5).astype(np.float32)
    for i in range(steps):
        r = int(round(shrink_px * (1.0 - i / max(1, steps - 1))))
        out.append(np.maximum(M.dilate(binary, r), mask) if r else mask.astype(np.float32))
    return out


def blended_edit(manager: Any, image: Image.Image, mask: np.ndarray, prompt: str, *,
                 seed: int = 0, num_inference_steps: int = 50, guidance_scale: float = 7.5,
                 negative_prompt: str = "", shrink_px: int = 2,
                 num_candidates: int = 1, feather: int = 4, margin: float = 0.5,
                 role: str = ROLE, on_step: C.OnStep | None = None,
                 cancel: threading.Event | None = None, info: dict | None = None) -> Image.Image:
    """Paint ``prompt`` into the mask of ``image`` with a text-to-image model (starts from the
    original's latents noised to the first timestep, i.e. from noise)."""
    import torch
    from diffusers import DDIMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    from imagent.tools.backends.repaint import encode_image, latent_mask

    C.check_cancel(cancel)
    m = C.require_mask(mask, image)
    base = manager.get(role)
    if base.unet.config.in_channels != 4:
        from imagent.errors import ModelUnavailableError

        raise ModelUnavailableError(
            f"Blended Latent Diffusion needs a text-to-image model (4-channel UNet); "
            f"{manager.model_id(role)!r} has {base.unet.config.in_channels} input channels",
            hint="use the inpaint backend for inpainting models")
    native = int(base.unet.config.sample_size) * int(base.vae_scale_factor)
    crop = C.crop_for_model(image, m, native=native, margin=margin)
    w, h = crop.size
    # the same weights, a DDIM scheduler of our own (the cached pipeline is not changed)
    import inspect

    kw: dict[str, Any] = {**base.components,
                          "scheduler": DDIMScheduler.from_config(base.scheduler.config)}
    if "requires_safety_checker" in inspect.signature(type(base)).parameters:
        kw["requires_safety_checker"] = base.config.get("requires_safety_checker", False)
    pipe = type(base)(**kw)
    pipe.set_progress_bar_config(disable=True)
    device = pipe._execution_device
    n = int(num_inference_steps)
    n_run = n
    total = n_run * max(1, int(num_candidates))
    candidates: list[Image.Image] = []
    with torch.no_grad():
        x0, _ = encode_image(pipe, crop.image)
        dtype = pipe.unet.dtype
        x0 = x0.to(dtype)
        masks = [latent_mask(pipe, mk, x0) for mk in
                 shrink_schedule(crop.mask, n_run, shrink_px)]
        for k in range(max(1, int(num_candidates))):
            gen = C.make_generator(seed + k)
            pipe.scheduler.set_timesteps(n, device=device)
            times = pipe.scheduler.timesteps
            noise = randn_tensor(x0.shape, generator=gen, device=device, dtype=dtype)
            start = pipe.scheduler.add_noise(x0, noise, times[:1])
            offset = k * n_run

            def blend(p: Any, i: int, t: Any, kw: dict, times=times, gen=gen) -> dict:
                lat = kw["latents"]
                if i + 1 < len(times):
                    known = p.scheduler.add_noise(
                        x0, randn_tensor(x0.shape, generator=gen, device=device, dtype=dtype),
                        times[i + 1:i + 2])
                else:
                    known = x0
                mk = masks[min(i, len(masks) - 1)]
                kw["latents"] = (known * (1 - mk) + lat * mk).to(lat.dtype)
                return kw

            def report(step: int, _t: int, offset: int = offset) -> None:
                if on_step is not None:
                    on_step(offset + step, total)

            out = pipe(prompt=prompt, negative_prompt=negative_prompt or None, height=h, width=w,
                       guidance_scale=float(guidance_scale), num_inference_steps=n,
                       generator=gen, latents=start,
                       callback_on_step_end=C.step_callback(report, cancel, n_run, blend),
                       callback_on_step_end_tensor_inputs=["latents"], output_type="pil").images[0]
            candidates.append(C.paste_back(image, m, out, crop.box, feather=feather))
    from imagent.tools.backends.inpaint import rank

    best, scores = rank(manager, image, m, candidates, prompt)
    if info is not None:
        info.update({"backend": "blended-latent-diffusion", "model": manager.model_id(role),
                     "prompt": prompt, "crop": list(crop.box), "model_size": [w, h],
                     "steps": n_run, "candidates": len(candidates), "scores": scores,
                     "chosen": best, "shrink_px": shrink_px})
    return candidates[best]
