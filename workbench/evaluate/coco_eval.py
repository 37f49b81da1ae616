"""COCO evaluation (bbox, segm, keypoints) with pycocotools' numbers, computed without its Python loops.

Why our own engine rather than ``COCOeval``: COCOeval's ``evaluateImg`` runs a Python triple loop per
(image, category, area range), which dominates its time on thousands of images; and we want more than
its 12 numbers (per-class tables, PR curves, a confusion matrix, per-image errors). Here IoUs come from
the same C routine (through ``workbench.geometry.rle_iou`` for masks) or the same double arithmetic in
numpy (boxes, OKS); the greedy matching runs one detection rank at a time over every (image, category)
pair at once; ``accumulate`` and ``summarize`` are pycocotools' formulas on the same arrays, so the
summary numbers are *equal* to COCOeval's, not merely close (tests/unit/evaluate/test_coco_eval.py checks this).

Semantics that are COCOeval's and that we keep (document, do not "fix"):

* Images are every image of the ground truth; categories every category of it (keypoints: every
  category with a keypoint schema). Detections on other images are an error (COCOeval asserts);
  detections of unknown categories are ignored.
* ``iscrowd`` ground truth is ignored (matched detections neither count nor hurt) and may match many
  detections; a keypoint instance with ``num_keypoints == 0`` is ignored too.
* A ground-truth annotation with ``id == 0`` can never count as a true positive (COCOeval stores the
  matched id and tests it for non-zero); give ids from 1, as our exports do.
* A class without ground truth has AP/AR ``-1`` and is left out of the means; a class with ground truth
  but no detections has AP 0.

Choices where COCOeval is undefined or a trap:

* **No detections at all**: ``COCO.loadRes([])`` crashes. We evaluate as COCOeval does with an empty
  result set built without ``loadRes``: AP/AR are 0 for classes with ground truth and -1 without.
* **Areas of detections** (they only decide which unmatched detections fall outside an area range):
  computed per IoU type from that type's geometry, as ``loadRes`` does for a list holding only that
  field (torchvision's reference evaluator does the same): boxes ``w*h``, masks the pixel count,
  keypoints the extent of the keypoints. Passing one list with ``bbox`` *and* ``segmentation`` to
  ``loadRes`` would instead use box areas for masks too (DESIGN's pitfall).
* **maxDets**: ``summarize`` hard-codes 100 for AP (and 20 for keypoints), so another ``maxDets`` gives
  AP = -1 there. We summarise at the ``max_dets`` actually used (identical when it is 100 / 20).
* **Keypoint sigmas**: COCOeval has one sigma vector for all categories. We take one vector per
  category (``kpt_oks_sigmas``, else COCO's 17 person sigmas when K == 17, else 0.05 per keypoint), so
  categories with different K are each scored with their own sigmas; the summary is the mean over the
  concatenated per-category precision arrays, i.e. what COCOeval gives per category when run on each
  keypoint category separately with its sigmas, pooled. With one keypoint category it is exactly
  COCOeval's run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.domain import Rle, ValidationError
from workbench.evaluate.matching import ON_CROWD, box_iou, match_greedy
from workbench.geometry import coco_rle_to_rle, polygons_to_rle, rle_area, rle_bbox_xywh, rle_iou

IOU_TYPES = ("bbox", "segm", "keypoints")
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
COCO_PERSON_SIGMAS = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10.0
)
DEFAULT_SIGMA = 0.05
DET_AREAS = {
    "all": (0.0**2, 1e5**2),
    "small": (0.0**2, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
KPT_AREAS = {k: DET_AREAS[k] for k in ("all", "medium", "large")}
MAX_DETS_KEYPOINTS = 20

__all__ = [
    "COCO_PERSON_SIGMAS",
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "ConfusionMatrix",
    "EvalResult",
    "TypeResult",
    "evaluate_coco",
    "keypoint_sigmas",
    "loadres_branch",
    "stat_names",
]


def stat_names(iou_type: str, max_dets: int = 100) -> list[str]:
    """Names of COCOeval's ``stats`` entries, in its order."""
    if iou_type == "keypoints":
        return ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    return ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", f"AR{max_dets}", "ARs", "ARm", "ARl"]


# --------------------------------------------------------------------------------------------- results


