"""``imagent run SCRIPT`` and the script runner behind it, on the embedded default."""

from __future__ import annotations

import json

import pytest
import yaml
from PIL import Image

from imagent import Assistant
from imagent.cli import main
from imagent.assistant.config import load_settings
from imagent.cli.script import load_script, parse_script, run_script
from imagent.errors import InputError
from imagent.sessions import Store
from imagent.sessions.store import pixel_digest

REMOVE = "remove the red square at box 18,13,56,47"


def _write(tmp_path, doc, name="s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _run_json(capsys, *argv) -> tuple[int, dict]:
    code = main(["run", *map(str, argv), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_export_script_then_run_reproduces_the_final_image(photo, tmp_path, capsys):
    with Assistant.open(photo, session="orig") as a:
        a.ask(REMOVE)
        a.ask("make it a bit warmer")
        a.ask("make it black and white")
        a.undo()  # the script follows the path to the head: the undone edit is not in it
        a.ask("extend the picture to the right by 25%")
        expected = a.head.image_hash
    script = tmp_path / "session.yaml"
    assert main(["export", "--session", "orig", "--script", "-o", str(script)]) == 0
    doc = yaml.safe_load(script.read_text())
    assert set(doc) >= {"image", "steps"} and len(doc["steps"]) == 3
    capsys.readouterr()
    code, out = _run_json(capsys, script)
    assert code == 0 and out["ok"]
    assert out["image_hash"] == expected
    assert [s["version"] for s in out["steps"]] == [1, 2, 3]
    # A new session, named in the output, holds the run.
    with Assistant.open(None, session=out["session"]["id"]) as b, Assistant.open(None, session="orig") as o:
        assert b.head.image_hash == expected and len(b.history) == 4
        assert b.session.id != o.session.id


def test_rich_script_with_control_words_exports_and_per_step_seed(photo, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    script = _write(tmp_path, {
        "image": str(photo), "output": "out/final.png", "session": "scripted", "seed": 3, "planner": "rules",
        "steps": [
            REMOVE,
            {"request": "make it a bit brighter", "seed": 11, "settings": {"planner": "rules"}},
            "undo",
            "redo",
            {"checkout": 1},
            {"export": "out/v1.png"},
            {"export": "out/bundle.zip"},
            {"checkout": "head"},
            {"undo": 1},
            {"export": "out/v1-again.yaml"},
        ]})
    result = run_script(load_script(script))
    assert result.ok, [s.error for s in result.steps]
    kinds = [(s.kind, s.version_seq) for s in result.steps]
    assert kinds == [("request", 1), ("request", 2), ("undo", 1), ("redo", 2), ("checkout", 1),
                     ("export", 1), ("export", 1), ("checkout", 1), ("undo", 0), ("export", 0)]
    assert result.session_name == "scripted" and result.head_seq == 0
    with Assistant.open(None, session="scripted") as a:
        v1, v2 = a.version(1), a.version(2)
        assert v1.tool_calls[-1]["args"]["seed"] == 3  # the script's seed
        assert pixel_digest(Image.open(out_dir / "v1.png").convert("RGB")) == pixel_digest(a.version_image(1))
        assert pixel_digest(Image.open(out_dir / "final.png").convert("RGB")) == pixel_digest(a.version_image(0))
        assert v2.request == "make it a bit brighter"
    assert (out_dir / "bundle.zip").stat().st_size > 0
    assert yaml.safe_load((out_dir / "v1-again.yaml").read_text())["steps"] == []
    assert result.steps[1].figures["changed"] > 0.5


def test_stops_at_the_first_failing_step(photo, tmp_path, capsys):
    script = _write(tmp_path, {"image": str(photo), "steps": [
        "make it a bit brighter", "remove the dog", "make it black and white"]})
    code = main(["run", str(script)])
    captured = capsys.readouterr()
    assert code == 1
    assert "step 2 failed: 'remove the dog'" in captured.err and "hint:" in captured.err
    assert "1 later step(s) not run" in captured.err
    # Piped output: plain progress lines and a plain table, no terminal control codes.
    assert "[1/3] ok make it a bit brighter -> version 1" in captured.out
    assert "\x1b[" not in captured.out
    table = [line for line in captured.out.splitlines() if line.startswith(("#", "1 ", "2 ", "3 "))]
    assert table[0].split()[:4] == ["#", "step", "status", "version"]
    assert "skipped" in table[3] and "FAILED" in table[2]
    with Assistant.open(None) as a:
        assert a.head.seq == 1 and len(a.history) == 2  # the failed step committed nothing


def test_keep_going_runs_every_step_and_still_fails(photo, tmp_path, capsys):
    script = _write(tmp_path, {"image": str(photo), "steps": [
        "remove the dog", "make it a bit brighter", "xyzzy plugh"]})
    code, out = _run_json(capsys, script, "--keep-going")
    assert code == 1 and not out["ok"]
    assert [s["ok"] for s in out["steps"]] == [False, True, False]
    assert out["steps"][2]["error"]["message"].startswith("the planner asked:")
    assert out["head"]["seq"] == 1 and len(out["session"]["id"]) >= 16


def test_cli_flags_override_the_script(photo, tmp_path, capsys):
    script = _write(tmp_path, {"image": str(photo), "seed": 3, "steps": [REMOVE]})
    code, out = _run_json(capsys, script, "--seed", "5", "--session", "flagged", "-o", tmp_path / "o.png")
    assert code == 0 and out["session"]["name"] == "flagged"
    assert (tmp_path / "o.png").exists()
    with Assistant.open(None, session="flagged") as a:
        assert a.version(1).tool_calls[-1]["args"]["seed"] == 5


@pytest.mark.parametrize("doc,words", [
    ({"steps": ["make it brighter"]}, ["no input image"]),
    ({"image": "p.png", "steps": "make it brighter"}, ["steps: must be a list"]),
    ({"image": "p.png", "colour": "red", "steps": []}, ["unknown key 'colour'"]),
    ({"image": "p.png", "steps": [{"checkout": 1, "undo": 1}]}, ["step 1", "exactly one"]),
    ({"image": "p.png", "steps": ["ok", {"request": "x", "seed": "abc"}]}, ["step 2", "'abc'"]),
    ({"image": "p.png", "steps": [{"export": "out.gif"}]}, ["step 1", "'.gif'"]),
    ({"image": "p.png", "steps": [{"undo": 1, "seed": 2}]}, ["requests only"]),
    ({"image": "p.png", "steps": [{"request": "x", "settings": {"home": "/tmp"}}]}, ["'home'", "per step"]),
    ({"image": "p.png", "steps": [""]}, ["step 1 is empty"]),
    (["not", "a", "mapping"], ["mapping"]),
])
def test_bad_scripts_are_refused_before_anything_runs(tmp_path, doc, words):
    with pytest.raises(InputError) as exc:
        parse_script(doc, base=tmp_path)
    for w in words:
        assert w in exc.value.message


def test_bad_script_files_give_clear_errors_and_create_no_session(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("image: [unclosed\nsteps:\n  - x\n")
    assert main(["run", str(bad)]) == 1
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 1
    assert "no such file" in capsys.readouterr().err
    missing_image = _write(tmp_path, {"image": "nope.png", "steps": ["make it brighter"]})
    assert main(["run", str(missing_image)]) == 1
    assert "nope.png" in capsys.readouterr().err
    with Store(load_settings({}).home_path) as store:
        assert store.list_sessions() == []


def test_relative_paths_are_read_from_the_script_folder(photo, tmp_path, monkeypatch):
    sub = tmp_path / "scripts"
    sub.mkdir()
    (sub / "photo.png").write_bytes(photo.read_bytes())
    script = _write(sub, {"image": "photo.png", "output": "final.png", "steps": ["make it a bit darker"]})
    monkeypatch.chdir(tmp_path)
    result = run_script(load_script(script))
    assert result.ok and (sub / "final.png").exists()


def test_export_script_keeps_per_request_seeds_and_round_trips(photo, tmp_path):
    import yaml

    from imagent import Assistant
    from imagent.cli.script import load_script, run_script

    with Assistant.open(photo, session="seeded") as a:
        a.ask("make it darker")
        a.ask("remove the top-left corner", seed=5)
        text = a.export(tmp_path / "s.yaml", script=True).read_text()
        want = a.head.image_hash
    doc = yaml.safe_load(text)
    assert doc["seed"] == 0
    assert doc["steps"] == ["make it darker", {"request": "remove the top-left corner", "seed": 5}]
    script = load_script(tmp_path / "s.yaml")
    assert script.steps[1].seed == 5
    assert run_script(script).image_hash == want
