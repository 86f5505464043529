from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagent.errors import MaskError, ToolArgumentError
from imagent.tools import global_edit as GE
from imagent.tools.registry import default_registry
from imagent.tools.types import ToolCall, ToolState

W, H = 96, 64


def _img(w=W, h=H, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(30, 220, (h, w, 3), dtype=np.uint8))


def _run(state, **args):
    return default_registry().run(ToolCall(name="global_edit", args=args), state)


def _mean(img):
    return float(np.asarray(img, dtype=np.float32).mean())


@pytest.mark.parametrize("op", [k for k, v in GE.OPERATIONS.items()
                                if not v.geometric and not v.auto])
def test_every_colour_operation_changes_and_is_deterministic(op):
    st = ToolState(image=_img())
    a = _run(st, operation=op)
    b = _run(st, operation=op)
    assert a.image.size == (W, H) and a.image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.metrics["mean_abs_change"] > 0.5, op
    assert a.extra["call"]["args"]["amount"] == GE.OPERATIONS[op].default


@pytest.mark.parametrize("op", [k for k, v in GE.OPERATIONS.items()
                                if v.neutral is not None and not v.geometric])
def test_neutral_amount_changes_nothing(op):
    img = _img()
    out, _, _ = GE.adjust(img, op, GE.OPERATIONS[op].neutral)
    assert np.abs(np.asarray(out, np.int16) - np.asarray(img, np.int16)).max() <= 1


def test_directions():
    img = _img()
    assert _mean(GE.adjust(img, "brightness", 0.2)[0]) > _mean(img)
    assert _mean(GE.adjust(img, "brightness", -0.2)[0]) < _mean(img)
    assert _mean(GE.adjust(img, "exposure", 1.0)[0]) > _mean(img)
    bw = np.asarray(GE.adjust(img, "black_and_white")[0]).astype(int)
    assert np.abs(bw[..., 0] - bw[..., 1]).max() <= 1
    warm = np.asarray(GE.adjust(img, "warmth", 0.5)[0], np.float32)
    base = np.asarray(img, np.float32)
    assert warm[..., 0].mean() > base[..., 0].mean() and warm[..., 2].mean() < base[..., 2].mean()
    inv = np.asarray(GE.adjust(img, "invert")[0]).astype(int)
    np.testing.assert_array_equal(inv, 255 - np.asarray(img).astype(int))
    assert np.asarray(GE.adjust(img, "blur", 3)[0]).std() < base.std()


def test_geometric_operations():
    img = _img()
    arr = np.asarray(img)
    r90, _, _ = GE.adjust(img, "rotate", value=90)
    np.testing.assert_array_equal(np.asarray(r90), np.rot90(arr))  # counter-clockwise
    r_cw, _, _ = GE.adjust(img, "rotate", value=-90)
    np.testing.assert_array_equal(np.asarray(r_cw), np.rot90(arr, -1))
    r30, filled, note = GE.adjust(img, "rotate", value=30)
    assert r30.size[0] > W and filled is not None and filled.shape == (r30.size[1], r30.size[0])
    assert filled[0, 0] > 0.9 and "black" in note
    np.testing.assert_array_equal(np.asarray(GE.adjust(img, "flip_horizontal")[0]), arr[:, ::-1])
    np.testing.assert_array_equal(np.asarray(GE.adjust(img, "flip_vertical")[0]), arr[::-1])
    assert GE.adjust(img, "resize", width=48)[0].size == (48, 32)
    assert GE.adjust(img, "resize", 0.5)[0].size == (48, 32)
    assert GE.adjust(img, "resize", width=10, height=10)[0].size == (10, 10)
    c, _, _ = GE.adjust(img, "crop", box=[10, 5, 40, 25])
    np.testing.assert_array_equal(np.asarray(c), arr[5:25, 10:40])


def test_size_change_is_flagged():
    res = _run(ToolState(image=_img()), operation="rotate", value=90)
    assert res.image.size == (H, W) and res.extra["size_changed"] is True
    assert res.metrics["mean_abs_change"] is None


def test_region_mask_keeps_outside_bit_identical():
    img = _img()
    mask = np.zeros((H, W), np.float32)
    mask[:32] = 1
    res = _run(ToolState(image=img, mask=mask), operation="brightness", amount=0.3,
               region="mask")
    out = np.asarray(res.image)
    np.testing.assert_array_equal(out[32:], np.asarray(img)[32:])
    assert out[:32].mean() > np.asarray(img)[:32].mean()
    with pytest.raises(MaskError, match="needs a mask"):
        _run(ToolState(image=img), operation="brightness", region="mask")
    with pytest.raises(MaskError) as ei:
        _run(ToolState(image=img, mask=np.ones((5, 5), np.float32)), operation="blur",
             region="mask")
    assert "5x5" in str(ei.value)


def test_bad_arguments():
    st = ToolState(image=_img())
    with pytest.raises(ToolArgumentError) as ei:
        _run(st, operation="cartoonify")
    assert "'cartoonify'" in str(ei.value) and "brightness" in str(ei.value)
    with pytest.raises(ToolArgumentError, match="rotate needs value"):
        _run(st, operation="rotate")
    with pytest.raises(ToolArgumentError, match="takes no amount"):
        _run(st, operation="flip_horizontal", amount=1)
    with pytest.raises(ToolArgumentError, match="cannot be limited to the mask"):
        _run(st, operation="crop", box=[0, 0, 5, 5], region="mask")
    with pytest.raises(ToolArgumentError) as ei:
        _run(st, operation="crop", box=[200, 200, 300, 300])
    assert "96x64" in str(ei.value)
    with pytest.raises(ToolArgumentError, match="resize needs"):
        _run(st, operation="resize")
    with pytest.raises(ToolArgumentError, match="too large"):
        _run(st, operation="resize", width=20000, height=20000)


