from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel, ValidationError

from imagent.errors import InternalError, ToolArgumentError, UsageError
from imagent.tools.registry import Registry, ToolSpec, default_registry
from imagent.tools.types import ToolCall, ToolState

EXPECTED = ["ground", "build_mask", "remove", "insert", "outpaint", "global_edit", "extract",
            "recolor", "undo", "redo", "checkout"]


def _state() -> ToolState:
    rng = np.random.default_rng(0)
    return ToolState(image=Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)))


def test_default_registry_knows_every_tool_and_is_cached():
    reg = default_registry()
    assert reg.names() == EXPECTED
    assert default_registry() is reg
    for name in EXPECTED:
        spec = reg.spec(name)
        assert spec.description
        assert spec.args_model.model_config.get("extra") == "forbid"
        assert spec.session == (name in ("undo", "redo", "checkout"))
        for fname, field in spec.args_model.model_fields.items():
            assert field.description, f"{name}.{fname} has no description"


def test_unknown_tool_lists_known_names():
    with pytest.raises(ToolArgumentError) as ei:
        default_registry().spec("paint")
    assert "'paint'" in str(ei.value)
    for name in ("ground", "remove", "outpaint"):
        assert name in ei.value.hint


def test_validate_error_quotes_tool_field_value_and_allowed():
    reg = default_registry()
    with pytest.raises(ToolArgumentError) as ei:
        reg.validate(ToolCall(name="remove", args={"patch_size": 99}))
    msg = str(ei.value)
    assert "remove" in msg and "patch_size" in msg and "99" in msg and "32" in msg
    with pytest.raises(ToolArgumentError) as ei:
        reg.validate(ToolCall(name="ground", args={"phrase": "x", "select": "diagonal"}))
    msg = str(ei.value)
    assert "select" in msg and "'diagonal'" in msg and "'largest'" in msg
    with pytest.raises(ToolArgumentError) as ei:
        reg.validate(ToolCall(name="global_edit", args={"operation": "cartoonify"}))
    assert "'cartoonify'" in str(ei.value) and "brightness" in str(ei.value)


def test_validate_missing_and_extra_arguments():
    reg = default_registry()
    with pytest.raises(ToolArgumentError, match="give 'phrase' or 'referent'"):
        reg.validate(ToolCall(name="ground", args={}))
    with pytest.raises(ToolArgumentError) as ei:
        reg.validate(ToolCall(name="remove", args={"radius": 2}))
    assert "'radius'" in str(ei.value) and "seed" in ei.value.hint


def test_per_operation_range_of_global_edit():
    reg = default_registry()
    with pytest.raises(ToolArgumentError) as ei:
        reg.validate(ToolCall(name="global_edit", args={"operation": "brightness", "amount": 5}))
    assert "amount 5" in str(ei.value) and "-1..1" in str(ei.value)


def test_normalise_fills_defaults_and_is_json():
    reg = default_registry()
    call = reg.normalise(ToolCall(name="remove", args={}))
    # patch_size None = chosen from the hole size (deterministic, so replay is exact)
    assert call.args == {"seed": 0, "backend": "auto", "algorithm": "auto", "patch_size": None,
                         "margin": 0.25,
                         "feather": 0, "prompt": "", "negative_prompt": "",
                         "num_inference_steps": 30, "guidance_scale": None, "strength": 1.0,
                         "resample_count": 0, "jump_length": 5, "num_candidates": 1,
                         "impl": 2}  # a new call names today's implementation
    ge = reg.normalise(ToolCall(name="global_edit", args={"operation": "brightness"}))
    assert ge.args["amount"] == 0.15  # the per-operation default is made explicit
    for name in EXPECTED:
        spec = reg.spec(name)
        required = {k for k, f in spec.args_model.model_fields.items() if f.is_required()}
        assert required <= {"phrase", "kind", "version", "operation", "color"}
    json.dumps(reg.normalise(ToolCall(name="outpaint", args={"right": 10})).to_json_dict())


def test_toolcall_json_round_trip():
    call = ToolCall(name="build_mask", args={"source": "box", "box": [1, 2, 30, 40]})
    again = ToolCall.model_validate_json(call.model_dump_json())
    assert again == call
    assert ToolCall(**json.loads(json.dumps(call.to_json_dict()))) == call
    norm = default_registry().normalise(call)
    assert default_registry().normalise(norm) == norm  # idempotent


