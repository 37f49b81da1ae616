"""Annotation records -> COCO dict -> file: the one COCO writer, for exports and run snapshots.

``records_to_coco`` lays out categories, images and :class:`~workbench.domain.AnnotationRecord`
rows as COCO. Project exports feed it the store's rows directly (no domain records built; segmentations and boxes
as ``orjson.Fragment`` of their stored JSON text, written as they are, which keeps a
200k-annotation export within a few times ``orjson.dumps`` of the result); ``dataset_to_coco`` feeds it a Dataset's instances (run snapshots, evaluation, tests).

Category ids follow the caller's explicit ``category_ids`` rule (see :data:`CategoryIds`): store
ids are database keys and get 1..N, while a Dataset read from a COCO file keeps the file's ids.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import orjson

from workbench.domain import (
    IGNORE_LABEL,
    AnnotationRecord,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    Rle,
    ValidationError,
)
from workbench.geometry import with_bbox_area
from workbench.utils.atomic import atomic_write

__all__ = ["CategoryIds", "dataset_to_coco", "records_to_coco", "save_coco"]

CategoryIds = Literal["kept", "renumbered"]
"""How categories are numbered in the file (ignore classes are always left out):

- ``"kept"``: the categories' own ids where all are positive and distinct, else 1..N in order;
- ``"renumbered"``: 1..N in order whatever their ids (the records' ``category_id`` are those ids).
"""

_MAX_LISTED = 5


def _coco_category_ids(cats: Sequence[Category], rule: CategoryIds) -> list[int]:
    stored = [c.id for c in cats]
    if rule == "kept" and all(i is not None and i > 0 for i in stored) and len(set(stored)) == len(stored):
        return [int(i) for i in stored if i is not None]
    return list(range(1, len(cats) + 1))


def _category_to_coco(cat: Category, cid: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": cid, "name": cat.name, "supercategory": cat.supercategory}
    if cat.keypoints is not None:
        entry["keypoints"] = list(cat.keypoints.names)
        entry["skeleton"] = [[a + 1, b + 1] for a, b in cat.keypoints.skeleton]
        if cat.keypoints.flip_pairs:
            entry["flip_pairs"] = [[a + 1, b + 1] for a, b in cat.keypoints.flip_pairs]
    return entry


def _image_to_coco(rec: ImageRecord) -> dict[str, Any]:
    return {"id": rec.id, "file_name": rec.file_name, "width": rec.width, "height": rec.height}


def records_to_coco(
    categories: Sequence[Category],
    images: Sequence[ImageRecord],
    records: Iterable[AnnotationRecord],
    *,
    category_ids: CategoryIds,
    info: dict[str, Any] | None = None,
    box_only_as_polygon: bool = False,
    keypoint_categories_only: bool = False,
) -> dict[str, Any]:
    """A COCO dict that pycocotools and torchvision's CocoDetection load.

    Where some category has keypoints, every other annotation carries ``num_keypoints: 0`` (COCOeval's
    keypoint evaluation reads it on every annotation). ``keypoint_categories_only`` writes only the
    keypoint categories and their annotations, numbered as in the full file: COCO's
    ``person_keypoints_<split>.json``.

    Image and annotation ids are written as given (stable across exports). Records of images not
    in ``images`` or of ignore classes (IGNORE_LABEL: COCO has no such notion and training skips
    them) are left out, so one query's rows serve every split. A record without bbox or area gets
    them from its shape. Box-only annotations get ``segmentation: []`` as datumaro and roboflow
    write them, which reads back as box-only; but pycocotools' ``annToRLE`` (so segm COCOeval)
    raises IndexError on ``[]``: ``box_only_as_polygon=True`` writes their box as a 4-corner
    polygon instead when the file feeds a segm evaluation.
    """
    cats = [c for c in categories if not c.is_ignore]
    coco_ids = _coco_category_ids(cats, category_ids)
    if keypoint_categories_only:
        kept = [(c, cid) for c, cid in zip(cats, coco_ids, strict=True) if c.keypoints is not None]
        cats, coco_ids = [c for c, _ in kept], [cid for _, cid in kept]
    export_ids = {c.id: cid for c, cid in zip(cats, coco_ids, strict=True)}
    schema_k = {c.id: (c.keypoints.num_keypoints if c.keypoints is not None else None) for c in cats}
    any_keypoints = any(k is not None for k in schema_k.values())
    by_id = {im.id: im for im in images}
    annotations: list[dict[str, Any]] = []
    append = annotations.append
    # one pass over 200k rows: the record unpacked once, its fields as locals
    for aid, image_id, category_id, segmentation, bbox, area, iscrowd, keypoints, score, attributes, z_order in records:
        if image_id not in by_id or category_id not in export_ids:
            continue
        if bbox is None or area is None:
            probe = with_bbox_area(
                Instance(
                    category="-",
                    polygons=tuple(tuple(p) for p in segmentation) if isinstance(segmentation, list) else (),
                    rle=Rle(tuple(segmentation["size"]), segmentation["counts"])  # type: ignore[arg-type]
                    if isinstance(segmentation, dict)
                    else None,
                    bbox_xywh=tuple(bbox) if bbox is not None else None,  # type: ignore[arg-type]
                    area=area,
                ),
                by_id[image_id].size_wh,
            )
            bbox, area = list(probe.bbox_xywh or ()), probe.area
        if not segmentation and box_only_as_polygon and bbox[2] > 0 and bbox[3] > 0:
            x, y, w, h = (float(c) for c in bbox)
            segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        ann: dict[str, Any] = {
            "id": aid,
            "image_id": image_id,
            "category_id": export_ids[category_id],
            "segmentation": segmentation,
            "area": float(area),  # type: ignore[arg-type]
            "bbox": bbox,
            "iscrowd": int(iscrowd),
        }
        k = schema_k[category_id]
        if k is not None:
            flat = list(keypoints) if keypoints is not None else [0.0, 0.0, 0] * k
            for i in range(2, len(flat), 3):
                flat[i] = v = int(flat[i])
                if not v:
                    flat[i - 2] = flat[i - 1] = 0.0
            ann["keypoints"] = flat
            ann["num_keypoints"] = sum(1 for v in flat[2::3] if v > 0)
        elif any_keypoints:
            ann["num_keypoints"] = 0
        if score is not None:
            ann["score"] = float(score)
        if attributes:
            ann["attributes"] = attributes
        if z_order:  # drawing order (CVAT's z_order), written only where it is not the default 0
            ann["z_order"] = int(z_order)
        append(ann)
    return {
        "info": dict(info) if info is not None else {"description": "exported by workbench"},
        "licenses": [],
        "images": [_image_to_coco(im) for im in images],
        "annotations": annotations,
        "categories": [_category_to_coco(c, cid) for c, cid in zip(cats, coco_ids, strict=True)],
    }


# --------------------------------------------------------------------------------------------------
# the domain feed: Dataset -> records


def _assign_ids(current: list[int | None], what: str) -> list[int]:
    """Keep stored ids (stable across exports); number the missing ones after the largest one."""
    taken = [i for i in current if i is not None]
    if len(set(taken)) != len(taken):
        dupes = sorted({i for i in taken if taken.count(i) > 1})[:_MAX_LISTED]
        raise ValidationError(f"cannot export COCO: duplicate {what} ids {dupes}")
    next_id = max(taken, default=0) + 1
    out = []
    for i in current:
        if i is None:
            out.append(next_id)
            next_id += 1
        else:
            out.append(i)
    return out


def dataset_to_coco(
    ds: Dataset, *, info: dict[str, Any] | None = None, box_only_as_polygon: bool = False
) -> dict[str, Any]:
    """Write a Dataset through :func:`records_to_coco`, category ids ``"kept"``.

    Missing image and annotation ids are numbered after the largest stored one. Coordinates,
    boxes and areas are written as floats; an instance gets the bbox and area it lacks from its shape.
    """
    cats = [c for c in ds.categories if not c.is_ignore]
    if len({c.name for c in cats}) != len(cats):
        raise ValidationError("cannot export COCO: two categories share a name")
    cats = [replace(c, id=cid) for c, cid in zip(cats, _coco_category_ids(cats, "kept"), strict=True)]
    by_name = {c.name: c for c in cats}

    image_ids = _assign_ids([item.image.id for item in ds.items], "image")
    kept = [[inst for inst in item.instances if inst.category != IGNORE_LABEL] for item in ds.items]
    ann_ids = iter(_assign_ids([inst.id for insts in kept for inst in insts], "annotation"))

    images: list[ImageRecord] = []
    records: list[AnnotationRecord] = []
    for item, image_id, insts in zip(ds.items, image_ids, kept, strict=True):
        rec = item.image
        images.append(replace(rec, id=image_id))
        for inst in insts:
            ann_id = next(ann_ids)
            where = f"image {rec.file_name}, instance {inst.id if inst.id is not None else ann_id}"
            if inst.category not in by_name:
                raise ValidationError(f"cannot export COCO: {where} has unknown category {inst.category!r}")
            records.append(_instance_record(inst, by_name[inst.category], ann_id, image_id, rec, where))
    return records_to_coco(
        cats, images, records, category_ids="kept", info=info, box_only_as_polygon=box_only_as_polygon
    )


def _instance_record(
    inst: Instance, cat: Category, ann_id: int, image_id: int, rec: ImageRecord, where: str
) -> AnnotationRecord:
    if inst.bbox_xywh is None or inst.area is None:
        if not inst.has_shape and inst.bbox_xywh is None and not inst.num_keypoints:
            raise ValidationError(f"cannot export COCO: {where} has no shape, no box and no keypoints")
        inst = with_bbox_area(inst, rec.size_wh)
    assert inst.bbox_xywh is not None and inst.area is not None

    if inst.rle is not None:
        segmentation: Any = inst.rle.to_coco()
    else:
        segmentation = [list(map(float, poly)) for poly in inst.polygons]
    keypoints: list[float] | None = None
    if cat.keypoints is not None:
        k = cat.keypoints.num_keypoints
        kps = inst.keypoints if inst.keypoints is not None else (0.0, 0.0, 0) * k
        if len(kps) != 3 * k:
            raise ValidationError(
                f"cannot export COCO: {where} has {len(kps) // 3} keypoints, category {cat.name!r} has {k}"
            )
        keypoints = []
        for i in range(0, len(kps), 3):
            v = int(kps[i + 2])
            keypoints.extend((float(kps[i]) if v else 0.0, float(kps[i + 1]) if v else 0.0, v))
    elif inst.keypoints is not None:
        raise ValidationError(
            f"cannot export COCO: {where} has keypoints but category {cat.name!r} has no keypoint schema"
        )
    assert cat.id is not None
    return AnnotationRecord(
        id=ann_id,
        image_id=image_id,
        category_id=cat.id,
        segmentation=segmentation,
        bbox=[float(c) for c in inst.bbox_xywh],
        area=float(inst.area),
        iscrowd=inst.iscrowd,
        keypoints=keypoints,
        score=inst.score,
        attributes=dict(inst.attributes) if inst.attributes else None,
        z_order=inst.z_order,
    )


def _non_finite(value: Any) -> bool:
    """Whether a NaN or infinity sits anywhere in ``value`` (an iterative walk)."""
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)
        if kind is float:
            if not math.isfinite(v):
                return True
        elif kind is dict:
            stack.extend(v.values())
        elif kind is list or kind is tuple:
            stack.extend(v)
    return False


def save_coco(obj: dict[str, Any], path: Path) -> None:
    """Write compact COCO JSON atomically: a temp file in the same folder, then ``os.replace``.

    orjson is several times faster than json on a 200k-annotation file, but writes NaN and infinity
    as ``null``: where the text holds a ``null`` at all, the dict is searched for them, and refused
    as ``json.dumps(allow_nan=False)`` refused them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise ValidationError(f"{path}: cannot write COCO JSON ({exc})") from None
    if b"null" in data and _non_finite(obj):
        raise ValidationError(f"{path}: cannot write COCO JSON (a number is NaN or infinite)")
    atomic_write(path, data, fsync=True)
