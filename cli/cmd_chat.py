"""``imagent chat [IMAGE] [--session NAME]``: the terminal UI.

Module-level imports are standard library only (``imagent --help`` stays fast).
"""

from __future__ import annotations

import argparse

HELP = "chat with the editor in a terminal UI (image pane, history tree, undo/redo)"
DESCRIPTION = HELP + """.

With IMAGE a new session starts on it; without, --session NAME (or the most recent
session) continues. Keys: ctrl+z undo, ctrl+y redo, ctrl+b before/after, ctrl+t mask
overlay, escape cancels a running request (else clears the selection), ctrl+q quits.
Click on the image to point at a pixel, drag to draw a box: the next request ("remove
this", "make this blue") uses it. A "which one?" question numbers its candidates on the
image: type the number or click inside the box. Slash commands: /undo, /redo, /log,
/checkout N, /export PATH, /select box X0,Y0,X1,Y1 | point X,Y, /clear, /planner [NAME],
/model [PROFILE], /help.
Image display: Kitty or Sixel graphics where the terminal supports them, coloured
half-cell blocks elsewhere (IMAGENT_TUI_IMAGE=halfcell forces the blocks).
"""


def register(sub, common) -> None:
    p = sub.add_parser("chat", help=HELP, description=DESCRIPTION, parents=[common],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", metavar="IMAGE", nargs="?", default=None, help="an image to start a new session on")
    p.add_argument("--session", "-s", metavar="NAME", default=None,
                   help="with IMAGE: the new session's name; without: the session to continue")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--planner", choices=["rules", "llm", "auto"], default=None)
    p.set_defaults(handler=cmd_chat)


def _detect_graphics(box: list) -> None:
    try:
        from imagent.tui.widgets import graphics_image_class

        box.append(graphics_image_class())
    except Exception:  # noqa: BLE001 - no graphics protocol then: the half-cell blocks
        box.append(None)


def cmd_chat(args: argparse.Namespace) -> int:
    import threading

    from imagent.assistant.config import load_settings
    from imagent.assistant.core import Assistant

    settings = load_settings({"profile": args.profile, "home": args.home, "seed": args.seed,
                              "planner": args.planner})
    # The terminal's graphics query (it waits for the terminal's answer) overlaps opening the session.
    graphics: list = []
    probe = threading.Thread(target=_detect_graphics, args=(graphics,), daemon=True)
    probe.start()
    try:
        # Opened before the UI starts: a bad image or an unknown session is a plain CLI error.
        assistant = Assistant.open(args.image, session=args.session, settings=settings)
    finally:
        probe.join()
    from imagent.tui.app import ChatApp

    with assistant:
        app = ChatApp(assistant, graphics_cls=graphics[0] if graphics else None)
        app.run()
    if app.return_code:
        return app.return_code
    return 0
