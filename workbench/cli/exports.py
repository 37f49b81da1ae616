"""`workbench export coco|labelmaps PROJECT OUT`."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.common import progress_bar, workspace
from workbench.domain import ValidationError


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.services import export

    ws = workspace(args)
    splits = args.split or None
    with progress_bar(f"export {args.kind}") as bar:
        if args.kind == "coco":
            paths = export.export_coco(
                ws, args.project, Path(args.out), splits=splits, copy_images=args.copy_images, progress=bar
            )
            for p in paths:
                print(p)
        else:
            if args.sigma < 0:
                raise ValidationError(f"--sigma is a number of pixels, or 0 for one pixel; got {args.sigma}")
            sigma = None if args.sigma == 0 else args.sigma
            print(
                export.export_labelmaps(
                    ws,
                    args.project,
                    Path(args.out),
                    layout=args.layout,
                    splits=splits,
                    heatmap_sigma=sigma,
                    progress=bar,
                )
            )
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ex = sub.add_parser("export", help="export COCO or label maps", parents=[common])
    ex.add_argument("kind", choices=["coco", "labelmaps"])
    ex.add_argument("project")
    ex.add_argument("out")
    ex.add_argument("--split", action="append", help="only these splits (repeatable; 'unassigned' too)")
    ex.add_argument(
        "--copy-images", action="store_true", help="coco: copy images for a self-contained folder"
    )
    ex.add_argument(
        "--layout", choices=["png", "npz"], default="png", help="labelmaps: one PNG per class or one .npz"
    )
    ex.add_argument(
        "--sigma", type=float, default=2.0, help="labelmaps: keypoint heatmap Gaussian sigma (0: one pixel)"
    )
    ex.set_defaults(func=cmd_export)
