"""Benchmark: workbench.evaluate.evaluate_coco against pycocotools COCOeval on the same synthetic set.

Synthetic: N images (default 5,000) of 640x480, 10 classes, ~8 ground-truth objects per image (some crowd,
some images empty), 20 predictions per image (boxes + RLE masks, jittered copies of the objects and
false positives). Both sides evaluate bbox and segm; pycocotools runs loadRes + evaluate + accumulate +
summarize per type (its usual use); we time our whole evaluate_coco (which also builds the confusion
matrix and the error list). The stats must be identical, or the script exits with status 1.

    .venv/bin/python bench/evaluate.py            # full size
    .venv/bin/python bench/evaluate.py --images 300
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import platform
import sys
import time
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from workbench.evaluate.coco_eval import evaluate_coco, stat_names
from workbench.geometry import polygons_to_rle

W, H, N_CATS = 640, 480, 10


def _box_poly(x: float, y: float, w: float, h: float) -> list[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def synthetic(n_images: int, dets_per_image: int, seed: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    aid = 1
    for i in range(n_images):
        iid = i + 1
        images.append({"id": iid, "width": W, "height": H, "file_name": f"{iid:06d}.jpg"})
        n_obj = 0 if rng.random() < 0.05 else int(rng.integers(1, 15))
        objs = []
        for _ in range(n_obj):
            s = float(np.exp(rng.uniform(np.log(8), np.log(300))))
            bw, bh = s * rng.uniform(0.6, 1.4), s * rng.uniform(0.6, 1.4)
            bw, bh = min(bw, W - 1), min(bh, H - 1)
            x, y = float(rng.uniform(0, W - bw)), float(rng.uniform(0, H - bh))
            cat = int(rng.integers(1, N_CATS + 1))
            poly = [x, y, x + bw, y + bh * 0.2, x + bw * 0.8, y + bh, x, y + bh * 0.9]
            rle = polygons_to_rle([poly], (W, H))
            crowd = int(rng.random() < 0.02)
            anns.append({"id": aid, "image_id": iid, "category_id": cat, "iscrowd": crowd,
                         "segmentation": {"size": [H, W], "counts": rle.counts} if crowd else [poly],
                         "bbox": [x, y, bw, bh], "area": float(bw * bh * 0.75)})
            aid += 1
            objs.append((x, y, bw, bh, cat))
        for j in range(dets_per_image):
            if objs and j < 2 * len(objs):
                x, y, bw, bh, cat = objs[j % len(objs)]
                jit = rng.uniform(0, 0.25)
                x, y = x + rng.normal(0, jit * bw), y + rng.normal(0, jit * bh)
                bw, bh = bw * rng.uniform(0.8, 1.2), bh * rng.uniform(0.8, 1.2)
                if rng.random() < 0.1:
                    cat = int(rng.integers(1, N_CATS + 1))
            else:
                bw, bh = float(rng.uniform(4, 200)), float(rng.uniform(4, 200))
                x, y = float(rng.uniform(0, W - bw)), float(rng.uniform(0, H - bh))
                cat = int(rng.integers(1, N_CATS + 1))
            x, y = float(np.clip(x, 0, W - 2)), float(np.clip(y, 0, H - 2))
            bw, bh = float(min(bw, W - x)), float(min(bh, H - y))
            rle = polygons_to_rle([_box_poly(x, y, bw, bh)], (W, H))
            dets.append({"image_id": iid, "category_id": cat, "score": float(rng.uniform(0.01, 1.0)),
                         "bbox": [x, y, bw, bh], "segmentation": {"size": [H, W], "counts": rle.counts}})
    cats = [{"id": c, "name": f"class{c}", "supercategory": ""} for c in range(1, N_CATS + 1)]
    return {"images": images, "categories": cats, "annotations": anns}, dets


def _clock() -> tuple[float, float]:
    """(wall, CPU) seconds: CPU time of this process is what a shared, busy machine disturbs least."""
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> np.ndarray:
    now = _clock()
    return np.array([now[0] - t[0], now[1] - t[1]])


def run_pycocotools(
    gt: dict[str, Any], dets: list[dict[str, Any]], iou_type: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns stats, (wall, CPU) seconds for loadRes, and for evaluate + accumulate + summarize."""
    field = "bbox" if iou_type == "bbox" else "segmentation"
    res = [{k: d[k] for k in ("image_id", "category_id", "score", field)} for d in dets]
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        t0 = _clock()
        cd = cg.loadRes(res)
        t_load = _since(t0)
        t1 = _clock()
        ev = COCOeval(cg, cd, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        t_eval = _since(t1)
    return ev.stats, t_load, t_eval


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets", type=int, default=20, help="predictions per image")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    gt, dets = synthetic(args.images, args.dets)
    print(f"synthetic set: {len(gt['images'])} images, {len(gt['annotations'])} gt, {len(dets)} predictions "
          f"(built in {time.perf_counter() - t0:.1f} s); {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")

    dets_ours = copy.deepcopy(dets)
    t0 = _clock()
    ours = evaluate_coco(gt, dets_ours, iou_types=("bbox", "segm"))
    t_ours = _since(t0)

    ref: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for iou_type in ("bbox", "segm"):
        ref[iou_type] = run_pycocotools(gt, copy.deepcopy(dets), iou_type)

    ok = True
    print()
    print("| metric | ours | pycocotools | equal |")
    print("|---|---|---|---|")
    for iou_type in ("bbox", "segm"):
        mine = ours.types[iou_type].stats_array
        theirs = ref[iou_type][0]
        for name, a, b in zip(stat_names(iou_type), mine, theirs, strict=True):
            same = a == b
            ok &= bool(same)
            print(f"| {iou_type} {name} | {a:.6f} | {b:.6f} | {'yes' if same else 'NO'} |")
    t_ref_eval = sum(v[2] for v in ref.values())
    t_ref_all = sum(v[1] + v[2] for v in ref.values())
    print()
    print(f"| {args.images} images x {args.dets} predictions, bbox + segm | wall s | CPU s | ratio (wall) | ratio (CPU) |")
    print("|---|---|---|---|---|")
    for label, t in (
        ("ours: evaluate_coco (incl. result parsing, confusion matrix, error list)", t_ours),
        ("pycocotools: evaluate + accumulate + summarize", t_ref_eval),
        ("pycocotools: loadRes + evaluate + accumulate + summarize", t_ref_all),
    ):
        r = t / t_ours
        print(f"| {label} | {t[0]:.2f} | {t[1]:.2f} | {r[0]:.2f} | {r[1]:.2f} |")
    print()
    print("stats identical:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
