"""Benchmark (issue 16): default vs fitted anchors on synthetic tiny, thin and large objects, same run.

For each set: anchor coverage (share of training boxes whose best anchor reaches IoU 0.5 / 0.7, on
torchvision's anchor grid, see workbench/train/anchors.py) with the tiny backbone's default anchors and
with anchors fitted to the training boxes; then the same short CPU training (the tiny backbone from
scratch, the same iterations, seed, data and config but the anchors) with each, and the mask and box
AP50 of the validation split, computed by the Trainer's own COCOeval validation at the end of the run.

    .venv/bin/python bench/anchor_fit.py                  # 3 sets x 2 runs of 120 iterations
    .venv/bin/python bench/anchor_fit.py --iters 300 --sets thin
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/anchor_fit.py` from the repo

from workbench.domain import AnnotatedImage, Category, Dataset, ImageRecord, Instance  # noqa: E402

SIZE = 160
CATEGORIES = [Category("a", id=1, color="#e41a1c"), Category("b", id=2, color="#377eb8")]
COLORS = {"a": (230, 60, 50), "b": (60, 120, 240)}


def _box(kind: str, rng: np.random.Generator) -> tuple[float, float]:
    if kind == "tiny":
        s = rng.uniform(5, 12)
        return s * rng.uniform(0.8, 1.25), s
    if kind == "thin":
        w, h = rng.uniform(3, 6), rng.uniform(30, 90)
        return (w, h) if rng.random() < 0.5 else (h, w)
    return rng.uniform(60, 140), rng.uniform(60, 140)


def make_set(kind: str, n: int, seed: int) -> tuple[list[AnnotatedImage], list[np.ndarray]]:
    """``n`` images of SIZE x SIZE with rectangles of two classes (non-overlapping), noisy background."""
    rng = np.random.default_rng(seed)
    items, pixels = [], []
    per_image = {"tiny": (4, 10), "thin": (2, 6), "large": (1, 2)}[kind]
    for i in range(n):
        im = Image.new("RGB", (SIZE, SIZE), tuple(int(v) for v in rng.integers(0, 60, 3)))
        draw = ImageDraw.Draw(im)
        taken = np.zeros((SIZE, SIZE), bool)
        instances = []
        for _ in range(int(rng.integers(*per_image)) * 20):
            if len(instances) >= per_image[1]:
                break
            w, h = _box(kind, rng)
            w, h = min(w, SIZE - 2), min(h, SIZE - 2)
            x, y = rng.uniform(1, SIZE - w - 1), rng.uniform(1, SIZE - h - 1)
            x0, y0, x1, y1 = math.floor(x), math.floor(y), math.ceil(x + w), math.ceil(y + h)
            if taken[max(y0 - 1, 0):y1 + 1, max(x0 - 1, 0):x1 + 1].any():
                continue
            taken[y0:y1, x0:x1] = True
            cat = "a" if rng.random() < 0.5 else "b"
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=COLORS[cat])
            poly = (float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1))
            instances.append(Instance(cat, polygons=(poly,), bbox_xywh=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
                                      area=float((x1 - x0) * (y1 - y0))))
            if len(instances) >= per_image[0] and rng.random() < 0.3:
                break
        arr = np.asarray(im).astype(np.int16) + rng.integers(-15, 16, (SIZE, SIZE, 3))
        items.append(AnnotatedImage(ImageRecord(f"{kind}_{seed}_{i:04d}.png", SIZE, SIZE, id=i + 1), tuple(instances)))
        pixels.append(np.clip(arr, 0, 255).astype(np.uint8))
    return items, pixels


def write_run(run_dir: Path, train: tuple, val: tuple, config) -> Path:  # noqa: ANN001
    from workbench.formats.coco.write import dataset_to_coco
    from workbench.train.config import save_config

    images = run_dir / "dataset" / "images"
    images.mkdir(parents=True)
    for split, (items, pixels) in (("train", train), ("val", val)):
        for it, arr in zip(items, pixels, strict=True):
            Image.fromarray(arr).save(images / it.image.file_name)
        coco = dataset_to_coco(Dataset(categories=list(CATEGORIES), items=items))
        (run_dir / "dataset" / f"coco_{split}.json").write_text(json.dumps(coco))
    save_config(config, run_dir / "config.json")
    return run_dir


def train_and_score(run_dir: Path) -> dict[str, float]:
    from workbench.train.hooks import read_metrics
    from workbench.train.loop import Trainer

    t0 = time.perf_counter()
    status = Trainer(run_dir).train()
    if status != "succeeded":
        raise SystemExit(f"{run_dir}: training {status}")
    val = [r for r in read_metrics(run_dir) if r.get("type") == "val"][-1]
    return {"segm_ap50": float(val["segm_ap50"]), "bbox_ap50": float(val["bbox_ap50"]),
            "segm_ap": float(val["segm_ap"]), "seconds": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=["tiny", "thin", "large"], choices=["tiny", "thin", "large"])
    p.add_argument("--iters", type=int, default=120, help="training iterations per run (the same for both)")
    p.add_argument("--train-images", type=int, default=48)
    p.add_argument("--val-images", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch

    from workbench.train import anchors
    from workbench.train.config import TrainConfig
    from workbench.train.detector import BACKBONE_ANCHOR_SIZES, BACKBONE_STRIDES, DEFAULT_ASPECT_RATIOS

    torch.set_num_threads(args.threads)
    strides, sizes0, ratios0 = BACKBONE_STRIDES["tiny"], BACKBONE_ANCHOR_SIZES["tiny"], DEFAULT_ASPECT_RATIOS
    rows = []
    with tempfile.TemporaryDirectory(prefix="anchor_fit_") as tmp:
        for kind in args.sets:
            train = make_set(kind, args.train_images, args.seed)
            val = make_set(kind, args.val_images, args.seed + 1000)
            boxes = anchors.resized_boxes(train[0], SIZE, SIZE)
            val_boxes = anchors.resized_boxes(val[0], SIZE, SIZE)
            t0 = time.perf_counter()
            sizes1, ratios1 = anchors.fit_anchors(boxes, sizes0, ratios0, strides, seed=args.seed)
            fit_s = time.perf_counter() - t0
            row: dict = {"set": kind, "train_boxes": len(boxes), "fit_seconds": round(fit_s, 2),
                         "fitted": {"anchor_sizes": [list(lv) for lv in sizes1], "aspect_ratios": list(ratios1)}}
            for name, (s, r) in (("default", (sizes0, ratios0)), ("fitted", (sizes1, ratios1))):
                cov = anchors.coverage(val_boxes, s, r, strides)["all"]
                row[f"{name}_cov50"], row[f"{name}_cov70"] = cov["iou>=0.5"], cov["iou>=0.7"]
                detector = {} if name == "default" else {"anchor_sizes": [list(lv) for lv in s], "aspect_ratios": list(r)}
                cfg = TrainConfig(
                    backbone="tiny", weights="none", epochs=10_000, max_iters=args.iters, batch_size=2, num_workers=0,
                    augmentation="none", lr=0.01, warmup_iters=min(20, args.iters // 5), min_size=SIZE, max_size=SIZE,
                    early_stopping_patience=None, eval_every=10_000, device="cpu", seed=args.seed, log_every=1000,
                    detector=detector,
                )
                scores = train_and_score(write_run(Path(tmp) / f"{kind}-{name}", train, val, cfg))
                row.update({f"{name}_{k}": v for k, v in scores.items()})
                print(f"{kind:6} {name:8} coverage@0.5 {row[f'{name}_cov50']:.3f} @0.7 {row[f'{name}_cov70']:.3f} "
                      f"mask AP50 {scores['segm_ap50']:.3f} box AP50 {scores['bbox_ap50']:.3f} ({scores['seconds']:.0f} s)",
                      flush=True)
            rows.append(row)
    print(f"\n{args.iters} iterations x batch 2 per run, tiny backbone from scratch, {SIZE}x{SIZE} images, CPU "
          f"({args.threads} threads); coverage on the val boxes, anchors fitted on the train boxes")
    print(f"{'set':6} {'boxes':>5} {'cov@0.5 def→fit':>16} {'cov@0.7 def→fit':>16} {'mask AP50 def→fit':>18} "
          f"{'box AP50 def→fit':>17}  fitted anchors")
    for r in rows:
        print(f"{r['set']:6} {r['train_boxes']:5d} {r['default_cov50']:7.3f}→{r['fitted_cov50']:.3f} "
              f"{r['default_cov70']:8.3f}→{r['fitted_cov70']:.3f} {r['default_segm_ap50']:9.3f}→{r['fitted_segm_ap50']:.3f} "
              f"{r['default_bbox_ap50']:9.3f}→{r['fitted_bbox_ap50']:.3f}  {r['fitted']}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
