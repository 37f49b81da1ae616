"""`workbench augment show|set|preview PROJECT`: a project's augmentation pipeline from the command line.

show prints the saved pipeline (a preset name or the custom list, as JSON); set saves a preset or a
JSON file's pipeline after validating it (every problem on its own line, nothing saved on error);
preview writes PNGs of augmented project images with the augmented targets drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.cli.common import workspace
from workbench.domain import WorkbenchError, plural


def _spec_from_args(args: argparse.Namespace) -> Any:
    """The pipeline named on the command line (--preset or --pipeline FILE.json), or None."""
    if getattr(args, "preset", None):
        return args.preset
    if getattr(args, "pipeline", None):
        path = Path(args.pipeline)
        if path.exists() and not path.is_file():  # a named pipe would block the read forever
            raise WorkbenchError(f"{path}: not a regular file, not read")
        try:
            return json.loads(path.read_text())
        except OSError as exc:
            raise WorkbenchError(f"{path}: cannot read the pipeline file ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise WorkbenchError(f"{path}: not valid JSON: {exc}") from None
        except RecursionError:
            raise WorkbenchError(f"{path}: not valid JSON (nested too deeply)") from None
    return None


def _check(spec: Any, where: str, outcome: str) -> None:
    from workbench.services import augmentation

    errors = augmentation.pipeline_errors(spec)
    if errors:
        for message in errors:
            print(f"{where}: {message}", file=sys.stderr)
        raise WorkbenchError(f"{where}: the pipeline has {plural(len(errors), 'problem')}; {outcome}")


def cmd_augment(args: argparse.Namespace) -> int:
    from workbench.services import augmentation

    ws = workspace(args)
    if args.action == "show":
        saved = augmentation.get_pipeline(ws, args.project)
        print(augmentation.describe_pipeline(saved))
        print(augmentation.pipeline_to_json(saved))
        return 0
    spec = _spec_from_args(args)
    where = args.pipeline or "pipeline"
    if args.action == "set":
        if spec is None:
            raise WorkbenchError("augment set: give --preset NAME or --pipeline FILE.json")
        _check(spec, where, "nothing was saved")
        saved = augmentation.set_pipeline(ws, args.project, spec)
        print(f"saved {augmentation.describe_pipeline(saved)} for {args.project}")
        return 0
    # preview: the counts are checked first (--count 0 must not read 'no annotated images', nor
    # --max-side -4 be ignored)
    if args.count < 1:
        raise WorkbenchError(f"augment preview: --count must be at least 1, got {args.count}")
    if args.max_side is not None and args.max_side < 1:
        raise WorkbenchError(f"augment preview: --max-side must be at least 1 pixel, got {args.max_side}")
    if spec is not None:
        _check(spec, where, "no preview was written")
    tiles = augmentation.preview(
        ws, args.project, count=args.count, seed=args.seed, spec=spec, max_side_px=args.max_side
    )
    if not tiles:
        print(f"{args.project} has no annotated images to preview; annotate some first")
        return 1
    out = Path(args.out)
    augmentation.write_preview(out, tiles, seed=args.seed)
    used = augmentation.describe_pipeline(spec if spec is not None else augmentation.get_pipeline(ws, args.project))
    print(f"wrote {plural(len(tiles), 'preview')} ({used}, seed {args.seed}) to {out}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from workbench.services.augmentation import PRESET_NAMES

    ag = sub.add_parser(
        "augment", help="show, set or preview a project's augmentation pipeline", parents=[common]
    )
    ag_sub = ag.add_subparsers(dest="action", required=True)
    show = ag_sub.add_parser("show", help="print the saved pipeline", parents=[common])
    show.add_argument("project")
    for action, text in (
        ("set", "save a preset or a JSON pipeline (validated first)"),
        ("preview", "write PNGs of augmented project images with their targets drawn"),
    ):
        p = ag_sub.add_parser(action, help=text, parents=[common])
        p.add_argument("project")
        which = p.add_mutually_exclusive_group()
        which.add_argument("--preset", choices=PRESET_NAMES)
        which.add_argument(
            "--pipeline", metavar="FILE.json",
            help='a JSON list of transforms, e.g. [{"name": "HorizontalFlip", "params": {"p": 0.5}}]',
        )
        if action == "preview":
            p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs")
            p.add_argument("--count", type=int, default=8)
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--max-side", dest="max_side", type=int, default=None,
                           help="shrink previews to at most this many pixels on their longer side")
    ag.set_defaults(func=cmd_augment)