@dataclass
class TypeResult:
    """One IoU type: COCOeval's stats plus its precision/recall arrays and per-class views of them."""

    iou_type: str
    stats: dict[str, float]
    category_ids: list[int]
    category_names: list[str]
    max_dets: list[int]
    area_labels: list[str]
    precision: np.ndarray = field(repr=False)
    """COCOeval's ``eval['precision']``: T x R x K x A x M, -1 where a class has no ground truth."""
    recall: np.ndarray = field(repr=False)
    """COCOeval's ``eval['recall']``: T x K x A x M."""
    num_gt: dict[str, int] = field(default_factory=dict)
    num_dt: dict[str, int] = field(default_factory=dict)

    @property
    def stats_array(self) -> np.ndarray:
        return np.array(list(self.stats.values()), dtype=np.float64)

    def per_class(self) -> dict[str, dict[str, float]]:
        """AP, AP50, AP75 per class (area all, largest maxDets); -1 for a class without ground truth."""
        out: dict[str, dict[str, float]] = {}
        for k, name in enumerate(self.category_names):
            row = {}
            for key, t in (("AP", None), ("AP50", 0), ("AP75", 5)):
                s = self.precision[:, :, k, 0, -1] if t is None else self.precision[t, :, k, 0, -1]
                s = s[s > -1]
                row[key] = float(np.mean(s)) if s.size else -1.0
            r = self.recall[:, k, 0, -1]
            r = r[r > -1]
            row["AR"] = float(np.mean(r)) if r.size else -1.0
            row["num_gt"] = self.num_gt.get(name, 0)
            row["num_dt"] = self.num_dt.get(name, 0)
            out[name] = row
        return out

    def pr_curves(self) -> dict[str, dict[str, list[float]]]:
        """Precision on the 101-point recall grid per class: at IoU 0.5 and averaged over 0.5:0.95."""
        out: dict[str, dict[str, list[float]]] = {}
        for k, name in enumerate(self.category_names):
            p = self.precision[:, :, k, 0, -1]
            if (p < 0).all():
                continue
            out[name] = {
                "precision_iou50": [float(v) for v in p[0]],
                "precision_iou50_95": [float(v) for v in p.mean(axis=0)],
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "iou_type": self.iou_type,
            "stats": {k: float(v) for k, v in self.stats.items()},
            "per_class": self.per_class(),
            "pr_curves": self.pr_curves(),
            "max_dets": list(self.max_dets),
            "area_labels": list(self.area_labels),
        }


@dataclass
class ConfusionMatrix:
    """Counts at one IoU; rows are ground-truth classes then background, columns predictions then it."""

    labels: list[str]
    """Class names; the last row/column (index len(labels)) is 'background'."""
    matrix: np.ndarray
    iou_threshold: float
    score_threshold: float
    iou_type: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": [*self.labels, "background"],
            "matrix": self.matrix.astype(int).tolist(),
            "iou_threshold": self.iou_threshold,
            "score_threshold": self.score_threshold,
            "iou_type": self.iou_type,
            "rows": "ground truth",
            "columns": "prediction",
        }


@dataclass
class EvalResult:
    types: dict[str, TypeResult]
    confusion: ConfusionMatrix | None
    errors: list[dict[str, Any]]
    """One row per error (missed, spurious, wrong_class, poor_localisation), most severe first."""
    max_dets: int
    num_images: int
    num_detections: int
    notes: list[str] = field(default_factory=list)

    @property
    def recall_grid(self) -> list[float]:
        return [float(v) for v in RECALL_THRESHOLDS]

    def stats(self, iou_type: str) -> dict[str, float]:
        return self.types[iou_type].stats

    def errors_by_image(self) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for e in self.errors:
            out.setdefault(e["image_id"], []).append(e)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "types": {k: v.to_dict() for k, v in self.types.items()},
            "recall_grid": self.recall_grid,
            "confusion": None if self.confusion is None else self.confusion.to_dict(),
            "errors": self.errors,
            "max_dets": self.max_dets,
            "num_images": self.num_images,
            "num_detections": self.num_detections,
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------------------ input prep


def keypoint_sigmas(num_keypoints: int, given: Sequence[float] | None = None) -> np.ndarray:
    """Sigmas for one keypoint category: the given ones, COCO's person sigmas for K=17, else 0.05."""
    if given is not None:
        arr = np.asarray(given, dtype=np.float64)
        if arr.shape != (num_keypoints,):
            raise ValidationError(f"kpt_oks_sigmas needs {num_keypoints} values, got {len(arr)}")
        if not np.all(arr > 0):
            raise ValidationError("keypoint sigmas must be positive")
        return arr
    if num_keypoints == 17:
        return COCO_PERSON_SIGMAS.copy()
    return np.full(num_keypoints, DEFAULT_SIGMA)


def _check_gt(gt: dict[str, Any]) -> None:
    for key in ("images", "categories", "annotations"):
        if not isinstance(gt.get(key), list):
            raise ValidationError(f"ground truth: COCO dict needs a list '{key}'")


def _rle_of(segm: Any, size_wh: tuple[int, int], where: str) -> Rle:
    """COCO's annToRLE: polygons rasterised at the image size; compressed RLE strings trusted as is."""
    if isinstance(segm, list):
        return polygons_to_rle(segm, size_wh)
    if isinstance(segm, dict) and isinstance(segm.get("counts"), (str, bytes)):
        counts = segm["counts"]
        h, w = segm["size"]
        return Rle(size_hw=(int(h), int(w)), counts=counts.decode("ascii") if isinstance(counts, bytes) else counts)
    return coco_rle_to_rle(segm, where=where)


