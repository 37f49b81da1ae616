"""Domain records -> an Ultralytics YOLO dataset (detect, segment or pose), with notes that count
what YOLO cannot carry: crowd and ignore regions (left out), masks (traced as outer contours, holes
lost), several polygon parts (one line, joined by zero-width bridges as Ultralytics' own converter
joins them; overlapping parts are traced as their union first), box-only shapes in a segment set
(left out), and in a pose set the classes whose keypoint count is not the dataset's one
``kpt_shape``. Coordinates are fractions of the upright image with 9 decimals, which
:mod:`workbench.formats.yolo` reads back to the same pixels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from workbench.domain import Category, Dataset, ImageRecord, ValidationError, plural
from workbench.formats.folders import unique_stems
from workbench.geometry import mask_to_polygons, polygons_to_mask, rle_to_mask, with_bbox_area

__all__ = ["TASKS", "YoloExport", "YoloFile", "dataset_to_yolo", "dump_yaml", "join_parts"]

TASKS = ("detect", "segment", "pose")
_SPLIT_KEYS = ("train", "val", "test")


@dataclass
class YoloFile:
    """One image of the export: its record, its split folder, its stem and its label text."""

    image: ImageRecord
    split: str
    stem: str
    text: str


@dataclass
class YoloExport:
    data_yaml: dict[str, Any]
    files: list[YoloFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _num(v: float) -> str:
    """9 decimals: read back and rounded to 1e-4 pixel (``_px``), a coordinate is the one written
    on images up to 10,000 pixels, so no pixel centre or rasteriser threshold is crossed."""
    return f"{min(max(v, 0.0), 1.0):.9f}".rstrip("0").rstrip(".") or "0"


def join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """Several polygon parts (each an N x 2 array) as one outline, as Ultralytics joins them: part
    k + 1 hangs off part k at their nearest points; the walk goes out along each bridge, once round
    the next part, and back along the same bridge (zero width), so the filled area is the union."""
    if len(parts) == 1:
        return parts[0]
    entry, leave = [0], []  # index where the walk enters part k, index where it leaves for part k + 1
    for a, b in zip(parts, parts[1:], strict=False):
        d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        leave.append(int(i))
        entry.append(int(j))
    steps = [(leave[k] - entry[k]) % len(parts[k]) for k in range(len(leave))]
    out: list[np.ndarray] = []
    for k, s in enumerate(steps):  # out: from the entry round to the exit
        p = parts[k]
        out += [p[(entry[k] + t) % len(p)] for t in range(s + 1)]
    last = parts[-1]
    out += [last[(entry[-1] + t) % len(last)] for t in range(len(last) + 1)]
    for k in range(len(steps) - 1, -1, -1):  # back: from the exit on round to the entry
        p = parts[k]
        out += [p[(entry[k] + t) % len(p)] for t in range(steps[k], len(p) + 1)]
    return np.asarray(out[:-1])


def _has_hole(mask: np.ndarray) -> bool:
    import cv2

    _, hierarchy = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool((hierarchy[0][:, 3] >= 0).any())


def _parts_overlap(polys: tuple[tuple[float, ...], ...], size_wh: tuple[int, int]) -> bool:
    union = int(polygons_to_mask(polys, size_wh).sum())
    return sum(int(polygons_to_mask([p], size_wh).sum()) for p in polys) != union


def _pose_classes(ds: Dataset, counts: Counter[str], notes: list[str]) -> list[Category]:
    """The classes a pose export writes: those with the first keypoint class's number of keypoints."""
    kp = [c for c in ds.categories if c.keypoints is not None and not c.is_ignore]
    if not kp:
        raise ValidationError("a pose export needs a class with keypoints; the project has none (--task segment or detect)")
    assert kp[0].keypoints is not None
    k = kp[0].keypoints.num_keypoints
    kept = [c for c in kp if c.keypoints is not None and c.keypoints.num_keypoints == k]
    other = [c for c in ds.categories if c not in kept and not c.is_ignore]
    for c in other:
        why = "no keypoints" if c.keypoints is None else f"{c.keypoints.num_keypoints} keypoints, the dataset's kpt_shape is [{k}, 3]"
        notes.append(f"class {c.name!r} ({why}): {plural(counts[c.name], 'instance')} left out of the pose export")
    flips = {c.keypoints.flip_pairs for c in kept if c.keypoints is not None}
    if len(flips) > 1:
        notes.append(f"flip_idx is {kept[0].name!r}'s; the other pose classes flip their keypoints differently")
    return kept


