"""The result check in the assistant: retries of a failed removal, honest replies, replay."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from imagent import Assistant
from imagent.tools.registry import Registry, ToolSpec, default_registry
from imagent.tools.types import ToolResult


class _RemoveArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    impl: int = 2  # like the real remove: stored calls name their implementation (replay)


def _flaky_remove(works_from_seed: int):
    """A remove that leaves the object in place for seeds below ``works_from_seed``."""

    def run(args, state):
        arr = np.asarray(state.image).copy()
        if args.seed >= works_from_seed:
            arr[state.mask >= 0.5] = (128, 128, 128)
        return ToolResult(image=Image.fromarray(arr), backend="fake", metrics={"seed": args.seed})

    return run


def _registry(works_from_seed: int) -> Registry:
    reg = Registry()
    base = default_registry()
    for name in base.names():
        spec = base.spec(name)
        if name == "remove":
            spec = ToolSpec("remove", "fake remove", _RemoveArgs, _flaky_remove(works_from_seed))
        reg.register(spec)
    return reg


def _photo(tmp_path):
    rng = np.random.default_rng(0)
    arr = np.clip(rng.normal(128, 5, (90, 120, 3)), 0, 255).astype(np.uint8)
    arr[30:60, 40:80] = (220, 30, 30)
    p = tmp_path / "p.png"
    Image.fromarray(arr).save(p)
    return p


def test_failed_removal_is_retried_and_the_passing_attempt_is_stored(tmp_path):
    with Assistant.open(_photo(tmp_path)) as a:
        a.registry = _registry(works_from_seed=1)
        turn = a.ask("remove the red square")
        check = turn.metrics["check"]
        step = check["steps"][0]
        assert check["passed"] and step["kept_attempt"] == 1 and len(step["attempts"]) == 2
        assert step["attempts"][0]["passed"] is False
        assert "still found" in " ".join(step["attempts"][0]["failures"])
        calls = {c["name"]: c["args"] for c in turn.version.tool_calls}
        assert calls["remove"]["seed"] == 1  # the kept attempt's seed and mask are stored
        assert calls["build_mask"]["dilate"] > 4 and calls["build_mask"]["shadow"] is True
        assert "failed" not in turn.reply
        out = np.asarray(a.image)
        assert ((out[..., 0] > 200) & (out[..., 1] < 60)).sum() == 0
        rows = a.replay(verify=True)
        rows = rows.rows if hasattr(rows, "rows") else rows
        assert all(r["match"] for r in rows)


def test_removal_that_keeps_failing_says_so_and_keeps_the_best(tmp_path):
    with Assistant.open(_photo(tmp_path)) as a:
        a.registry = _registry(works_from_seed=99)
        a.check_config.max_retries = 2
        turn = a.ask("remove the red square")
        step = turn.metrics["check"]["steps"][0]
        assert turn.metrics["check"]["passed"] is False
        assert len(step["attempts"]) == 3 and all(not x["passed"] for x in step["attempts"])
        assert "result check" in turn.reply and "failed" in turn.reply and "3 attempts" in turn.reply
        # a failed check is not "done": nothing is committed, the reply says so
        assert turn.status == "failed" and not turn.ok and turn.version is None
        assert len(a.history) == 1 and a.head.seq == 0
        assert step["attempts"][0]["verification"]["still_found"] == 1


def test_global_edit_is_not_thresholded_and_no_effect_is_reported(tmp_path):
    with Assistant.open(_photo(tmp_path)) as a:
        turn = a.ask("make it a bit brighter")
        step = turn.metrics["check"]["steps"][0]
        assert step["passed"] and "threshold" not in step["attempts"][0]
        turn = a.ask("rotate 360 degrees")
        assert turn.metrics["check"]["passed"] is False and turn.status == "failed"
        assert "no visible effect" in turn.reply and turn.version is None
