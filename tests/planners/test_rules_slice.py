"""The rule-based planner's foundation slice: kinds, targets and ToolCalls for the demo verbs."""

import pytest

from imagent.planners.base import PlanContext
from imagent.planners.rules import RulesPlanner
from imagent.tools.registry import default_registry

P = RulesPlanner()

CASES = [
    ("remove the flag in the top-left corner", ["remove"], "the flag in the top-left corner"),
    ("Please erase the box 10,10,50,50.", ["remove"], "the box 10,10,50,50"),
    ("get rid of the left third", ["remove"], "the left third"),
    ("make it a bit brighter", ["global"], None),
    ("much darker please", ["global"], None),
    ("black and white", ["global"], None),
    ("convert to grayscale", ["global"], None),
    ("give it a sepia look", ["global"], None),
    ("sharpen it", ["global"], None),
    ("rotate 90 degrees", ["global"], None),
    ("flip it horizontally", ["global"], None),
    ("extend the picture to the right by 25%", ["outpaint"], None),
    ("expand the canvas by 64 px on all sides", ["outpaint"], None),
    ("outpaint to 16:9", ["outpaint"], None),
    ("undo", ["undo"], None),
    ("undo that", ["undo"], None),
    ("redo", ["redo"], None),
    ("go back to version 3", ["checkout"], None),
    ("go back to the original", ["checkout"], None),
    ("cut out the center", ["extract"], "the center"),
    ("remove the man and make it black and white", ["remove", "global"], "the man"),
    ("increase the contrast, then blur it slightly", ["global", "global"], None),
    ("make it look like winter", ["global"], None),
    # an insertion's target is what its place is relative to (grounded), the new thing is the prompt
    ("add a red hat to the dog", ["add"], "the dog"),
    ("replace the cat with a dog", ["replace"], "the cat"),
    ("change the background to a beach", ["background"], "the background"),
]


@pytest.mark.parametrize("request_text, kinds, target", CASES)
def test_kinds_and_targets(request_text, kinds, target):
    plan = P.plan(request_text, PlanContext())
    assert plan.question is None, plan.question
    assert [s.kind for s in plan.steps] == kinds
    assert plan.steps[0].target == target


@pytest.mark.parametrize("request_text", [c[0] for c in CASES])
def test_every_planned_call_validates_against_the_registry(request_text):
    reg = default_registry()
    for call in P.plan(request_text, PlanContext()).calls():
        reg.validate(call)


def test_strength_words_change_the_amount():
    def amount(text: str) -> float:
        return P.plan(text, PlanContext()).steps[0].calls[0].args["amount"]

    assert amount("make it a bit brighter") < amount("make it brighter") < amount("make it much brighter")
    assert amount("make it darker") < 0


def test_seed_from_context_is_explicit_in_calls():
    plan = P.plan("remove the top-left corner", PlanContext(seed=42))
    assert plan.steps[0].calls[-1].args["seed"] == 42


def test_style_requests_are_routed_to_the_instruction_model():
    step = P.plan("make it look like a van gogh painting", PlanContext()).steps[0]
    assert step.needs_model == "instruct" and not step.calls


@pytest.mark.parametrize("text", ["", "   ", "what is this", "hello there", "42"])
def test_unmappable_requests_get_a_question(text):
    plan = P.plan(text, PlanContext())
    assert plan.question and not plan.steps


@pytest.mark.parametrize("text, operation", [
    ("add more contrast", "contrast"), ("give it a sepia look", "sepia"),
    ("add a bit of blur", "blur"), ("make it a bit brighter and add more contrast", "brightness"),
])
def test_add_or_give_an_adjustment_is_a_global_edit(text, operation):
    step = P.plan(text, PlanContext()).steps[0]
    assert step.kind == "global" and step.calls[0].args["operation"] == operation


def test_add_an_object_still_needs_the_inpainting_model():
    assert P.plan("add a cat on the sofa", PlanContext()).steps[0].needs_model == "inpaint"
