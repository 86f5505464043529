"""The original GroundingDINO checkpoint through ``groundingdino-py`` (role ``gdino_original``;
extra ``imagent[groundingdino]``, which needs torchvision).

The role's value is ``CHECKPOINT.pth`` or ``CONFIG.py::CHECKPOINT.pth`` (default config: the
package's ``GroundingDINO_SwinT_OGC.py``). The checkpoint is read with
``torch.load(weights_only=True)`` (tensors only, no arbitrary unpickling).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROLE = "gdino_original"


def split_spec(spec: str) -> tuple[str | None, str]:
    if "::" in spec:
        cfg, ckpt = spec.split("::", 1)
        return cfg, ckpt
    return None, spec


def load(manager: Any, role: str, path: Path) -> Any:
    import torch
    from groundingdino.models import build_model  # needs torchvision
    from groundingdino.util.slconfig import SLConfig
    from groundingdino.util.utils import clean_state_dict

    cfg_path, _ = split_spec(manager.model_id(role))
    if cfg_path is None:
        import groundingdino

        cfg_path = str(Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py")
    args = SLConfig.fromfile(cfg_path)
    args.device = str(manager.device)
    model = build_model(args)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    model.load_state_dict(clean_state_dict(state.get("model", state)), strict=False)
    return model.to(manager.device).eval()


def ground(manager: Any, image: Image.Image, text: str, *, box_threshold: float = 0.35,
           text_threshold: float = 0.25, nms_iou: float = 0.5, info: dict | None = None) -> list:
    """Same contract as ``grounding_dino.ground`` with the original model."""
    from groundingdino.util.inference import predict
    import groundingdino.datasets.transforms as T

    from imagent.errors import GroundingError
    from imagent.tools.backends.grounding_dino import _position_words, clean_label, nms
    from imagent.tools.types import Detection

    obj = " ".join(str(text).split()).strip(" .,")
    model = manager.get(ROLE)
    rgb = image.convert("RGB")
    w, h = rgb.size
    tf = T.Compose([T.RandomResize([800], max_size=1333), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    tensor, _ = tf(rgb, None)
    boxes, logits, phrases = predict(model, tensor, obj + ".", box_threshold, text_threshold,
                                     device=str(manager.device))
    b = boxes.cpu().numpy().reshape(-1, 4) * np.array([w, h, w, h], np.float32)
    xyxy = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                     b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], axis=1)
    scores = logits.cpu().numpy().reshape(-1)
    dets = []
    for i in nms(xyxy, scores, nms_iou) if len(scores) else []:
        x0, y0, x1, y1 = xyxy[i]
        box = (max(0, int(x0)), max(0, int(y0)), min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1))))
        if box[2] > box[0] and box[3] > box[1]:
            dets.append(Detection(box=box, score=float(scores[i]),
                                  label=clean_label(phrases[i]) or obj,
                                  position=_position_words(box, (w, h))))
    if not dets:
        raise GroundingError(f"found no {obj!r} in the image", hint="rephrase or lower the thresholds")
    if info is not None:
        info.update({"backend": "groundingdino-original", "model": manager.model_id(ROLE)})
    return sorted(dets, key=lambda d: -d.score)
