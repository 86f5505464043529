"""The CLI tells the truth about outcomes: a failed check (5) and a question back (6)
are neither success nor bad input, write no -o file and stop the run; a bad -o is
refused before any work; `imagent verify` finds damaged sessions."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from imagent.assistant.core import Assistant
from imagent.cli import main
from imagent.errors import EXIT_CHECK_FAILED, EXIT_QUESTION

QUESTION = "xyzzy plugh"  # the rules planner cannot map it and asks back


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def _sessions(capsys) -> list:
    capsys.readouterr()
    assert main(["sessions", "--json"]) == 0
    return _json(capsys)


@pytest.fixture
def failing_check(monkeypatch):
    """Every ask runs for real and then reports a failed result check (as Turn.status will)."""
    real_ask = Assistant.ask
    asked = []

    def ask(self, request, **kw):
        turn = real_ask(self, request, **kw)
        turn.status = "failed"
        turn.reply = "the red square is still there; nothing was removed"
        asked.append(request)
        return turn

    monkeypatch.setattr(Assistant, "ask", ask)
    return asked


def test_exit_codes_are_defined_once():
    assert (EXIT_CHECK_FAILED, EXIT_QUESTION) == (5, 6)


def test_failed_check_exits_5_writes_no_output_and_stops(photo, tmp_path, capsys, failing_check):
    out = tmp_path / "out.png"
    code = main(["edit", str(photo), "make it a bit brighter", "make it darker", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_CHECK_FAILED == 5
    assert not out.exists()
    assert failing_check == ["make it a bit brighter"]  # stopped at the first non-done turn
    assert "nothing was removed" in captured.out  # the reply says why
    assert "failed its check" in captured.err and "no -o written" in captured.err


def test_failed_check_json(photo, tmp_path, capsys, failing_check):
    out = tmp_path / "out.png"
    assert main(["edit", str(photo), "make it a bit brighter", "-o", str(out), "--json"]) == 5
    doc = _json(capsys)
    assert doc["status"] == "failed" and doc["exit_code"] == 5 and doc["output"] is None
    assert doc["turns"][0]["status"] == "failed"
    assert not out.exists()


def test_question_exits_6_writes_no_output(photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    code = main(["edit", str(photo), "make it a bit brighter", QUESTION, "make it darker", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_QUESTION == 6
    assert not out.exists()
    assert "> make it darker" not in captured.out  # stopped at the question
    assert "needs an answer" in captured.err and "imagent ask --session" in captured.err
    assert main(["ask", QUESTION, "-o", str(out)]) == 6 and not out.exists()


def test_done_still_exits_0_and_writes_output(photo, tmp_path, capsys):
    out = tmp_path / "out.webp"
    assert main(["edit", str(photo), "make it a bit brighter", "-o", str(out)]) == 0
    assert out.stat().st_size > 0


@pytest.mark.parametrize("name, needle", [
    ("out.gif", ".gif"), ("out", "no extension"), ("missing-folder/out.png", "does not exist"),
    ("adir.png", "is a directory"), ("{home}/inside.png", "inside the session store"),
])
def test_bad_output_is_refused_before_a_session_is_created(name, needle, photo, tmp_path, capsys,
                                                           isolated_env, monkeypatch):
    (tmp_path / "adir.png").mkdir()
    monkeypatch.chdir(tmp_path)
    home = isolated_env / "home"
    home.mkdir(exist_ok=True)
    out = name.format(home=home)
    assert main(["edit", str(photo), "make it a bit brighter", "-o", out]) == 1
    assert needle in capsys.readouterr().err
    assert _sessions(capsys) == []  # nothing was created


def test_bad_output_on_ask_commits_nothing(photo, tmp_path, capsys):
    assert main(["edit", str(photo), "make it a bit brighter"]) == 0
    assert main(["ask", "make it darker", "-o", str(tmp_path / "nope" / "o.png")]) == 1
    capsys.readouterr()
    main(["log", "--json"])
    assert len(_json(capsys)["versions"]) == 2


def _script(tmp_path, doc) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_run_stops_on_a_question_with_6(photo, tmp_path, capsys):
    out = tmp_path / "final.png"
    script = _script(tmp_path, {"image": str(photo), "output": str(out),
                                "steps": ["make it a bit brighter", QUESTION, "make it darker"]})
    assert main(["run", script, "--json"]) == 6
    doc = _json(capsys)
    assert [s["ok"] for s in doc["steps"]] == [True, False, False] and doc["steps"][2]["skipped"]
    assert doc["steps"][1]["error"]["exit_code"] == 6 and not out.exists()


def test_run_stops_on_a_failed_check_with_5(photo, tmp_path, capsys, failing_check):
    script = _script(tmp_path, {"image": str(photo), "steps": ["make it a bit brighter", "make it darker"]})
    assert main(["run", script]) == 5
    assert failing_check == ["make it a bit brighter"]
    err = capsys.readouterr().err
    assert "failed its check" in err and "1 later step(s) not run" in err
    assert main(["run", script, "--keep-going", "--json"]) == 5
    assert [s["error"]["error"] for s in _json(capsys)["steps"]] == ["CheckFailed", "CheckFailed"]


def test_run_refuses_a_bad_output_before_the_session(photo, tmp_path, capsys):
    script = _script(tmp_path, {"image": str(photo), "steps": ["make it a bit brighter"]})
    assert main(["run", script, "-o", str(tmp_path / "final.bmp")]) == 1
    assert _sessions(capsys) == []


# ----------------------------------------------------------------------------- imagent verify
def _two_sessions(photo, capsys):
    assert main(["edit", str(photo), "make it a bit brighter", "make it black and white", "-s", "a"]) == 0
    assert main(["edit", str(photo), "make it darker", "-s", "b"]) == 0
    capsys.readouterr()
    main(["log", "--session", "a", "--json"])
    return _json(capsys)["versions"]


def _blob(home, key):
    return home / "blobs" / key[:2] / key[2:]


def test_verify_a_clean_store(photo, capsys):
    _two_sessions(photo, capsys)
    assert main(["verify"]) == 0  # the most recent session
    assert "session b" in capsys.readouterr().out
    assert main(["verify", "--all"]) == 0
    out = capsys.readouterr().out
    assert "session a (" in out and "3 version(s) checked, no problems" in out
    assert main(["verify", "--all", "--json"]) == 0
    doc = _json(capsys)
    assert doc["ok"] and doc["problems"] == 0 and doc["versions"] == 5
    assert sorted(r["session"] for r in doc["sessions"]) == ["a", "b"]


def test_verify_finds_damaged_and_missing_blobs(photo, capsys, isolated_env):
    versions = _two_sessions(photo, capsys)
    home = isolated_env / "home"
    damaged, missing = _blob(home, versions[1]["image_hash"]), _blob(home, versions[2]["image_hash"])
    damaged.chmod(0o644)
    damaged.write_bytes(b"not a png")
    missing.unlink()
    assert main(["verify", "--session", "a"]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s)" in out
    assert "version 1 (" in out and "damaged" in out and "version 2 (" in out and "missing" in out
    assert main(["verify", "--session", "b"]) == 0  # the other session is untouched
    capsys.readouterr()
    assert main(["verify", "--all", "--json"]) == 1
    doc = _json(capsys)
    problems = {r["session"]: r["problems"] for r in doc["sessions"]}
    assert problems["b"] == [] and [p["version"] for p in problems["a"]] == [1, 2]


def test_verify_finds_wrong_sizes_bad_parents_and_invalid_tool_calls(photo, capsys, isolated_env):
    versions = _two_sessions(photo, capsys)
    with sqlite3.connect(isolated_env / "home" / "store.db") as db:
        db.execute("UPDATE versions SET width = width + 1 WHERE id = ?", (versions[1]["id"],))
        db.execute("UPDATE versions SET tool_calls = ? WHERE id = ?",
                   (json.dumps([{"name": "no_such_tool", "args": {}}]), versions[2]["id"]))
        db.execute("UPDATE versions SET parent_id = ? WHERE id = ?", ("f" * 32, versions[2]["id"]))
    assert main(["verify", "--session", "a", "--json"]) == 1
    problems = _json(capsys)["sessions"][0]["problems"]
    text = "\n".join(f"{p['version']}: {p['problem']}" for p in problems)
    assert "1: image is" in text and "declares" in text
    assert "2: its parent ffffffff does not exist" in text
    assert "2: tool call 1" in text and "no_such_tool" in text


def test_verify_hints_point_at_the_real_command():
    """Every `imagent verify ...` hint in the source parses as a real command line."""
    import re
    from pathlib import Path

    from imagent.cli import build_parser

    root = Path(__file__).resolve().parents[2]
    hints = []
    for pkg in ("assistant", "planners", "tools", "sessions", "cli", "tui"):
        for path in (root / pkg).rglob("*.py"):
            hints += re.findall(r"`(imagent verify[^`]*)`", path.read_text(encoding="utf-8"))
    assert hints
    for hint in hints:
        argv = re.sub(r"\{[^}]*\}", "name", hint).split()[1:]  # f-string fields: a session name
        args = build_parser().parse_args(argv)
        assert args.command == "verify", hint
