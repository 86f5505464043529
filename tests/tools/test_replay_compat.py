"""Calls stored by imagent 0.1.0 (commit 5fa86c6, no ``impl``) replay bit-identically.

The expected images in ``data/replay_v1`` were made by the 0.1.0 code itself, not by
``tools/legacy`` (``data/replay_v1/README.md``): each case is a call exactly as 0.1.0 stored
it, its input (and mask) and its output.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagent.errors import ToolArgumentError
from imagent.tools import global_edit as GE
from imagent.tools.registry import CURRENT_IMPL, IMPLS, default_registry, upgrade_call
from imagent.tools.remove import patchmatch_module
from imagent.tools.runner import Runner
from imagent.tools.types import ToolCall, ToolState

DATA = Path(__file__).parent / "data" / "replay_v1"
CASES = json.loads((DATA / "cases.json").read_text())
# global_edit cases whose impl-2 pixels differ from 0.1.0's (vignette only differs on images
# under 4 px or over 1024 px a side; every colour operation at a soft mask's edge)
CHANGED_OPS = ("saturation", "black_and_white", "sepia", "sharpen", "blur", "low_light",
               "dehaze", "vignette_tiny", "contrast_tiny", "brightness_mask")
needs_pm = pytest.mark.skipif(patchmatch_module() is None, reason="PatchMatch library missing")


def _digest(img: Image.Image) -> str:
    a = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    return hashlib.sha256(f"{a.shape}".encode() + a.tobytes()).hexdigest()


def _inputs(case: dict) -> tuple[Image.Image, np.ndarray | None]:
    image = Image.open(DATA / case["input"]).convert("RGB")
    mask = None
    if case["mask"]:
        mask = np.asarray(Image.open(DATA / case["mask"]), np.float32) / 255.0
    return image, mask


def _run(call: dict, case: dict, *, stored: bool = True) -> Image.Image:
    """The call through the registry as replay runs it (stored: ``upgrade_call`` first)."""
    image, mask = _inputs(case)
    if stored:
        call = upgrade_call(call)
    state = ToolState(image=image, original=image, mask=mask)
    return default_registry().run(ToolCall(**call), state).image


def _assert_is_fixture(got: Image.Image, case: dict) -> None:
    assert list(got.size) == case["size"]
    want = np.asarray(Image.open(DATA / case["output"]).convert("RGB")).astype(int)
    crop = np.asarray(got.convert("RGB").crop(tuple(case["output_box"]))).astype(int)
    assert crop.shape == want.shape
    diff = np.abs(crop - want)
    assert diff.max() == 0, f"{int((diff > 0).any(axis=2).sum())} px differ, max {diff.max()}"
    assert _digest(got) == case["sha256"]


def _case_params(prefix: str) -> list:
    marks = {"outpaint": [needs_pm], "remove_face": [needs_pm]}
    return [pytest.param(name, marks=marks.get(name, []), id=name)
            for name in sorted(CASES) if name.startswith(prefix)]


# ---------------------------------------------------------------- old calls replay exactly

@pytest.mark.parametrize("name", _case_params(""))
def test_old_call_replays_to_the_0_1_0_image(name):
    case = CASES[name]
    assert "impl" not in case["call"]["args"]  # stored before implementations were numbered
    _assert_is_fixture(_run(case["call"], case), case)


@pytest.mark.parametrize("name", [p for p in _case_params("") if CASES[p.values[0]]["mask"]
                                  is None])
def test_runner_replay_upgrades_stored_calls(name):
    """Runner.replay (what ``imagent replay`` runs) reads a call without impl as impl 1."""
    case = CASES[name]
    image, _ = _inputs(case)
    _assert_is_fixture(Runner().replay(image, [case["call"]]), case)


# ---------------------------------------------------------------- new calls: today's code

@pytest.mark.parametrize("name", [f"global_edit_{op}" for op in CHANGED_OPS])
def test_new_global_edit_call_is_impl_2(name):
    case = CASES[name]
    args = {k: v for k, v in case["call"]["args"].items() if v is not None}
    norm = default_registry().normalise(ToolCall(name="global_edit", args=args))
    assert norm.args["impl"] == 2  # a new call without impl: today's code
    got = np.asarray(_run(norm.to_json_dict(), case, stored=False))
    src, mask = _inputs(case)
    expected = GE._colour_op(np.asarray(src), norm.args["operation"],
                             float(norm.args["amount"]), norm.args["value"])
    if mask is not None:
        expected = GE._blend_in_mask(np.asarray(src), expected, mask)
    assert np.array_equal(got, expected)
    old = np.asarray(Image.open(DATA / case["output"]).convert("RGB")).astype(int)
    assert np.abs(got.astype(int) - old).max() > 0  # what impl 1 exists for


def test_global_edit_ops_that_did_not_change_agree_across_impls():
    image, _ = _inputs(CASES["global_edit_brightness"])
    for op in ("brightness", "contrast", "exposure", "gamma", "warmth", "tint", "invert",
               "white_balance", "autocontrast", "denoise", "vignette"):
        one = GE._apply(image, GE.Args(operation=op, impl=1), None)[0]
        two = GE._apply(image, GE.Args(operation=op, impl=2), None)[0]
        assert np.array_equal(np.asarray(one), np.asarray(two)), op


def test_blur_value_is_impl_2_only():
    """0.1.0 ignored ``value`` for blur; an impl-2 blur scales sigma with the image."""
    case = CASES["global_edit_blur_value"]
    same_without_value = dict(case["call"], args=dict(case["call"]["args"], value=None))
    _assert_is_fixture(_run(same_without_value, case), case)
    new = _run({"name": "global_edit", "args": {**case["call"]["args"], "impl": 2}}, case)
    old = np.asarray(Image.open(DATA / case["output"]).convert("RGB")).astype(int)
    assert np.abs(np.asarray(new).astype(int) - old).max() > 0


@needs_pm
@pytest.mark.parametrize("name", ["outpaint", "remove_face"])
def test_new_fill_call_is_impl_2_and_differs(name):
    case = CASES[name]
    new_call = {"name": case["call"]["name"], "args": {**case["call"]["args"], "impl": 2}}
    new = _run(new_call, case)
    assert list(new.size) == case["size"]
    assert _digest(new) != case["sha256"]
    # and a call without impl that is *new* (a planner's) runs today's code too
    assert _digest(_run(case["call"], case, stored=False)) == _digest(new)


@needs_pm
def test_remove_without_a_face_is_the_same_in_both_impls():
    rng = np.random.default_rng(4)
    img = np.clip(rng.normal(128, 30, (90, 110, 3)), 0, 255).astype(np.uint8)
    img[:, :, 0] = np.linspace(40, 220, 110, dtype=np.uint8)[None, :]
    mask = np.zeros((90, 110), np.float32)
    mask[30:55, 40:70] = 1.0
    outs = []
    for impl in (1, 2):
        state = ToolState(image=Image.fromarray(img), mask=mask)
        call = ToolCall(name="remove", args={"algorithm": "patchmatch", "impl": impl})
        outs.append(np.asarray(default_registry().run(call, state).image))
    assert np.array_equal(*outs)


# ---------------------------------------------------------------- the impl argument

def test_upgrade_call_adds_impl_1_only_where_missing():
    for tool in ("global_edit", "outpaint", "remove"):
        assert upgrade_call({"name": tool, "args": {}})["args"]["impl"] == 1
        assert upgrade_call({"name": tool, "args": {"impl": 2}})["args"]["impl"] == 2
    assert "impl" not in upgrade_call({"name": "build_mask", "args": {}})["args"]
    # the vocabulary mapping still applies with it
    old = upgrade_call({"name": "remove", "args": {"backend": "patchmatch"}})["args"]
    assert old == {"backend": "embedded", "algorithm": "patchmatch", "impl": 1}


def test_new_calls_store_the_current_impl():
    assert CURRENT_IMPL == {"global_edit": 2, "outpaint": 2, "remove": 2}
    reg = default_registry()
    for call in (ToolCall(name="global_edit", args={"operation": "sepia"}),
                 ToolCall(name="outpaint", args={"right": 8}),
                 ToolCall(name="remove", args={})):
        assert reg.normalise(call).args["impl"] == 2
        assert reg.normalise(call, stored=True).args["impl"] == 1


@pytest.mark.parametrize("tool,args", [("global_edit", {"operation": "sepia"}),
                                       ("outpaint", {"right": 8}), ("remove", {})])
@pytest.mark.parametrize("impl", [0, 3, "two", None, True])
def test_unknown_impl_is_a_clear_error(tool, args, impl):
    with pytest.raises(ToolArgumentError) as err:
        default_registry().validate(ToolCall(name=tool, args={**args, "impl": impl}))
    text = str(err.value)
    assert "impl" in text and "1, 2" in text, text
    assert f"{tool} has no implementation {impl!r}; this imagent has 1, 2" in text


def test_pixelate_is_new_in_impl_2():
    reg = default_registry()
    assert reg.normalise(ToolCall(name="global_edit", args={"operation": "pixelate"})) \
        .args["impl"] == 2
    with pytest.raises(ToolArgumentError, match="pixelate is new in global_edit impl 2"):
        reg.validate(ToolCall(name="global_edit", args={"operation": "pixelate", "impl": 1}))


def test_geometric_and_model_paths_accept_either_impl():
    img = Image.fromarray(np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3))
    for impl in IMPLS["global_edit"]:
        out = GE._apply(img, GE.Args(operation="rotate", value=90, impl=impl), None)[0]
        assert np.array_equal(np.asarray(out), np.rot90(np.asarray(img)))
