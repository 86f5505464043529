"""The agent loop end to end on the embedded default: plan → tools → commit, and the session moves."""

import numpy as np
import pytest
from PIL import Image

from imagent import Assistant
from imagent.errors import GroundingError, ImageLoadError, NeedsModelError, NothingToUndo, SessionNotFound

REMOVE = "remove the red square at box 18,13,56,47"


def _arr(img):
    return np.asarray(img, dtype=np.int16)


def test_remove_adjust_outpaint_undo_redo_checkout(photo):
    with Assistant.open(photo) as a:
        root = a.head
        assert root.seq == 0
        original = _arr(a.image)

        t1 = a.ask(REMOVE)
        assert t1.version.seq == 1 and t1.question is None
        after = _arr(a.image)
        # The red object is gone: no strongly red pixels remain in its box.
        box = after[13:47, 18:56]
        assert ((box[..., 0] > 200) & (box[..., 1] < 60)).mean() < 0.01
        # Pixels far from the box are bit-identical.
        assert np.array_equal(after[60:, :], original[60:, :])
        assert t1.version.tool_calls[0]["name"] == "ground"
        assert t1.version.tool_calls[-1]["args"]["seed"] == 0
        assert t1.metrics["change"]["changed_fraction"] > 0

        t2 = a.ask("make it a bit brighter")
        assert _arr(a.image).mean() > after.mean()
        t3 = a.ask("extend the picture to the right by 25%")
        assert a.image.size == (200, 120)

        assert a.undo().id == t2.version.id
        assert a.image.size == (160, 120)
        assert a.redo().id == t3.version.id
        assert a.checkout(1).id == t1.version.id
        # An edit after going back starts a branch; the old line is kept.
        t4 = a.ask("make it black and white")
        assert t4.version.parent_id == t1.version.id
        assert {v.id for v in a.history} >= {root.id, t1.version.id, t2.version.id, t3.version.id, t4.version.id}
        img = _arr(a.image)
        assert np.array_equal(img[..., 0], img[..., 1])


def test_several_steps_in_one_request_make_one_version(photo):
    with Assistant.open(photo) as a:
        turn = a.ask("remove the top-left corner and make it black and white")
        assert [s.kind for s in turn.plan.steps] == ["remove", "global"]
        assert turn.version.seq == 1 and len(a.history) == 2
        assert [c["name"] for c in turn.version.tool_calls] == ["ground", "build_mask", "remove", "global_edit"]


def test_session_words_in_requests(photo):
    with Assistant.open(photo) as a:
        a.ask("make it darker")
        t = a.ask("undo")
        assert t.version.seq == 0 and len(a.history) == 2
        t = a.ask("redo")
        assert t.version.seq == 1
        assert a.ask("go back to the original").version.seq == 0


def test_failed_edit_changes_nothing(photo):
    with Assistant.open(photo) as a:
        head = a.head
        with pytest.raises(GroundingError) as err:
            a.ask("remove the dog")
        assert "the dog" in str(err.value)
        assert a.head.id == head.id and len(a.history) == 1
        with pytest.raises(NeedsModelError) as err:
            a.ask("make it look like winter")
        assert "instruct-pix2pix" in str(err.value) and err.value.exit_code == 3
        assert len(a.history) == 1
        with pytest.raises(NothingToUndo):
            a.undo()


def test_question_back_commits_nothing(photo):
    with Assistant.open(photo) as a:
        turn = a.ask("hmm, not sure")
        assert turn.question and turn.version is None and len(a.history) == 1


def test_replay_verify_and_reopen_latest(photo, tmp_path):
    with Assistant.open(photo, session="replayme") as a:
        a.ask(REMOVE)
        a.ask("increase the contrast")
        a.ask("extend to the left by 20 px")
        report = a.replay(verify=True)
        rows = report.rows if hasattr(report, "rows") else report
        assert len(rows) >= 3 and all(r["match"] for r in rows)
        head = a.head.id
    with Assistant.open() as b:  # the most recent session
        assert b.session.name == "replayme" and b.head.id == head
    with Assistant.open(session="replayme") as c:
        out = c.save(tmp_path / "out.png")
        assert Image.open(out).size == (180, 120)


