"""The one greedy matching of predictions to ground truth, and the one box IoU.

The evaluation's confusion matrix and error list (:mod:`workbench.evaluate.coco_eval`) and the
Review page's sorting (:func:`image_disagreement`) both call :func:`match_greedy`, so a prediction
the report calls ``wrong_class`` is ``wrong_class`` on the Review page too.

The rules, on one image: predictions, highest score first, each take the free non-crowd ground truth
of any class with the highest IoU >= ``iou_threshold`` (of equal IoUs, the last); same class is a true
positive, another class is ``wrong_class``. A prediction left over that lies on a crowd region is
ignored, as COCO ignores it. The others, in the same order, take free same-class ground truth with
``poor_iou`` <= IoU < ``iou_threshold`` as ``poor_localisation``; the rest are ``spurious``. Ground
truth left free (and not crowd) is missed.

AP keeps COCOeval's own matching (per class, every IoU threshold at once, area ranges) in
``coco_eval._match_bucket``: its numbers must equal COCOeval's, and it answers another question.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from workbench.domain import IGNORE_LABEL, Instance, Rle
from workbench.geometry import instance_to_rle, polygons_to_rle, rle_iou, with_bbox_area

ERROR_KINDS = ("true_positive", "wrong_class", "poor_localisation", "spurious")
"""What a prediction is, judged against the image's ground truth (``missed`` is per ground truth)."""

ON_CROWD = "on_crowd"
"""A prediction that lies on a crowd region: neither a hit nor an error."""


