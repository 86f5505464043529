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