def dataset_to_yolo(ds: Dataset, *, task: str = "segment") -> YoloExport:
    """The YOLO form of ``ds``: the yaml, one label text per image, and notes on what was left out.

    Images without a split go to ``train`` when no image has a split (``val`` then points at train
    too); otherwise to ``unassigned``, which Ultralytics does not read. Image files are the
    caller's to copy (``images/<split>/<stem><suffix>``).
    """
    if task not in TASKS:
        raise ValidationError(f"YOLO task must be one of {', '.join(TASKS)}, got {task!r}")
    notes: list[str] = []
    counts: Counter[str] = Counter(i.category for it in ds.items for i in it.instances)
    if task == "pose":
        classes = _pose_classes(ds, counts, notes)
    else:
        classes = [c for c in ds.categories if not c.is_ignore]
    index = {c.name: i for i, c in enumerate(classes)}
    left: Counter[str] = Counter()
    any_split = any(it.image.split for it in ds.items)
    names = [it.image.file_name for it in ds.items]
    stems = unique_stems([PurePosixPath(n.replace("\\", "/")).name for n in names], [it.image.id for it in ds.items])
    files: list[YoloFile] = []
    for item, stem in zip(ds.items, stems, strict=True):
        size_wh = item.image.size_wh
        w, h = size_wh
        lines = []
        for inst in item.instances:
            cat = inst.category
            if cat not in index:
                if cat in {c.name for c in ds.categories if c.is_ignore}:
                    left["ignore region left out (YOLO has no ignore label)"] += 1
                continue
            if inst.iscrowd:
                left["crowd region left out (YOLO has no crowd flag)"] += 1
                continue
            inst = with_bbox_area(inst, size_wh)
            x, y, bw, bh = inst.bbox_xywh or (0.0, 0.0, 0.0, 0.0)
            box = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
            if task == "segment":
                polys = inst.polygons
                if inst.rle is not None:
                    mask = rle_to_mask(inst.rle)
                    polys = mask_to_polygons(mask)
                    left["mask traced as its outer contours" + (" (it had holes, which YOLO cannot express)" if _has_hole(mask) else "")] += 1
                if not polys:
                    left["box-only instance left out (a segment dataset needs polygons; --task detect keeps boxes)"] += 1
                    continue
                if len(polys) > 1 and _parts_overlap(polys, size_wh):  # bridges would cut the overlap out
                    polys = mask_to_polygons(polygons_to_mask(polys, size_wh))
                    left["instance of overlapping parts traced as the outline of their union"] += 1
                if len(polys) > 1:
                    left["instance of several parts joined into one polygon by zero-width bridges"] += 1
                if inst.keypoints is not None and inst.num_keypoints:
                    left["instance's keypoints not written (--task pose writes them)"] += 1
                joined = join_parts([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys])
                coords = (joined / np.array([w, h], dtype=np.float64)).ravel()
                lines.append(" ".join([str(index[cat]), *map(_num, coords)]))
            elif task == "detect":
                if bw <= 0 or bh <= 0:
                    left["instance without a box left out"] += 1
                    continue
                lines.append(" ".join([str(index[cat]), *map(_num, box)]))
            else:
                schema = next(c.keypoints for c in classes if c.name == cat)
                assert schema is not None
                k = schema.num_keypoints
                kp = inst.keypoints if inst.keypoints is not None and len(inst.keypoints) == 3 * k else (0.0, 0.0, 0) * k
                if inst.keypoints is None:
                    left["instance without keypoints written with all keypoints missing (v=0)"] += 1
                if bw <= 0 or bh <= 0:
                    left["instance without a box left out"] += 1
                    continue
                vals = [*map(_num, box)]
                for j in range(k):
                    px, py, v = kp[3 * j], kp[3 * j + 1], int(kp[3 * j + 2])
                    vals += [_num(px / w), _num(py / h), str(v)] if v else ["0", "0", "0"]
                lines.append(" ".join([str(index[cat]), *vals]))
        split = item.image.split or ("unassigned" if any_split else "train")
        files.append(YoloFile(item.image, split, stem, "".join(f"{line}\n" for line in lines)))
    for what, n in left.items():
        notes.append(f"{plural(n, 'instance')}: {what}")
    splits = sorted({f.split for f in files}, key=lambda s: (*_SPLIT_KEYS, "unassigned").index(s))
    data: dict[str, Any] = {}  # no 'path': Ultralytics then reads the splits relative to the yaml's folder
    for s in splits:
        if s != "unassigned":
            data[s] = f"images/{s}"
    if "train" in data and "val" not in data:
        data["val"] = data["train"]
        notes.append("no val split: val points at the train images (assign splits with `workbench split`)")
    if not any_split and files:
        notes.append(f"no image has a split: all {plural(len(files), 'image')} are in train")
    if "unassigned" in splits:
        n = sum(1 for f in files if f.split == "unassigned")
        notes.append(f"{plural(n, 'image')} without a split written to images/unassigned, which Ultralytics does not read")
    data["names"] = {i: c.name for i, c in enumerate(classes)}
    if task == "pose":
        schema = classes[0].keypoints
        assert schema is not None
        data["kpt_shape"] = [schema.num_keypoints, 3]
        data["flip_idx"] = schema.flip_permutation()
        data["kpt_names"] = {i: list(c.keypoints.names) for i, c in enumerate(classes) if c.keypoints is not None}
        if schema.skeleton:
            data["skeleton"] = [list(e) for e in schema.skeleton]
    return YoloExport(data, files, notes)


def dump_yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)