def test_export_script_and_bundle(photo, tmp_path):
    with Assistant.open(photo) as a:
        a.ask("make it brighter")
        script = a.export(tmp_path / "s.yaml", script=True).read_text()
        assert "make it brighter" in script
        bundle = a.export(tmp_path / "s.zip")
        assert bundle.stat().st_size > 0


def test_rgba_alpha_survives_edits_that_keep_geometry(tmp_path):
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., :3] = 120
    rgba[..., 3] = np.tile(np.linspace(0, 255, 50).astype(np.uint8), (40, 1))
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    with Assistant.open(path) as a:
        a.ask("make it darker")
        out = Image.open(a.save(tmp_path / "o.png"))
        assert out.mode == "RGBA"
        assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
        turn = a.ask("rotate 90 degrees")
        assert "transparency" in turn.reply


def test_open_errors_are_clear(tmp_path):
    with pytest.raises(ImageLoadError) as err:
        Assistant.open(tmp_path / "missing.png")
    assert "missing.png" in str(err.value)
    with pytest.raises(SessionNotFound):
        Assistant.open(session="nope")
    with pytest.raises(SessionNotFound):
        Assistant.open()


def test_cancel_commits_nothing(photo):
    from imagent.errors import Cancelled

    with Assistant.open(photo) as a:
        seen = []

        def on_event(event):
            seen.append(event)
            if event.get("kind") == "tool_start" and event.get("tool") == "build_mask":
                a.cancel()  # as a UI thread would, mid-request

        a.on_event = on_event
        with pytest.raises(Cancelled):
            a.ask(REMOVE)
        assert len(a.history) == 1 and a.head.seq == 0
        a.on_event = None
        assert a.ask("make it darker").version.seq == 1  # the next request runs normally


def test_history_and_compare_requests_reply_without_a_new_version(photo):
    with Assistant.open(photo) as a:
        a.ask("make it darker")
        t = a.ask("show the history")
        assert "make it darker" in t.reply and len(a.history) == 2 and t.version.seq == 1
        t = a.ask("compare with the original")
        assert "of pixels changed" in t.reply and t.metrics["changed_fraction"] > 0.5
        assert len(a.history) == 2


def test_ambiguous_target_asks_which_one_and_the_answer_is_understood(tmp_path):
    rng = np.random.default_rng(3)
    a_img = np.clip(rng.normal(128, 8, (100, 300, 3)), 0, 255).astype(np.uint8)
    for x in (20, 130, 240):
        a_img[40:70, x:x + 30] = (220, 20, 20)
    path = tmp_path / "three.png"
    Image.fromarray(a_img).save(path)
    with Assistant.open(path) as a:
        turn = a.chat("remove the red square")
        assert turn.question and turn.version is None and len(a.history) == 1
        assert turn.status == "asked"
        assert turn.plan.choices == ["the red square on the left (box 20,40,50,70)",
                                     "the second red square from the left (box 130,40,160,70)",
                                     "the red square on the right (box 240,40,270,70)"]
        assert "box 130,40,160,70" in turn.question
        turn = a.chat("the second one")
        assert turn.question is None and turn.version.seq == 1 and turn.status == "done"
        out = np.asarray(a.image, dtype=np.int16)

        def red(x: int) -> float:
            return ((out[40:70, x:x + 30, 0] > 180) & (out[40:70, x:x + 30, 1] < 60)).mean()

        assert red(130) < 0.05 and red(20) > 0.9 and red(240) > 0.9
        # Naming the instance up front asks nothing.
        turn = a.ask("remove the red square on the right")
        assert turn.question is None and turn.version.seq == 2


def test_script_export_obeys_the_same_path_rules_as_bundles(photo, tmp_path):
    from imagent.errors import UnsafePathError

    with Assistant.open(photo) as a:
        home = a.store.home
        for bad in (home / "script.yaml", home / "blobs" / ".." / "store.db", tmp_path / "no-dir" / "s.yaml"):
            with pytest.raises(UnsafePathError):
                a.export(bad, script=True)
        assert not (home / "script.yaml").exists()
