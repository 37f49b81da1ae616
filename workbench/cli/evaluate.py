"""`workbench evaluate RUN [--split val] [--compare RUN2]`: COCO AP, label-map IoU and an HTML report.

workbench evaluate 3
workbench evaluate 3 --split test --score-threshold 0.1
workbench evaluate 4 --compare 3        # side-by-side report of run 4 against run 3, with deltas
"""

from __future__ import annotations

import argparse
import json

from workbench.cli.common import progress_bar, workspace


def _print_summary(metrics: dict) -> None:  # type: ignore[type-arg]
    for t, tr in metrics.get("types", {}).items():
        s = tr.get("stats", {})
        keys = [k for k in ("AP", "AP50", "AP75") if k in s]
        print(f"  {t:9} " + "  ".join(f"{k} {s[k]:.3f}" for k in keys))
    sem = metrics.get("semantic") or {}
    if sem.get("mean_iou") is not None:
        print(f"  label maps mean IoU {sem['mean_iou']:.3f}, pixel accuracy {sem.get('pixel_accuracy') or 0:.3f}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from workbench.services import evaluation, review

    ws = workspace(args)
    slug = review.run_project_slug(ws, args.run)
    if args.compare is not None:
        review.run_project_slug(ws, args.compare)  # a clear error for an unknown run
        path = evaluation.compare_runs(ws, slug, args.run, args.compare, args.split)
        print(f"comparison of run {args.run} against run {args.compare} ({args.split}): {path}")
        return 0
    with progress_bar("evaluate") as bar:
        path = evaluation.evaluate_run(
            ws, slug, args.run, split=args.split, score_threshold=args.score_threshold, progress=bar,
            device=args.device,
        )
    metrics = json.loads((path.parent / "metrics.json").read_text())
    print(f"run {args.run} on {args.split} ({metrics.get('num_images')} images): {path}")
    _print_summary(metrics)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a trained run on a split: COCO AP, label-map IoU, HTML report",
        parents=[common],
    )
    p.add_argument("run", type=int, help="run id (see the Train page)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="split to evaluate")
    p.add_argument("--compare", type=int, default=None, metavar="RUN2", help="also compare with this run")
    p.add_argument("--score-threshold", type=float, default=0.05, help="lowest prediction score evaluated")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    p.set_defaults(func=cmd_evaluate)
