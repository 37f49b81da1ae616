"""Validation during training: the model's box and mask AP on a COCO ground truth, as COCOeval counts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from workbench.train.config import EVAL_DETECTIONS_PER_IMG, EVAL_SCORE_THRESH
from workbench.train.dataset import TrainingSchema
from workbench.train.model import detection_limits


def _masks_to_results(output: dict[str, torch.Tensor], image_id: int, label_to_cat: dict[int, int]) -> list[dict[str, Any]]:
    from workbench.geometry.rle import mask_to_rle

    boxes = output["boxes"].cpu().numpy()
    scores = output["scores"].cpu().numpy()
    labels = output["labels"].cpu().numpy()
    masks = (output["masks"][:, 0] > 0.5).cpu().numpy() if "masks" in output else None
    results = []
    for i in range(len(scores)):
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        row: dict[str, Any] = {
            "image_id": int(image_id),
            "category_id": int(label_to_cat[int(labels[i])]),
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "score": float(scores[i]),
        }
        if masks is not None:
            row["segmentation"] = mask_to_rle(masks[i]).to_coco()
        results.append(row)
    return results


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    loader: Iterable[tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]],
    gt: dict[str, Any],
    schema: TrainingSchema,
    device: torch.device,
    *,
    score_thresh: float = EVAL_SCORE_THRESH,
    detections_per_img: int = EVAL_DETECTIONS_PER_IMG,
) -> dict[str, float]:
    """Box and mask AP of the model on a COCO ground-truth dict (our evaluate_coco, COCOeval's numbers).

    The model keeps detections down to ``score_thresh``, ``detections_per_img`` per image, while it
    predicts here (COCO practice; see :func:`workbench.train.model.detection_limits`).
    """
    from workbench.evaluate.coco_eval import evaluate_coco

    cat_by_name = {c["name"]: int(c["id"]) for c in gt.get("categories", [])}
    label_to_cat = {schema.label_of(n): cat_by_name[n] for n in schema.class_names if n in cat_by_name}
    was_training = model.training
    model.eval()
    results: list[dict[str, Any]] = []
    try:
        with detection_limits(model, score_thresh=score_thresh, detections_per_img=detections_per_img):
            for images, targets in loader:
                outputs = model([im.to(device) for im in images])
                for out, tgt in zip(outputs, targets, strict=True):
                    keep = torch.tensor([int(lbl) in label_to_cat for lbl in out["labels"].tolist()], dtype=torch.bool)
                    out = {k: v[keep] for k, v in out.items()} if len(keep) else out
                    results.extend(_masks_to_results(out, int(tgt["image_id"]), label_to_cat))
    finally:
        model.train(was_training)
    if not gt.get("annotations"):
        return {"bbox_ap": 0.0, "bbox_ap50": 0.0, "segm_ap": 0.0, "segm_ap50": 0.0, "num_detections": len(results)}
    res = evaluate_coco(gt, results, iou_types=("bbox", "segm"))
    out: dict[str, float] = {"num_detections": float(len(results))}
    for t in ("bbox", "segm"):
        stats = res.types[t].stats if t in res.types else {}
        out[f"{t}_ap"] = max(float(stats.get("AP", 0.0)), 0.0)
        out[f"{t}_ap50"] = max(float(stats.get("AP50", 0.0)), 0.0)
        out[f"{t}_ap75"] = max(float(stats.get("AP75", 0.0)), 0.0)
    return out
