"""`workbench split PROJECT` and `workbench stats PROJECT`: a project's dataset as a whole."""

from __future__ import annotations

import argparse
import json

from workbench.cli.common import workspace


def cmd_split(args: argparse.Namespace) -> int:
    from workbench.services.dataset import split_project

    counts = split_project(
        workspace(args),
        args.project,
        ratios=tuple(args.ratios),
        seed=args.seed,
        only_unassigned=args.only_unassigned,
    )
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no images to split")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from workbench.services.dataset import project_stats

    st = project_stats(workspace(args), args.project)
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"{st['project']}: {st['images']} images, {st['annotations']} annotations")
    print("status: " + (", ".join(f"{k} {v}" for k, v in sorted(st["status"].items())) or "(no images)"))
    print("splits: " + (", ".join(f"{k} {v}" for k, v in sorted(st["splits"].items())) or "(no images)"))
    print(f"{'class':20} {'instances':>9} {'images':>7} {'w/ kps':>7} {'crowd':>6}")
    for name, row in st["classes"].items():
        print(f"{name:20} {row['instances']:9} {row['images']:7} {row['with_keypoints']:7} {row['crowd']:6}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sp = sub.add_parser("split", help="deterministic stratified train/val/test split", parents=[common])
    sp.add_argument("project")
    sp.add_argument(
        "--ratios", nargs=3, type=float, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST")
    )
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--only-unassigned", action="store_true")
    sp.set_defaults(func=cmd_split)

    st = sub.add_parser("stats", help="per-class and per-split counts", parents=[common])
    st.add_argument("project")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_stats)
