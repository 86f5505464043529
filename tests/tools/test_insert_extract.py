from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from imagent.errors import ImageLoadError, MaskError, ToolArgumentError
from imagent.tools import insert as I
from imagent.tools.extract import extract
from imagent.tools.registry import default_registry
from imagent.tools.types import Detection, ToolCall, ToolState

W, H = 96, 64


def _img(w=W, h=H) -> Image.Image:
    return Image.new("RGB", (w, h), (40, 60, 80))


def _run(name, state, **args):
    return default_registry().run(ToolCall(name=name, args=args), state)


def _sticker(tmp_path, with_alpha=True):
    arr = np.zeros((20, 20, 4), np.uint8)
    arr[..., 0] = 250
    arr[..., 3] = 255
    if with_alpha:
        arr[:, :10, 3] = 0  # left half transparent
    p = tmp_path / "sticker.png"
    Image.fromarray(arr).save(p)
    return p


# ----------------------------------------------------------------------------- insert
def test_paste_image_keeps_its_alpha(tmp_path):
    p = _sticker(tmp_path)
    img = _img()
    res = _run("insert", ToolState(image=img), kind="image", path=str(p), box=[10, 10, 30, 30])
    out, src = np.asarray(res.image), np.asarray(img)
    assert tuple(out[20, 25]) == (250, 0, 0)  # opaque half
    assert tuple(out[20, 15]) == (40, 60, 80)  # transparent half: unchanged
    changed = res.mask > 0
    np.testing.assert_array_equal(out[~changed], src[~changed])
    assert changed[20, 25] and not changed[20, 15] and not changed[0, 0]
    assert res.metrics["changed_fraction"] == pytest.approx(200 / (W * H), abs=1e-3)


def test_paste_placement_from_mask_detection_or_centre(tmp_path):
    p = _sticker(tmp_path, with_alpha=False)
    mask = np.zeros((H, W), np.float32)
    mask[40:60, 60:90] = 1
    res = _run("insert", ToolState(image=_img(), mask=mask), kind="image", path=str(p))
    assert "mask" in res.message
    ys, xs = np.nonzero(res.mask)
    assert xs.min() >= 60 and ys.min() >= 40 and xs.max() < 90
    st = ToolState(image=_img(), detections=[Detection((0, 0, 20, 20), 1, "flag")])
    res = _run("insert", st, kind="image", path=str(p), opacity=0.5)
    assert "'flag'" in res.message and res.mask.max() == pytest.approx(0.5)
    res = _run("insert", ToolState(image=_img()), kind="image", path=str(p))
    assert "whole image" in res.message


def test_text_renders_with_colour_and_outline():
    img = _img()
    res = _run("insert", ToolState(image=img), kind="text", text="Hi", color="#ffcc00",
               box=[10, 10, 86, 54], outline=1)
    out = np.asarray(res.image)
    changed = res.mask > 0
    assert changed.sum() > 50
    np.testing.assert_array_equal(out[~changed], np.asarray(img)[~changed])
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 10 and xs.max() < 86 and ys.min() >= 10 and ys.max() < 54
    assert (np.abs(out[changed].astype(int) - [255, 204, 0]).sum(axis=1) < 30).any()
    small = _run("insert", ToolState(image=img), kind="text", text="Hi", font_size=8,
                 box=[10, 10, 86, 54])
    assert (small.mask > 0).sum() < changed.sum()


