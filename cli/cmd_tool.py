"""``imagent tool NAME IMAGE``: run one registered tool directly, with validated arguments.

For scripting, debugging and measuring a tool on its own (no session, no planner).
Module-level imports are standard library only (``imagent --help`` stays fast).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "run one tool directly on an image (no session): ground, build_mask, remove, ..."
DESCRIPTION = HELP + """

examples:
  imagent tool ground photo.jpg --args '{"phrase": "the second face from the left"}' --json
  imagent tool remove photo.jpg --ground "the red car" -o out.png
  imagent tool remove photo.jpg --mask hole.png --args '{"seed": 3}' -o out.png
  imagent tool global_edit photo.jpg --args '{"operation": "dehaze"}' -o out.jpg
  imagent tool recolor photo.jpg --ground "the red car" --args '{"color": "blue"}' -o out.png
  imagent tool extract photo.jpg --ground "the face" -o face.png        (RGBA cut-out)
  imagent tool build_mask photo.jpg --ground "the sky" --mask-out sky.png
  imagent tool list                                                     (every tool and its arguments)

--args takes a JSON object (or @FILE with one). --ground PHRASE runs ground first and,
for tools that need a mask, build_mask with its defaults (unless --mask is given).
Nothing is written when anything fails; exit codes as for every command.
"""


def register(sub, common) -> None:
    p = sub.add_parser("tool", help=HELP, description=DESCRIPTION, parents=[common],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", help="the tool (or 'list')")
    p.add_argument("image", metavar="IMAGE", nargs="?", help="the input image")
    p.add_argument("--args", default=None, metavar="JSON", help="the tool's arguments as a JSON "
                   "object, or @FILE")
    p.add_argument("--mask", default=None, metavar="MASK", help="a mask image of the same size "
                   "(white = change), as the current mask")
    p.add_argument("--ground", default=None, metavar="PHRASE", help="ground this phrase first "
                   "(and build a mask from it for tools that need one)")
    p.add_argument("-o", "--output", default=None, metavar="OUT", help="write the result image "
                   "(for extract: the RGBA cut-out)")
    p.add_argument("--mask-out", default=None, metavar="FILE", help="write the resulting mask "
                   "(PNG, white = selected)")
    p.set_defaults(handler=cmd_tool)


def _parse_args_json(text: str | None) -> dict:
    from imagent.errors import UsageError

    if not text:
        return {}
    source = "--args"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --args file {str(path)!r}: {exc.strerror}",
                             hint="give a JSON file that exists, or the JSON itself") from None
        source = f"--args file {str(path)!r}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc.msg} at position {exc.pos} in "
                         f"{text[:80]!r}", hint='e.g. --args \'{"operation": "brightness", '
                                                '"amount": 0.2}\'') from None
    if not isinstance(value, dict):
        raise UsageError(f"{source} must be a JSON object, got {type(value).__name__} {text[:80]!r}",
                         hint='e.g. --args \'{"seed": 3}\'')
    return value


def _check_out(path: str | None, what: str) -> None:
    """Refuse a bad output path before anything runs (so nothing is half done)."""
    if path is None:
        return
    from imagent.errors import InputError
    from imagent.tools.imageio import SAVE_FORMATS

    target = Path(path).expanduser()
    if target.suffix.lower() not in SAVE_FORMATS:
        raise InputError(f"cannot write {what} as {target.suffix or '(no extension)'!r} "
                         f"({str(path)!r})", hint="use one of " + ", ".join(SAVE_FORMATS))
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {what} {str(path)!r}: the folder {str(parent)!r} does "
                         "not exist", hint="create the folder first or choose another path")


_NEEDS_MASK = ("remove", "extract", "recolor")


def cmd_tool(args: argparse.Namespace) -> int:
    from imagent.errors import UsageError
    from imagent.tools.registry import default_registry

    reg = default_registry()
    if args.name == "list":
        tools = [t for t in reg.describe() if not t["session"]]
        if args.json:
            print(json.dumps(tools, indent=2))
        else:
            for t in tools:
                params = ", ".join(t["parameters"].get("properties", {}))
                print(f"{t['name']}({params})\n    {t['description']}\n")
        return 0
    spec = reg.spec(args.name)  # unknown name: ToolArgumentError listing the known ones
    if spec.session:
        raise UsageError(f"{args.name!r} is a session command, not an image tool",
                         hint=f"use: imagent {args.name}")
    if not args.image:
        raise UsageError(f"imagent tool {args.name} needs an IMAGE",
                         hint=f"imagent tool {args.name} photo.jpg [--args JSON] -o out.png")
    from imagent.tools.types import ToolCall, ToolState

    tool_args = _parse_args_json(args.args)
    call = ToolCall(name=args.name, args=tool_args)
    reg.validate(call)  # bad arguments fail before the image is even read
    _check_out(args.output, "the output image")
    _check_out(args.mask_out, "the mask")
    if args.output and args.mask_out and \
            Path(args.output).expanduser().resolve() == Path(args.mask_out).expanduser().resolve():
        raise UsageError("--output and --mask-out name the same file",
                         hint="give the mask its own file name")

    from imagent.assistant.config import load_settings
    from imagent.tools.imageio import load_image, load_mask, save_image

    settings = load_settings({"profile": args.profile, "home": args.home})
    loaded = load_image(args.image, max_pixels=settings.max_pixels)
    from imagent.assistant.core import model_manager

    state = ToolState(image=loaded.image, original=loaded.image, models=model_manager(settings))
    if args.mask:
        state.mask = load_mask(args.mask, loaded.image.size)
    steps = []
    if args.ground:
        steps.append(ToolCall(name="ground", args={"phrase": args.ground}))
        if args.name in _NEEDS_MASK + ("insert", "global_edit") and not args.mask:
            steps.append(ToolCall(name="build_mask", args={"source": "detections"}))
    if args.name != "ground" or not args.ground:
        steps.append(call)
    else:
        steps[-1] = ToolCall(name="ground", args={"phrase": args.ground, **tool_args})
    results = []
    from imagent.tools.runner import Runner

    # the one runner: the same apply-and-finalise rule as the assistant and replay
    for record in Runner(reg).run(steps, state):
        results.append((ToolCall(**record.call), record.result))
    c, result = results[-1]

    out_image = state.image
    alpha = loaded.alpha if out_image.size == loaded.image.size else None
    if args.name == "extract" and result.extra.get("rgba") is not None and result.image is None:
        rgba = result.extra["rgba"]
        out_image, alpha = rgba.convert("RGB"), rgba.getchannel("A")
    written = {}
    if args.output:
        if result.image is None and args.name not in ("extract",):
            raise UsageError(f"{args.name} changes no pixels, so there is no image to write to "
                             f"{args.output!r}",
                             hint="use --json to see its result, or --mask-out for build_mask")
        written["output"] = str(save_image(out_image, args.output, alpha=alpha,
                                           provenance={"imagent:tool": args.name}))
    if args.mask_out:
        mask = result.mask if result.mask is not None else state.mask
        if mask is None and state.detections:
            from imagent.tools.build_mask import mask_from_detection

            mask = mask_from_detection(state.detections[0], state.image.size)
        if mask is None:
            raise UsageError(f"{args.name} produced no mask to write to {args.mask_out!r}",
                             hint="run build_mask or ground, or give --ground PHRASE")
        import numpy as np
        from PIL import Image

        m8 = Image.fromarray(np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8), "L")
        written["mask_output"] = str(save_image(m8.convert("RGB"), args.mask_out))
    if args.json:
        out = {"tool": args.name,
               "calls": [r.extra.get("call", cc.to_json_dict()) for cc, r in results],
               **result.summary(), **written}
        if len(results) > 1:
            out["steps"] = [{"tool": cc.name, **r.summary()} for cc, r in results[:-1]]
        print(json.dumps(out, indent=2, default=str))
    else:
        for cc, r in results:
            print(f"{cc.name}: {r.message}")
            if r.detections and len(r.detections) > 1:
                for i, d in enumerate(r.detections):
                    print(f"  [{i}] {d.label!r} box {list(d.box)} score {d.score:.2f} "
                          f"{' '.join(d.position)}")
        for path in written.values():
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
