from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagent.errors import MaskError, ModelUnavailableError, ToolArgumentError
from imagent.tools import masks as M
from imagent.tools import remove as R
from imagent.tools.registry import default_registry
from imagent.tools.types import ToolCall, ToolState

W, H = 96, 64
BG = np.array([90, 140, 60], np.float32)
RED = np.array([230, 20, 20], np.float32)
OBJ = (38, 22, 58, 42)


def _scene(w=W, h=H, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = BG + rng.normal(0, 10, (h, w, 3))
    arr[::4] += 12  # a stripe texture
    x0, y0, x1, y1 = OBJ
    arr[y0:y1, x0:x1] = RED
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _mask(w=W, h=H, box=OBJ, grow=2):
    return M.dilate(M.box_mask((w, h), box), grow)


def _run(state, **args):
    return default_registry().run(ToolCall(name="remove", args=args), state)


def test_removes_the_object_and_keeps_the_rest_bit_identical():
    img, mask = _scene(), _mask()
    res = _run(ToolState(image=img, mask=mask))
    out, src = np.asarray(res.image), np.asarray(img)
    outside = mask == 0
    np.testing.assert_array_equal(out[outside], src[outside])
    hole = out[mask >= 0.5].astype(np.float32)
    mean = hole.mean(axis=0)
    assert np.abs(mean - BG).max() < 20, mean
    assert np.linalg.norm(mean - RED) > 150
    assert (np.abs(hole - RED).sum(axis=1) < 60).mean() < 0.01  # no red left
    assert res.backend == "embedded"
    m = res.metrics
    assert m["backend"] == "embedded" and m["algorithm"] == "patchmatch"
    assert res.extra["call"]["args"]["backend"] == "embedded"
    assert res.extra["call"]["args"]["algorithm"] == "patchmatch"  # what ran: replay is exact
    assert m["hole_fraction"] == pytest.approx(
        (mask > 0).mean(), abs=1e-3)
    assert m["crop_size"][0] <= W and "elapsed_ms" in m


def test_same_seed_same_output_and_seed_matters():
    img, mask = _scene(), _mask()
    a = np.asarray(R.remove_region(img, mask, seed=7)[0])
    b = np.asarray(R.remove_region(img, mask, seed=7)[0])
    np.testing.assert_array_equal(a, b)
    c = np.asarray(R.remove_region(img, mask, seed=8)[0])
    assert a.shape == c.shape  # (different seeds may or may not differ on tiny holes)


def test_cost_follows_the_region():
    img = _scene(600, 400)
    mask = _mask(600, 400, (300, 200, 310, 210))
    _, info = R.remove_region(img, mask, margin=0.75)
    cw, ch = info["crop_size"]
    assert cw < 150 and ch < 150  # a crop around the mask, not the 600x400 image


def test_large_patches_with_little_margin_do_not_leave_the_hole_black():
    img, mask = _scene(160, 120), _mask(160, 120, (40, 30, 110, 90))
    out, info = R.remove_region(img, mask, patch_size=15, margin=1)
    hole = np.asarray(out)[mask > 0]
    assert (hole == 0).all(axis=1).mean() < 0.01
    assert np.abs(hole.astype(np.float32).mean(axis=0) - BG).max() < 25


def test_soft_mask_edges_only_change_inside_the_mask():
    img = _scene()
    mask = M.feather(_mask(), 3)  # soft edge outside the box too
    out = np.asarray(R.remove_region(img, mask)[0])
    np.testing.assert_array_equal(out[mask == 0], np.asarray(img)[mask == 0])


def test_telea_algorithm_and_fallback(monkeypatch):
    img, mask = _scene(), _mask()
    res = _run(ToolState(image=img, mask=mask), backend="embedded", algorithm="telea")
    assert res.backend == "embedded" and res.metrics["algorithm"] == "telea"
    assert "Telea" in res.message and "fallback" not in res.message
    np.testing.assert_array_equal(np.asarray(res.image)[mask == 0], np.asarray(img)[mask == 0])
    # naming an embedded algorithm with backend 'auto' chooses the embedded backend
    assert _run(ToolState(image=img, mask=mask), algorithm="telea").extra["call"]["args"][
        "backend"] == "embedded"
    monkeypatch.setattr(R, "patchmatch_module", lambda: None)
    res = _run(ToolState(image=img, mask=mask))
    assert res.backend == "embedded" and "Telea fallback" in res.message
    assert res.extra["call"]["args"]["algorithm"] == "telea"  # the fallback is what is stored
    with pytest.raises(ModelUnavailableError, match="PatchMatch"):
        _run(ToolState(image=img, mask=mask), algorithm="patchmatch")


def test_an_embedded_algorithm_with_a_model_backend_is_refused():
    img, mask = _scene(), _mask()
    with pytest.raises(ToolArgumentError, match="algorithm"):
        _run(ToolState(image=img, mask=mask), backend="diffusion", algorithm="telea")


@pytest.mark.parametrize("old", ["patchmatch", "telea"])
def test_old_stored_calls_replay_the_same_algorithm(old):
    # a session written before the one backend vocabulary holds backend='patchmatch'/'telea'
    img, mask = _scene(), _mask()
    then = _run(ToolState(image=img, mask=mask), backend=old, seed=3)
    now = _run(ToolState(image=img, mask=mask), backend="embedded", algorithm=old, seed=3)
    assert then.extra["call"] == now.extra["call"]
    assert then.extra["call"]["args"]["backend"] == "embedded"
    assert then.metrics["algorithm"] == old
    np.testing.assert_array_equal(np.asarray(then.image), np.asarray(now.image))


def test_bad_masks_are_clear_errors():
    img = _scene()
    with pytest.raises(MaskError) as ei:
        _run(ToolState(image=img))
    assert "build_mask" in ei.value.hint
    with pytest.raises(MaskError, match="selects nothing"):
        _run(ToolState(image=img, mask=np.zeros((H, W), np.float32)))
    with pytest.raises(MaskError) as ei:
        _run(ToolState(image=img, mask=np.ones((10, 10), np.float32)))
    assert "10x10" in str(ei.value) and "96x64" in str(ei.value)
    with pytest.raises(MaskError) as ei:
        _run(ToolState(image=img, mask=np.ones((H, W), np.float32)))
    assert ei.value.hint
    almost = np.full((H, W), 0.3, np.float32)  # every pixel touched: nothing to copy from
    with pytest.raises(MaskError, match="nothing to copy"):
        _run(ToolState(image=img, mask=almost))


def test_tiny_images():
    one = Image.new("RGB", (1, 1), (1, 2, 3))
    with pytest.raises(MaskError):
        _run(ToolState(image=one, mask=np.ones((1, 1), np.float32)))
    two = Image.fromarray(np.array([[[10, 20, 30], [200, 0, 0]]], np.uint8))
    res = _run(ToolState(image=two, mask=np.array([[0, 1]], np.float32)))
    out = np.asarray(res.image)
    assert out.shape == (1, 2, 3) and tuple(out[0, 0]) == (10, 20, 30)


def test_hole_at_the_image_border():
    img = _scene()
    mask = M.box_mask((W, H), (0, 0, 20, 15))
    out = np.asarray(R.remove_region(img, mask)[0])
    np.testing.assert_array_equal(out[mask == 0], np.asarray(img)[mask == 0])