def _oks(dkp: np.ndarray, gkp: np.ndarray, gbox: np.ndarray, garea: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """COCOeval.computeOks for D detections x G ground truths, vectorised over detections."""
    var = (sigmas * 2) ** 2
    k = len(sigmas)
    xd, yd = dkp[:, 0::3], dkp[:, 1::3]
    out = np.zeros((dkp.shape[0], gkp.shape[0]))
    for j in range(gkp.shape[0]):
        g = gkp[j]
        xg, yg, vg = g[0::3], g[1::3], g[2::3]
        k1 = np.count_nonzero(vg > 0)
        bb = gbox[j]
        x0 = bb[0] - bb[2]
        x1 = bb[0] + bb[2] * 2
        y0 = bb[1] - bb[3]
        y1 = bb[1] + bb[3] * 2
        if k1 > 0:
            dx = xd - xg
            dy = yd - yg
        else:
            z = np.zeros((1, k))
            dx = np.maximum(z, x0 - xd) + np.maximum(z, xd - x1)
            dy = np.maximum(z, y0 - yd) + np.maximum(z, yd - y1)
        e = (dx**2 + dy**2) / var / (garea[j] + np.spacing(1)) / 2
        if k1 > 0:
            e = e[:, vg > 0]
        out[:, j] = np.sum(np.exp(-e), axis=1) / e.shape[1]
    return out


@dataclass
class _Side:
    """Annotations of one side (ground truth or detections) for one IoU type, as arrays."""

    img: np.ndarray  # index into the sorted image ids
    cat: np.ndarray  # index into the evaluated categories
    area: np.ndarray
    ids: np.ndarray
    crowd: np.ndarray
    ignore: np.ndarray
    score: np.ndarray
    geom: Any  # (N,4) boxes | list[Rle] | (N,3K) keypoints (ragged: list of arrays)
    bbox: np.ndarray | None = None  # gt boxes for OKS


def _num_keypoints(ann: dict[str, Any]) -> int:
    if "num_keypoints" in ann:
        return int(ann["num_keypoints"])
    kp = ann.get("keypoints") or []
    return sum(1 for v in kp[2::3] if v > 0)


def _prepare_gt(
    gt: dict[str, Any], iou_type: str, img_index: dict[int, int], cat_index: dict[int, int], sizes_wh: list[tuple[int, int]]
) -> _Side:
    anns = [a for a in gt["annotations"] if a.get("category_id") in cat_index and a.get("image_id") in img_index]
    n = len(anns)
    img = np.array([img_index[a["image_id"]] for a in anns], dtype=np.int64)
    cat = np.array([cat_index[a["category_id"]] for a in anns], dtype=np.int64)
    ids = np.array([a.get("id", 0) for a in anns], dtype=np.int64)
    crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    ignore = crowd.copy()
    area = np.zeros(n)
    for i, a in enumerate(anns):
        if "area" in a:
            area[i] = float(a["area"])
        elif "bbox" in a:
            area[i] = float(a["bbox"][2]) * float(a["bbox"][3])
        else:
            raise ValidationError(f"ground truth annotation {a.get('id')}: needs 'area' or 'bbox'")
    bbox = None
    if iou_type == "bbox":
        geom = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(n, 4)
    elif iou_type == "segm":
        geom = []
        for a in anns:
            where = f"ground truth annotation {a.get('id')}"
            if "segmentation" not in a:
                raise ValidationError(f"{where}: no segmentation for mask evaluation")
            geom.append(_rle_of(a["segmentation"], sizes_wh[img_index[a["image_id"]]], where))
    else:
        geom = [np.asarray(a.get("keypoints") or [], dtype=np.float64) for a in anns]
        ignore = ignore | np.array([_num_keypoints(a) == 0 for a in anns], dtype=bool)
        bbox = np.array([a.get("bbox", [0, 0, 0, 0]) for a in anns], dtype=np.float64).reshape(n, 4)
    return _Side(img, cat, area, ids, crowd, ignore, np.zeros(n), geom, bbox)


def loadres_branch(dt: Sequence[dict[str, Any]]) -> str | None:
    """The field ``loadRes`` reads a whole result list by, from its first entry (None: an empty list)."""
    if not dt:
        return None
    first = dt[0]
    if "bbox" in first and first["bbox"] != []:
        return "bbox"
    if "segmentation" in first:
        return "segmentation"
    if "keypoints" in first:
        return "keypoints"
    raise ValidationError("detection 0: has no bbox, segmentation or keypoints (loadRes reads the list by it)")


def _box_polygon(bb: Sequence[float]) -> list[list[float]]:
    """``loadRes``' segmentation for a box result without one: the box as a polygon."""
    x1, x2, y1, y2 = bb[0], bb[0] + bb[2], bb[1], bb[1] + bb[3]
    return [[x1, y1, x1, y2, x2, y2, x2, y1]]


def _loadres_area(d: dict[str, Any], branch: str, i: int, rle: Rle | None, size_wh: tuple[int, int]) -> float:
    """A detection's area as ``loadRes`` sets it for the whole list's ``branch``, whatever the IoU type."""
    if branch == "bbox":
        bb = d.get("bbox")
        if not bb or len(bb) != 4:
            raise ValidationError(f"detection {i}: no bbox, while the first result has one (loadRes needs it on all)")
        return float(bb[2]) * float(bb[3])
    if branch == "segmentation":
        if "segmentation" not in d:
            raise ValidationError(f"detection {i}: no segmentation, while the first result has one")
        return float(rle_area(rle if rle is not None else _rle_of(d["segmentation"], size_wh, f"detection {i}")))
    kp = d.get("keypoints")
    if not kp:
        raise ValidationError(f"detection {i}: no keypoints, while the first result has them")
    x, y = np.asarray(kp[0::3], dtype=np.float64), np.asarray(kp[1::3], dtype=np.float64)
    return float((np.max(x) - np.min(x)) * (np.max(y) - np.min(y)))


def _prepare_dt(
    dt: Sequence[dict[str, Any]], iou_type: str, img_index: dict[int, int], cat_index: dict[int, int],
    sizes_wh: list[tuple[int, int]], branch: str | None = None,
) -> _Side:
    """What ``loadRes`` would make of a result list that holds only this type's field, or with
    ``branch`` (see :func:`loadres_branch`) of the whole list as given: areas all from that field,
    and box results without a segmentation evaluated as segm by their box polygon."""
    rows = [(i, d) for i, d in enumerate(dt) if d["category_id"] in cat_index]
    n = len(rows)
    img = np.array([img_index[d["image_id"]] for _, d in rows], dtype=np.int64)
    cat = np.array([cat_index[d["category_id"]] for _, d in rows], dtype=np.int64)
    score = np.array([float(d["score"]) for _, d in rows], dtype=np.float64)
    ids = np.array([i + 1 for i, _ in rows], dtype=np.int64)
    area = np.zeros(n)
    if iou_type == "bbox":
        boxes = np.zeros((n, 4))
        for j, (i, d) in enumerate(rows):
            if d.get("bbox") is not None:
                boxes[j] = d["bbox"]
                area[j] = boxes[j, 2] * boxes[j, 3]
            else:  # loadRes' segmentation branch: box and area from the mask
                rle = _rle_of(d["segmentation"], sizes_wh[img_index[d["image_id"]]], f"detection {i}")
                boxes[j] = rle_bbox_xywh(rle)
                area[j] = rle_area(rle)
        geom: Any = boxes
    elif iou_type == "segm":
        geom = []
        for j, (i, d) in enumerate(rows):
            seg = d.get("segmentation")
            if seg is None and branch == "bbox":
                seg = _box_polygon(d["bbox"])
            rle = _rle_of(seg, sizes_wh[img_index[d["image_id"]]], f"detection {i}")
            geom.append(rle)
            area[j] = rle_area(rle)
    else:
        geom = []
        for j, (_i, d) in enumerate(rows):
            kp = np.asarray(d["keypoints"], dtype=np.float64)
            x, y = kp[0::3], kp[1::3]
            area[j] = (np.max(x) - np.min(x)) * (np.max(y) - np.min(y))
            geom.append(kp)
    if branch is not None and branch != {"bbox": "bbox", "segm": "segmentation"}.get(iou_type, "keypoints"):
        for j, (i, d) in enumerate(rows):
            rle = geom[j] if iou_type == "segm" else None
            area[j] = _loadres_area(d, branch, i, rle, sizes_wh[img_index[d["image_id"]]])
    return _Side(img, cat, area, ids, np.zeros(n, bool), np.zeros(n, bool), score, geom)


# ------------------------------------------------------------------------------------------- matching


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


@dataclass
class _Eval:
    precision: np.ndarray
    recall: np.ndarray
    num_gt: np.ndarray
    num_dt: np.ndarray


@dataclass
class _ImageIous:
    """IoU of every detection with every ground truth of its image (all classes), one C call per image."""

    d_pos: np.ndarray  # position of each detection among its image's detections
    g_pos: np.ndarray
    d_of: dict[int, list[int]]  # image index -> detection indices (input order)
    g_of: dict[int, list[int]]
    mats: dict[int, np.ndarray]


def _image_ious(g: _Side, d: _Side, iou_type: str) -> _ImageIous:
    d_of: dict[int, list[int]] = {}
    for i, im in enumerate(d.img.tolist()):
        d_of.setdefault(im, []).append(i)
    g_of: dict[int, list[int]] = {}
    for j, im in enumerate(g.img.tolist()):
        g_of.setdefault(im, []).append(j)
    d_pos = np.zeros(len(d.img), dtype=np.int64)
    g_pos = np.zeros(len(g.img), dtype=np.int64)
    mats: dict[int, np.ndarray] = {}
    for im, dl in d_of.items():
        d_pos[dl] = np.arange(len(dl))
        gl = g_of.get(im)
        if not gl:
            continue
        if iou_type == "segm":
            mats[im] = rle_iou([d.geom[i] for i in dl], [g.geom[j] for j in gl], g.crowd[gl].tolist())
        else:
            mats[im] = box_iou(d.geom[dl][:, None, :], g.geom[gl][None, :, :], g.crowd[gl][None, :])
    for gl in g_of.values():
        g_pos[gl] = np.arange(len(gl))
    return _ImageIous(d_pos, g_pos, d_of, g_of, mats)


def _run(
    g: _Side, d: _Side, iou_type: str, n_img: int, n_cat: int, max_dets: list[int],
    areas: list[tuple[float, float]], sigmas: list[np.ndarray] | None, img_ious: _ImageIous | None = None,
) -> _Eval:
    T, R, K, A, M = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), n_cat, len(areas), len(max_dets)
    max_det = max_dets[-1]
    # detections grouped by (category, image), best score first, ties in input order (mergesort)
    d_key = d.cat * n_img + d.img
    d_order = np.lexsort((np.arange(len(d_key)), -d.score, d_key))
    d_key_sorted = d_key[d_order]
    starts = np.searchsorted(d_key_sorted, d_key_sorted, side="left")
    rank_sorted = np.arange(len(d_order)) - starts
    rank = np.empty(len(d_order), dtype=np.int64)
    rank[d_order] = rank_sorted
    kept = rank < max_det
    g_key = g.cat * n_img + g.img
    g_order = np.argsort(g_key, kind="stable")  # input order within a pair

    # per-area outcome of every detection: matched (to a gt with non-zero id) and ignored, per IoU
    d_matched = np.zeros((A, len(d_key), T), dtype=bool)
    d_ignored = np.zeros((A, len(d_key), T), dtype=bool)
    g_ig_area = np.stack([g.ignore | (g.area < lo) | (g.area > hi) for lo, hi in areas]) if A else None
    d_out_area = np.stack([(d.area < lo) | (d.area > hi) for lo, hi in areas])

    # pairs with both sides present need matching
    ug, g_start, g_cnt = np.unique(g_key[g_order], return_index=True, return_counts=True)
    dk_kept_order = d_order[kept[d_order]]
    ud, d_start, d_cnt = np.unique(d_key[dk_kept_order], return_index=True, return_counts=True)
    both, gi, di = np.intersect1d(ug, ud, assume_unique=True, return_indices=True)
    if len(both):
        ng_arr = g_cnt[gi]
        nd_arr = d_cnt[di]
        buckets: dict[tuple[int, int], list[int]] = {}
        for p, (nd, ng) in enumerate(zip(nd_arr.tolist(), ng_arr.tolist(), strict=True)):
            buckets.setdefault((_next_pow2(nd), _next_pow2(ng)), []).append(p)
        for (Dp, Gp), plist in buckets.items():
            pl = np.array(plist)
            P = len(pl)
            gidx = np.full((P, Gp), -1, dtype=np.int64)
            didx = np.full((P, Dp), -1, dtype=np.int64)
            ng_b, nd_b = ng_arr[pl], nd_arr[pl]
            gcol = np.arange(Gp)[None, :]
            dcol = np.arange(Dp)[None, :]
            gvalid = gcol < ng_b[:, None]
            dvalid = dcol < nd_b[:, None]
            gpos = g_start[gi[pl]][:, None] + gcol
            dpos = d_start[di[pl]][:, None] + dcol
            gidx[gvalid] = g_order[gpos[gvalid]]
            didx[dvalid] = dk_kept_order[dpos[dvalid]]
            ious = _pair_ious(g, d, iou_type, gidx, didx, gvalid, dvalid, sigmas, img_ious)
            _match_bucket(g, gidx, didx, gvalid, dvalid, ious, g_ig_area, d_out_area, d_matched, d_ignored)
    # unmatched detections outside an area range are ignored (also those in pairs without gt)
    unmatched = ~d_matched
    d_ignored |= unmatched & d_out_area[:, :, None]

    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    num_gt = np.bincount(g.cat[~g.ignore], minlength=K) if len(g.cat) else np.zeros(K, int)
    num_dt = np.bincount(d.cat[kept], minlength=K) if len(d.cat) else np.zeros(K, int)
    # accumulate: per category, detections of all images in score order (ties: image, then rank)
    acc_order = np.lexsort((rank, d.img, -d.score, d.cat))
    acc_cat = d.cat[acc_order]
    cat_start = np.searchsorted(acc_cat, np.arange(K), side="left")
    cat_end = np.searchsorted(acc_cat, np.arange(K), side="right")
    for k in range(K):
        sel_k = acc_order[cat_start[k] : cat_end[k]]
        gk = g.cat == k
        for a in range(A):
            npig = int(np.count_nonzero(~g_ig_area[a][gk]))
            if npig == 0:
                continue
            for m, md in enumerate(max_dets):
                sel = sel_k[rank[sel_k] < md]
                dtm = d_matched[a][sel].T  # T x n
                dig = d_ignored[a][sel].T
                scores_sorted = d.score[sel]
                tps = np.logical_and(dtm, np.logical_not(dig))
                fps = np.logical_and(np.logical_not(dtm), np.logical_not(dig))
                tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                nd = tp_sum.shape[1]
                rc = tp_sum / npig
                pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                recall[:, k, a, m] = rc[:, -1] if nd else 0
                if nd == 0:
                    precision[:, :, k, a, m] = 0
                    continue
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(T):
                    inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                    q = np.zeros(R)
                    ok = inds < nd
                    q[ok] = pr[t, inds[ok]]
                    precision[t, :, k, a, m] = q
                del scores_sorted
    return _Eval(precision, recall, num_gt, num_dt)