def test_run_sets_normalised_call_and_session_calls_refused():
    reg = default_registry()
    st = _state()
    res = reg.run(ToolCall(name="ground", args={"phrase": "the left half"}), st)
    # the stored call names the backend that ran ("auto" resolved to the embedded grounding)
    assert res.extra["call"] == {"name": "ground", "args": {
        "phrase": "the left half", "select": "auto", "index": 0, "backend": "embedded",
        "box_threshold": 0.35, "text_threshold": 0.25,
        # the stored call names the referent that was grounded
        "referent": {"text": "the left half", "noun": None, "colour": None, "place": "half:left",
                     "select": None, "ordinal": None, "box": None, "points": None,
                     "region": None}}}
    for name in ("undo", "redo", "checkout"):
        args = {"version": "3"} if name == "checkout" else {}
        reg.validate(ToolCall(name=name, args=args))
        with pytest.raises(UsageError, match="assistant"):
            reg.run(ToolCall(name=name, args=args), st)
    with pytest.raises(ToolArgumentError):
        reg.validate(ToolCall(name="undo", args={"steps": 0}))


def test_unexpected_exception_becomes_internal_error():
    class A(BaseModel):
        pass

    def broken(args, state):
        raise ZeroDivisionError("oops")

    reg = Registry()
    reg.register(ToolSpec("broken", "d", A, broken))
    with pytest.raises(InternalError, match="broken"):
        reg.run(ToolCall(name="broken"), _state())
    with pytest.raises(ValueError):
        reg.register(ToolSpec("broken", "d", A, broken))


def test_events_are_emitted():
    events = []
    st = _state()
    st.events = events.append
    default_registry().run(ToolCall(name="ground", args={"phrase": "the center"}), st)
    assert [e["kind"] for e in events] == ["tool_start", "tool_end"]


def test_json_schemas():
    schemas = default_registry().json_schemas()
    assert set(schemas) == set(EXPECTED)
    assert schemas["ground"]["properties"]["select"]["enum"][0] == "auto"
    assert schemas["remove"]["additionalProperties"] is False


def test_as_langchain_tools_match_schema_and_call_executor():
    reg = default_registry()
    seen: list[ToolCall] = []

    def executor(call: ToolCall) -> str:
        seen.append(call)
        return f"ok {call.name}"

    tools = reg.as_langchain_tools(executor)
    from langchain_core.tools import StructuredTool

    assert [t.name for t in tools] == EXPECTED
    schemas = reg.json_schemas()
    for t in tools:
        assert isinstance(t, StructuredTool)
        assert t.args_schema.model_json_schema() == schemas[t.name]
        assert t.description == reg.spec(t.name).description
    by = {t.name: t for t in tools}
    out = by["ground"].invoke({"phrase": "the sky", "select": "top"})
    assert out == "ok ground"
    assert seen[-1] == reg.normalise(ToolCall(name="ground", args={"phrase": "the sky",
                                                                   "select": "top"}))
    by["outpaint"].invoke({"percent": 25, "sides": ["right"]})
    assert seen[-1].args["percent"] == 25.0 and seen[-1].args["sides"] == ["right"]
    n_calls = len(seen)
    with pytest.raises(ValidationError, match="patch_size"):  # langchain validates with the same schema
        by["remove"].invoke({"patch_size": 99})
    assert len(seen) == n_calls  # rejected before the executor ran
    json.dumps(seen[-1].to_json_dict())


