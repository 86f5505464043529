"""The Python API as a notebook user meets it: ``from imagent import Assistant``."""

from __future__ import annotations

import inspect
import zipfile

import numpy as np
import pytest
import yaml

import imagent
from imagent import Assistant, Turn
from imagent.errors import ConfigError, NothingToRedo, UsageError
from imagent.planners.base import Plan
from imagent.sessions.store import pixel_digest

REMOVE = "remove the red square at box 18,13,56,47"


def test_the_notebook_flow(photo, tmp_path):
    a = Assistant.open(photo)
    try:
        original = a.image
        assert a.head.seq == 0 and len(a.history) == 1 and a.parent_image is None
        turn = a.ask(REMOVE)
        assert isinstance(turn, Turn) and turn.version.seq == 1 and "version 1" in turn.reply
        assert turn.timings["total_s"] > 0 and "change" in turn.metrics
        mask = a.current_mask
        assert mask is not None and mask.shape == (120, 160) and mask.dtype == np.float32
        assert pixel_digest(a.parent_image) == pixel_digest(original)
        a.ask("make it a bit brighter")
        assert a.current_mask is None  # a whole-image edit has no mask
        assert a.undo().seq == 1 and a.redo().seq == 2
        with pytest.raises(NothingToRedo):
            a.redo()
        assert a.checkout(0).seq == 0 and pixel_digest(a.image) == pixel_digest(original)
        assert pixel_digest(a.version_image(2)) != pixel_digest(original)
        assert a.version("root").seq == 0 and a.version(2).request == "make it a bit brighter"
        tree = a.log_tree()
        assert tree.splitlines()[0].startswith("@") and "make it a bit brighter" in tree
        bundle = a.export(tmp_path / "s.zip")
        assert "manifest.json" in zipfile.ZipFile(bundle).namelist()
        script = yaml.safe_load(a.export(tmp_path / "s.yaml", script=True).read_text())
        assert script["steps"] == []  # the head is the root now: the path has no requests
        out = a.save(tmp_path / "v2.png", version=2)
        assert out.exists()
    finally:
        a.close()


def test_open_continues_the_latest_session_by_default(photo):
    with Assistant.open(photo, session="mine") as a:
        a.ask("make it a bit darker")
    with Assistant.open() as b:
        assert b.session.name == "mine" and b.head.seq == 1
    with Assistant.open("mine") as c:  # a bare word that is no file names a session
        assert c.session.name == "mine"


def test_describe_and_configure(photo):
    with Assistant.open(photo) as a:
        info = a.describe()
        assert info["planner"] == "rules" and info["profile"] == "offline" and info["version"] == 0
        a.configure(seed=7)
        assert a.settings.seed == 7 and a.settings.sources["seed"] == "api"
        t = a.ask(REMOVE)
        assert t.version.tool_calls[-1]["args"]["seed"] == 7
        with pytest.raises(ConfigError) as exc:
            a.configure(planner="clever")
        assert "'clever'" in exc.value.message and a.settings.planner == "rules"
        with pytest.raises(UsageError) as exc:
            a.configure(home="/tmp/elsewhere")
        assert "'home'" in exc.value.message


class _Asking:
    name = "asking"

    def __init__(self, rules):
        self.rules, self.contexts = rules, []

    def plan(self, request, context):
        self.contexts.append(context)
        if request == "remove the corner":
            from imagent.planners.base import Step

            return Plan(question="Which corner?", choices=["the top-left corner", "the bottom-right corner"],
                        steps=[Step(kind="remove", target="the corner")], planner=self.name)
        return self.rules.plan(request, context)


def test_chat_answers_a_question_in_context(photo):
    from imagent.planners.rules import RulesPlanner

    with Assistant.open(photo) as a:
        a.planner = _Asking(RulesPlanner())
        q = a.chat("remove the corner")
        assert q.question == "Which corner?" and q.version is None and a.pending_question is q
        assert a.head.seq == 0
        t = a.chat("the first one")
        assert a.pending_question is None
        assert t.version.request == "remove the top-left corner"
        assert a.planner.contexts[-1].last_plan.question == "Which corner?"
        # A free answer that names no choice is planned as it is, with the question in context.
        a.chat("remove the corner")
        t2 = a.chat("make it a bit brighter")
        assert t2.version.request == "make it a bit brighter" and a.pending_question is None


@pytest.mark.parametrize("answer,expected", [
    ("2", "the man on the right"), ("#1", "the man on the left"), ("the second one", "the man on the right"),
    ("left", "the man on the left"), ("The man on the right.", "the man on the right"),
    ("last", "the man on the right"), ("3", None), ("the dog", None), ("man", None),
])
def test_resolve_choice(answer, expected):
    assert Assistant.resolve_choice(["the man on the left", "the man on the right"], answer) == expected


def test_public_api_is_documented():
    assert imagent.Assistant is Assistant
    doc = inspect.getdoc(Assistant)
    # The class docstring is the API's overview: every public member is named there...
    for name in ("open", "ask", "chat", "answer", "undo", "redo", "checkout", "export", "save", "replay",
                 "cancel", "log_tree", "version_image", "configure", "describe", "image", "history", "head",
                 "current_mask", "parent_image", "on_event", "Turn", "question", "choices"):
        assert name in doc, f"the Assistant docstring does not mention {name}"
    # ...and the members added for the API's users carry their own docstrings.
    for name in ("open", "ask", "chat", "answer", "export", "save", "cancel", "log_tree", "version",
                 "version_image", "version_mask", "configure", "describe", "resolve_choice", "compose_answer"):
        assert inspect.getdoc(getattr(Assistant, name)), f"Assistant.{name} needs a docstring"
    for prop in ("image", "current_mask", "parent_image", "pending_question"):
        assert inspect.getdoc(getattr(Assistant, prop)), f"Assistant.{prop} needs a docstring"


def test_menu_style_choices_from_the_planner():
    menu = ['remove something ("remove the flag in the top-left corner")',
            'adjust the whole image ("make it a bit brighter")', "undo"]
    # A free request that shares words with a choice is not taken for that choice.
    assert Assistant.resolve_choice(menu, "make it a bit darker") is None
    assert Assistant.resolve_choice(menu, "undo") == "undo"
    q = Turn(request="do something nice", reply="", plan=Plan(question="?", choices=menu), question="?")
    # A picked choice that shows an example request is sent as that example.
    assert Assistant.compose_answer(q, "2", menu[1]) == "make it a bit brighter"
    assert Assistant.compose_answer(q, "make it a bit darker", None) == "make it a bit darker"
