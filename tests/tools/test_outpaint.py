from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagent.errors import ModelUnavailableError, ToolArgumentError
from imagent.tools import outpaint as O
from imagent.tools.registry import default_registry
from imagent.tools.types import ToolCall, ToolState

W, H = 96, 64


def _img(w=W, h=H, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = np.array([70, 120, 170], np.float32) + rng.normal(0, 12, (h, w, 3))
    arr[:, ::6] += 20  # vertical stripes
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _run(state, **args):
    return default_registry().run(ToolCall(name="outpaint", args=args), state)


def test_extend_right_by_25_percent_keeps_original_bit_identical():
    img = _img()
    res = _run(ToolState(image=img), percent=25, sides=["right"])
    out = np.asarray(res.image)
    assert res.image.size == (W + 24, H)
    np.testing.assert_array_equal(out[:, :W], np.asarray(img))
    assert res.mask.shape == (H, W + 24)
    assert res.mask[:, :W].max() == 0 and res.mask[:, W:].min() == 1
    new = out[:, W:].astype(np.float32)
    assert np.abs(new.mean(axis=(0, 1)) - np.asarray(img).mean(axis=(0, 1))).max() < 15
    assert new.std() > 5  # textured, not a flat colour
    assert res.metrics["added"] == {"left": 0, "right": 24, "top": 0, "bottom": 0}
    assert res.backend == "embedded" and res.metrics["algorithm"] == "patchmatch"
    assert res.extra["call"]["args"]["backend"] == "embedded"
    assert res.extra["call"]["args"]["algorithm"] == "patchmatch"


def test_all_sides_offset_and_determinism():
    img = _img()
    a, mask, info = O.outpaint_image(img, {"left": 10, "right": 5, "top": 7, "bottom": 3}, seed=3)
    arr = np.asarray(a)
    assert a.size == (W + 15, H + 10)
    np.testing.assert_array_equal(arr[7:7 + H, 10:10 + W], np.asarray(img))
    assert mask.sum() == (W + 15) * (H + 10) - W * H
    b = np.asarray(O.outpaint_image(img, {"left": 10, "right": 5, "top": 7, "bottom": 3},
                                    seed=3)[0])
    np.testing.assert_array_equal(arr, b)


def test_aspect():
    add = O.plan_extension((W, H), aspect="16:9")
    assert add["left"] + add["right"] == round(H * 16 / 9) - W and add["top"] == 0
    add = O.plan_extension((W, H), aspect="1:1", sides=["bottom"])
    assert add == {"left": 0, "right": 0, "top": 0, "bottom": W - H}
    with pytest.raises(ToolArgumentError, match="already"):
        O.plan_extension((W, H), aspect="3:2")
    with pytest.raises(ToolArgumentError, match="'wide'"):
        O.plan_extension((W, H), aspect="wide")
    with pytest.raises(ToolArgumentError, match="sides"):
        O.plan_extension((W, H), aspect="16:9", sides=["top"])


def test_huge_and_empty_requests_are_clear_errors():
    st = ToolState(image=_img())
    with pytest.raises(ToolArgumentError) as ei:
        _run(st, right=100_000)
    assert "100000" in str(ei.value) and "right" in str(ei.value)
    with pytest.raises(ToolArgumentError) as ei:
        O.plan_extension((W, H), right=100_000)
    assert "100000" in str(ei.value) and "384" in str(ei.value)
    with pytest.raises(ToolArgumentError) as ei:
        O.plan_extension((W, H), right=300, max_pixels=10_000)
    assert "max_pixels=10,000" in str(ei.value)
    with pytest.raises(ToolArgumentError, match="nothing to extend"):
        _run(st)
    with pytest.raises(ToolArgumentError, match="needs sides"):
        _run(st, percent=10)
    with pytest.raises(ToolArgumentError, match="needs percent"):
        _run(st, sides=["left"])
    with pytest.raises(ToolArgumentError, match="both"):
        _run(st, right=10, percent=10, sides=["right"])


def test_one_pixel_image():
    one = Image.new("RGB", (1, 1), (10, 200, 30))
    res = _run(ToolState(image=one), left=5, top=2)
    assert res.image.size == (6, 3)
    assert np.asarray(res.image)[2, 5].tolist() == [10, 200, 30]


def test_reflect_fallback_without_patchmatch(monkeypatch):
    monkeypatch.setattr(O, "patchmatch_module", lambda: None)
    img = _img()
    res = _run(ToolState(image=img), right=10)
    assert res.backend == "embedded" and res.metrics["algorithm"] == "reflect"
    assert "mirror" in res.message and "unavailable" in res.message
    assert res.extra["call"]["args"]["algorithm"] == "reflect"
    with pytest.raises(ModelUnavailableError, match="PatchMatch"):
        _run(ToolState(image=img), right=10, algorithm="patchmatch")
    out = np.asarray(res.image)
    np.testing.assert_array_equal(out[:, :W], np.asarray(img))
    np.testing.assert_array_equal(out[:, W], np.asarray(img)[:, W - 1])


def test_large_extension_is_filled_in_tiles_and_can_be_cancelled():
    from imagent.errors import Cancelled

    img = _img(120, 64)
    out, mask, info = O.outpaint_image(img, {"left": 0, "right": 400, "top": 0, "bottom": 30},
                                       seed=1)
    arr = np.asarray(out)
    assert out.size == (520, 94)
    # 333 % to the right: PatchMatch fills the strip next to the image, the rest is
    # synthesized (mirrored structure + texture), never copies of copies
    assert info["tiles"] >= 2 and info["synthesized"]["right"] > 300
    np.testing.assert_array_equal(arr[:64, :120], np.asarray(img))
    far = arr[:64, 400:].astype(np.float32)  # the last tile: still the image's texture
    assert np.abs(far.mean(axis=(0, 1)) - np.asarray(img).mean(axis=(0, 1))).max() < 20
    assert far.std() > 5
    seen = []

    def cancel():
        seen.append(1)
        if len(seen) == 2:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        O.outpaint_image(img, {"left": 0, "right": 400, "top": 0, "bottom": 0},
                         check_cancelled=cancel)