def box_iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray | bool) -> np.ndarray:
    """pycocotools' bbIou of xywh boxes in numpy with the same double operations (so bit-identical);
    broadcasts over leading axes. Against a crowd box the union is the detection's own area."""
    d = np.asarray(d, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    dx, dy, dw, dh = (d[..., i] for i in range(4))
    gx, gy, gw, gh = (g[..., i] for i in range(4))
    da = dw * dh
    ga = gw * gh
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
        h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
        i = w * h
        u = np.where(crowd, da, da + ga - i)
        o = np.where((w > 0) & (h > 0), i / u, 0.0)
    return o


# ------------------------------------------------------------------------------------------ matching


@dataclass(frozen=True, slots=True)
class Outcome:
    """One prediction's result: a kind of :data:`ERROR_KINDS` or :data:`ON_CROWD`, the ground truth
    it took (index into the image's list), and the IoU with it."""

    kind: str
    gt_index: int | None
    iou: float


@dataclass(frozen=True, slots=True)
class GreedyMatch:
    """Outcomes of the matched predictions (by index), and the ground truth no prediction took."""

    outcomes: dict[int, Outcome]
    missed: tuple[int, ...]


def match_greedy(
    ious: Sequence[Sequence[float]],
    pred_labels: Sequence[Hashable],
    gt_labels: Sequence[Hashable],
    gt_crowd: Sequence[bool],
    order: Iterable[int],
    *,
    iou_threshold: float = 0.5,
    poor_iou: float = 0.1,
) -> GreedyMatch:
    """Match the predictions in ``order`` (best first; the others are left out) on one image.

    ``ious[a][c]`` is the IoU of prediction ``a`` with ground truth ``c`` (against a crowd region as
    COCO computes it); labels compare by equality. The rules are in the module docstring.
    """
    n_g = len(gt_labels)
    used = [False] * n_g
    outcomes: dict[int, Outcome] = {}
    leftover: list[int] = []
    for a in order:
        row = ious[a]
        best, b = -1.0, -1
        for c in range(n_g):
            if not used[c] and not gt_crowd[c] and row[c] >= best:
                best, b = row[c], c
        if b >= 0 and best >= iou_threshold:
            used[b] = True
            kind = "true_positive" if gt_labels[b] == pred_labels[a] else "wrong_class"
            outcomes[a] = Outcome(kind, b, best)
            continue
        if any(gt_crowd[c] and row[c] >= iou_threshold for c in range(n_g)):
            outcomes[a] = Outcome(ON_CROWD, None, 0.0)
            continue
        leftover.append(a)
    for a in leftover:
        row = ious[a]
        label = pred_labels[a]
        best, b = -1.0, -1
        for c in range(n_g):
            if not used[c] and not gt_crowd[c] and gt_labels[c] == label and row[c] >= best:
                best, b = row[c], c
        if b >= 0 and best >= poor_iou:
            used[b] = True
            outcomes[a] = Outcome("poor_localisation", b, best)
        else:
            outcomes[a] = Outcome("spurious", None, 0.0)
    missed = tuple(c for c in range(n_g) if not used[c] and not gt_crowd[c])
    return GreedyMatch(outcomes, missed)


# ------------------------------------------------------------------------- one image, for Review


@dataclass(frozen=True, slots=True)
class PredictionVerdict:
    """How one prediction compares with the ground truth. ``best_iou`` is against the same class;
    ``gt_index`` is the ground truth it was matched with (index into the image's list), if any."""

    kind: str
    best_iou: float
    gt_index: int | None = None

    @property
    def disagreement(self) -> float:
        return 1.0 - self.best_iou


@dataclass(frozen=True, slots=True)
class ImageDisagreement:
    """Predictions against ground truth on one image: a verdict per prediction (in input order) and
    the indices of ground truth that no prediction found."""

    verdicts: tuple[PredictionVerdict, ...] = ()
    missed: tuple[int, ...] = ()
    min_score: float | None = None
    counts: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_errors(self) -> int:
        return sum(n for k, n in self.counts.items() if k != "true_positive")

    @property
    def disagreement(self) -> float:
        """Mean of 1 - best same-class IoU over predictions, with each missed ground truth counting 1:
        0 when every prediction lies exactly on its ground truth and nothing is missed."""
        total = sum(v.disagreement for v in self.verdicts) + len(self.missed)
        n = len(self.verdicts) + len(self.missed)
        return total / n if n else 0.0


def _shape_rle(inst: Instance, size_wh: tuple[int, int]) -> Rle:
    """The mask used for IoU; a shapeless instance (box or keypoints only) counts as its box."""
    rle = instance_to_rle(inst, size_wh)
    if rle is not None:
        return rle
    x, y, w, h = with_bbox_area(inst, size_wh).bbox_xywh or (0.0, 0.0, 0.0, 0.0)
    if w <= 0 or h <= 0:
        return polygons_to_rle([], size_wh)
    return polygons_to_rle([[x, y, x + w, y, x + w, y + h, x, y + h]], size_wh)


def image_disagreement(
    predictions: Sequence[Instance],
    ground_truth: Sequence[Instance],
    size_wh: tuple[int, int],
    *,
    iou_threshold: float = 0.5,
    poor_iou: float = 0.1,
) -> ImageDisagreement:
    """Classify every prediction of one image by mask IoU with :func:`match_greedy`, as the
    evaluation's error list does; one on a crowd region counts as a true positive. Ground truth of
    the ignore label takes no part (returned indices still point into ``ground_truth``)."""
    keep = [c for c, g in enumerate(ground_truth) if g.category != IGNORE_LABEL]
    gts = [ground_truth[c] for c in keep]
    n_p, n_g = len(predictions), len(gts)
    p_rles = [_shape_rle(p, size_wh) for p in predictions]
    g_rles = [_shape_rle(g, size_wh) for g in gts]
    crowd = [bool(g.iscrowd) for g in gts]
    ious = rle_iou(p_rles, g_rles, crowd) if n_p and n_g else np.zeros((n_p, n_g))
    same = np.array([[p.category == g.category for g in gts] for p in predictions], dtype=bool).reshape(
        n_p, n_g
    )
    best_same = (
        np.where(same & ~np.array(crowd, dtype=bool)[None, :], ious, 0.0).max(axis=1)
        if n_g
        else np.zeros(n_p)
    )
    order = sorted(range(n_p), key=lambda a: -(predictions[a].score or 0.0))
    match = match_greedy(
        ious.tolist(),
        [p.category for p in predictions],
        [g.category for g in gts],
        crowd,
        order,
        iou_threshold=iou_threshold,
        poor_iou=poor_iou,
    )
    verdicts: list[PredictionVerdict] = []
    for a in range(n_p):
        out = match.outcomes[a]
        kind = "true_positive" if out.kind == ON_CROWD else out.kind
        gt_index = keep[out.gt_index] if out.gt_index is not None else None
        verdicts.append(PredictionVerdict(kind, float(best_same[a]), gt_index))
    missed = tuple(keep[c] for c in match.missed)
    counts = {k: 0 for k in (*ERROR_KINDS, "missed")}
    for v in verdicts:
        counts[v.kind] += 1
    counts["missed"] = len(missed)
    scores = [p.score for p in predictions if p.score is not None]
    return ImageDisagreement(
        verdicts=tuple(verdicts), missed=missed, min_score=min(scores) if scores else None, counts=counts
    )
