"""SDXL inpainting through the inpaint backend, with a tiny random SDXL inpainting model (two CLIP
text encoders, ``text_time`` added conditioning, a 9-channel UNet) saved with ``save_pretrained``
and loaded by the ModelManager as role ``inpaint`` through ``AutoPipelineForInpainting``, the way
a user's ``diffusers/stable-diffusion-xl-1.0-inpainting-0.1`` is."""

from __future__ import annotations

import pytest

from imagent.errors import Cancelled, ToolArgumentError
from imagent.tools.backends import inpaint as I

from .conftest import (POWERPAINT, StopAt, assert_outside_unchanged, big_image, corner_mask,
                       make_manager, same, small_case)


@pytest.fixture(scope="module")
def xl(tiny_sdxl_inpaint_dir):
    return make_manager(inpaint=tiny_sdxl_inpaint_dir)


def test_the_manager_loads_an_sdxl_inpainting_pipeline(xl):
    pipe = xl.get("inpaint")
    assert type(pipe).__name__ == "StableDiffusionXLInpaintPipeline"
    assert pipe.text_encoder_2 is not None and pipe.tokenizer_2 is not None
    assert pipe.unet.config.in_channels == 9 and pipe.unet.config.addition_embed_type == "text_time"
    assert I.native_size(pipe) == 64


def test_remove_same_seed_same_output_plain_prompts(xl):
    img, m = small_case()
    info: dict = {}
    a = I.inpaint_remove(xl, img, m, seed=3, num_inference_steps=2, info=info)
    b = I.inpaint_remove(xl, img, m, seed=3, num_inference_steps=2)
    c = I.inpaint_remove(xl, img, m, seed=4, num_inference_steps=2)
    assert same(a, b) and not same(a, c)
    assert_outside_unchanged(img, a, m)
    assert xl.loads["inpaint"] == 1
    assert info["sdxl"] is True and info["backend"] == "diffusers-inpaint"
    assert (info["prompt"], info["negative_prompt"]) == (I.CONTEXT_PROMPT, I.OBJECT_NEGATIVE)
    assert info["guidance_scale"] == I.DEFAULT_GUIDANCE and info["model_size"] == [64, 64]


def test_insert_on_a_big_image_keeps_outside_pixels_and_reports_progress(xl):
    img, m = big_image(), corner_mask()
    rec, info = StopAt(), {}
    a = I.inpaint_insert(xl, img, m, "a red car", seed=5, num_inference_steps=2, on_step=rec,
                         info=info)
    b = I.inpaint_insert(xl, img, m, "a red car", seed=5, num_inference_steps=2)
    assert a.size == img.size and same(a, b)
    assert_outside_unchanged(img, a, m)
    assert rec.steps == [(1, 2), (2, 2)]
    assert info["prompt"] == "a red car" and info["task"] == "insert" and info["sdxl"] is True
    x0, y0, x1, y1 = info["crop"]
    assert x0 <= 40 and y0 <= 30 and x1 >= 260 and y1 >= 200 and x1 < 1500


def test_cancel_stops_within_one_step(xl):
    img, m = small_case()
    rec = StopAt(at=1)
    with pytest.raises(Cancelled):
        I.inpaint_insert(xl, img, m, "a cat", seed=0, num_inference_steps=3, on_step=rec,
                         cancel=rec.cancel)
    assert rec.steps == [(1, 3)]


def test_repaint_is_refused_on_sdxl(xl):
    img, m = small_case()
    with pytest.raises(ToolArgumentError, match=r"resample_count=2.*SDXL") as e:
        I.inpaint_remove(xl, img, m, num_inference_steps=2, resample_count=2)
    assert "resample_count=0" in e.value.hint


def test_powerpaint_tokens_are_not_used_on_sdxl(tiny_sdxl_inpaint_dir):
    """An SDXL tokenizer that happens to hold P_ctxt/P_obj/P_shape still gets plain prompts: the
    task tokens are PowerPaint's SD 1.5 embeddings, meaningless to SDXL's two encoders."""
    mgr = make_manager(inpaint=tiny_sdxl_inpaint_dir)  # its own pipeline: the shared one stays clean
    pipe = mgr.get("inpaint")
    pipe.tokenizer.add_tokens(POWERPAINT)
    pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer))
    assert I.powerpaint_tokens(pipe.tokenizer) is not None
    img, m = small_case()
    info: dict = {}
    I.inpaint_remove(mgr, img, m, num_inference_steps=2, info=info)
    assert info["backend"] == "diffusers-inpaint" and info["prompt"] == I.CONTEXT_PROMPT
    assert info["guidance_scale"] == I.DEFAULT_GUIDANCE  # not PowerPaint's removal guidance
