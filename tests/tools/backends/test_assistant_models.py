"""The assistant on the ``models`` profile: requests the embedded default cannot do are routed
to the model backends (tiny random models, loaded through settings as a user's would be), and
the stored calls replay."""

from __future__ import annotations

import numpy as np
import pytest

from imagent import Assistant
from imagent.assistant.config import load_settings
from imagent.errors import ModelUnavailableError, NeedsModelError

from .conftest import DEVICE


def _open(photo, **models):
    overrides = {"profile": "models", "device": DEVICE}
    overrides.update({f"model_{role}": str(path) for role, path in models.items()})
    return Assistant.open(photo, settings=load_settings(overrides))


def test_style_request_runs_the_instruction_model_and_replays(photo, tiny_instruct):
    with _open(photo, instruct=tiny_instruct) as a:
        before = np.asarray(a.image)
        turn = a.ask("make it look like winter")
        call = turn.version.tool_calls[-1]
        assert call["name"] == "global_edit" and call["args"]["operation"] == "instruct"
        assert a.image.size == (160, 120) and not np.array_equal(np.asarray(a.image), before)
        assert any(e.get("kind") == "step" for e in turn.events)  # per-step progress reached the turn
        assert all(r["match"] for r in a.replay(verify=True).rows)


def test_add_and_replace_use_inpainting_inside_the_region(photo, tiny_powerpaint):
    with _open(photo, inpaint=tiny_powerpaint) as a:
        original = np.asarray(a.image).astype(int)
        turn = a.ask("replace the top-left corner with a flower")
        names = [c["name"] for c in turn.version.tool_calls]
        assert names == ["ground", "build_mask", "insert"]
        assert turn.version.tool_calls[-1]["args"]["kind"] == "generate"
        after = np.asarray(a.image).astype(int)
        assert np.array_equal(after[80:, :], original[80:, :])  # far from the corner: untouched
        turn = a.ask("add a cat")
        assert turn.version.seq == 2


def test_offline_profile_names_the_model_and_models_profile_without_it_says_how_to_get_it(photo, tmp_path):
    with Assistant.open(photo) as a:
        with pytest.raises(NeedsModelError, match="instruct-pix2pix"):
            a.ask("make it look like winter")
    missing = tmp_path / "no-such-model"
    with _open(photo, instruct=missing) as a:
        with pytest.raises(ModelUnavailableError) as err:
            a.ask("make it look like winter")
        assert err.value.exit_code == 3 and "imagent models pull instruct" in str(err.value)
        assert len(a.history) == 1
