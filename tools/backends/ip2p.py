"""InstructPix2Pix (role ``instruct``): global and style edits from an instruction
("make it look like winter").

The image is resized so its long side is the model's native resolution (sides multiples of 8),
edited with text and image guidance, and resized back to the input size. With a ``mask`` the
result is pasted back through it (a local instruction edit): pixels where the mask is 0 keep
their exact values.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

from imagent.tools.backends import _common as C

ROLE = "instruct"


def instruct_edit(manager: Any, image: Image.Image, instruction: str, *, seed: int = 0,
                  num_inference_steps: int = 20, guidance_scale: float = 7.5,
                  image_guidance_scale: float = 1.5, negative_prompt: str = "",
                  mask: np.ndarray | None = None, feather: int = 4, max_side: int | None = None,
                  on_step: C.OnStep | None = None, cancel: threading.Event | None = None,
                  info: dict | None = None) -> Image.Image:
    """Apply ``instruction`` to ``image``; returns an image of the input size."""
    import torch

    C.check_cancel(cancel)
    if not instruction or not instruction.strip():
        from imagent.errors import ToolArgumentError

        raise ToolArgumentError("the instruction is empty", hint="say what to change, e.g. "
                                "'make it look like winter'")
    m = C.require_mask(mask, image) if mask is not None else None
    pipe = manager.get(ROLE)
    w, h = image.size
    native = max_side or int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
    scale = native / float(max(w, h))
    size = (max(8, int(round(w * scale / 8)) * 8), max(8, int(round(h * scale / 8)) * 8))
    src = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    n = int(num_inference_steps)
    with torch.no_grad():
        out = pipe(prompt=instruction, negative_prompt=negative_prompt or None, image=src,
                   num_inference_steps=n, guidance_scale=float(guidance_scale),
                   image_guidance_scale=float(image_guidance_scale),
                   generator=C.make_generator(seed),
                   callback_on_step_end=C.step_callback(on_step, cancel, n),
                   output_type="pil").images[0]
    out = out.resize((w, h), Image.Resampling.LANCZOS)
    if m is not None:
        out = C.paste_back(image, m, out, (0, 0, w, h), feather=feather)
    if info is not None:
        info.update({"backend": "instruct-pix2pix", "model": manager.model_id(ROLE),
                     "instruction": instruction, "model_size": list(size), "steps": n,
                     "guidance_scale": guidance_scale,
                     "image_guidance_scale": image_guidance_scale, "masked": m is not None})
    return out
