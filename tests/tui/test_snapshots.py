"""SVG snapshots of the chat UI's main states (pytest-textual-snapshot).

The recordings live in tests/tui/__snapshots__/; regenerate them with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the SVGs.
Deterministic by construction: a fixed terminal size, a synthetic photo, a named
session, no timings on screen, and the half-cell image renderer.
"""

from __future__ import annotations

from .helpers import SIZE, AskingPlanner, make_app, settle, type_and_send

REMOVE = "remove the red square at box 18,13,56,47"


def _photo(tmp_path):
    from tests.conftest import textured_image

    path = tmp_path / "photo.png"
    textured_image().save(path)
    return path


def test_snapshot_start(snap_compare, tmp_path):
    app = make_app(_photo(tmp_path))

    async def run_before(pilot):
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_after_edits_with_mask_overlay(snap_compare, tmp_path):
    app = make_app(_photo(tmp_path))

    async def run_before(pilot):
        await settle(pilot, app)
        await type_and_send(pilot, REMOVE)
        await settle(pilot, app)
        await type_and_send(pilot, "make it a bit warmer")
        await settle(pilot, app)
        await pilot.press("ctrl+z")
        await settle(pilot, app)
        await pilot.press("ctrl+t")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_branch_in_history_tree(snap_compare, tmp_path):
    app = make_app(_photo(tmp_path))

    async def run_before(pilot):
        await settle(pilot, app)
        for request in (REMOVE, "make it a bit brighter", "/checkout 1", "make it black and white"):
            await type_and_send(pilot, request)
            await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_clarifying_question(snap_compare, tmp_path):
    app = make_app(_photo(tmp_path), planner=AskingPlanner())

    async def run_before(pilot):
        await settle(pilot, app)
        await type_and_send(pilot, "remove the corner")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_error_notification(snap_compare, tmp_path):
    app = make_app(_photo(tmp_path))

    async def run_before(pilot):
        await settle(pilot, app)
        await type_and_send(pilot, "make it a bit brighter")
        await settle(pilot, app)
        await type_and_send(pilot, "/checkout 9")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
