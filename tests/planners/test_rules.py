"""The rule-based planner on phrasings the project wrote itself (not from the benchmark files)."""

from __future__ import annotations

import pytest

from imagent.planners.base import Plan, PlanContext, Step
from imagent.planners.rules import RulesPlanner
from imagent.tools.registry import default_registry
from imagent.tools.types import ToolCall

P = RulesPlanner()

# (request, kinds of the steps, target of the first step, select of the first step)
PHRASINGS = [
    # remove
    ("erase the lamp post", ["remove"], "the lamp post", None),
    ("could you please get rid of the trash can on the right?", ["remove"], "the trash can", "right"),
    ("delete the second car from the left", ["remove"], "the car", "left"),
    ("take the phone out of his hand", ["remove"], "the phone from his hand", None),
    ("remove the biggest rock", ["remove"], "the rock", "largest"),
    ("wipe out the watermark in the bottom-right corner", ["remove"], "the watermark in the bottom-right corner", None),
    ("remove the woman in a red coat walking by", ["remove"], "the woman", None),
    ("eliminate the kite in the sky", ["remove"], "the kite in the sky", None),
    ("remove box 5,5,40,40", ["remove"], "box 5,5,40,40", None),
    # add
    ("add a small boat on the lake", ["add"], "the lake", None),
    ("put a vase of tulips on the kitchen counter", ["add"], "the kitchen counter", None),
    ("insert a hot air balloon in the top-right corner", ["add"], None, None),
    ("place a sleeping cat next to the fireplace", ["add"], "the fireplace", None),
    ("draw a rainbow over the hills", ["add"], "the hills", None),
    ("give the snowman a carrot nose", ["add"], "the snowman", None),
    ("add some seagulls", ["add"], None, None),
    # replace
    ("swap the bicycle for a motorbike", ["replace"], "the bicycle", None),
    ("replace the left lamp with a candle", ["replace"], "the lamp", "left"),
    ("turn the teapot into a pumpkin", ["replace"], "the teapot", None),
    ("make the parrot a penguin", ["replace"], "the parrot", None),
    ("change the sedan to a pickup truck", ["replace"], "the sedan", None),
    # local: colour, material, texture
    ("make the front door bright yellow", ["local"], "the front door", None),
    ("paint the fence on the left white", ["local"], "the fence", "left"),
    ("change the colour of the umbrella to teal", ["local"], "the umbrella", None),
    ("recolor her scarf green", ["local"], "her scarf", None),
    ("turn the spoon into a golden one", ["local"], "the spoon", None),
    ("make the bench out of marble", ["local"], "the bench", None),
    ("change the vase's texture to cracked porcelain", ["local"], "the vase", None),
    ("make the sky brighter", ["local"], "the sky", None),
    ("darken the car a little", ["local"], "the car", None),
    # background
    ("change the background to a snowy forest", ["background"], "the background", None),
    ("replace the backdrop with a city skyline at dusk", ["background"], "the background", None),
    ("put him in a busy train station", ["background"], "him", None),
    ("swap the meadow for a sandy desert", ["background"], "the meadow", None),
    ("set the scene in a cozy library", ["background"], "the background", None),
    ("blur the background", ["background"], "the background", None),
    # global: style, weather, time, tone
    ("make it look like an oil painting", ["global"], None, None),
    ("in the style of a children's book illustration", ["global"], None, None),
    ("turn it into a rainy evening", ["global"], None, None),
    ("make it winter", ["global"], None, None),
    ("as a charcoal drawing", ["global"], None, None),
    ("give the photo a retro 70s feel", ["global"], None, None),
    ("make the picture warmer", ["global"], None, None),
    ("bump up the saturation a bit", ["global"], None, None),
    ("convert it to black & white", ["global"], None, None),
    ("slightly less contrast please", ["global"], None, None),
    ("mirror the image", ["global"], None, None),
    ("rotate it 45 degrees clockwise", ["global"], None, None),
    ("resize to 800 px wide", ["global"], None, None),
    # outpaint
    ("extend the image upwards by 100 px", ["outpaint"], None, None),
    ("make the picture 20% wider", ["outpaint"], None, None),
    ("outpaint to a square", ["outpaint"], None, None),
    ("expand the canvas on the left and right", ["outpaint"], None, None),
    # extract
    ("cut out the guitar", ["extract"], "the guitar", None),
    ("isolate the girl on the right", ["extract"], "the girl", "right"),
    ("extract the logo on a white background", ["extract"], "the logo", None),
    # session
    ("undo the last two edits", ["undo"], None, None),
    ("oops, undo that", ["undo"], None, None),
    ("redo", ["redo"], None, None),
    ("revert to version 4", ["checkout"], None, None),
    ("start over", ["checkout"], None, None),
    # several edits in one request
    ("erase the sign then make it sepia", ["remove", "global"], "the sign", None),
    ("remove the bird; add a cloud to the sky", ["remove", "add"], "the bird", None),
    ("crop out the cup and sharpen it", ["extract", "global"], "the cup", None),
]