def test_insert_errors_and_nothing_written(tmp_path):
    st = ToolState(image=_img())
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ImageLoadError, match="missing.png"):
        _run("insert", st, kind="image", path=str(tmp_path / "missing.png"))
    with pytest.raises(ToolArgumentError) as ei:
        _run("insert", st, kind="text", text="x", color="blurple")
    assert "'blurple'" in str(ei.value) and "color" in str(ei.value)
    with pytest.raises(ToolArgumentError, match="needs path"):
        _run("insert", st, kind="image")
    with pytest.raises(ToolArgumentError, match="non-empty text"):
        _run("insert", st, kind="text", text="  ")
    with pytest.raises(ToolArgumentError) as ei:
        _run("insert", st, kind="text", text="x", box=[500, 500, 600, 600])
    assert "96x64" in str(ei.value)
    with pytest.raises(MaskError) as ei:
        _run("insert", ToolState(image=_img(), mask=np.ones((3, 3), np.float32)), kind="text",
             text="x")
    assert "3x3" in str(ei.value)
    with pytest.raises(ToolArgumentError, match="changes no pixel"):
        _run("insert", st, kind="text", text="x", opacity=0)
    assert sorted(os.listdir(tmp_path)) == before
    with pytest.raises(ToolArgumentError):
        I.parse_color("nocolour")
    assert I.parse_color("red") == (255, 0, 0)


def test_insert_on_one_pixel_image(tmp_path):
    one = Image.new("RGB", (1, 1), (0, 0, 0))
    res = _run("insert", ToolState(image=one), kind="image", path=str(_sticker(tmp_path, False)))
    assert res.image.size == (1, 1) and res.mask[0, 0] == 1
    res = _run("insert", ToolState(image=one), kind="text", text="A")
    assert res.image.size == (1, 1)


# ----------------------------------------------------------------------------- extract
def test_extract_transparent_and_colour():
    img = _img()
    mask = np.zeros((H, W), np.float32)
    mask[10:20, 30:50] = 1
    res = _run("extract", ToolState(image=img, mask=mask))
    assert res.image is None  # the working image is unchanged
    rgba = res.extra["rgba"]
    assert rgba.mode == "RGBA" and rgba.size == (W, H)
    a = np.asarray(rgba.getchannel("A"))
    assert a[15, 40] == 255 and a[0, 0] == 0
    assert res.metrics["area_fraction"] == pytest.approx(200 / (W * H), abs=1e-4)
    assert res.extra["bbox"] == [30, 10, 50, 20]
    res = _run("extract", ToolState(image=img, mask=mask), background="white")
    out = np.asarray(res.image)
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[15, 40]) == (40, 60, 80)


def test_extract_errors():
    img = _img()
    with pytest.raises(MaskError, match="needs a mask"):
        _run("extract", ToolState(image=img))
    with pytest.raises(MaskError, match="selects nothing"):
        _run("extract", ToolState(image=img, mask=np.zeros((H, W), np.float32)))
    with pytest.raises(MaskError) as ei:
        _run("extract", ToolState(image=img, mask=np.ones((2, 2), np.float32)))
    assert "2x2" in str(ei.value)
    with pytest.raises(ToolArgumentError, match="'plaid'"):
        _run("extract", ToolState(image=img, mask=np.ones((H, W), np.float32)),
             background="plaid")
    rgba, flat = extract(Image.new("RGB", (1, 1)), np.ones((1, 1), np.float32), "black")
    assert rgba.size == (1, 1) and flat.size == (1, 1)


# ----------------------------------------------------------------------------- deeper insert
def _photo_sticker(tmp_path):
    """An opaque photo: a red disc on a flat green background (no alpha)."""
    arr = np.zeros((40, 40, 3), np.uint8)
    arr[:] = (40, 160, 60)
    yy, xx = np.mgrid[0:40, 0:40]
    arr[(yy - 20) ** 2 + (xx - 20) ** 2 <= 12 ** 2] = (230, 30, 30)
    p = tmp_path / "photo.png"
    Image.fromarray(arr).save(p)
    return p


