from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagent.errors import MaskError, ToolArgumentError
from imagent.tools import masks as M
from imagent.tools.build_mask import build_mask
from imagent.tools.registry import default_registry
from imagent.tools.types import Detection, ToolCall, ToolState

W, H = 96, 64


def _img(w=W, h=H) -> Image.Image:
    return Image.new("RGB", (w, h), (100, 120, 140))


def _run(state, **args):
    return default_registry().run(ToolCall(name="build_mask", args=args), state)


# ----------------------------------------------------------------------------- masks.py
def test_check_mask_conversions_and_errors():
    img = _img()
    b = np.zeros((H, W), bool)
    b[5:10, 5:10] = True
    m = M.check_mask(b, img)
    assert m.dtype == np.float32 and m.max() == 1.0
    u = (b * 255).astype(np.uint8)
    np.testing.assert_array_equal(M.check_mask(u, img), m)
    np.testing.assert_array_equal(M.check_mask(Image.fromarray(u), img), m)
    with pytest.raises(MaskError) as ei:
        M.check_mask(np.ones((10, 20), np.float32), img)
    assert "20x10" in str(ei.value) and "96x64" in str(ei.value)
    with pytest.raises(MaskError, match="selects nothing"):
        M.check_mask(np.zeros((H, W), np.float32), img)
    assert M.check_mask(np.zeros((H, W), np.float32), img, allow_empty=True).max() == 0
    with pytest.raises(MaskError, match="whole"):
        M.check_mask(np.ones((H, W), np.float32), img, allow_full=False)
    with pytest.raises(MaskError, match="outside"):
        M.check_mask(np.full((H, W), 2.0, np.float32), img)
    with pytest.raises(MaskError, match="NaN"):
        M.check_mask(np.full((H, W), np.nan, np.float32), img)
    with pytest.raises(MaskError, match="2-D"):
        M.check_mask(np.ones((H, W, 3), np.float32), img)
    with pytest.raises(MaskError, match="no mask"):
        M.check_mask(None, img)


def test_box_mask_dilate_erode_invert_bbox():
    m = M.box_mask((W, H), (10, 10, 20, 30))
    assert m.sum() == 200 and M.mask_bbox(m) == (10, 10, 20, 30)
    d = M.dilate(m, 3)
    assert M.mask_bbox(d) == (7, 7, 23, 33)
    e = M.erode(d, 3)
    assert M.mask_bbox(e) == (10, 10, 20, 30)
    np.testing.assert_array_equal(M.invert(M.invert(m)), m)
    assert M.mask_bbox(np.zeros((4, 4), np.float32)) is None
    el = M.box_mask((W, H), (10, 10, 50, 50), shape="ellipse")
    assert el[30, 30] == 1 and el[10, 10] == 0
    soft = m * 0.5
    assert M.dilate(soft, 2).max() == pytest.approx(0.5)


def test_feather_only_touches_the_edge():
    m = M.box_mask((W, H), (20, 10, 70, 50))
    f = M.feather(m, 4)
    assert f[30, 45] == 1.0  # deep inside
    assert f[0, 0] == 0.0 and f[10, 10] == 0.0  # far outside
    assert 0 < f[10, 45] < 1 and 0 < f[9, 45] < 1  # on the edge, both sides
    fi = M.feather(m, 4, where="inside")
    assert fi[m == 0].max() == 0.0 and 0 < fi[10, 45] < 1 and fi[30, 45] == 1
    fo = M.feather(m, 4, where="outside")
    assert (fo[m == 1] == 1).all() and 0 < fo[9, 45] < 1
    np.testing.assert_array_equal(M.feather(m, 0), m)


def test_crop_box_around():
    m = M.box_mask((W, H), (40, 20, 50, 30))
    assert M.crop_box_around(m, (W, H), 5) == (35, 15, 55, 35)
    assert M.crop_box_around(m, (W, H), 0.5) == (35, 15, 55, 35)  # half of 10 px
    assert M.crop_box_around(m, (W, H), 100) == (0, 0, W, H)
    with pytest.raises(MaskError):
        M.crop_box_around(np.zeros((H, W), np.float32), (W, H), 4)


def test_check_box():
    assert M.check_box([-5, -5, 10, 10], (W, H)) == (0, 0, 10, 10)
    with pytest.raises(ToolArgumentError) as ei:
        M.check_box([100, 100, 200, 200], (W, H))
    assert "[100, 100, 200, 200]" in str(ei.value) and "96x64" in str(ei.value)
    with pytest.raises(ToolArgumentError, match="empty"):
        M.check_box([10, 10, 10, 20], (W, H))