def test_one_pixel_image():
    one = Image.new("RGB", (1, 1), (100, 100, 100))
    for op in GE.OPERATIONS:
        args = {"operation": op}
        if op == "rotate":
            args["value"] = 45
        if op == "crop":
            args["box"] = [0, 0, 1, 1]
        if op == "resize":
            args["width"] = 3
        res = _run(ToolState(image=one), **args)
        assert res.image is not None, op


def _cast(w=W, h=H):
    """A photo-like image with a warm colour cast, haze or darkness to correct."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 120 * x / w, 50 + 100 * y / h, 90 + 60 * np.sin(x / 7.0)], axis=2)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255)


def test_auto_white_balance_removes_a_cast():
    arr = _cast() * np.array([1.25, 1.0, 0.7])
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    out = np.asarray(GE.adjust(img, "white_balance")[0], np.float32)
    spread = lambda a: float(np.ptp(a.reshape(-1, 3).mean(axis=0)))  # noqa: E731
    assert spread(out) < 0.5 * spread(np.asarray(img, np.float32))
    # a neutral image stays (nearly) as it is
    grey = Image.fromarray(np.full((H, W, 3), 128, np.uint8))
    assert np.abs(np.asarray(GE.adjust(grey, "white_balance")[0], int) - 128).max() <= 1


def test_dehaze_restores_contrast_and_low_light_lifts_shadows():
    clear = _cast()
    hazy = Image.fromarray((0.5 * clear + 0.5 * 230).astype(np.uint8))
    out = np.asarray(GE.adjust(hazy, "dehaze")[0], np.float32)
    assert out.std() > 1.4 * np.asarray(hazy, np.float32).std()
    dark = Image.fromarray((clear * 0.15).astype(np.uint8))
    lifted = np.asarray(GE.adjust(dark, "low_light")[0], np.float32)
    assert lifted.mean() > 2.0 * np.asarray(dark, np.float32).mean()


def test_denoise_vignette_tint():
    clean = _cast()
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 12, clean.shape), 0, 255)
    out = np.asarray(GE.adjust(Image.fromarray(noisy.astype(np.uint8)), "denoise")[0], np.float32)
    assert np.abs(out - clean).mean() < 0.75 * np.abs(noisy - clean).mean()
    flat = Image.fromarray(np.full((H, W, 3), 200, np.uint8))
    v = np.asarray(GE.adjust(flat, "vignette", 0.6)[0], np.float32)
    assert v[0, 0].mean() < 120 and v[H // 2, W // 2].mean() == 200
    t = np.asarray(GE.adjust(flat, "tint", 0.5)[0], np.float32)
    assert t[..., 1].mean() < t[..., 0].mean()
    t = np.asarray(GE.adjust(flat, "tint", -0.5)[0], np.float32)
    assert t[..., 1].mean() > t[..., 0].mean()


def test_synonyms_and_strength_words():
    st = ToolState(image=_img())
    res = _run(st, operation="greyscale")
    assert res.extra["call"]["args"]["operation"] == "black_and_white"
    assert _run(st, operation="Auto White-Balance").extra["call"]["args"]["operation"] == \
        "white_balance"
    bit = GE.amount_for("brightness", "a bit")
    much = GE.amount_for("brightness", "much")
    assert bit == GE.OPERATIONS["brightness"].default and much > 2 * bit
    assert GE.amount_for("brightness", "slightly", sign=-1) < 0
    assert GE.amount_for("flip", "much") is None
    img = _img()
    assert _mean(GE.adjust(img, "brightness", much)[0]) > _mean(GE.adjust(img, "brightness", bit)[0])
    with pytest.raises(ToolArgumentError, match="'enormously'"):
        GE.amount_for("brightness", "enormously")


def test_unknown_operation_lists_the_known_ones():
    with pytest.raises(ToolArgumentError) as ei:
        _run(ToolState(image=_img()), operation="winterize")
    text = str(ei.value)
    assert "'winterize'" in text
    for op in ("dehaze", "denoise", "vignette", "white_balance", "low_light", "tint"):
        assert op in text


def test_the_operation_decides_the_backend_and_the_stored_call_names_it():
    reg = default_registry()
    classical = reg.normalise(ToolCall(name="global_edit", args={"operation": "brightness"}))
    assert classical.args["backend"] == "embedded"
    instruct = reg.normalise(ToolCall(name="global_edit",
                                      args={"operation": "instruct", "prompt": "winter"}))
    assert instruct.args["backend"] == "instruct-pix2pix"
    with pytest.raises(ToolArgumentError, match="instruct-pix2pix"):
        reg.validate(ToolCall(name="global_edit", args={"operation": "instruct", "prompt": "x",
                                                        "backend": "embedded"}))
    with pytest.raises(ToolArgumentError, match="classical"):
        reg.validate(ToolCall(name="global_edit", args={"operation": "contrast",
                                                        "backend": "instruct-pix2pix"}))
    res = reg.run(ToolCall(name="global_edit", args={"operation": "sepia"}),
                  ToolState(image=Image.new("RGB", (8, 8), (90, 120, 200))))
    assert res.backend == "embedded" and res.extra["call"]["args"]["backend"] == "embedded"
