"""The YOLO11n-seg side of bench/quality.py; runs ONLY in the bench's own venv (Ultralytics is AGPL and
never a dependency of workbench). quality.py starts it as a subprocess of /work/bench-venv/bin/python.

Builds the model from ``yolo11n-seg.yaml`` (random weights, nothing downloaded), trains it for a wall-
clock budget (Ultralytics' own ``time=`` argument, which refits the epochs and the lr schedule to the
budget), then predicts the test images (conf 0.001, max_det 100, masks at image size) and writes COCO
results json (RLE masks, xywh boxes, scores) for quality.py to score with the same pycocotools call as ours.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # no hub, no version checks
os.environ.setdefault("YOLO_VERBOSE", "False")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="Ultralytics data yaml")
    ap.add_argument("--test", type=Path, required=True, help="json: [{file, image_id}], category_ids")
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()

    import numpy as np
    import torch
    from pycocotools import mask as mask_utils
    from ultralytics import YOLO, settings

    off = ("sync", "hub", "wandb", "tensorboard", "mlflow", "clearml", "comet", "dvc", "neptune", "raytune")
    settings.update({k: False for k in off if k in settings})  # no logger integrations, no telemetry
    torch.manual_seed(0)
    now = time.perf_counter
    if (
        args.clock == "cpu"
    ):  # the trainer's `time=` budget in CPU seconds / cores, as quality.py's hook for ours
        import ultralytics.engine.trainer as trainer_module

        cores = os.cpu_count() or 1

        def now() -> float:
            return time.process_time() / cores

        class _Clock:
            def __getattr__(self, name: str) -> object:
                return getattr(time, name)

            @staticmethod
            def time() -> float:
                return now()

        trainer_module.time = _Clock()  # type: ignore[assignment]
    model = YOLO("yolo11n-seg.yaml", task="segment")
    t0, c0 = time.perf_counter(), now()
    model.train(
        data=str(args.data),
        epochs=1000,
        time=args.minutes / 60.0,
        imgsz=args.imgsz,
        batch=args.batch,
        device="cpu",
        workers=args.workers,
        amp=False,
        plots=False,
        val=True,
        pretrained=False,
        project=str(args.project),
        name="train",
        exist_ok=True,
        seed=0,
        deterministic=False,
        verbose=False,
    )
    train_s, train_clock = time.perf_counter() - t0, now() - c0
    # the best (on val) weights, as Ultralytics keeps them; the trainer's model is the last epoch's EMA
    best = args.project / "train" / "weights" / "best.pt"
    predictor = YOLO(str(best)) if best.exists() else model
    test = json.loads(args.test.read_text())
    cat_ids = test["category_ids"]  # class index -> COCO category id
    results = []
    t1 = time.perf_counter()
    for item in test["images"]:
        res = predictor.predict(
            item["file"],
            conf=0.001,
            max_det=100,
            imgsz=args.imgsz,
            retina_masks=True,
            device="cpu",
            verbose=False,
        )[0]
        if res.boxes is None or len(res.boxes) == 0:
            continue
        xyxy = res.boxes.xyxy.cpu().numpy()
        scores = res.boxes.conf.cpu().numpy()
        classes = res.boxes.cls.cpu().numpy().astype(int)
        masks = (res.masks.data.cpu().numpy() > 0.5) if res.masks is not None else None
        for i in range(len(scores)):
            x0, y0, x1, y1 = (float(v) for v in xyxy[i])
            det = {
                "image_id": item["image_id"],
                "category_id": cat_ids[classes[i]],
                "score": float(scores[i]),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
            }
            if masks is not None:
                rle = mask_utils.encode(np.asfortranarray(masks[i].astype(np.uint8)))
                det["segmentation"] = {
                    "size": [int(s) for s in rle["size"]],
                    "counts": rle["counts"].decode(),
                }
            results.append(det)
    args.out.write_text(
        json.dumps(
            {
                "detections": results,
                "train_s": train_s,
                "train_clock_s": train_clock,
                "predict_s": time.perf_counter() - t1,
            }
        )
    )
    print(
        f"yolo: trained {train_s:.0f} s, {len(results)} detections on {len(test['images'])} test images",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
