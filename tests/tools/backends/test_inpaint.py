"""Diffusion inpainting with tiny random models: plain SD inpainting and PowerPaint prompts."""

from __future__ import annotations

import numpy as np
import pytest

from imagent.errors import Cancelled, MaskError
from imagent.tools.backends import inpaint as I
from imagent.tools.backends.repaint import total_steps

from .conftest import (StopAt, assert_outside_unchanged, big_image, corner_mask, make_manager, same,
                       small_case)


@pytest.fixture(scope="module")
def plain(tiny_inpaint, tiny_clip_dir):
    return make_manager(inpaint=tiny_inpaint, clip=tiny_clip_dir)


@pytest.fixture(scope="module")
def pp(tiny_powerpaint):
    return make_manager(inpaint=tiny_powerpaint)


def test_same_seed_same_output_and_one_load(plain):
    img, m = small_case()
    a = I.inpaint_remove(plain, img, m, seed=3, num_inference_steps=2)
    b = I.inpaint_remove(plain, img, m, seed=3, num_inference_steps=2)
    c = I.inpaint_remove(plain, img, m, seed=4, num_inference_steps=2)
    assert same(a, b) and not same(a, c)
    assert plain.loads["inpaint"] == 1  # the second and third edits reuse the loaded pipeline


def test_big_image_keeps_every_pixel_outside_the_mask_and_reports_progress(plain):
    img, m = big_image(), corner_mask()
    rec, info = StopAt(), {}
    out = I.inpaint_remove(plain, img, m, seed=0, num_inference_steps=2, on_step=rec, info=info)
    assert out.size == img.size
    assert_outside_unchanged(img, out, m)
    assert rec.steps == [(1, 2), (2, 2)]
    x0, y0, x1, y1 = info["crop"]
    assert x0 <= 40 and y0 <= 30 and x1 >= 260 and y1 >= 200 and x1 < 1500  # a crop, not the photo
    assert info["model_size"] == [64, 64]  # the tiny model's native size


def test_cancel_stops_within_one_step(plain):
    img, m = small_case()
    rec = StopAt(at=1)
    with pytest.raises(Cancelled):
        I.inpaint_insert(plain, img, m, "a cat", seed=0, num_inference_steps=4, on_step=rec,
                         cancel=rec.cancel)
    assert rec.steps == [(1, 4)]
    rec2 = StopAt()
    rec2.cancel.set()
    with pytest.raises(Cancelled):
        I.inpaint_remove(plain, img, m, num_inference_steps=2, on_step=rec2, cancel=rec2.cancel)
    assert rec2.steps == []


def test_plain_model_removal_uses_context_fill_and_negative_object_prompts(plain):
    img, m = small_case()
    info = {}
    I.inpaint_remove(plain, img, m, num_inference_steps=2, info=info)
    assert info["backend"] == "diffusers-inpaint"
    assert info["prompt"] == I.CONTEXT_PROMPT and info["negative_prompt"] == I.OBJECT_NEGATIVE
    assert info["guidance_scale"] == I.DEFAULT_GUIDANCE


def test_powerpaint_tokens_are_found_and_task_prompts_used(pp):
    pipe = pp.get("inpaint")
    tokens = I.powerpaint_tokens(pipe.tokenizer)
    assert tokens == {"P_ctxt": "P_ctxt", "P_obj": "P_obj", "P_shape": "P_shape"}
    assert pipe.text_encoder.get_input_embeddings().num_embeddings == len(pipe.tokenizer)
    img, m = small_case()
    info = {}
    I.inpaint_remove(pp, img, m, num_inference_steps=2, info=info)
    assert (info["backend"], info["prompt"], info["negative_prompt"]) == ("powerpaint", "P_ctxt", "P_obj")
    assert info["guidance_scale"] == I.POWERPAINT_REMOVE_GUIDANCE
    I.inpaint_insert(pp, img, m, "a cat", num_inference_steps=2, info=info)
    assert info["prompt"] == "a cat P_obj"
    assert I.task_prompts("outpaint", "", "", tokens) == ("P_ctxt", "P_ctxt", "P_obj", "P_obj")


def test_multi_vector_powerpaint_tokens():
    class Tok:
        def get_vocab(self):
            return {f"{t}_{i}": i for t in I.POWERPAINT_TOKENS for i in range(3)}

    assert I.powerpaint_tokens(Tok())["P_obj"] == "P_obj_0 P_obj_1 P_obj_2"
    assert I.task_prompts("shape", "a vase", "", {"P_ctxt": "C", "P_obj": "O", "P_shape": "S"}) == \
        ("a vase S", "a vase C", "", "")


def test_shape_guided_fitting_degree_mixes_embeddings(pp):
    img, m = small_case()
    a = I.inpaint_shape(pp, img, m, "a cat", fitting_degree=1.0, seed=0, num_inference_steps=2)
    b = I.inpaint_shape(pp, img, m, "a cat", fitting_degree=0.0, seed=0, num_inference_steps=2)
    assert not same(a, b)  # P_shape vs P_ctxt embeddings


def test_repaint_resampling(plain):
    img, m = small_case()
    rec, info = StopAt(), {}
    a = I.inpaint_remove(plain, img, m, seed=1, num_inference_steps=2, resample_count=1,
                         jump_length=1, on_step=rec, info=info)
    b = I.inpaint_remove(plain, img, m, seed=1, num_inference_steps=2, resample_count=1, jump_length=1)
    n = total_steps(2, 1, 1)
    assert n == 3 and total_steps(10, 5, 2) == 20  # blocks: 5 steps x 3 passes, last block once
    assert rec.steps == [(i, n) for i in range(1, n + 1)]
    assert same(a, b) and info["backend"] == "repaint"
    assert_outside_unchanged(img, a, m)


def test_candidates_ranked_by_clip_when_configured(plain):
    img, m = small_case()
    info = {}
    rec = StopAt()
    I.inpaint_insert(plain, img, m, "a cat", num_inference_steps=2, num_candidates=2, on_step=rec,
                     info=info)
    assert info["candidates"] == 2 and len(info["scores"]) == 2 and plain.loads["clip"] == 1
    assert rec.steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert info["chosen"] == int(np.argmax(info["scores"]))


def test_missing_mask_is_a_mask_error(plain):
    img, _ = small_case()
    with pytest.raises(MaskError):
        I.inpaint_remove(plain, img, np.zeros((96, 128), np.float32), num_inference_steps=2)