def test_paste_with_background_removal_shadow_and_place(tmp_path):
    img = Image.new("RGB", (120, 90), (200, 200, 200))
    st = ToolState(image=img)
    res = _run("insert", st, kind="image", path=str(_photo_sticker(tmp_path)),
               place="the top-right corner", remove_background=True, shadow=True)
    out = np.asarray(res.image).astype(int)
    # the disc is pasted in the top-right corner, its green background is not
    green = (out[..., 1] > 140) & (out[..., 0] < 80)
    red = (out[..., 0] > 200) & (out[..., 1] < 60)
    assert green.sum() == 0 and red.sum() > 100
    ys, xs = np.nonzero(red)
    assert xs.min() >= 80 and ys.max() <= 30
    # a soft shadow: darker than the background, down-right of the disc, never outside the mask
    assert out[..., 0][res.mask > 0].min() < 190
    untouched = res.mask == 0
    assert (out[untouched] == 200).all()
    assert "background removed" in res.message


def test_recolor_keeps_texture_and_outside(tmp_path):
    rng = np.random.default_rng(1)
    arr = np.clip(rng.normal(120, 5, (64, 96, 3)), 0, 255)
    shade = np.linspace(0.6, 1.2, 40)[None, :, None]
    arr[10:50, 20:60] = np.clip(np.array([200, 40, 40]) * shade + rng.normal(0, 6, (40, 40, 3)),
                                0, 255)
    img = Image.fromarray(arr.astype(np.uint8))
    m = np.zeros((64, 96), np.float32)
    m[10:50, 20:60] = 1
    res = _run("recolor", ToolState(image=img, mask=m), color="blue")
    out = np.asarray(res.image).astype(int)
    region = out[10:50, 20:60]
    assert region[..., 2].mean() > region[..., 0].mean() + 40  # now blue
    assert res.metrics["hue_error_deg"] < 20 and res.metrics["texture_correlation"] > 0.9
    np.testing.assert_array_equal(out[m == 0], np.asarray(img).astype(int)[m == 0])
    white = _run("recolor", ToolState(image=img, mask=m), color="white")
    assert np.asarray(white.image)[10:50, 20:60].mean() > 190
    with pytest.raises(ToolArgumentError) as ei:
        _run("recolor", ToolState(image=img, mask=m), color="octarine")
    assert "'octarine'" in str(ei.value)
    with pytest.raises(MaskError, match="needs a mask"):
        _run("recolor", ToolState(image=img), color="blue")
    for bad in (np.zeros((64, 96), np.float32), np.ones((64, 96), np.float32),
                np.ones((5, 5), np.float32)):
        with pytest.raises(MaskError):
            _run("recolor", ToolState(image=img, mask=bad), color="blue")
    one = Image.new("RGB", (1, 1), (200, 0, 0))
    with pytest.raises(MaskError):  # a 1x1 mask of 1 is the whole image
        _run("recolor", ToolState(image=one, mask=np.ones((1, 1), np.float32)), color="blue")


def test_extract_bad_masks_and_colour():
    img = _img()
    with pytest.raises(ToolArgumentError) as ei:
        _run("extract", ToolState(image=img, mask=np.ones((H, W), np.float32) * 0.0 + 1),
             background="octarine")
    assert "'octarine'" in str(ei.value)
    for bad in (np.zeros((H, W), np.float32), np.ones((3, 3), np.float32)):
        with pytest.raises(MaskError):
            _run("extract", ToolState(image=img, mask=bad))


def test_technique_is_for_generate_only_and_old_method_calls_still_validate():
    reg = default_registry()
    with pytest.raises(ToolArgumentError, match="technique"):
        reg.validate(ToolCall(name="insert", args={"kind": "text", "text": "hi",
                                                   "technique": "shape"}))
    old = reg.normalise(ToolCall(name="insert", args={"kind": "generate", "prompt": "a cat",
                                                      "method": "blended"}))
    assert old.args["technique"] == "blended" and "method" not in old.args
    res = reg.run(ToolCall(name="insert", args={"kind": "text", "text": "hi"}),
                  ToolState(image=Image.new("RGB", (64, 32))))
    assert res.backend == "embedded"
