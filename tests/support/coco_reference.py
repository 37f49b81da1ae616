"""Small synthetic COCO fixtures and the pycocotools reference run that our numbers must equal."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from workbench.geometry import mask_to_rle, polygons_to_rle, rle_to_mask

FIELDS = {"bbox": "bbox", "segm": "segmentation", "keypoints": "keypoints"}


def box_polygon(x: float, y: float, w: float, h: float) -> list[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def make_dataset(
    seed: int,
    *,
    n_images: int = 12,
    n_cats: int = 3,
    size_wh: tuple[int, int] = (160, 120),
    max_objects: int = 5,
    crowd_rate: float = 0.1,
    empty_image_rate: float = 0.15,
    extra_cat_without_gt: bool = True,
    rle_rate: float = 0.3,
    fp_rate: float = 0.4,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth with polygons and RLE (some crowd, some images empty) and noisy detections."""
    rng = np.random.default_rng(seed)
    w_img, h_img = size_wh
    cats = [{"id": i + 1, "name": f"c{i + 1}", "supercategory": ""} for i in range(n_cats)]
    if extra_cat_without_gt:
        cats.append({"id": n_cats + 1, "name": "nogt", "supercategory": ""})
    images, anns, dets = [], [], []
    aid = 1
    for i in range(n_images):
        iid = 100 + i
        images.append({"id": iid, "width": w_img, "height": h_img, "file_name": f"im{i}.png"})
        n_obj = 0 if rng.random() < empty_image_rate else int(rng.integers(1, max_objects + 1))
        for _ in range(n_obj):
            bw = float(rng.uniform(3, w_img * 0.8))
            bh = float(rng.uniform(3, h_img * 0.8))
            x = float(rng.uniform(0, w_img - bw))
            y = float(rng.uniform(0, h_img - bh))
            cat = int(rng.integers(1, n_cats + 1))
            poly = box_polygon(x, y, bw, bh)
            if rng.random() < 0.5:  # a triangle-ish cut so masks differ from boxes
                poly = [x, y, x + bw, y + bh * 0.3, x + bw * 0.7, y + bh, x, y + bh]
            rle = polygons_to_rle([poly], size_wh)
            mask = rle_to_mask(rle)
            area = float(mask.sum())
            ys, xs = np.nonzero(mask)
            if area == 0:
                continue
            bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
            crowd = int(rng.random() < crowd_rate)
            if crowd or rng.random() < rle_rate:
                seg: Any = {"size": [h_img, w_img], "counts": rle.counts}
                if crowd:  # crowd regions as uncompressed RLE, as COCO writes them
                    flat = mask.flatten(order="F")
                    runs, cur, n = [], 0, 0
                    for v in flat:
                        if v != cur:
                            runs.append(n)
                            cur, n = v, 0
                        n += 1
                    runs.append(n)
                    seg = {"size": [h_img, w_img], "counts": runs}
            else:
                seg = [poly]
            anns.append({"id": aid, "image_id": iid, "category_id": cat, "segmentation": seg, "area": area,
                         "bbox": bbox, "iscrowd": crowd})
            aid += 1
            # detections: a good one, sometimes a shifted one, sometimes the wrong class
            for _ in range(int(rng.integers(0, 3))):
                s = float(rng.uniform(0, 0.3))
                dx, dy = rng.normal(0, s * bw), rng.normal(0, s * bh)
                dcat = cat if rng.random() < 0.8 else int(rng.integers(1, n_cats + 2))
                dets.append(_det(iid, dcat, x + dx, y + dy, bw * rng.uniform(0.7, 1.3), bh * rng.uniform(0.7, 1.3),
                                 float(np.round(rng.uniform(0.05, 1.0), 2)), size_wh))
        for _ in range(int(rng.poisson(fp_rate * 3))):
            bw, bh = float(rng.uniform(2, 60)), float(rng.uniform(2, 60))
            dets.append(_det(iid, int(rng.integers(1, n_cats + 2)), float(rng.uniform(0, w_img - bw)),
                             float(rng.uniform(0, h_img - bh)), bw, bh, float(np.round(rng.uniform(0, 1), 2)), size_wh))
    gt = {"images": images, "categories": cats, "annotations": anns}
    return gt, dets


