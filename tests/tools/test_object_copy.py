"""Fills that do not copy objects: the avoid mask, the object-copy score, removal and
outpainting next to a distinct object, and no streaks in a large extension (seeded)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from imagent.tools import outpaint as O
from imagent.tools import patchfill as PF
from imagent.tools import remove as R

pytestmark = pytest.mark.skipif(R.patchmatch_module() is None, reason="pypatchmatch not loadable")
RED = (220, 30, 40)


def _lawn(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = np.asarray((70, 130, 60), np.float32) + rng.normal(0, 10, size=(h, w, 3))
    return np.clip(cv2.GaussianBlur(arr, (0, 0), 0.9), 0, 255).astype(np.uint8)


def _disk_scene(w=240, h=160, cx=200, cy=80, r=22):
    img = _lawn(w, h)
    cv2.circle(img, (cx, cy), r, RED, -1)
    cv2.circle(img, (cx, cy), r // 3, (245, 205, 40), -1)  # a heart: the disk has structure
    disk = np.zeros((h, w), np.uint8)
    cv2.circle(disk, (cx, cy), r + 2, 1, -1)
    return img, disk > 0


def _red(pixels: np.ndarray) -> np.ndarray:
    p = pixels.astype(np.int32)
    return (p[..., 0] > 150) & (p[..., 1] < 110) & (p[..., 2] < 110)


def test_object_copy_score_sees_a_pasted_object_and_not_texture():
    img, disk = _disk_scene()
    hole = np.zeros(disk.shape, bool)
    hole[40:120, 30:110] = True
    texture = img.copy()
    texture[hole] = _lawn(240, 160, seed=5)[hole]  # a texture fill: no object
    copied = texture.copy()
    copied[58:102, 48:92] = img[58:102, 178:222]  # the disk pasted into the hole
    assert PF.object_copy_score(copied, hole, salient=disk) > 0.9
    assert PF.object_copy_score(texture, hole, salient=disk) < 0.5
    # without a given salient mask the image's own salient objects are used
    assert PF.object_copy_score(copied, hole) > 0.9


def test_avoid_mask_covers_the_object_and_the_hole_and_leaves_sources():
    img, disk = _disk_scene()
    hole = np.zeros(disk.shape, bool)
    hole[40:120, 30:110] = True
    for removed in (True, False):
        av = PF.avoid_mask(img, hole, removed=removed, vision=False)
        assert av[hole].all()
        core = cv2.erode(disk.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert av[core].mean() > 0.95, removed
        assert (~av).mean() > 0.5  # most of the lawn stays a source


def test_removal_next_to_an_object_does_not_copy_it():
    img, disk = _disk_scene(cx=150)
    hole = np.zeros(disk.shape, bool)
    hole[50:110, 70:120] = True  # 8 px of lawn between the hole and the disk
    img[hole] = (128, 128, 128)
    for seed in (0, 1, 2):
        out, info = R.remove_region(Image.fromarray(img), hole.astype(np.float32), seed=seed,
                                    margin=2.0)
        out = np.asarray(out)
        np.testing.assert_array_equal(out[~hole], img[~hole])
        assert _red(out[hole]).mean() < 0.002, seed
        assert PF.object_copy_score(out, hole, salient=disk) < 0.8, seed


@pytest.mark.parametrize("add", [{"left": 0, "right": 96, "top": 0, "bottom": 0},
                                 {"left": 0, "right": 0, "top": 0, "bottom": 80}])
def test_extension_next_to_an_object_does_not_copy_it(add):
    img, disk = _disk_scene(cx=200, cy=115)
    res, mask, info = O.outpaint_image(Image.fromarray(img), add, seed=0)
    out = np.asarray(res)
    hole = mask > 0
    np.testing.assert_array_equal(out[:160, :240], img)
    salient = np.zeros(hole.shape, bool)
    salient[:160, :240] = disk
    assert _red(out[hole]).mean() < 0.002, _red(out[hole]).mean()
    assert PF.object_copy_score(out, hole, salient=salient) < 0.8
    # the fill is lawn: its colour and texture
    assert np.abs(out[hole].mean(axis=0) - img[~disk].mean(axis=0)).max() < 15
    assert (out[hole].std(axis=0) > 0.7 * img[~disk].std(axis=0)).all()  # not a blur


def test_a_large_extension_has_no_streaks_and_keeps_the_original():
    img = _lawn(200, 150, seed=3)
    res, mask, info = O.outpaint_image(Image.fromarray(img), {"left": 0, "right": 300, "top": 0,
                                                              "bottom": 0}, seed=0)
    out = np.asarray(res).astype(np.float32)
    np.testing.assert_array_equal(out[:, :200], img)
    assert info["synthesized"].get("right", 0) > 0
    fill = out[:, 220:]
    g = cv2.cvtColor(fill.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = np.abs(np.diff(g, axis=1)).mean(), np.abs(np.diff(g, axis=0)).mean()
    assert 0.6 < gx / gy < 1.6, (gx, gy)  # no rows smeared along x (nor columns along y)
    # no long constant runs along a row
    same = np.abs(np.diff(g, axis=1)) < 1
    assert same.mean() < 0.3
    assert np.abs(fill.mean(axis=(0, 1)) - img.mean(axis=(0, 1))).max() < 10
    assert (fill.std(axis=(0, 1)) > 0.7 * img.std(axis=(0, 1))).all()


def test_a_large_result_is_filled_at_a_reduced_scale_with_the_original_exact(monkeypatch):
    monkeypatch.setattr(O, "WORK_MAX_PX", 15_000)
    img = _lawn(240, 160, seed=4)
    res, mask, info = O.outpaint_image(Image.fromarray(img), {"left": 0, "right": 120, "top": 0,
                                                              "bottom": 0}, seed=2)
    out = np.asarray(res)
    np.testing.assert_array_equal(out[:, :240], img)
    assert info["scale"] > 1.5
    fill = out[:, 250:].astype(np.float32)
    assert np.abs(fill.mean(axis=(0, 1)) - img.mean(axis=(0, 1))).max() < 10
    g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32)
    ratio = np.abs(np.diff(g[:, 250:], axis=1)).mean() / np.abs(np.diff(g[:, :230], axis=1)).mean()
    assert ratio > 0.6  # fine texture restored, not a plain upsample
    again = np.asarray(O.outpaint_image(Image.fromarray(img), {"left": 0, "right": 120, "top": 0,
                                                               "bottom": 0}, seed=2)[0])
    np.testing.assert_array_equal(out, again)
