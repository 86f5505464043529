"""Optional CLIP ranking of candidates (role ``clip``): cosine similarity between each
candidate (cropped to the mask's box when a mask is given) and the prompt."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PIL import Image

ROLE = "clip"


def clip_scores(manager: Any, images: Sequence[Image.Image], prompt: str, *,
                mask: np.ndarray | None = None) -> list[float]:
    """One similarity per image (higher = closer to ``prompt``)."""
    import torch

    from imagent.tools import masks as M

    model, processor = manager.get(ROLE)
    crops = list(images)
    if mask is not None:
        box = M.mask_bbox(mask, 0.5)
        if box is not None:
            crops = [im.convert("RGB").crop(box) for im in images]
    inputs = processor(text=[prompt], images=[c.convert("RGB") for c in crops],
                       return_tensors="pt", padding=True, truncation=True)
    param = next(model.parameters())
    inputs = {k: v.to(param.device, param.dtype) if v.is_floating_point() else v.to(param.device)
              for k, v in inputs.items()}
    with torch.no_grad():
        img = model.get_image_features(pixel_values=inputs["pixel_values"])
        txt = model.get_text_features(input_ids=inputs["input_ids"],
                                      attention_mask=inputs.get("attention_mask"))
    img = getattr(img, "pooler_output", img)
    txt = getattr(txt, "pooler_output", txt)
    img = torch.nn.functional.normalize(img.float(), dim=-1)
    txt = torch.nn.functional.normalize(txt.float(), dim=-1)
    return [float(v) for v in (img @ txt.T)[:, 0].cpu()]
