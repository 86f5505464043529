"""The tools use the model backends when ``state.models`` is a manager: everything through
``default_registry().run(ToolCall(...), ToolState(..., models=manager))``, with the tiny random
models of conftest.py (64 px native, 2 steps)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from imagent.errors import Cancelled, ModelUnavailableError, NeedsModelError
from imagent.tools import masks as M
from imagent.tools.registry import default_registry
from imagent.tools.types import Detection, ToolCall, ToolState

from .conftest import assert_outside_unchanged, make_manager, same, small_case

REG = default_registry()


def run(name, args, state):
    return REG.run(ToolCall(name=name, args=args), state)


def collecting(state):
    events = []
    state.events = events.append
    return events


def steps(events, tool):
    return [(e["step"], e["total"]) for e in events if e["kind"] == "step" and e["tool"] == tool]


@pytest.fixture(scope="module")
def mgr(tiny_inpaint, tiny_instruct, tiny_gdino, tiny_sam_dir):
    return make_manager(inpaint=tiny_inpaint, instruct=tiny_instruct, grounding=tiny_gdino,
                        segmentation=tiny_sam_dir, lama="")


@pytest.fixture(scope="module")
def lama_only(tiny_lama_file):
    return make_manager(inpaint="", lama=tiny_lama_file)


@pytest.fixture(scope="module")
def t2i_only(tiny_text2image):
    return make_manager(inpaint="", text2image=tiny_text2image)


# ------------------------------------------------------------------------------ remove
def test_remove_auto_uses_diffusion_keeps_outside_and_stores_the_backend(mgr, tiny_inpaint):
    img, m = small_case()
    st = ToolState(img, mask=m, models=mgr)
    events = collecting(st)
    res = run("remove", {"seed": 1, "num_inference_steps": 2}, st)
    assert res.extra["call"]["args"]["backend"] == "diffusion"
    assert res.backend == res.metrics["backend"] == "diffusion"
    assert res.metrics["pipeline"] == "diffusers-inpaint"
    assert res.model_ids == {"inpaint": str(tiny_inpaint)}
    assert res.image.size == img.size
    assert_outside_unchanged(img, res.image, m)
    assert steps(events, "remove") == [(1, 2), (2, 2)]
    again = run("remove", {"seed": 1, "num_inference_steps": 2}, ToolState(img, mask=m, models=mgr))
    other = run("remove", {"seed": 2, "num_inference_steps": 2}, ToolState(img, mask=m, models=mgr))
    assert same(res.image, again.image) and not same(res.image, other.image)
    # replaying the stored call reproduces the image
    replay = REG.run(ToolCall(**res.extra["call"]), ToolState(img, mask=m, models=mgr))
    assert same(replay.image, res.image)


def test_remove_auto_uses_lama_when_only_lama_is_configured(lama_only, tiny_lama_file):
    img, m = small_case()
    res = run("remove", {}, ToolState(img, mask=m, models=lama_only))
    assert res.extra["call"]["args"]["backend"] == "lama" and res.backend == "lama"
    assert res.model_ids == {"lama": str(tiny_lama_file)}
    assert_outside_unchanged(img, res.image, m)


def test_remove_explicit_model_backend_missing_is_the_managers_error(lama_only):
    img, m = small_case()
    st = ToolState(img, mask=m, models=lama_only)
    with pytest.raises(ModelUnavailableError) as ei:  # no inpaint model: never a silent fallback
        run("remove", {"backend": "diffusion", "num_inference_steps": 2}, st)
    assert ei.value.exit_code == 3 and "inpaint" in str(ei.value)
    assert st.image is img and st.mask is m


def test_remove_stored_diffusion_call_replayed_without_models_fails_clearly(mgr):
    img, m = small_case()
    res = run("remove", {"num_inference_steps": 2}, ToolState(img, mask=m, models=mgr))
    st = ToolState(img, mask=m)  # the offline profile: no manager
    with pytest.raises(ModelUnavailableError) as ei:
        REG.run(ToolCall(**res.extra["call"]), st)
    assert ei.value.exit_code == 3
    assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in ei.value.message
    assert "imagent models pull inpaint" in ei.value.hint and "--profile models" in ei.value.hint
    assert st.image is img


def test_cancel_stops_within_one_step(mgr):
    img, m = small_case()
    st = ToolState(img, mask=m, models=mgr, cancel=threading.Event())
    seen = []

    def on_event(e):
        if e["kind"] == "step":
            seen.append((e["step"], e["total"]))
            st.cancel.set()

    st.events = on_event
    with pytest.raises(Cancelled):
        run("remove", {"num_inference_steps": 4}, st)
    assert seen == [(1, 4)] and st.image is img
    with pytest.raises(Cancelled):  # already cancelled: nothing runs
        run("insert", {"kind": "generate", "prompt": "a cat", "num_inference_steps": 2}, st)
    assert seen == [(1, 4)]


# ------------------------------------------------------------------------------ outpaint
def test_outpaint_diffusion_keeps_the_original_pixels(mgr):
    img, _ = small_case()
    st = ToolState(img, models=mgr)
    events = collecting(st)
    res = run("outpaint", {"right": 32, "top": 8, "num_inference_steps": 2, "seed": 3}, st)
    w, h = img.size
    assert res.image.size == (w + 32, h + 8)
    assert res.extra["call"]["args"]["backend"] == "diffusion"
    assert res.model_ids["inpaint"] and res.backend == "diffusion"
    assert res.metrics["pipeline"] == "diffusers-inpaint"
    out = np.asarray(res.image)
    assert np.array_equal(out[8:8 + h, 0:w], np.asarray(img))  # bit-identical at its offset
    assert res.mask.shape == (h + 8, w + 32) and res.mask[8:, :w].max() == 0
    assert steps(events, "outpaint")[-1] == (2, 2)
    embedded = run("outpaint", {"right": 32, "top": 8, "backend": "embedded"}, ToolState(img))
    assert not same(embedded.image, res.image)  # the new area really was generated
    again = run("outpaint", {"right": 32, "top": 8, "num_inference_steps": 2, "seed": 3},
                ToolState(img, models=mgr))
    assert same(again.image, res.image)


# ------------------------------------------------------------------------------ insert
def test_insert_generate_paints_into_the_mask(mgr):
    img, m = small_case()
    st = ToolState(img, mask=m, models=mgr)
    events = collecting(st)
    res = run("insert", {"kind": "generate", "prompt": "a cat", "num_inference_steps": 2,
                         "seed": 5}, st)
    assert res.extra["call"]["args"]["technique"] == "inpaint"
    assert res.backend == "diffusion" and res.metrics["technique"] == "inpaint"
    assert res.metrics["task"] == "insert" and res.model_ids["inpaint"]
    assert_outside_unchanged(img, res.image, m)
    assert np.array_equal(res.mask, m)
    assert steps(events, "insert") == [(1, 2), (2, 2)]
    again = run("insert", {"kind": "generate", "prompt": "a cat", "num_inference_steps": 2,
                           "seed": 5}, ToolState(img, mask=m, models=mgr))
    assert same(res.image, again.image)


def test_insert_generate_in_a_box_and_shape_technique(mgr):
    img, _ = small_case()
    res = run("insert", {"kind": "generate", "prompt": "a dog", "box": [10, 10, 50, 40],
                         "technique": "shape", "fitting_degree": 0.8, "num_inference_steps": 2},
              ToolState(img, models=mgr))
    box = M.box_mask(img.size, (10, 10, 50, 40))
    assert res.metrics["task"] == "shape" and res.extra["call"]["args"]["technique"] == "shape"
    assert_outside_unchanged(img, res.image, box)


def test_insert_generate_auto_uses_blended_with_only_a_text2image_model(t2i_only):
    img, m = small_case()
    res = run("insert", {"kind": "generate", "prompt": "a cat", "num_inference_steps": 2},
              ToolState(img, mask=m, models=t2i_only))
    assert res.extra["call"]["args"]["technique"] == "blended"
    assert res.backend == "diffusion" and "text2image" in res.model_ids
    assert res.metrics["pipeline"] == "blended-latent-diffusion"
    assert_outside_unchanged(img, res.image, m)


# ------------------------------------------------------------------------------ global_edit
def test_global_edit_instruct_whole_image_and_masked(mgr, tiny_instruct):
    img, m = small_case()
    st = ToolState(img, models=mgr)
    events = collecting(st)
    res = run("global_edit", {"operation": "instruct", "prompt": "make it look like winter",
                              "num_inference_steps": 2}, st)
    assert res.image.size == img.size and not same(res.image, img)
    assert res.backend == "instruct-pix2pix"
    assert res.extra["call"]["args"]["backend"] == "instruct-pix2pix"
    assert res.model_ids == {"instruct": str(tiny_instruct)}
    assert res.extra["call"]["args"]["image_guidance_scale"] == 1.5
    assert steps(events, "global_edit") == [(1, 2), (2, 2)]
    local = run("global_edit", {"operation": "instruct", "prompt": "make it snowy",
                                "region": "mask", "num_inference_steps": 2},
                ToolState(img, mask=m, models=mgr))
    assert_outside_unchanged(img, local.image, m)


# ------------------------------------------------------------------------------ ground
def test_ground_object_phrase_goes_to_grounding_dino_places_stay_geometry(mgr, tiny_gdino):
    img, _ = small_case()
    st = ToolState(img, models=mgr)
    th = {"box_threshold": 0.0, "text_threshold": 0.0}
    res = run("ground", {"phrase": "the cat on the left", **th}, st)
    assert res.backend == "grounding-dino" and res.metrics["method"] == "grounding-dino"
    assert res.extra["call"]["args"]["backend"] == "grounding-dino"
    assert res.model_ids == {"grounding": str(tiny_gdino)}
    dets = res.detections
    assert res.metrics["candidates"] == len(dets) >= 1
    assert res.metrics["ambiguous"] is False  # "on the left" chose the instance
    centres = [(d.box[0] + d.box[2]) / 2 for d in dets]
    assert centres[0] == min(centres) and res.metrics["text"] == "cat."
    # an instance index from the caller: the second from the left comes first
    if len(dets) > 1:
        second = run("ground", {"phrase": "the cat", "select": "left", "index": 1, **th},
                     ToolState(img, models=mgr))
        order = sorted(dets, key=lambda d: ((d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2))
        assert second.detections[0].box == order[1].box
    corner = run("ground", {"phrase": "the top-left corner"}, ToolState(img, models=mgr))
    assert corner.metrics["method"] == "geometry" and corner.backend == "embedded"
    assert corner.extra["call"]["args"]["backend"] == "embedded"
    w, h = img.size
    assert corner.detections[0].box == (0, 0, round(w / 3), round(h / 3))
    box = run("ground", {"phrase": "box 5,6,40,30"}, ToolState(img, models=mgr))
    assert box.metrics["method"] == "box" and box.detections[0].box == (5, 6, 40, 30)


# ------------------------------------------------------------------------------ build_mask
def test_build_mask_refines_a_box_with_sam(mgr, tiny_sam_dir):
    from imagent.tools.backends.sam import segment

    img, _ = small_case()
    st = ToolState(img, models=mgr)
    res = run("build_mask", {"source": "box", "box": [20, 10, 90, 70]}, st)
    assert res.extra["call"]["args"]["refine"] is True and res.backend == "sam"
    assert res.extra["call"]["args"]["backend"] == "sam"
    assert res.model_ids == {"segmentation": str(tiny_sam_dir)}
    expect = segment(mgr, img, boxes=[[20, 10, 90, 70]])[0]
    if expect.any():  # the SAM mask replaces the box mask
        assert np.array_equal(res.mask, expect)
        grown = run("build_mask", {"source": "box", "box": [20, 10, 90, 70], "dilate": 3},
                    ToolState(img, models=mgr))
        assert np.array_equal(grown.mask, M.dilate(expect, 3))  # then dilate etc. apply
    else:  # a random tiny SAM may answer nothing: the box is kept and that is said
        assert res.metrics["sam_empty"] is True
    # a detection that carries its own mask (colour segmentation, sky) is kept by "auto"
    own = M.box_mask(img.size, (30, 20, 60, 50), shape="ellipse")
    st2 = ToolState(img, models=mgr,
                    detections=[Detection(box=(30, 20, 60, 50), score=1.0, label="x", mask=own)])
    kept = run("build_mask", {}, st2)
    assert kept.extra["call"]["args"]["refine"] is False and np.array_equal(kept.mask, own)
    assert kept.extra["call"]["args"]["backend"] == "embedded" and kept.backend == "embedded"
    # a detection box is refined: SAM gets the detection's box as its prompt
    st3 = ToolState(img, models=mgr,
                    detections=[Detection(box=(20, 10, 90, 70), score=1.0, label="x")])
    det = run("build_mask", {}, st3)
    assert det.extra["call"]["args"]["refine"] is True and np.array_equal(det.mask, res.mask)
    assert det.extra["call"]["args"]["backend"] == "sam"


# ------------------------------------------------------------------------------ no manager
@pytest.mark.parametrize("name,args,cls,needle", [
    ("remove", {"backend": "diffusion"}, ModelUnavailableError, "imagent models pull inpaint"),
    ("remove", {"backend": "lama"}, ModelUnavailableError, "model_lama"),
    ("outpaint", {"right": 8, "backend": "diffusion"}, ModelUnavailableError,
     "imagent models pull inpaint"),
    ("insert", {"kind": "generate", "prompt": "a cat"}, NeedsModelError,
     "imagent models pull inpaint"),
    ("global_edit", {"operation": "instruct", "prompt": "make it winter"}, NeedsModelError,
     "imagent models pull instruct"),
    ("ground", {"phrase": "the cat", "backend": "grounding-dino"}, ModelUnavailableError,
     "imagent models pull grounding"),
    ("build_mask", {"source": "box", "box": [1, 1, 20, 20], "backend": "sam"},
     ModelUnavailableError, "imagent models pull segmentation"),
    ("build_mask", {"source": "box", "box": [1, 1, 20, 20], "refine": "sam"},  # an old call
     ModelUnavailableError, "imagent models pull segmentation"),
    ("global_edit", {"operation": "instruct", "prompt": "make it winter",
                     "backend": "instruct-pix2pix"}, NeedsModelError,
     "imagent models pull instruct"),
])
def test_without_a_manager_each_model_path_is_a_clear_exit_3_error(name, args, cls, needle):
    img, m = small_case()
    st = ToolState(img, mask=m)
    with pytest.raises(cls) as ei:
        run(name, args, st)
    err = ei.value
    assert err.exit_code == 3 and needle in err.hint and "--profile models" in err.hint
    if name == "global_edit":
        assert "timbrooks/instruct-pix2pix" in err.message
    if name == "insert":
        assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in err.message
    assert st.image is img and st.mask is m and st.detections == []


def test_without_a_manager_auto_paths_are_unchanged():
    img, m = small_case()
    res = run("remove", {}, ToolState(img, mask=m))
    assert res.backend == "embedded" and not res.model_ids
    assert res.metrics["algorithm"] in ("patchmatch", "telea")
    g = run("ground", {"phrase": "the top-left corner"}, ToolState(img))
    assert g.extra["call"]["args"]["backend"] == "embedded"