@pytest.mark.parametrize("text, kinds, target, select", PHRASINGS, ids=[p[0] for p in PHRASINGS])
def test_phrasings(text, kinds, target, select):
    plan = P.plan(text, PlanContext(seed=3))
    assert plan.question is None, plan.question
    assert [s.kind for s in plan.steps] == kinds
    assert plan.steps[0].target == target
    assert plan.steps[0].select == select


def test_there_are_at_least_sixty_phrasings():
    assert len(PHRASINGS) >= 60


@pytest.mark.parametrize("text", [p[0] for p in PHRASINGS])
def test_every_call_validates_against_the_registry(text):
    reg = default_registry()
    for call in P.plan(text, PlanContext(seed=3)).calls():
        reg.validate(call)


def test_the_selector_reaches_ground():
    calls = P.plan("remove the third cup from the right", PlanContext()).calls()
    assert calls[0].args["referent"] == {"text": "the cup", "noun": "cup", "select": "right",
                                         "ordinal": 3}
    step = P.plan("remove the man on the left in a blue shirt", PlanContext()).steps[0]
    assert (step.target, step.select) == ("the man", "left")
    assert step.target_full == "the man on the left in a blue shirt"


def test_outpaint_amounts_and_sides():
    args = P.plan("extend to the right by 200 px", PlanContext()).calls()[0].args
    assert args["right"] == 200 and args["left"] == 0 if "left" in args else args["right"] == 200
    args = P.plan("make it 30% wider", PlanContext()).calls()[0].args
    assert args["percent"] == 30 and args["sides"] == ["left", "right"]
    args = P.plan("extend it to 16:9", PlanContext()).calls()[0].args
    assert args["aspect"] == "16:9"


def test_what_content_and_colour_are_kept():
    step = P.plan("add a red hat to the man on the left", PlanContext()).steps[0]
    assert step.prompt == "a red hat" and step.color == "red" and step.target == "the man"
    assert step.select == "left" and step.needs_model == "inpaint"
    step = P.plan("replace the cat with a fluffy dog", PlanContext()).steps[0]
    assert step.prompt == "a fluffy dog"


def test_text_insertion_runs_offline():
    step = P.plan('add the caption "Happy Birthday" at the bottom in yellow', PlanContext()).steps[0]
    assert step.kind == "add" and not step.needs_model
    assert step.calls[-1] == ToolCall(name="insert", args={"kind": "text", "text": "Happy Birthday",
                                                           "color": "yellow"})
    assert step.calls[0].args["phrase"] == "the bottom side"


def _ctx_after(text: str) -> PlanContext:
    return PlanContext(last_plan=P.plan(text, PlanContext()))


def test_make_it_stronger_repeats_the_last_adjustment():
    ctx = _ctx_after("make it brighter")
    plan = P.plan("make it stronger", ctx)
    assert [s.kind for s in plan.steps] == ["global"]
    assert plan.calls()[0].args["operation"] == "brightness" and plan.calls()[0].args["amount"] > 0


def test_too_much_undoes_and_reapplies_weaker():
    ctx = _ctx_after("make it much warmer")
    before = ctx.last_plan.calls()[0].args["amount"]
    plan = P.plan("that's too much", ctx)
    assert [s.kind for s in plan.steps] == ["undo", "global"]
    assert 0 < plan.calls()[1].args["amount"] < before


def test_do_the_same_to_the_other_dog():
    ctx = _ctx_after("remove the dog on the left")
    step = P.plan("do the same to the other dog", ctx).steps[0]
    assert step.kind == "remove" and step.target == "the dog" and step.select == "right"
    assert step.calls[0].args == {"phrase": "the dog", "referent": {
        "text": "the dog", "noun": "dog", "select": "right"}}


def test_a_pronoun_refers_to_the_last_target():
    ctx = _ctx_after("make the car red")
    step = P.plan("now remove it", ctx).steps[0]
    assert step.kind == "remove" and step.target == "the car"


def test_undo_that_uses_the_session():
    assert P.plan("undo that", _ctx_after("remove the top-left corner")).steps[0].kind == "undo"


def test_looking_requests_are_actions_not_edits():
    plan = P.plan("show the history", PlanContext())
    assert plan.action == "history" and not plan.steps
    plan = P.plan("compare with the original", PlanContext())
    assert plan.action == "compare" and plan.action_args == {"a": "0", "b": "head"}


@pytest.mark.parametrize("text", ["make it stronger", "remove it", "what is this", "hello there",
                                  "zzz", "resize it", "crop it"])
def test_unreadable_requests_get_a_question_not_an_edit(text):
    plan = P.plan(text, PlanContext())
    assert plan.question and not plan.steps


def test_a_question_offers_choices():
    plan = P.plan("hmm, do the thing", PlanContext())
    assert plan.question and plan.choices