def _pair_ious(
    g: _Side, d: _Side, iou_type: str, gidx: np.ndarray, didx: np.ndarray, gvalid: np.ndarray,
    dvalid: np.ndarray, sigmas: list[np.ndarray] | None, img_ious: _ImageIous | None = None,
) -> np.ndarray:
    """P x D x G IoUs (OKS for keypoints) of one bucket of (image, category) pairs; 0 where padded."""
    P, Dp = didx.shape
    Gp = gidx.shape[1]
    if iou_type == "bbox":
        db = d.geom[np.where(dvalid, didx, 0)]
        gb = g.geom[np.where(gvalid, gidx, 0)]
        gc = g.crowd[np.where(gvalid, gidx, 0)]
        ious = box_iou(db[:, :, None, :], gb[:, None, :, :], gc[:, None, :])
        return np.where(dvalid[:, :, None] & gvalid[:, None, :], ious, 0.0)
    ious = np.zeros((P, Dp, Gp))
    for p in range(P):
        dl = didx[p][dvalid[p]]
        gl = gidx[p][gvalid[p]]
        if iou_type == "segm" and img_ious is not None:
            o = img_ious.mats[int(d.img[dl[0]])][np.ix_(img_ious.d_pos[dl], img_ious.g_pos[gl])]
        elif iou_type == "segm":
            o = rle_iou([d.geom[i] for i in dl], [g.geom[i] for i in gl], g.crowd[gl].tolist())
        else:
            sig = sigmas[int(g.cat[gl[0]])]  # type: ignore[index]
            dk = np.stack([d.geom[i] for i in dl])
            gk = np.stack([g.geom[i] if len(g.geom[i]) else np.zeros(3 * len(sig)) for i in gl])
            o = _oks(dk, gk, g.bbox[gl], g.area[gl], sig)  # type: ignore[index]
        ious[p, : len(dl), : len(gl)] = o
    return ious


