"""Blended Latent Diffusion, InstructPix2Pix and LaMa with tiny random models."""

from __future__ import annotations

import numpy as np
import pytest

from imagent.errors import Cancelled, ModelUnavailableError
from imagent.tools.backends.blended import blended_edit, shrink_schedule
from imagent.tools.backends.ip2p import instruct_edit
from imagent.tools.backends.lama import lama_remove

from .conftest import (StopAt, assert_outside_unchanged, big_image, corner_mask, make_manager, same,
                       small_case)


@pytest.fixture(scope="module")
def mgr(tiny_text2image, tiny_instruct, tiny_lama_file, tiny_inpaint):
    return make_manager(text2image=tiny_text2image, instruct=tiny_instruct, lama=tiny_lama_file,
                        inpaint=tiny_inpaint)


# ------------------------------------------------------------------ Blended Latent Diffusion
def test_blended_same_seed_same_output_progress_and_background_kept(mgr):
    img, m = big_image(), corner_mask()
    rec, info = StopAt(), {}
    a = blended_edit(mgr, img, m, "a cat", seed=2, num_inference_steps=2, on_step=rec, info=info)
    b = blended_edit(mgr, img, m, "a cat", seed=2, num_inference_steps=2)
    assert same(a, b)
    assert rec.steps == [(1, 2), (2, 2)]
    assert_outside_unchanged(img, a, m)
    assert info["backend"] == "blended-latent-diffusion" and mgr.loads["text2image"] == 1


def test_blended_mask_shrinks_progressively():
    sched = shrink_schedule(np.pad(np.ones((8, 8), np.float32), 8), 3, 4)
    areas = [float(s.sum()) for s in sched]
    assert areas[0] > areas[1] > areas[2] == 64.0  # dilated first, the mask itself last


def test_blended_cancel_and_candidates(mgr):
    img, m = small_case()
    rec = StopAt(at=1)
    with pytest.raises(Cancelled):
        blended_edit(mgr, img, m, "a cat", num_inference_steps=3, on_step=rec, cancel=rec.cancel)
    assert rec.steps == [(1, 3)]
    info = {}
    blended_edit(mgr, img, m, "a cat", num_inference_steps=2, num_candidates=2, info=info)
    assert info["candidates"] == 2 and info["chosen"] == int(np.argmax(info["scores"]))


def test_blended_refuses_an_inpainting_unet(mgr):
    img, m = small_case()
    with pytest.raises(ModelUnavailableError, match="4-channel"):
        blended_edit(mgr, img, m, "a cat", num_inference_steps=2, role="inpaint")


# ------------------------------------------------------------------ InstructPix2Pix
def test_ip2p_same_seed_same_output_size_kept_progress(mgr):
    img = big_image(300, 200)
    rec, info = StopAt(), {}
    a = instruct_edit(mgr, img, "make it winter", seed=1, num_inference_steps=2, on_step=rec, info=info)
    b = instruct_edit(mgr, img, "make it winter", seed=1, num_inference_steps=2)
    assert same(a, b) and a.size == img.size
    assert rec.steps == [(1, 2), (2, 2)]
    assert info["model_size"] == [64, 40]


def test_ip2p_with_a_mask_keeps_the_outside(mgr):
    img, m = big_image(), corner_mask()
    out = instruct_edit(mgr, img, "make it red", num_inference_steps=2, mask=m)
    assert_outside_unchanged(img, out, m)


def test_ip2p_cancel_within_one_step(mgr):
    img, _ = small_case()
    rec = StopAt(at=1)
    with pytest.raises(Cancelled):
        instruct_edit(mgr, img, "make it winter", num_inference_steps=3, on_step=rec, cancel=rec.cancel)
    assert rec.steps == [(1, 3)]


# ------------------------------------------------------------------ LaMa
def test_lama_keeps_outside_pixels_and_is_deterministic(mgr):
    img, m = big_image(), corner_mask()
    rec, info = StopAt(), {}
    a = lama_remove(mgr, img, m, on_step=rec, info=info)
    b = lama_remove(mgr, img, m)
    assert same(a, b) and a.size == img.size
    assert_outside_unchanged(img, a, m)
    assert rec.steps == [(0, 1), (1, 1)]
    assert all(v % 8 == 0 for v in info["model_size"])  # padded to a multiple of 8
    x0, y0, x1, y1 = info["crop"]
    assert x1 - x0 < 1500 and y1 - y0 < 1000


def test_lama_cancel_and_missing_file(tmp_path, mgr):
    img, m = small_case()
    rec = StopAt()
    rec.cancel.set()
    with pytest.raises(Cancelled):
        lama_remove(mgr, img, m, cancel=rec.cancel)
    missing = make_manager(lama=tmp_path / "nope" / "big-lama.pt")
    with pytest.raises(ModelUnavailableError) as err:
        lama_remove(missing, img, m)
    assert err.value.exit_code == 3 and "lama" in err.value.message and "big-lama.pt" in err.value.message