def test_importing_tools_does_not_import_torch():
    # In a fresh interpreter: other tests in this process (the model backends) import torch.
    import subprocess

    code = ("import sys\nfrom imagent.tools.registry import default_registry\n"
            "reg = default_registry()\nreg.json_schemas()\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_resolved_args_are_merged_into_the_stored_call():
    from typing import Literal

    class A(BaseModel):
        model_config = {"extra": "forbid"}
        backend: Literal["auto", "fast", "slow"] = "auto"
        seed: int = 0

    from imagent.tools.types import ToolResult

    def tool(args, state):
        res = ToolResult(message="ok")
        res.extra["resolved_args"] = {"backend": "slow"}
        return res

    def bad(args, state):
        res = ToolResult(message="ok")
        res.extra["resolved_args"] = {"backend": "warp"}
        return res

    reg = Registry()
    reg.register(ToolSpec("t", "d", A, tool))
    reg.register(ToolSpec("b", "d", A, bad))
    res = reg.run(ToolCall(name="t", args={"seed": 3}), _state())
    assert res.extra["call"] == {"name": "t", "args": {"backend": "slow", "seed": 3}}
    # the stored call replays as itself
    assert reg.normalise(ToolCall(**res.extra["call"])).args == res.extra["call"]["args"]
    with pytest.raises(InternalError, match="resolved"):
        reg.run(ToolCall(name="b"), _state())


def test_offline_tools_record_the_embedded_backend_and_do_not_import_torch():
    # remove/ground/build_mask with backend/refine "auto" and no model manager: the stored call
    # names what ran, and the embedded path never imports torch (fresh interpreter).
    import subprocess

    code = (
        "import sys, json, numpy as np\nfrom PIL import Image\n"
        "from imagent.tools.registry import default_registry\n"
        "from imagent.tools.types import ToolCall, ToolState\n"
        "rng = np.random.default_rng(0)\n"
        "st = ToolState(image=Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)))\n"
        "reg = default_registry()\ncalls = []\n"
        "for name, args in [('ground', {'phrase': 'the top-left corner'}), ('build_mask', {}),"
        " ('remove', {}), ('outpaint', {'right': 8})]:\n"
        "    r = reg.run(ToolCall(name=name, args=args), st)\n"
        "    st.detections = r.detections or st.detections\n"
        "    st.mask = r.mask if r.mask is not None and name == 'build_mask' else st.mask\n"
        "    st.image = r.image or st.image\n"
        "    calls.append(r.extra['call'])\n"
        "print(json.dumps([calls, sorted(m for m in ('torch', 'diffusers', 'transformers')"
        " if m in sys.modules)]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    calls, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == []
    args = {c["name"]: c["args"] for c in calls}
    assert args["ground"]["backend"] == "embedded"
    assert (args["build_mask"]["refine"], args["build_mask"]["backend"]) == (False, "embedded")
    assert args["remove"]["backend"] == "embedded"
    assert args["remove"]["algorithm"] in ("patchmatch", "telea")
    assert args["outpaint"]["backend"] == "embedded"
    assert args["outpaint"]["algorithm"] in ("patchmatch", "reflect")


# ------------------------------------------------------------------ one backend vocabulary
def test_every_backend_argument_uses_the_table():
    from imagent.tools.backends import BACKENDS, backend_choices

    reg = default_registry()
    with_backend = set()
    for name in reg.names():
        prop = reg.spec(name).args_model.model_json_schema().get("properties", {})
        assert "method" not in prop or name not in BACKENDS, name
        if "backend" in prop:
            with_backend.add(name)
            assert tuple(prop["backend"]["enum"]) == backend_choices(name)
    assert with_backend == {"ground", "build_mask", "remove", "outpaint", "global_edit"}


def test_resolve_backend_auto_explicit_and_no_manager():
    from imagent.errors import ModelUnavailableError, NeedsModelError
    from imagent.tools.backends import resolve_backend

    class Mgr:
        def __init__(self, *roles):
            self.roles = set(roles)

        def available(self, role):
            return role in self.roles

    off = _state()
    assert resolve_backend("remove", "auto", off) == "embedded"
    assert resolve_backend("remove", "embedded", off) == "embedded"
    with pytest.raises(ModelUnavailableError, match="lama") as ei:
        resolve_backend("remove", "lama", off)
    assert not isinstance(ei.value, NeedsModelError)
    with pytest.raises(NeedsModelError, match="instruct"):
        resolve_backend("global_edit", "auto", off, allowed=("instruct-pix2pix",))
    st = _state()
    st.models = Mgr("lama")
    assert resolve_backend("remove", "auto", st) == "lama"
    st.models = Mgr("lama", "inpaint")
    assert resolve_backend("remove", "auto", st) == "diffusion"  # table order
    assert resolve_backend("remove", "auto", st, prefer_model=False) == "embedded"
    st.models = Mgr("text2image")
    assert resolve_backend("insert", "auto", st, allowed=("diffusion",), technique="blended") \
        == "diffusion"
    with pytest.raises(ToolArgumentError, match="cannot do"):
        resolve_backend("global_edit", "embedded", st, allowed=("instruct-pix2pix",))
    with pytest.raises(ToolArgumentError, match="unknown backend"):
        resolve_backend("remove", "patchmatch", st)


@pytest.mark.parametrize("old, new", [
    ({"name": "remove", "args": {"backend": "patchmatch", "seed": 2}},
     {"name": "remove", "args": {"backend": "embedded", "algorithm": "patchmatch", "seed": 2,
                                 "impl": 1}}),
    ({"name": "remove", "args": {"backend": "telea"}},
     {"name": "remove", "args": {"backend": "embedded", "algorithm": "telea", "impl": 1}}),
    ({"name": "remove", "args": {"backend": "diffusion"}},
     {"name": "remove", "args": {"backend": "diffusion", "impl": 1}}),
    ({"name": "outpaint", "args": {"backend": "classical", "right": 8}},
     {"name": "outpaint", "args": {"backend": "embedded", "right": 8, "impl": 1}}),
    ({"name": "insert", "args": {"kind": "generate", "prompt": "a cat", "method": "shape"}},
     {"name": "insert", "args": {"kind": "generate", "prompt": "a cat", "technique": "shape"}}),
    ({"name": "build_mask", "args": {"refine": "none"}},
     {"name": "build_mask", "args": {"refine": False, "backend": "embedded"}}),
    ({"name": "build_mask", "args": {"refine": "grabcut"}},
     {"name": "build_mask", "args": {"refine": True, "backend": "embedded"}}),
    ({"name": "build_mask", "args": {"refine": "sam"}},
     {"name": "build_mask", "args": {"refine": True, "backend": "sam"}}),
    ({"name": "build_mask", "args": {"refine": "auto"}},
     {"name": "build_mask", "args": {"refine": None, "backend": "auto"}}),
    ({"name": "ground", "args": {"phrase": "x", "backend": "embedded"}},
     {"name": "ground", "args": {"phrase": "x", "backend": "embedded"}}),
])
def test_upgrade_call_maps_old_names_and_values(old, new):
    # (a stored remove/outpaint/global_edit call without impl was made by 0.1.0: impl 1)
    from imagent.tools.registry import upgrade_call

    before = json.loads(json.dumps(old))
    assert upgrade_call(old) == new
    assert old == before  # the stored call is not modified in place
    assert upgrade_call(new) == new  # current calls come back equal
    default_registry().validate(ToolCall(**old))  # old calls validate


def test_old_stored_calls_replay_bit_identically():
    # a version stored before the one backend vocabulary, replayed through Registry.run
    reg = default_registry()
    old = [{"name": "build_mask", "args": {"source": "box", "box": [20, 16, 60, 48],
                                           "refine": "none", "dilate": 2}},
           {"name": "remove", "args": {"backend": "patchmatch", "seed": 1}},
           {"name": "insert", "args": {"kind": "text", "text": "hi", "method": "auto"}},
           {"name": "outpaint", "args": {"right": 12, "backend": "classical"}}]
    new = [{"name": "build_mask", "args": {"source": "box", "box": [20, 16, 60, 48],
                                           "refine": False, "backend": "embedded", "dilate": 2}},
           {"name": "remove", "args": {"backend": "embedded", "algorithm": "patchmatch",
                                       "seed": 1}},
           {"name": "insert", "args": {"kind": "text", "text": "hi"}},
           {"name": "outpaint", "args": {"right": 12, "backend": "embedded"}}]

    def replay(calls):
        st, stored = _state(), []
        for c in calls:
            r = reg.run(ToolCall(**c), st)
            st.image = r.image or st.image
            st.mask = r.mask if c["name"] == "build_mask" else st.mask
            stored.append(r.extra["call"])
        return np.asarray(st.image), stored

    a, stored_a = replay(old)
    b, stored_b = replay(new)
    np.testing.assert_array_equal(a, b)
    assert stored_a == stored_b
