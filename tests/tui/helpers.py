"""Shared pieces of the TUI tests: opening an app on a test photo and waiting for it to settle."""

from __future__ import annotations

import threading

from imagent import Assistant
from imagent.planners.base import Plan, Step
from imagent.planners.rules import RulesPlanner
from imagent.tui.app import ChatApp

SIZE = (110, 36)


def make_app(photo, *, session: str = "snap", planner=None) -> ChatApp:
    assistant = Assistant.open(photo, session=session)
    if planner is not None:
        assistant.planner = planner
    return ChatApp(assistant, graphics=False, show_timings=False, ready_file="")


async def settle(pilot, app: ChatApp, *, rounds: int = 400) -> None:
    """Wait until the app has its first snapshot and no worker runs."""
    # A blinking cursor makes screenshots depend on timing (a loaded machine catches the
    # other phase of the blink): keep it steadily on.
    for prompt in app.query("#prompt"):
        prompt.cursor_blink = False
    for _ in range(rounds):
        await pilot.pause(0.02)
        if app.snapshot is not None and not app.busy:
            await app.workers.wait_for_complete()
            await pilot.pause()
            if not app.busy:
                return
    raise AssertionError(f"the app did not settle (busy={app.busy!r})")


async def type_and_send(pilot, text: str, *, rounds: int = 400) -> None:
    await pilot.click("#prompt")
    app = pilot.app
    prompt = app.query_one("#prompt")
    prompt.value = text
    await pilot.press("enter")
    # The submit handler clears the prompt and marks the app busy in one step: until the
    # prompt is empty the request was not picked up, and `settle` could return too early
    # on a loaded machine.
    for _ in range(rounds):
        if prompt.value == "":
            return
        await pilot.pause(0.02)
    raise AssertionError(f"the app never picked up the request {text!r}")


class AskingPlanner:
    """A planner that asks back for one ambiguous request and otherwise is the rules planner.

    It stands in for the planners' instance questions ("which one?" with the detected
    instances as choices): its question carries the pending step with its target phrase,
    as a real planner's would. It records the contexts it was given.
    """

    name = "rules"

    def __init__(self) -> None:
        self.rules = RulesPlanner()
        self.contexts = []

    def plan(self, request, context):
        self.contexts.append(context)
        if request.strip().lower() == "remove the corner":
            return Plan(question="Which corner do you mean?",
                        choices=["the top-left corner", "the bottom-right corner"],
                        steps=[Step(kind="remove", target="the corner")], planner=self.name)
        return self.rules.plan(request, context)


class BlockingPlanner(RulesPlanner):
    """The rules planner, held at the start of planning until ``release`` is set (a long request)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def plan(self, request, context=None):
        self.entered.set()
        self.release.wait(10)
        return super().plan(request, context)