def test_pose_changes_route_to_the_instruction_model():
    step = P.plan("make the woman raise her right hand", PlanContext()).steps[0]
    assert step.needs_model == "instruct" and not step.calls


def test_plan_is_json_serialisable():
    plan = P.plan("remove the man on the left and make it sepia", PlanContext())
    again = Plan.model_validate(plan.to_json_dict())
    assert again == plan and isinstance(again.steps[0], Step)


@pytest.mark.parametrize("text, target", [
    ("get the tourists out of the shot", "the tourists"),
    ("keep the cars out of the picture", "the cars"),
])
def test_get_x_out_of_the_shot_is_a_removal(text, target):
    step = RulesPlanner().plan(text, PlanContext()).steps[0]
    assert step.kind == "remove" and step.target == target


# -- transparency: "remove the background" is a cut-out, "add a white background" fills it in --
@pytest.mark.parametrize("text, target", [
    ("remove the background", "the main subject"),
    ("delete the background", "the main subject"),
    ("erase the background", "the main subject"),
    ("get rid of the background", "the main subject"),
    ("make the background transparent", "the main subject"),
    ("transparent background", "the main subject"),
    ("give it a transparent background", "the main subject"),
    ("remove the bg", "the main subject"),
    ("remove background", "the main subject"),
    ("background removal", "the main subject"),
    ("remove the background from the photo", "the main subject"),
    ("remove the background behind the dog", "the dog"),
    ("put the cat on a transparent background", "the cat"),
    ("cut out the cat", "the cat"),
    ("cut out the red circle", "the red circle"),
    ("isolate the cat", "the cat"),
    ("extract the cat", "the cat"),
    ("cut the cat out", "the cat"),
    ("cut the red circle out of the picture", "the red circle"),
    ("keep only the red circle", "the red circle"),
    ("keep just the dog", "the dog"),
    ("remove everything except the cat", "the cat"),
])
def test_background_removal_and_cut_outs_are_transparent_extracts(text, target):
    plan = P.plan(text, PlanContext())
    assert [s.kind for s in plan.steps] == ["extract"], plan
    step = plan.steps[0]
    assert step.target == target
    names = [c.name for c in step.calls]
    assert names == ["ground", "build_mask", "extract"]
    assert step.calls[-1].args.get("background", "transparent") == "transparent"
    for c in step.calls:
        default_registry().validate(c)


@pytest.mark.parametrize("text, kind, target", [
    ("remove the background person", "remove", "the background person"),
    ("remove the people in the background", "remove", "the people"),
    ("remove the background people", "remove", "the background people"),
    ("blur the background", "background", "the background"),
])
def test_background_false_friends_keep_their_meaning(text, kind, target):
    step = P.plan(text, PlanContext()).steps[0]
    assert step.kind == kind and step.target == target
    assert all(c.name != "extract" for c in step.calls)


def test_background_noise_is_denoised_not_cut_out():
    step = P.plan("remove the background noise", PlanContext()).steps[0]
    assert step.kind == "global" and step.calls[0].args["operation"] == "denoise"


def test_replacing_the_background_is_still_a_background_edit():
    step = P.plan("replace the background with a beach", PlanContext()).steps[0]
    assert step.kind == "background" and step.needs_model and not step.calls


def test_a_cut_out_on_a_colour_stays_flattened():
    step = P.plan("cut out the dog on a white background", PlanContext()).steps[0]
    assert step.kind == "extract" and step.calls[-1].args == {"background": "white"}


@pytest.mark.parametrize("text, colour", [
    ("add a white background", "white"),
    ("make the background white", "white"),
    ("put it on a black background", "black"),
    ("make the background opaque", "white"),
    ("make it opaque", "white"),
    ("remove the transparency", "white"),
    ("fill the background with #ff0000", "#ff0000"),
])
def test_on_a_transparent_image_a_colour_background_fills_the_alpha(text, colour):
    plan = P.plan(text, PlanContext(has_alpha=True))
    step = plan.steps[0]
    assert [s.kind for s in plan.steps] == ["extract"]
    assert [(c.name, c.args) for c in step.calls] == [
        ("build_mask", {"source": "alpha"}), ("extract", {"background": colour})]
    for c in step.calls:
        default_registry().validate(c)


def test_on_an_opaque_image_a_colour_background_is_a_background_edit():
    step = P.plan("make the background white", PlanContext(has_alpha=False)).steps[0]
    assert step.kind == "background" and all(c.name != "extract" for c in step.calls)
    plan = P.plan("make it opaque", PlanContext(has_alpha=False))
    assert plan.question and "transparent" in plan.question


def test_cut_out_then_white_background_in_one_request():
    plan = P.plan("cut out the cat and add a white background", PlanContext(has_alpha=False))
    assert [s.kind for s in plan.steps] == ["extract", "extract"]
    assert plan.steps[1].calls[0].args == {"source": "alpha"}
