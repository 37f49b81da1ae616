"""`workbench export coco|labelmaps|cvat|yolo|voc PROJECT OUT`."""

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
                ws, args.project, Path(args.out), splits=splits, copy_images=args.copy_images, progress=bar,
                box_only_as_polygon=args.box_only_as_polygon,
            )
            for p in paths:
                print(p)
                twin = p.with_name(p.name.replace("instances_", "person_keypoints_", 1))
                if twin != p and twin.is_file():
                    print(twin)
        elif args.kind in ("yolo", "voc"):
            if args.kind == "yolo":
                done = export.export_yolo(ws, args.project, Path(args.out), task=args.task, splits=splits, progress=bar)
            else:
                done = export.export_voc(ws, args.project, Path(args.out), splits=splits, progress=bar)
            print(done.path)
            for note in done.notes:
                print(f"  note: {note}")
        elif args.kind == "cvat":
            done = export.export_cvat(
                ws, args.project, Path(args.out), splits=splits, copy_images=args.copy_images, progress=bar
            )
            print(done.path)
            for note in done.notes:
                print(f"  note: {note}")
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
    ex = sub.add_parser("export", help="export COCO, label maps, CVAT XML, YOLO or VOC", parents=[common])
    ex.add_argument("kind", choices=["coco", "labelmaps", "cvat", "yolo", "voc"])
    ex.add_argument("project")
    ex.add_argument("out")
    ex.add_argument("--split", action="append", help="only these splits (repeatable; 'unassigned' too)")
    ex.add_argument(
        "--copy-images", action="store_true", help="coco, cvat: copy images for a self-contained folder"
    )
    ex.add_argument(
        "--task", choices=["detect", "segment", "pose"], default="segment", help="yolo: what the label lines hold"
    )
    ex.add_argument(
        "--box-only-as-polygon",
        action="store_true",
        help="coco: write box-only instances as their 4-corner polygon (pycocotools annToMask, torchvision v2 masks)",
    )
    ex.add_argument(
        "--layout", choices=["png", "npz"], default="png", help="labelmaps: one PNG per class or one .npz"
    )
    ex.add_argument(
        "--sigma", type=float, default=2.0, help="labelmaps: keypoint heatmap Gaussian sigma (0: one pixel)"
    )
    ex.set_defaults(func=cmd_export)