# ----------------------------------------------------------------------------- build_mask
def test_from_detection_box_and_own_mask():
    st = ToolState(image=_img(), detections=[Detection((10, 10, 30, 20), 0.9, "flag")])
    res = _run(st)
    assert M.mask_bbox(res.mask) == (10, 10, 30, 20)
    assert res.metrics["area_fraction"] == pytest.approx(200 / (W * H), abs=1e-4)
    own = np.zeros((H, W), np.float32)
    own[40:50, 40:45] = 1
    st.detections = [Detection((40, 40, 45, 50), 0.9, "sky", mask=own)]
    np.testing.assert_array_equal(_run(st, shape="ellipse").mask, own)


def test_dilate_frac_invert_feather_ellipse():
    st = ToolState(image=_img(), detections=[Detection((20, 20, 40, 40), 0.9, "x")])
    assert M.mask_bbox(_run(st, dilate=2, dilate_frac=0.1).mask) == (16, 16, 44, 44)
    inv = _run(st, invert=True).mask
    assert inv[30, 30] == 0 and inv[0, 0] == 1
    f = _run(st, feather=3).mask
    assert 0 < f[20, 30] < 1 and f[30, 30] == 1
    el = _run(st, shape="ellipse").mask
    assert el[20, 20] == 0 and el[30, 30] == 1


def test_source_box_and_full():
    st = ToolState(image=_img())
    assert M.mask_bbox(_run(st, source="box", box=[1, 2, 3, 4]).mask) == (1, 2, 3, 4)
    assert _run(st, source="full").mask.min() == 1.0
    with pytest.raises(ToolArgumentError, match="box"):
        _run(st, source="box")
    with pytest.raises(ToolArgumentError) as ei:
        _run(st, source="box", box=[200, 200, 300, 300])
    assert "96x64" in str(ei.value)
    with pytest.raises(MaskError, match="selects nothing"):
        _run(st, source="full", invert=True)


def test_no_detections_tells_to_ground_first():
    with pytest.raises(ToolArgumentError) as ei:
        _run(ToolState(image=_img()))
    assert "ground" in ei.value.hint
    st = ToolState(image=_img(), detections=[Detection((0, 0, 5, 5), 1.0, "a")])
    with pytest.raises(ToolArgumentError, match="index 3"):
        _run(st, index=3)


def test_detection_mask_of_wrong_size():
    st = ToolState(image=_img(), detections=[Detection((0, 0, 5, 5), 1.0, "a",
                                                       mask=np.ones((10, 10), np.float32))])
    with pytest.raises(MaskError) as ei:
        _run(st)
    assert "10x10" in str(ei.value) and "96x64" in str(ei.value)


def test_one_pixel_image():
    img = _img(1, 1)
    m = build_mask(img, source="detections", detections=[Detection((0, 0, 1, 1), 1, "a")],
                   dilate=3, feather=2)
    assert m.shape == (1, 1) and m[0, 0] == 1.0