def _match_bucket(
    g: _Side, gidx: np.ndarray, didx: np.ndarray, gvalid: np.ndarray, dvalid: np.ndarray, ious: np.ndarray,
    g_ig_area: np.ndarray, d_out_area: np.ndarray, d_matched: np.ndarray, d_ignored: np.ndarray,
) -> None:
    """COCOeval.evaluateImg's greedy matching for every pair of a bucket, all IoU thresholds at once."""
    P, Dp = didx.shape
    T = len(IOU_THRESHOLDS)
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, :, None]
    safe_g = np.where(gvalid, gidx, 0)
    for a in range(g_ig_area.shape[0]):
        ig = np.where(gvalid, g_ig_area[a][safe_g], True)
        # gt ignored last, stable; padding after everything
        sort_key = np.where(gvalid, ig.astype(np.int8), 2)
        perm = np.argsort(sort_key, axis=1, kind="stable")
        gsort = np.take_along_axis(safe_g, perm, 1)
        gval = np.take_along_axis(gvalid, perm, 1)
        igs = np.take_along_axis(ig, perm, 1)
        crowd = g.crowd[gsort] & gval
        gid_nonzero = g.ids[gsort] != 0
        iou_s = np.take_along_axis(ious, perm[:, None, :], 2)
        taken = np.zeros((P, T, gidx.shape[1]), dtype=bool)
        rows = np.arange(P)
        for dd in range(Dp):
            act = dvalid[:, dd]
            if not act.any():
                break
            r = rows[act]
            iou_d = iou_s[r, dd][:, None, :]  # n x 1 x G
            cand = (iou_d >= thr) & gval[r][:, None, :] & (~taken[r] | crowd[r][:, None, :])
            cand_reg = cand & ~igs[r][:, None, :]
            cand_ign = cand & igs[r][:, None, :]
            has_reg = cand_reg.any(-1)
            use = np.where(has_reg[:, :, None], cand_reg, cand_ign)
            found = use.any(-1)
            vals = np.where(use, iou_d, -np.inf)
            G = vals.shape[-1]
            m = G - 1 - np.argmax(vals[:, :, ::-1], axis=-1)  # last of equal maxima, as COCOeval
            tr, tt = np.nonzero(found)
            mm = m[tr, tt]
            rr = r[tr]
            taken[rr, tt, mm] = True
            det = didx[rr, dd]
            d_matched[a, det, tt] = gid_nonzero[rr, mm]
            d_ignored[a, det, tt] = igs[rr, mm]


