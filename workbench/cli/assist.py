"""`workbench assist` (a box or clicks become a shape) and `workbench next` (what to label next).

workbench assist demo demo_001.png --method grabcut --box 10,12,60,48 --json
workbench assist demo 3 --method wand --point 40,30 --tolerance 20
workbench assist demo 3 --method scissors --point 10,10 --point 60,12 --point 35,50
workbench assist demo 3 --method run:2 --box 10,12,60,48
workbench next demo --run 2 --count 10 --json
"""

from __future__ import annotations

import argparse
import json

from workbench.cli.common import progress_bar, workspace


def cmd_assist(args: argparse.Namespace) -> int:
    from workbench.services import assist

    ws = workspace(args)
    result = assist.assist(
        ws,
        args.project,
        args.image,
        args.method,
        box_xywh=assist.parse_box(args.box) if args.box else None,
        points=[assist.parse_point(p) for p in args.point],
        tolerance=args.tolerance,
        simplify=args.simplify,
        max_vertices=args.max_vertices,
        sam_model=args.sam_model,
        device=args.device,
    )
    coco = result.to_coco()
    if args.json:
        print(json.dumps(coco))
        return 0
    shape = result.shape
    what = (
        "an RLE mask (it has holes)"
        if shape.rle is not None
        else f"{len(shape.polygons)} polygon(s), {sum(len(p) // 2 for p in shape.polygons)} vertices"
    )
    x, y, w, h = coco["bbox"]
    extra = f", score {coco['score']:.3f}" if "score" in coco else ""
    extra += f", class {coco['category']}" if "category" in coco else ""
    print(f"{args.method} on {result.image.file_name}: {what}, area {coco['area']:g} px, bbox {x:g},{y:g},{w:g},{h:g}{extra}")
    return 0


def cmd_next(args: argparse.Namespace) -> int:
    from workbench.services import assist

    ws = workspace(args)
    with progress_bar("rank") as bar:
        ranked = assist.rank_next(ws, args.project, args.run, count=args.count, device=args.device, progress=bar)
    if args.json:
        print(json.dumps([r.__dict__ for r in ranked]))
        return 0
    if not ranked:
        print(f"no unlabelled images in {args.project!r}")
        return 0
    for r in ranked:
        mean = "-" if r.mean_score is None else f"{r.mean_score:.3f}"
        print(f"{r.image_id}\t{r.file_name}\tuncertainty {r.uncertainty:.3f}\t{r.detections} detections\tmean score {mean}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("assist", help="turn a box or clicks into a polygon (or an RLE mask with holes)", parents=[common])
    p.add_argument("project", help="project slug")
    p.add_argument("image", help="image id or file name")
    p.add_argument("--method", required=True, help="grabcut, wand, scissors, sam or run:RUN (a trained run's id)")
    p.add_argument("--box", default=None, help="X,Y,W,H in natural pixels of the upright image")
    p.add_argument(
        "--point", action="append", default=[], help="X,Y[,+|-]: a click on the object (+) or background (-); repeatable"
    )
    p.add_argument("--tolerance", type=float, default=None, help="magic wand: colour difference 0-255 it still fills")
    p.add_argument("--simplify", type=float, default=1.0, help="polygon simplification tolerance in pixels (default 1)")
    p.add_argument("--max-vertices", type=int, default=200, help="vertex budget of the polygon (default 200)")
    p.add_argument("--sam-model", default=None, help="SAM variant for --method sam (vit_b, vit_l, vit_h)")
    p.add_argument("--device", default="cpu", help="torch device for sam and run:RUN, e.g. cpu or cuda:0")
    p.add_argument("--json", action="store_true", help="print the COCO-like annotation as JSON")
    p.set_defaults(func=cmd_assist)

    n = sub.add_parser("next", help="rank the unlabelled images by how unsure a run is about them", parents=[common])
    n.add_argument("project", help="project slug")
    n.add_argument("--run", type=int, required=True, help="run id whose model ranks the images")
    n.add_argument("--count", type=int, default=None, help="print only the first N")
    n.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    n.add_argument("--json", action="store_true", help="print the ranking as JSON")
    n.set_defaults(func=cmd_next)
