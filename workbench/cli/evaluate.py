"""`workbench evaluate RUN [--split val] [--compare RUN2]`: COCO AP, label-map IoU and an HTML report.

workbench evaluate 3
workbench evaluate 3 --split test --score-threshold 0.1
workbench evaluate 4 --compare 3        # side-by-side report of run 4 against run 3, with deltas
workbench eval-coco gt.json dets.json --json   # any COCO results file, pycocotools' numbers
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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
    from workbench.services import evaluation, review, semantic

    ws = workspace(args)
    slug = review.run_project_slug(ws, args.run)
    if args.compare is not None:
        review.run_project_slug(ws, args.compare)  # a clear error for an unknown run
        if semantic.run_task(ws, args.run) == "semantic":
            path = semantic.compare_semantic_runs(ws, slug, args.run, args.compare, args.split)
        else:
            path = evaluation.compare_runs(ws, slug, args.run, args.compare, args.split)
        print(f"comparison of run {args.run} against run {args.compare} ({args.split}): {path}")
        return 0
    if semantic.run_task(ws, args.run) == "semantic":
        with progress_bar("evaluate") as bar:
            path = semantic.evaluate_semantic_run(ws, slug, args.run, split=args.split, device=args.device, progress=bar)
        metrics = json.loads((path.parent / "metrics.json").read_text())
        print(f"run {args.run} on {args.split} ({metrics['num_images']} images): {path}")
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"  mean IoU {fmt(metrics['mean_iou'])} (background not counted), pixel accuracy "
              f"{fmt(metrics['pixel_accuracy'])}, mean class accuracy {fmt(metrics['mean_class_accuracy'])}, "
              f"fwIoU {fmt(metrics['fw_iou'])}")
        return 0
    with progress_bar("evaluate") as bar:
        path = evaluation.evaluate_run(
            ws, slug, args.run, split=args.split, score_threshold=args.score_threshold, progress=bar,
            device=args.device,
        )
    metrics = json.loads((path.parent / "metrics.json").read_text())
    print(f"run {args.run} on {args.split} ({metrics.get('num_images')} images): {path}")
    _print_summary(metrics)
    pck = path.parent / "pck.json"  # a keypoint-heatmap run's: PCK on the ground-truth boxes
    if pck.exists():
        p = json.loads(pck.read_text())
        value = "–" if p["pck"] is None else f"{p['pck']:.3f}"
        print(f"  PCK@{p['alpha']:g} {value} over {p['labelled']} labelled keypoints (normalised by {p['normaliser']})")
    return 0


def _sigmas(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sigmas takes comma-separated numbers, got {text!r}") from None


def cmd_eval_coco(args: argparse.Namespace) -> int:
    from workbench.services import eval_coco

    ev = eval_coco.evaluate_coco_files(
        args.gt,
        args.results,
        iou_types=eval_coco.parse_iou_types(args.iou_types),
        sigmas=args.sigmas,
        out_dir=args.out,
    )
    if args.json:
        print(json.dumps(ev.stats(), indent=1))
        return 0
    print(f"{args.results} on {args.gt}: {ev.report}")
    for note in ev.result.notes:
        print(f"  note: {note}")
    for t, stats in ev.stats().items():
        print(f"  {t:9} " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()))
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ec = sub.add_parser(
        "eval-coco",
        help="evaluate a COCO results file against a COCO ground truth (pycocotools' numbers), HTML report",
        parents=[common],
    )
    ec.add_argument("gt", type=Path, help="COCO ground-truth JSON")
    ec.add_argument("results", type=Path, help="COCO results JSON (a list of detections)")
    ec.add_argument("--iou-types", help="comma-separated: bbox,segm,keypoints (default: the fields the results carry)")
    ec.add_argument("--sigmas", type=_sigmas, help="keypoint OKS sigmas, one per keypoint, comma-separated")
    ec.add_argument("--out", type=Path, help="report folder (default: RESULTS_eval/ beside the results)")
    ec.add_argument("--json", action="store_true", help="print the summary stats per IoU type as JSON")
    ec.set_defaults(func=cmd_eval_coco)
    p = sub.add_parser(
        "evaluate",
        help="evaluate a trained run on a split: COCO AP, label-map IoU, HTML report",
        parents=[common],
    )
    p.add_argument("run", type=int, help="run id (see the Train page)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="split to evaluate")
    p.add_argument("--compare", type=int, default=None, metavar="RUN2", help="also compare with this run")
    p.add_argument(
        "--score-threshold", type=float, default=0.001, help="lowest prediction score evaluated (COCO practice: 0.001)"
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    p.set_defaults(func=cmd_evaluate)
