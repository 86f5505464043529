"""The result check: preservation, Emu Edit thresholding, effect test, removal verification."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imagent.tools import check as C


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
    out, f = C.preserve_background(before, after, mask)
    o, b = np.asarray(out), np.asarray(before)
    np.testing.assert_array_equal(o[mask == 0], b[mask == 0])
    assert f["outside_changed_px_before"] == 60 * 10
    np.testing.assert_array_equal(o[20:40, 20:50], 250)


def test_thresholding_reverts_small_drift_only():
    before, after, mask = _pair()
    out, f = C.threshold_change(before, after, sigma=1.0, levels=2.0, mask=mask)
    o, b = np.asarray(out), np.asarray(before)
    np.testing.assert_array_equal(o[46:54, 6:14], b[46:54, 6:14])  # drift reverted
    np.testing.assert_array_equal(o[21:39, 21:49], 250)  # the edit kept
    assert f["reverted_px"] > 0


def test_effect_and_run_checks():
    before, after, mask = _pair()
    rep = C.run_checks(before, after, mask, kind="local")
    assert rep.passed and rep.metrics["effect"]["changed_fraction_in_mask"] > 0.2
    assert np.array_equal(np.asarray(rep.image)[mask == 0], np.asarray(before)[mask == 0])
    rep = C.run_checks(before, before, mask, kind="local")
    assert not rep.passed and "no visible effect" in rep.failures[0]
    strict = C.CheckConfig(effect_min_fraction=0.9)
    assert not C.run_checks(before, after, mask, kind="local", config=strict).passed
    # global edits are not thresholded or composited: the whole image may change
    rep = C.run_checks(before, after, None, kind="global")
    assert "threshold" not in rep.metrics and rep.image is after
    assert C.run_checks(before, before.resize((10, 10)), None, kind="outpaint").passed


def test_verification_after_removal():
    arr = np.full((80, 120, 3), 128, np.uint8)
    arr[20:60, 30:80] = (220, 30, 30)
    with_obj = Image.fromarray(arr)
    mask = np.zeros((80, 120), np.float32)
    mask[15:65, 25:85] = 1
    v = C.verify_removal(with_obj, "the red car", "colour", mask)
    assert v["verified"] is False and v["still_found"] == 1
    gone = Image.fromarray(np.full((80, 120, 3), 128, np.uint8))
    assert C.verify_removal(gone, "the red car", "colour", mask)["verified"] is True
    assert C.verify_removal(gone, "the top-left corner", "geometry", mask)["verified"] is None
    rep = C.run_checks(with_obj, with_obj, mask, kind="remove", phrase="the red car",
                       ground_method="colour")
    assert not rep.passed and any("still found" in f for f in rep.failures)


def test_local_edit_rule():
    assert C.is_local_edit({"name": "remove", "args": {}})
    assert C.is_local_edit({"name": "global_edit", "args": {"region": "mask"}})
    assert not C.is_local_edit({"name": "global_edit", "args": {"region": "image"}})
    assert not C.is_local_edit({"name": "outpaint", "args": {}})
    before, after, mask = _pair()
    out, f = C.finalize_local_edit(before, after, mask)
    assert f["applied"] and np.array_equal(np.asarray(out)[mask == 0], np.asarray(before)[mask == 0])
    same, f = C.finalize_local_edit(before, after, None)
    assert same is after and f == {"applied": False}
