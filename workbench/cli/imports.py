"""`workbench import images|coco|labelme|cvat|labelstudio|yolo|voc|masks PROJECT PATH...`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from workbench.cli.common import progress_bar, workspace
from workbench.domain import ValidationError

IMPORT_KINDS = ("coco", "labelme", "cvat", "labelstudio", "yolo", "voc", "masks")
"""The annotation formats, as ``services.formats.IMPORT_FORMATS`` names them (a test keeps the two
equal; the CLI does not import services before a command runs)."""


def _print_report(report: Any) -> None:
    print(report.summary())
    for sk in report.skipped:
        print(f"  skipped {sk.name}: {sk.reason}")
    for d in report.duplicates:
        print(f"  duplicate {d}")
    for w in report.warnings:
        print(f"  note: {w}")


def cmd_import(args: argparse.Namespace) -> int:
    from workbench.services import formats, imports

    # options and paths that would be ignored, or a path that is not there, are refused before
    # anything is read (a typo must not end in '0 images imported' and exit status 0)
    if args.kind != "images" and len(args.paths) > 1:
        raise ValidationError(
            f"import {args.kind} takes one file or folder, got {len(args.paths)}: {', '.join(args.paths)}"
        )
    if args.images_dir and args.kind not in ("coco", "cvat", "labelstudio", "masks"):
        raise ValidationError(
            f"--images-dir is for import coco|cvat|labelstudio|masks; import {args.kind} finds the images itself"
        )
    if args.kind == "masks" and not args.images_dir:
        raise ValidationError("import masks needs --images-dir: the folder of the images the masks belong to")
    if (args.classes or args.one_per_class) and args.kind != "masks":
        raise ValidationError(f"--classes and --one-per-class are for import masks, not import {args.kind}")
    if args.kind == "yolo" and args.split:
        raise ValidationError("a YOLO data.yaml names its splits; --split is not for import yolo")
    if args.kind == "coco" and args.split and Path(args.paths[0]).is_dir():
        raise ValidationError(
            f"{args.paths[0]}: a COCO folder's files name their splits; --split is for a single COCO file"
        )
    missing = [p for p in args.paths if not os.path.lexists(p)]
    if missing:
        raise ValidationError(f"no such file or folder: {', '.join(missing)}; nothing was imported")
    ws = workspace(args)
    with progress_bar(f"import {args.kind}") as bar:
        if args.kind == "images":
            report = imports.import_images(
                ws,
                args.project,
                [Path(p) for p in args.paths],
                split=args.split,
                progress=bar,
                max_pixels=args.max_pixels,
            )
            if not (report.imported or report.duplicates or report.skipped):
                report.warnings.append(
                    f"no image files (JPEG, PNG, BMP, TIFF, WebP) found in {', '.join(args.paths)}"
                )
        else:  # an annotation format, by name from the one table the UI reads too
            report = formats.run_import(
                ws, args.project, args.kind, Path(args.paths[0]), progress=bar, split=args.split,
                images_dir=args.images_dir, crowd_as_instances=args.crowd_as_instances, classes=args.classes,
                one_per_class=args.one_per_class,
            )
    _print_report(report)
    if args.kind == "coco" and report.nothing_found():
        why = "; ".join(dict.fromkeys(sk.reason for sk in report.skipped[:3]))
        raise ValidationError(f"{args.paths[0]}: 0 of {report.considered} images imported ({why})")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    im = sub.add_parser(
        "import", help="import images, COCO, LabelMe, CVAT XML, Label Studio, YOLO, VOC or mask PNGs", parents=[common]
    )
    im.add_argument("kind", choices=["images", *IMPORT_KINDS])
    im.add_argument("project")
    im.add_argument(
        "paths", nargs="+", help="files, folders or zip archives (one file or folder for coco/labelme)"
    )
    im.add_argument("--split", choices=["train", "val", "test"])
    im.add_argument(
        "--images-dir", help="coco, cvat, labelstudio: folder holding the images the annotation file names"
    )
    im.add_argument(
        "--crowd-as-instances",
        action="store_true",
        help="coco: import RLE masks marked iscrowd=1 as ordinary instances (CVAT, supervision mark masks with holes so)",
    )
    im.add_argument("--classes", help="masks: class list of the index PNGs (default: classes.txt beside them)")
    im.add_argument(
        "--one-per-class", action="store_true", help="masks: one instance per class per image, not per blob"
    )
    im.add_argument(
        "--max-pixels", type=int, default=178_956_970, help="refuse larger images (decompression bombs)"
    )
    im.set_defaults(func=cmd_import)