# --------------------------------------------------------------------------------------- summarize


def _summarize(ev: _Eval, iou_type: str, max_dets: list[int], area_labels: list[str]) -> dict[str, float]:
    """COCOeval.summarize on our arrays, at the maxDets actually evaluated."""

    def one(ap: int, iou: float | None = None, area: str = "all", md: int = max_dets[-1]) -> float:
        aind = [i for i, lbl in enumerate(area_labels) if lbl == area]
        mind = [i for i, v in enumerate(max_dets) if v == md]
        if ap == 1:
            s = ev.precision
            if iou is not None:
                s = s[np.where(iou == IOU_THRESHOLDS)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = ev.recall
            if iou is not None:
                s = s[np.where(iou == IOU_THRESHOLDS)[0]]
            s = s[:, :, aind, mind]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    names = stat_names(iou_type, max_dets[-1])
    if iou_type == "keypoints":
        vals = [one(1), one(1, 0.5), one(1, 0.75), one(1, area="medium"), one(1, area="large"),
                one(0), one(0, 0.5), one(0, 0.75), one(0, area="medium"), one(0, area="large")]
    else:
        m0, m1, m2 = max_dets
        vals = [one(1), one(1, 0.5), one(1, 0.75), one(1, area="small"), one(1, area="medium"),
                one(1, area="large"), one(0, md=m0), one(0, md=m1), one(0, md=m2), one(0, area="small"),
                one(0, area="medium"), one(0, area="large")]
    return dict(zip(names, vals, strict=True))


# ----------------------------------------------------------------------------- confusion and errors


def _confusion_and_errors(
    g: _Side, d: _Side, img_ious: _ImageIous, iou_type: str, cat_names: list[str], img_ids: list[int],
    file_names: list[str], score_threshold: float, iou_threshold: float = 0.5, poor_iou: float = 0.1,
) -> tuple[ConfusionMatrix, list[dict[str, Any]]]:
    """:func:`~workbench.evaluate.matching.match_greedy` per image, at IoU 0.5, of the detections with
    score >= ``score_threshold``.

    In the matrix a hit is on the diagonal, a confusion off it, a detection left over a false positive
    (background row) unless it lies on a crowd region, and ground truth left over is missed
    (background column). The matrix stays strict: a poor localisation (a pair at 0.1 <= IoU < 0.5
    in the error list) is one false positive and one miss there.
    """
    K = len(cat_names)
    cm = np.zeros((K + 1, K + 1), dtype=np.int64)
    errors: list[dict[str, Any]] = []
    d_cat, g_cat = d.cat.tolist(), g.cat.tolist()
    d_score, d_ids, g_ids = d.score.tolist(), d.ids.tolist(), g.ids.tolist()
    g_crowd = g.crowd.tolist()
    for im in sorted(set(img_ious.d_of) | set(img_ious.g_of)):
        d_all = img_ious.d_of.get(im, [])
        gl = img_ious.g_of.get(im, [])
        mat = img_ious.mats.get(im)
        rows = [a for a in range(len(d_all)) if d_score[d_all[a]] >= score_threshold]
        rows.sort(key=lambda a: -d_score[d_all[a]])  # stable: ties keep input order
        ious = mat.tolist() if mat is not None else [[] for _ in d_all]
        match = match_greedy(
            ious, [d_cat[i] for i in d_all], [g_cat[j] for j in gl], [g_crowd[j] for j in gl], rows,
            iou_threshold=iou_threshold, poor_iou=poor_iou,
        )
        base_im = {"image_id": img_ids[im], "file_name": file_names[im]}
        late: list[dict[str, Any]] = []  # the second pass's errors follow the first pass's
        for a in rows:
            out = match.outcomes[a]
            i = d_all[a]
            pc = d_cat[i]
            if out.kind == ON_CROWD:
                continue
            if out.kind in ("true_positive", "wrong_class"):
                assert out.gt_index is not None
                gc = g_cat[gl[out.gt_index]]
                cm[gc, pc] += 1
                if out.kind == "wrong_class":
                    errors.append({**base_im, "kind": "wrong_class", "gt_id": g_ids[gl[out.gt_index]],
                                   "category": cat_names[gc], "detection": d_ids[i] - 1, "predicted": cat_names[pc],
                                   "score": d_score[i], "iou": out.iou, "severity": d_score[i]})
                continue
            cm[K, pc] += 1
            rec = {**base_im, "detection": d_ids[i] - 1, "predicted": cat_names[pc], "score": d_score[i]}
            if out.kind == "poor_localisation":
                assert out.gt_index is not None
                cm[pc, K] += 1  # still a miss in the strict matrix
                late.append({**rec, "kind": "poor_localisation", "gt_id": g_ids[gl[out.gt_index]],
                             "category": cat_names[pc], "iou": out.iou, "severity": d_score[i] * (1.0 - out.iou)})
            else:
                late.append({**rec, "kind": "spurious", "gt_id": None, "category": None, "iou": 0.0,
                             "severity": d_score[i]})
        errors.extend(late)
        for c in match.missed:
            j = gl[c]
            gc = g_cat[j]
            cm[gc, K] += 1
            errors.append({**base_im, "kind": "missed", "gt_id": g_ids[j], "category": cat_names[gc],
                           "detection": None, "predicted": None, "score": None, "iou": 0.0, "severity": 1.0})
    order = {"missed": 0, "wrong_class": 1, "spurious": 2, "poor_localisation": 3}
    errors.sort(key=lambda e: (-e["severity"], order[e["kind"]], e["image_id"]))
    return ConfusionMatrix(list(cat_names), cm, iou_threshold, score_threshold, iou_type), errors


# ------------------------------------------------------------------------------------------ entry


def _check_dt(dt: Sequence[dict[str, Any]], img_index: dict[int, int]) -> None:
    for i, d in enumerate(dt):
        if not isinstance(d, dict) or "image_id" not in d or "category_id" not in d or "score" not in d:
            raise ValidationError(f"detection {i}: needs image_id, category_id and score")
        if d["image_id"] not in img_index:
            raise ValidationError(f"detection {i}: image_id {d['image_id']} is not an image of the ground truth")
        if not math.isfinite(float(d["score"])):
            raise ValidationError(f"detection {i}: score must be a finite number, got {d['score']!r}")


def _has(dt: Sequence[dict[str, Any]], key: str) -> int:
    return sum(1 for d in dt if d.get(key) is not None)


def evaluate_coco(
    gt: dict[str, Any],
    dt: Iterable[dict[str, Any]],
    *,
    iou_types: Sequence[str] = IOU_TYPES,
    kpt_oks_sigmas: dict[int, Sequence[float]] | None = None,
    max_dets: int = 100,
    max_dets_keypoints: int = MAX_DETS_KEYPOINTS,
    score_threshold: float = 0.5,
    as_loadres: bool = False,
) -> EvalResult:
    """Evaluate COCO results ``dt`` against ground truth ``gt`` with COCOeval's numbers.

    By default each IoU type reads the results as ``loadRes`` reads a list holding only that type's
    field (see the module notes). ``as_loadres`` reads the list as ``loadRes`` reads it whole, for a
    results file that both evaluators are given as it is (``workbench eval-coco``): every area from
    the field of the first result (with boxes: ``w*h``, for masks too), and box results without a
    segmentation evaluated as segm by their box polygon.

    A requested type is skipped (with a note) when it cannot apply: ``segm`` without ground-truth
    segmentations, ``keypoints`` without a keypoint category, or a type whose field no detection has
    (while others do). Detections that lack a field some others have are an error.
    """
    _check_gt(gt)
    dt = list(dt)
    for t in iou_types:
        if t not in IOU_TYPES:
            raise ValidationError(f"unknown IoU type {t!r}; use some of {IOU_TYPES}")
    if max_dets <= 10:
        raise ValidationError(f"max_dets must be above 10 (COCO also reports AR1 and AR10 beside it), got {max_dets}")
    images = sorted(gt["images"], key=lambda im: im["id"])
    img_ids = [int(im["id"]) for im in images]
    if len(set(img_ids)) != len(img_ids):
        raise ValidationError("ground truth: image ids are not unique")
    img_index = {iid: i for i, iid in enumerate(img_ids)}
    sizes_wh = [(int(im["width"]), int(im["height"])) for im in images]
    file_names = [str(im.get("file_name", im["id"])) for im in images]
    _check_dt(dt, img_index)
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    notes: list[str] = []
    if not dt:
        notes.append("no detections: AP and AR are 0 for classes with ground truth (-1 without)")

    branch = loadres_branch(dt) if as_loadres else None
    types: dict[str, TypeResult] = {}
    sides: dict[str, tuple[_Side, _Side, list[str], _ImageIous | None]] = {}
    for iou_type in iou_types:
        field_name = {"bbox": "bbox", "segm": "segmentation", "keypoints": "keypoints"}[iou_type]
        n_with = _has(dt, field_name)
        if iou_type == "segm" and branch == "bbox":
            n_with = len(dt)  # loadRes gives box results without a segmentation their box polygon
        if iou_type == "bbox" and n_with < len(dt) and _has(dt, "segmentation") < len(dt):
            raise ValidationError("bbox evaluation: every detection needs a bbox or a segmentation")
        if iou_type != "bbox" and dt and n_with == 0:
            notes.append(f"{iou_type}: skipped, no detection has '{field_name}'")
            continue
        if iou_type != "bbox" and 0 < n_with < len(dt):
            raise ValidationError(f"{iou_type} evaluation: {len(dt) - n_with} detections have no '{field_name}'")
        if iou_type == "keypoints":
            type_cats = [c for c in cats if c.get("keypoints")]
            if not type_cats:
                notes.append("keypoints: skipped, no category has a keypoint schema")
                continue
        else:
            type_cats = cats
            if iou_type == "segm" and not any(a.get("segmentation") for a in gt["annotations"]):
                notes.append("segm: skipped, the ground truth has no segmentation")
                continue
        cat_ids = [int(c["id"]) for c in type_cats]
        cat_names = [str(c.get("name", c["id"])) for c in type_cats]
        cat_index = {cid: i for i, cid in enumerate(cat_ids)}
        g = _prepare_gt(gt, iou_type, img_index, cat_index, sizes_wh)
        d = _prepare_dt(dt, iou_type, img_index, cat_index, sizes_wh, branch)
        sigmas = None
        if iou_type == "keypoints":
            sigmas = []
            given = kpt_oks_sigmas or {}
            for c in type_cats:
                k = len(c["keypoints"])
                sigmas.append(keypoint_sigmas(k, given.get(int(c["id"]))))
            for side, name in ((g, "ground truth annotation"), (d, "detection")):
                for i, kp in enumerate(side.geom):
                    need = 3 * len(sigmas[int(side.cat[i])])
                    if len(kp) not in (need, 0) or (name == "detection" and len(kp) != need):
                        raise ValidationError(
                            f"{name} {int(side.ids[i]) - (name == 'detection')}: keypoints need {need} numbers "
                            f"(3 x K for category {cat_names[int(side.cat[i])]!r}), got {len(kp)}"
                        )
            mds = [max_dets_keypoints]
            areas = KPT_AREAS
        else:
            mds = [1, 10, max_dets]
            areas = DET_AREAS
        img_ious = _image_ious(g, d, iou_type) if iou_type != "keypoints" else None
        ev = _run(g, d, iou_type, len(img_ids), len(cat_ids), mds, list(areas.values()), sigmas, img_ious)
        stats = _summarize(ev, iou_type, mds, list(areas))
        types[iou_type] = TypeResult(
            iou_type=iou_type, stats=stats, category_ids=cat_ids, category_names=cat_names, max_dets=mds,
            area_labels=list(areas), precision=ev.precision, recall=ev.recall,
            num_gt={n: int(v) for n, v in zip(cat_names, ev.num_gt, strict=True)},
            num_dt={n: int(v) for n, v in zip(cat_names, ev.num_dt, strict=True)},
        )
        sides[iou_type] = (g, d, cat_names, img_ious)

    confusion = None
    errors: list[dict[str, Any]] = []
    cm_type = "segm" if "segm" in sides else "bbox" if "bbox" in sides else None
    if cm_type is not None:
        g, d, cat_names, img_ious = sides[cm_type]
        assert img_ious is not None
        confusion, errors = _confusion_and_errors(
            g, d, img_ious, cm_type, cat_names, img_ids, file_names, score_threshold
        )
    return EvalResult(types, confusion, errors, max_dets, len(img_ids), len(dt), notes)