# ----------------------------------------------------------------------------- deeper masks
def _object_scene():
    """A dark disc on a light textured floor with a darker shadow attached to its right."""
    rng = np.random.default_rng(5)
    arr = np.clip(rng.normal(200, 4, (80, 120, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:80, 0:120]
    disc = (yy - 40) ** 2 + (xx - 40) ** 2 <= 15 ** 2
    shadow = (np.abs(yy - 50) <= 5) & (xx >= 50) & (xx < 72) & ~disc
    arr[shadow] = (120, 120, 125)
    arr[disc] = (200, 40, 40)
    return Image.fromarray(arr), disc, shadow


def test_grabcut_refines_a_box_to_the_object():
    img, disc, _ = _object_scene()
    st = ToolState(image=img)
    res = _run(st, source="box", box=[20, 20, 61, 61], refine=True, backend="embedded")
    m = res.mask >= 0.5
    iou = (m & disc).sum() / (m | disc).sum()
    assert iou > 0.85 and m.sum() < 0.9 * 41 * 41
    assert "grabcut_kept_fraction" in res.metrics and res.metrics["refined_by"] == "grabcut"
    assert res.backend == "embedded"
    assert res.extra["call"]["args"]["refine"] is True
    # without a model, refine=true with backend 'auto' is the embedded GrabCut too
    again = _run(ToolState(image=img), source="box", box=[20, 20, 61, 61], refine=True)
    assert again.extra["call"]["args"]["backend"] == "embedded"
    np.testing.assert_array_equal(again.mask, res.mask)


def test_default_does_not_refine_offline_and_stores_what_ran():
    img, _, _ = _object_scene()
    res = _run(ToolState(image=img), source="box", box=[20, 20, 61, 61])
    assert res.extra["call"]["args"]["refine"] is False
    assert res.extra["call"]["args"]["backend"] == "embedded"
    assert res.backend == "embedded" and "grabcut_kept_fraction" not in res.metrics
    assert (res.mask >= 0.5).sum() == 41 * 41


@pytest.mark.parametrize("old, refine, backend", [("none", False, "embedded"),
                                                   ("grabcut", True, "embedded"),
                                                   ("auto", False, "embedded")])
def test_old_refine_values_replay_the_same_mask(old, refine, backend):
    img, _, _ = _object_scene()
    then = _run(ToolState(image=img), source="box", box=[20, 20, 61, 61], refine=old)
    assert (then.extra["call"]["args"]["refine"], then.extra["call"]["args"]["backend"]) == \
        (refine, backend)
    now = _run(ToolState(image=img), source="box", box=[20, 20, 61, 61], refine=refine,
               backend=backend)
    np.testing.assert_array_equal(then.mask, now.mask)


def test_sam_backend_with_refine_false_is_refused():
    with pytest.raises(ToolArgumentError, match="refine=false"):
        _run(ToolState(image=_img()), source="full", refine=False, backend="sam")


def test_shadow_grow_adds_the_attached_dark_region_only():
    img, disc, shadow = _object_scene()
    grown, added = M.shadow_grow(img, disc.astype(np.float32))
    assert added > 0.8 * shadow.sum()
    assert grown[shadow].mean() > 0.8
    assert grown[~(disc | shadow)].sum() < 0.1 * shadow.sum()
    # no shadow: nothing added
    flat = Image.fromarray(np.full((80, 120, 3), 200, np.uint8))
    _, added = M.shadow_grow(flat, disc.astype(np.float32))
    assert added == 0


def test_fill_holes_erode_combine_and_all():
    ring = np.zeros((H, W), np.float32)
    ring[10:40, 10:40] = 1
    ring[20:30, 20:30] = 0
    assert M.fill_holes(ring)[25, 25] == 1.0 and M.fill_holes(ring)[5, 5] == 0.0
    st = ToolState(image=_img(), detections=[
        Detection((0, 0, 20, 20), 0.9, "a"), Detection((50, 30, 70, 50), 0.8, "b")])
    res = _run(st, source="all")
    assert res.mask[5, 5] == 1 and res.mask[40, 60] == 1 and res.mask[25, 35] == 0
    st.mask = res.mask
    inter = _run(st, source="box", box=[10, 10, 60, 40], combine="intersection").mask
    assert inter[15, 15] == 1 and inter[35, 55] == 1 and inter[5, 5] == 0
    st.mask = res.mask
    sub = _run(st, source="box", box=[0, 0, 10, 10], combine="subtract").mask
    assert sub[5, 5] == 0 and sub[15, 15] == 1
    er = _run(ToolState(image=_img()), source="box", box=[10, 10, 50, 50], erode=5).mask
    assert er[12, 12] == 0 and er[30, 30] == 1
    with pytest.raises(MaskError, match="combine='union' needs a current mask"):
        _run(ToolState(image=_img()), source="box", box=[1, 1, 5, 5], combine="union")
    with pytest.raises(MaskError, match="selects nothing"):
        _run(ToolState(image=_img()), source="box", box=[10, 10, 14, 14], erode=5)


def test_shrink_schedule_goes_from_dilated_to_thin():
    m = np.zeros((H, W), np.float32)
    m[20:40, 30:60] = 1
    sched = M.shrink_schedule(m, steps=4, grow=0.2)
    areas = [float(s.sum()) for s in sched]
    assert len(sched) == 4 and areas == sorted(areas, reverse=True)
    np.testing.assert_array_equal(sched[-1], m)
    assert all(((s >= m)).all() for s in sched)
    with pytest.raises(MaskError):
        M.shrink_schedule(np.zeros((H, W), np.float32))
    with pytest.raises(ToolArgumentError):
        M.shrink_schedule(m, steps=0)


def test_bad_boxes_and_masks_are_clear_errors():
    with pytest.raises(ToolArgumentError) as ei:
        _run(ToolState(image=_img()), source="box", box=[200, 200, 300, 300])
    assert "96x64" in str(ei.value)
    one = Image.new("RGB", (1, 1))
    assert _run(ToolState(image=one), source="box", box=[0, 0, 1, 1], refine=True,
                shadow=True, fill_holes=True).mask.shape == (1, 1)
