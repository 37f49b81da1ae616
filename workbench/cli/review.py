"""`workbench predict RUN ...`: store a run's predictions for review.

workbench predict 3 --split val
workbench predict 3 --unlabeled --score-threshold 0.3
workbench predict 3 demo_001.png 17
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.common import progress_bar, workspace
from workbench.domain import plural


def cmd_predict(args: argparse.Namespace) -> int:
    from workbench.services import review, semantic

    ws = workspace(args)
    slug = review.run_project_slug(ws, args.run)
    if args.project and args.project != slug:
        raise ValueError(f"run {args.run} belongs to project {slug!r}, not {args.project!r}")
    records = review.select_images(ws, slug, split=args.split, unlabeled=args.unlabeled, images=args.images)
    if not records:
        print("no images to predict")
        return 0
    if semantic.run_task(ws, args.run) == "semantic":
        with progress_bar("predict") as bar:
            out, got = semantic.predict_semantic(ws, slug, args.run, records, args.labelmaps, min_area=args.min_area,
                                                 device=args.device, progress=bar)
        print(f"run {args.run}: label maps of {plural(len(records), 'image')} of {slug!r} in {out / 'index'} "
              "(the layout and class ids of `workbench export labelmaps`); "
              f"{plural(got.predictions, 'connected component')} of {args.min_area} px and up stored as "
              "predictions; review them on the Review page")
        return 0
    if args.labelmaps is not None:
        raise ValueError(f"--labelmaps is for semantic runs; run {args.run} is an instance (Mask R-CNN) run")
    with progress_bar("predict") as bar:
        got = review.predict_images(
            ws,
            slug,
            args.run,
            records,
            score_threshold=args.score_threshold,
            device=args.device,
            progress=bar,
        )
    print(
        f"run {args.run}: {plural(got.predictions, 'prediction')} on {plural(got.images, 'image')} "
        f"of {slug!r} "
        f"(score >= {args.score_threshold}); review them on the Review page"
    )
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "predict",
        help="run a trained model on images and store its predictions for review",
        parents=[common],
    )
    p.add_argument("run", type=int, help="run id (see the Train page or `workbench runs`)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--split", choices=("train", "val", "test"), help="predict one split")
    which.add_argument("--unlabeled", action="store_true", help="predict the images without annotations")
    p.add_argument("images", nargs="*", default=[], help="image ids or file names (default: every image)")
    p.add_argument(
        "--score-threshold", type=float, default=0.5, help="keep predictions scoring at least this"
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    p.add_argument(
        "--min-area", dest="min_area", type=int, default=16,
        help="semantic runs: predicted components below this many pixels become no prediction",
    )
    p.add_argument(
        "--labelmaps", type=Path, default=None,
        help="semantic runs: write the predicted maps here as index/<stem>.png (default: RUN_DIR/predicted)",
    )
    p.add_argument("--project", default=None, help="check that the run belongs to this project")
    p.set_defaults(func=cmd_predict)