def _det(iid: int, cat: int, x: float, y: float, w: float, h: float, score: float, size_wh: tuple[int, int]) -> dict:
    w_img, h_img = size_wh
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(w_img), x + w), min(float(h_img), y + h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        x0, y0, x1, y1 = 0.0, 0.0, 2.0, 2.0
    mask = np.zeros((h_img, w_img), np.uint8)
    mask[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))] = 1
    rle = mask_to_rle(mask)
    return {"image_id": iid, "category_id": cat, "score": score, "bbox": [x0, y0, x1 - x0, y1 - y0],
            "segmentation": {"size": [h_img, w_img], "counts": rle.counts}}


def make_keypoint_dataset(seed: int, k: int, *, n_images: int = 10, n_cats: int = 1) -> tuple[dict, list[dict]]:
    """People-like instances with K keypoints (some invisible, some instances with none)."""
    rng = np.random.default_rng(seed)
    cats = [{"id": c + 1, "name": f"kp{c + 1}", "keypoints": [f"p{j}" for j in range(k)],
             "skeleton": [[1, 2]] if k > 1 else []} for c in range(n_cats)]
    images, anns, dets = [], [], []
    aid = 1
    for i in range(n_images):
        iid = i + 1
        images.append({"id": iid, "width": 200, "height": 200, "file_name": f"k{i}.png"})
        for _ in range(int(rng.integers(0, 4))):
            cat = int(rng.integers(1, n_cats + 1))
            bw, bh = rng.uniform(10, 150, 2)
            x, y = rng.uniform(0, 200 - bw), rng.uniform(0, 200 - bh)
            xs, ys = rng.uniform(x, x + bw, k), rng.uniform(y, y + bh, k)
            v = rng.choice([0, 1, 2], size=k, p=[0.2, 0.2, 0.6])
            if rng.random() < 0.15:
                v[:] = 0
            kp = []
            for j in range(k):
                kp += [float(xs[j]) if v[j] else 0.0, float(ys[j]) if v[j] else 0.0, int(v[j])]
            crowd = int(rng.random() < 0.1)
            anns.append({"id": aid, "image_id": iid, "category_id": cat, "keypoints": kp,
                         "num_keypoints": int((v > 0).sum()), "bbox": [float(x), float(y), float(bw), float(bh)],
                         "area": float(bw * bh * rng.uniform(0.3, 0.9)), "iscrowd": crowd,
                         "segmentation": [box_polygon(float(x), float(y), float(bw), float(bh))]})
            aid += 1
            for _ in range(int(rng.integers(0, 3))):
                noise = rng.uniform(0, 0.15) * max(bw, bh)
                dkp = []
                for j in range(k):
                    dkp += [float(xs[j] + rng.normal(0, noise)), float(ys[j] + rng.normal(0, noise)), 1.0]
                dets.append({"image_id": iid, "category_id": cat, "keypoints": dkp,
                             "score": float(np.round(rng.uniform(0, 1), 2))})
        if rng.random() < 0.3:
            dkp = []
            for _j in range(k):
                dkp += [float(rng.uniform(0, 200)), float(rng.uniform(0, 200)), 1.0]
            dets.append({"image_id": iid, "category_id": int(rng.integers(1, n_cats + 1)), "keypoints": dkp,
                         "score": float(rng.uniform(0, 1))})
    return {"images": images, "categories": cats, "annotations": anns}, dets


def reference(
    gt: dict, dt: list[dict], iou_type: str, *, max_dets: int | None = None, cat_ids: list[int] | None = None,
    sigmas: np.ndarray | None = None,
) -> COCOeval:
    """pycocotools COCOeval (evaluate, accumulate, summarize) on a result list of that type's field only."""
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        field = FIELDS[iou_type]
        res = [{k: v for k, v in d.items() if k in ("image_id", "category_id", "score", field)} for d in dt]
        if res:
            cd = cg.loadRes(copy.deepcopy(res))
        else:  # loadRes([]) crashes: an empty result set built by hand
            cd = COCO()
            cd.dataset = {"images": list(gt["images"]), "categories": copy.deepcopy(gt["categories"]),
                          "annotations": []}
            cd.createIndex()
        ev = COCOeval(cg, cd, iou_type)
        if max_dets is not None:
            ev.params.maxDets = [1, 10, max_dets]
        if cat_ids is not None:
            ev.params.catIds = cat_ids
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev
