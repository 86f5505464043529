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


def two_squares(path, *, size=(160, 120), left=(20, 40, 50, 70), right=(100, 40, 130, 70)):
    """A smooth gradient with two equal red squares (boxes x0,y0,x1,y1, exclusive ends), saved to ``path``."""
    import numpy as np
    from PIL import Image

    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([80 + 60 * x / w, 90 + 50 * y / h, 120 + 20 * np.sin(x / 11.0)], axis=2).astype(np.uint8)
    for x0, y0, x1, y1 in (left, right):
        img[y0:y1, x0:x1] = (230, 30, 30)
    Image.fromarray(img, "RGB").save(path)
    return path


class Layout:
    """Where the half-block renderer puts an image in the pane, worked out here from the pane's
    size on its own (not by the app's code): a cell is one image-scaled pixel wide and two high."""

    def __init__(self, app, image_size) -> None:
        view = app.query_one("#image-view")
        self.width, self.height = view.content_size.width, view.content_size.height
        self.iw, self.ih = image_size
        scale = min(self.width / self.iw, 2 * self.height / self.ih)
        self.cols = int(self.iw * scale)
        self.px_h = int(self.ih * scale)
        self.px_h += self.px_h % 2
        self.left = (self.width - self.cols) // 2
        self.top = (self.height - self.px_h // 2) // 2

    def cell(self, x: int, y: int) -> tuple[int, int]:
        """The cell (relative to the view) that shows image pixel (x, y)."""
        return self.left + x * self.cols // self.iw, self.top + (y * self.px_h // self.ih) // 2

    def point(self, cell: tuple[int, int]) -> tuple[int, int]:
        """The image pixel at the centre of a cell: x at the column's middle, y between the
        cell's two half-block pixels."""
        k, r = cell[0] - self.left, cell[1] - self.top
        return int((k + 0.5) * self.iw / self.cols), int((2 * r + 1) * self.ih / self.px_h)

    def box(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int, int, int]:
        """The image box the cells from a to b (both included) show."""
        import math

        k0, k1 = a[0] - self.left, b[0] - self.left
        r0, r1 = a[1] - self.top, b[1] - self.top
        return (math.floor(k0 * self.iw / self.cols), math.floor(2 * r0 * self.ih / self.px_h),
                min(self.iw, math.ceil((k1 + 1) * self.iw / self.cols)),
                min(self.ih, math.ceil((2 * r1 + 2) * self.ih / self.px_h)))
