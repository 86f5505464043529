"""LaMa removal (role ``lama``) from a TorchScript checkpoint (the big-lama ``.pt`` file that
IOPaint distributes; call signature ``model(image, mask) -> image``: image 1x3xHxW float in
[0, 1], mask 1x1xHxW with 1 = hole, result 1x3xHxW in [0, 1]).

A crop around the mask (``margin``) is padded to a multiple of 8 (reflect), filled, cropped
back and pasted through the mask: pixels where the mask is 0 keep their exact values. LaMa is
deterministic (no seed) and runs in fp32.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

from imagent.tools import masks as M
from imagent.tools.backends import _common as C

ROLE = "lama"


def lama_remove(manager: Any, image: Image.Image, mask: np.ndarray, *, margin: float = 0.5,
                feather: int = 2, max_side: int = 2048, on_step: C.OnStep | None = None,
                cancel: threading.Event | None = None, info: dict | None = None) -> Image.Image:
    """Remove what the mask covers with LaMa; returns the full-size image."""
    import torch
    import torch.nn.functional as F

    C.check_cancel(cancel)
    m = C.require_mask(mask, image)
    model = manager.get(ROLE)
    w, h = image.size
    x0, y0, x1, y1 = M.crop_box_around(m, (w, h), margin, min_margin=16)
    crop = image.convert("RGB").crop((x0, y0, x1, y1))
    cm = (m[y0:y1, x0:x1] > 0).astype(np.float32)
    cw, ch = crop.size
    scale = min(1.0, max_side / float(max(cw, ch)))
    if scale < 1.0:
        size = (max(8, int(cw * scale)), max(8, int(ch * scale)))
        crop_in = crop.resize(size, Image.Resampling.LANCZOS)
        cm_in = np.asarray(Image.fromarray((cm * 255).astype(np.uint8)).resize(
            size, Image.Resampling.NEAREST), np.float32) / 255.0
    else:
        crop_in, cm_in = crop, cm
    device = manager.device
    img_t = torch.from_numpy(np.asarray(crop_in, np.float32) / 255.0).permute(2, 0, 1)[None]
    mask_t = torch.from_numpy((cm_in > 0.5).astype(np.float32))[None, None]
    hh, ww = img_t.shape[-2:]
    ph, pw = (-hh) % 8, (-ww) % 8
    mode = "reflect" if ph < hh and pw < ww else "replicate"
    img_t = F.pad(img_t, (0, pw, 0, ph), mode=mode).to(device)
    mask_t = F.pad(mask_t, (0, pw, 0, ph), mode="constant", value=0.0).to(device)
    if on_step is not None:
        on_step(0, 1)
    with torch.no_grad():
        out = model(img_t, mask_t)
    C.check_cancel(cancel)
    if on_step is not None:
        on_step(1, 1)
    arr = out[0, :, :hh, :ww].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    filled = Image.fromarray(np.round(arr * 255).astype(np.uint8))
    result = C.paste_back(image, m, filled, (x0, y0, x1, y1), feather=feather)
    if info is not None:
        info.update({"backend": "lama", "model": manager.model_id(ROLE),
                     "crop": [x0, y0, x1, y1], "model_size": [ww + pw, hh + ph]})
    return result
