"""The result check: preservation, Emu Edit thresholding, effect test, removal verification."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imagent.tools import check as C
from imagent.tools import runner as RN


def _pair():
    rng = np.random.default_rng(0)
    before = rng.integers(40, 200, (60, 80, 3), dtype=np.uint8)
    after = before.copy().astype(int)
    after[20:40, 20:50] = 250  # the real edit
    after[:, 70:] += 3  # a tool that leaked outside its mask
    after[45:55, 5:15] += 1  # tiny drift inside the mask
    mask = np.zeros((60, 80), np.float32)
    mask[15:58, 2:55] = 1
    return Image.fromarray(before), Image.fromarray(np.clip(after, 0, 255).astype(np.uint8)), mask


def test_preservation_keeps_outside_bit_identical():
    before, after, mask = _pair()
    out, f = RN.preserve_background(before, after, mask)
    o, b = np.asarray(out), np.asarray(before)
    np.testing.assert_array_equal(o[mask == 0], b[mask == 0])
    assert f["outside_changed_px_before"] == 60 * 10
    np.testing.assert_array_equal(o[20:40, 20:50], 250)


def test_thresholding_reverts_small_drift_only():
    before, after, mask = _pair()
    out, f = RN.threshold_change(before, after, sigma=1.0, levels=2.0, mask=mask)
    o, b = np.asarray(out), np.asarray(before)
    np.testing.assert_array_equal(o[46:54, 6:14], b[46:54, 6:14])  # drift reverted
    np.testing.assert_array_equal(o[21:39, 21:49], 250)  # the edit kept
    assert f["reverted_px"] > 0


def test_effect_and_judge():
    before, after, mask = _pair()
    out, _ = RN.finalize_local_edit(before, after, mask)
    cfg = C.CheckConfig()
    failures, figures = C.judge(before, out, mask, kind="local", config=cfg)
    assert not failures and figures["effect"]["changed_fraction_in_mask"] > 0.2
    failures, _ = C.judge(before, before, mask, kind="local", config=cfg)
    assert failures and "no visible effect" in failures[0]
    strict = C.CheckConfig(effect_min_fraction=0.9)
    assert C.judge(before, out, mask, kind="local", config=strict)[0]
    # global edits are judged over the whole image; a size change is not compared
    assert not C.judge(before, after, None, kind="global", config=cfg)[0]
    assert C.judge(before, before.resize((10, 10)), None, kind="outpaint", config=cfg)[1]["size_changed"]


def test_verification_after_removal_regrounds_without_the_instance_words():
    from imagent.tools.ground import ground_full

    arr = np.full((80, 160, 3), 128, np.uint8)
    for x in (10, 60, 110):
        arr[20:60, x:x + 40] = (220, 30, 30)
    scene = Image.fromarray(arr)
    g = ground_full(scene, "the second red square")
    assert g.detections[0].box == (60, 20, 100, 60) and g.referent.ordinal == 2
    mask = np.zeros((80, 160), np.float32)
    mask[15:65, 55:105] = 1
    v = C.verify_removal(scene, g, mask)  # the second one is still there
    assert v["verified"] is False and v["looked_for"] == "the red square"
    gone = arr.copy()
    gone[20:60, 60:100] = 128
    # only two squares are left; "second" must not be re-read on the edited image
    v = C.verify_removal(Image.fromarray(gone), g, mask)
    assert v["verified"] is True and v["still_found"] == 0
    place = ground_full(scene, "the top-left corner")
    assert C.verify_removal(Image.fromarray(gone), place, mask)["verified"] is None
    failures, figures = C.judge(scene, scene, mask, kind="remove", config=C.CheckConfig(), grounding=g)
    assert any("still found" in f for f in failures)


def test_standout_tells_a_seamless_fill_from_a_pasted_patch():
    rng = np.random.default_rng(1)
    sky = np.clip(rng.normal((120, 160, 220), 4, (100, 100, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((100, 100), np.float32)
    mask[40:60, 40:60] = 1
    assert C.standout(Image.fromarray(sky), mask)["standout"] < 1.0
    patched = sky.copy()
    patched[40:60, 40:60] = (90, 60, 40)  # a roof pasted into the sky
    assert C.standout(Image.fromarray(patched), mask)["standout"] > 3.0


def test_local_edit_rule():
    assert RN.is_local_edit({"name": "remove", "args": {}})
    assert RN.is_local_edit({"name": "global_edit", "args": {"region": "mask"}})
    assert not RN.is_local_edit({"name": "global_edit", "args": {"region": "image"}})
    assert not RN.is_local_edit({"name": "outpaint", "args": {}})
    before, after, mask = _pair()
    out, f = RN.finalize_local_edit(before, after, mask)
    assert f["applied"] and np.array_equal(np.asarray(out)[mask == 0], np.asarray(before)[mask == 0])
    same, f = RN.finalize_local_edit(before, after, None)
    assert same is after and f == {"applied": False}
