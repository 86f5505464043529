"""Removal quality and the large-image path, on synthetic images made here (seeded)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PIL import Image

from imagent.errors import Cancelled, MaskError
from imagent.tools import masks as M
from imagent.tools import patchfill as PF
from imagent.tools import remove as R
from imagent.tools.registry import default_registry
from imagent.tools.types import ToolCall, ToolState


def _grad(rgb: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


def _texture(w=160, h=120, seed=0) -> np.ndarray:
    """Diagonal stripes plus noise: a texture a blur cannot reproduce."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = 40 * np.sin((xx + yy) * 2 * np.pi / 9.0)
    base = np.array([110, 130, 90], np.float32)
    arr = base + stripes[..., None] + rng.normal(0, 12, (h, w, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def test_textured_hole_is_filled_with_texture_not_blur_and_no_object_colour():
    true = _texture()
    hole = M.box_mask((160, 120), (55, 35, 105, 85)) > 0
    given = true.copy()
    given[hole] = (230, 20, 200)  # the object
    out, info = R.remove_region(Image.fromarray(given), hole.astype(np.float32), seed=1)
    out = np.asarray(out)
    np.testing.assert_array_equal(out[~hole], given[~hole])
    telea = cv2.inpaint(given, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    g_true = _grad(true)[hole].mean()
    ours, theirs = _grad(out)[hole].mean() / g_true, _grad(telea)[hole].mean() / g_true
    assert ours > 0.7 and ours > theirs + 0.2, (ours, theirs)
    obj = np.abs(out[hole].astype(np.int32) - (230, 20, 200)).sum(axis=1) < 90
    assert obj.mean() < 0.005
    assert info["algorithm"] == "patchmatch" and info["scale"] == 1.0


def test_same_seed_same_output_on_the_hybrid_and_coarse_paths():
    true = _texture(220, 160, seed=3)
    mask = M.box_mask((220, 160), (60, 40, 160, 120))
    a = np.asarray(R.remove_region(Image.fromarray(true), mask, seed=5)[0])
    b = np.asarray(R.remove_region(Image.fromarray(true), mask, seed=5)[0])
    np.testing.assert_array_equal(a, b)
    hole = mask > 0
    c1, i1 = PF.coarse_to_fine_fill(true, hole, R.patchmatch_module(), seed=2, coarse_hole_px=2000)
    c2, _ = PF.coarse_to_fine_fill(true, hole, R.patchmatch_module(), seed=2, coarse_hole_px=2000)
    np.testing.assert_array_equal(c1, c2)
    assert i1["scale"] > 1.5
    np.testing.assert_array_equal(c1[~hole], true[~hole])


def test_coarse_to_fine_keeps_texture_and_the_outside():
    true = _texture(240, 180, seed=4)
    hole = M.box_mask((240, 180), (70, 50, 170, 130)) > 0
    out, info = PF.coarse_to_fine_fill(true, hole, R.patchmatch_module(), seed=0,
                                       coarse_hole_px=2500)
    np.testing.assert_array_equal(out[~hole], true[~hole])
    ratio = _grad(out)[hole].mean() / _grad(true)[hole].mean()
    assert ratio > 0.5, ratio  # detail restored from full-res pixels, not a plain upsample
    assert abs(out[hole].astype(np.float32).mean() - true[hole].astype(np.float32).mean()) < 12


def test_large_image_small_hole_touches_only_the_crop():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
    mask = M.box_mask((3000, 2000), (1500, 1000, 1530, 1025))
    img = Image.fromarray(big)
    t0 = time.perf_counter()
    out, info = R.remove_region(img, mask, seed=0)
    elapsed = time.perf_counter() - t0
    cw, ch = info["crop_size"]
    assert cw * ch < 200 * 200, info  # the work happened on a crop around the hole
    arr = np.asarray(out)
    outside = mask == 0
    np.testing.assert_array_equal(arr[outside], big[outside])
    assert elapsed < 30  # sanity only: speed is measured by bench/tools.py


def test_cancel_between_levels():
    calls = []

    def check():
        calls.append(1)
        raise Cancelled("cancelled")

    true = _texture(200, 150)
    hole = M.box_mask((200, 150), (50, 40, 150, 110)) > 0
    with pytest.raises(Cancelled):
        PF.coarse_to_fine_fill(true, hole, R.patchmatch_module(), coarse_hole_px=2000,
                               check_cancelled=check)
    assert calls == [1]


@pytest.mark.parametrize("case", ["wrong_size", "empty", "full", "one_pixel"])
def test_bad_inputs_are_clear_errors_and_change_nothing(case):
    img = Image.fromarray(_texture(64, 48))
    before = np.asarray(img).copy()
    mask = {"wrong_size": np.ones((10, 12), np.float32), "empty": np.zeros((48, 64), np.float32),
            "full": np.ones((48, 64), np.float32), "one_pixel": np.ones((1, 1), np.float32)}[case]
    if case == "one_pixel":
        img = Image.new("RGB", (1, 1), (5, 6, 7))
        before = np.asarray(img).copy()
    with pytest.raises(MaskError) as ei:
        default_registry().run(ToolCall(name="remove", args={}), ToolState(image=img, mask=mask))
    assert ei.value.hint and str(ei.value)
    np.testing.assert_array_equal(np.asarray(img), before)
    if case == "wrong_size":
        assert "12x10" in str(ei.value) and "64x48" in str(ei.value)


def test_texture_gain_matches_faint_rings_and_limits_the_boost_in_busy_ones():
    # faint ring texture: the full ratio (PatchMatch's voting lost a third of the energy)
    assert PF.texture_gain(3.0, 2.0) == pytest.approx(1.5)
    # busy ring: the boost above 1 shrinks with the ring's amplitude (wrong-phase texture
    # costs error in proportion to it), but never below 1 and never above the cap
    busy = PF.texture_gain(20.0, 10.0)
    assert 1.0 < busy < 2.0
    assert busy == pytest.approx(1.0 + PF.TEXTURE_BOOST_LEVEL / 20.0)
    assert PF.texture_gain(2.0, 4.0) == 1.0  # the fill is already busier: no attenuation
    assert PF.texture_gain(4.0, 0.01) == pytest.approx(PF.MAX_TEXTURE_GAIN)
