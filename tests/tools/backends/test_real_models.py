"""One test per backend with the real default model id. They need the weights in the local
Hugging Face cache (``imagent models pull ROLE``) and are marked slow; here they skip."""

from __future__ import annotations

import os

import pytest

from imagent.tools import models as MM

from .conftest import DEVICE, big_image, corner_mask


def _manager(role: str, model_id: str | None = None) -> MM.ModelManager:
    mid = model_id or os.environ.get(f"IMAGENT_MODEL_{role.upper()}") or MM.DEFAULT_MODELS[role]
    if not mid:
        pytest.skip(f"no default model for the {role} role: set IMAGENT_MODEL_{role.upper()}")
    mgr = MM.ModelManager({role: mid}, device=DEVICE)
    if not mgr.available(role):
        pytest.skip(f"needs the real {role} weights {mid!r} on this machine "
                    f"(imagent models pull {role}); none can be downloaded here")
    return mgr


pytestmark = pytest.mark.slow


def test_real_inpaint_remove():
    from imagent.tools.backends.inpaint import inpaint_remove

    mgr = _manager("inpaint")
    img, m = big_image(), corner_mask()
    out = inpaint_remove(mgr, img, m, num_inference_steps=10)
    assert out.size == img.size


def test_real_blended():
    from imagent.tools.backends.blended import blended_edit

    mgr = _manager("text2image", os.environ.get("IMAGENT_MODEL_TEXT2IMAGE")
                   or "stable-diffusion-v1-5/stable-diffusion-v1-5")
    out = blended_edit(mgr, big_image(), corner_mask(), "a red balloon", num_inference_steps=10)
    assert out.size == (1500, 1000)


def test_real_instruct_pix2pix():
    from imagent.tools.backends.ip2p import instruct_edit

    mgr = _manager("instruct")
    assert instruct_edit(mgr, big_image(), "make it look like winter",
                         num_inference_steps=10).size == (1500, 1000)


def test_real_lama():
    from imagent.tools.backends.lama import lama_remove

    mgr = _manager("lama")
    assert lama_remove(mgr, big_image(), corner_mask()).size == (1500, 1000)


def test_real_grounding_dino():
    from PIL import Image

    from imagent.tools.backends.grounding_dino import ground

    mgr = _manager("grounding")
    img = Image.new("RGB", (640, 480), "white")
    img.paste((200, 20, 20), (100, 100, 300, 300))
    dets = ground(mgr, img, "red square", box_threshold=0.2)
    assert dets and dets[0].box[0] < 320


def test_real_sam():
    from PIL import Image

    from imagent.tools.backends.sam import segment

    mgr = _manager("segmentation")
    img = Image.new("RGB", (640, 480), "white")
    img.paste((200, 20, 20), (100, 100, 300, 300))
    mask = segment(mgr, img, boxes=[[90, 90, 310, 310]])[0]
    assert mask[200, 200] == 1.0 and mask[10, 10] == 0.0


def test_real_clip_rank():
    from PIL import Image

    from imagent.tools.backends.clip_rank import clip_scores

    mgr = _manager("clip", os.environ.get("IMAGENT_MODEL_CLIP") or "openai/clip-vit-base-patch32")
    red, blue = Image.new("RGB", (224, 224), (220, 20, 20)), Image.new("RGB", (224, 224), (20, 20, 220))
    s = clip_scores(mgr, [red, blue], "a red image")
    assert s[0] > s[1]
