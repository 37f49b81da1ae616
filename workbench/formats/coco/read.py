"""COCO JSON -> domain records: ``load_coco`` reads a file and finds its images, ``coco_to_dataset``
converts an already parsed dict.

Users fix these files by hand, so every error names the file (``source``) and the category, image
or annotation it is about (:mod:`.entries` says which; :mod:`.annotations` reads each annotation,
:mod:`.bulk` checks all plain polygons in one numpy pass).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from functools import partial
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from workbench.domain import SPLITS, AnnotatedImage, Category, Dataset, ImageRecord, Instance, ValidationError
from workbench.formats.coco.annotations import Tally, careful, parse_annotation, plain_annotation, tally_notes
from workbench.formats.coco.bulk import check_polygons
from workbench.formats.coco.entries import (
    MAX_LISTED,
    CocoFormatError,
    entry_where,
    keypoint_counts_by_category,
    parse_category,
    parse_entry,
    parse_image,
    require_list,
)
from workbench.formats.coco.layouts import dataset_root, image_dir_candidates, normalize_split
from workbench.formats.paths import DatasetRoot, Resolved
from workbench.geometry import covers_no_pixel, polygons_may_cover_no_pixel, with_bbox_area
from workbench.utils.jsonfile import read_json_file

__all__ = [
    "CocoFormatError",
    "coco_to_dataset",
    "load_coco",
]

_MAX_LISTED = MAX_LISTED


def coco_to_dataset(
    obj: dict[str, Any],
    *,
    source: str,
    images_dir: Path | None = None,
    split: str | None = None,
    crowd_as_instances: bool = False,
) -> Dataset:
    """Read a COCO dict (already parsed JSON) into a Dataset; ``source`` names the file in messages.

    ``crowd_as_instances`` imports RLE masks marked ``iscrowd = 1`` as ordinary instances (CVAT and
    supervision mark every mask with holes crowd)."""
    if not isinstance(obj, dict):
        kind = "a list (a results file?)" if isinstance(obj, list) else type(obj).__name__
        raise CocoFormatError(f"{source}: the top level must be a COCO object with 'images', got {kind}")
    if split is not None:
        norm = normalize_split(split)
        if norm not in SPLITS:
            raise CocoFormatError(f"{source}: split must be one of {SPLITS}, got {split!r}")
        split = norm
    raw_images = require_list(obj, "images", source)
    raw_categories = require_list(obj, "categories", source)
    raw_annotations = require_list(obj, "annotations", source, required=False)
    warnings: list[str] = []

    # a keypoint count from the annotations, only for categories whose name list is empty
    unnamed = any(isinstance(raw, dict) and raw.get("keypoints") == [] for raw in raw_categories)
    kp_counts = keypoint_counts_by_category(raw_annotations) if unnamed else {}
    categories: dict[int, Category] = {}
    names: dict[str, int] = {}
    for index, raw in enumerate(raw_categories):
        notes: list[str] = []
        where, cat = parse_entry(
            raw, index, "category", source, partial(parse_category, index=index, kp_counts=kp_counts, notes=notes)
        )
        warnings.extend(f"{where}: {note}" for note in notes)
        if cat.id in categories:
            raise CocoFormatError(f"{source}: duplicate category id {cat.id} ({cat.name!r})")
        if cat.name in names:
            raise CocoFormatError(
                f"{source}: duplicate category name {cat.name!r} (ids {names[cat.name]} and {cat.id})"
            )
        assert cat.id is not None
        categories[cat.id] = cat
        names[cat.name] = cat.id

    images: dict[int, ImageRecord] = {}
    file_names: dict[str, int] = {}
    read_image = partial(parse_image, images_dir=images_dir, split=split)
    for index, raw in enumerate(raw_images):
        _, record = parse_entry(raw, index, "image", source, read_image)
        assert record.id is not None
        if record.id in images:
            raise CocoFormatError(f"{source}: duplicate image id {record.id} ({record.file_name})")
        if record.file_name in file_names:
            warnings.append(
                f"{source}: images {file_names[record.file_name]} and {record.id} share the file name "
                f"{record.file_name!r}"
            )
        images[record.id] = record
        file_names[record.file_name] = record.id

    instances: dict[int, list[Instance]] = {iid: [] for iid in images}
    tally = Tally()
    parse = partial(
        parse_annotation, images=images, categories=categories, tally=tally, crowd_as_instances=crowd_as_instances
    )
    seen_ids: set[int] = set()
    repeated: list[tuple[int, int]] = []  # (image id, index there; -1 if left out) of reused ids
    deferred: list[Instance] = []  # polygons taken unchecked, for the bulk pass
    spots: list[tuple[int, int, int]] = []  # per deferred instance: (raw index, image id, index there)
    plain_shapes = 0
    for index, raw in enumerate(raw_annotations):
        if type(raw) is not dict or type(raw.get("id")) is not int:
            entry_where(raw, index, "annotation", source)  # refuses it, naming it by its position
        aid = raw["id"]
        got = plain_annotation(raw, images, categories)
        if got is not None:  # the common case, in a few checks
            image_id, inst = got
            on_image = instances[image_id]
            if aid in seen_ids:
                repeated.append((image_id, len(on_image)))
            seen_ids.add(aid)
            plain_shapes += not inst.iscrowd
            deferred.append(inst)
            spots.append((index, image_id, len(on_image)))
            on_image.append(inst)
            continue
        n_deferred = len(deferred)
        try:
            image_id, inst = parse(raw, deferred=deferred)  # type: ignore[misc]
        except ValidationError as exc:
            raise CocoFormatError(f"{entry_where(raw, index, 'annotation', source)}: {exc}") from None
        if aid in seen_ids:
            repeated.append((image_id, len(instances[image_id]) if inst is not None else -1))
        seen_ids.add(aid)
        if inst is not None:
            if len(deferred) > n_deferred:
                spots.append((index, image_id, len(instances[image_id])))
            instances[image_id].append(inst)
    tally.plain_shapes += plain_shapes
    again = partial(careful, images=images, categories=categories, tally=tally, crowd_as_instances=crowd_as_instances)
    emptied, covered = _check_deferred(deferred, spots, instances, images, raw_annotations, again, source)

    if repeated:
        # datumaro writes ids restarting on every image; the store gives its own ids anyway, and
        # these are renumbered after the largest id so that messages name one annotation each
        next_id = max(seen_ids) + 1
        for image_id, at in repeated:
            if at >= 0 and instances[image_id][at] is not None:
                instances[image_id][at] = replace(instances[image_id][at], id=next_id)
                next_id += 1
        warnings.append(
            f"{source}: {len(repeated)} annotation(s) reuse an id an earlier annotation has (datumaro writes "
            f"ids that restart on every image); all were imported, the repeats renumbered from "
            f"{max(seen_ids) + 1}"
        )
    for image_id in emptied:
        instances[image_id] = [inst for inst in instances[image_id] if inst is not None]
    warnings.extend(tally_notes(tally, source, crowd_as_instances))
    invisible = _drop_shapes_without_pixels(instances, images, covered)
    if invisible:
        shown = ", ".join(f"{aid} ({name})" for aid, name in invisible[:_MAX_LISTED])
        more = f" and {len(invisible) - _MAX_LISTED} more" if len(invisible) > _MAX_LISTED else ""
        warnings.append(
            f"{source}: {len(invisible)} annotation(s) cover no pixel of their image (a shape inside one "
            f"pixel, or thinner than the gap between pixel centres) and were skipped: {shown}{more}"
        )
    items = [AnnotatedImage(image=rec, instances=tuple(instances[iid])) for iid, rec in images.items()]
    return Dataset(categories=list(categories.values()), items=items, warnings=warnings)


def _check_deferred(
    deferred: list[Instance],
    spots: list[tuple[int, int, int]],
    instances: dict[int, list[Instance]],
    images: dict[int, ImageRecord],
    raw_annotations: list[Any],
    careful: Callable[[dict[str, Any]], Instance | None],
    source: str,
) -> tuple[set[int], set[int]]:
    """The bulk pass over the polygons taken unchecked: suspects are read again with every check
    (which clips, drops flat parts or refuses, naming the annotation); the rest get box and area
    where they lack them. ``spots[k]`` is ``(raw index, image id, index on the image)`` of ``deferred[k]``.

    Returns the ids of the images where an instance was left out (None in its place, for the caller
    to filter: the places of the others stay as ``spots`` and the renumbering say), and ``id()`` of
    the instances kept as they were that surely cover a pixel (a part holds one: no rasterising)."""
    n = len(deferred)
    polys = list(chain.from_iterable(map(attrgetter("polygons"), deferred)))
    owner = np.repeat(np.arange(n), np.fromiter(map(len, map(attrgetter("polygons"), deferred)), np.int64, count=n))
    row_of = {iid: row for row, iid in enumerate(images)}
    image_sizes = np.array([rec.size_wh for rec in images.values()], dtype=np.float64).reshape(-1, 2)
    rows = np.fromiter((row_of[spot[1]] for spot in spots), dtype=np.int64, count=n)
    todo = np.zeros(n, dtype=bool)
    flagged, may_be_empty = check_polygons(polys, image_sizes[rows][owner])
    todo[owner[flagged]] = True
    suspect = todo.copy()
    full = np.bincount(owner, weights=~may_be_empty, minlength=n) > 0
    covered = {id(deferred[k]) for k in np.flatnonzero(full & ~suspect).tolist()}
    todo |= np.fromiter((inst.bbox_xywh is None or inst.area is None for inst in deferred), dtype=bool, count=n)
    emptied: set[int] = set()
    for k in np.flatnonzero(todo).tolist():
        index, image_id, at = spots[k]
        if suspect[k]:
            raw = raw_annotations[index]
            try:
                again = careful(raw)
            except ValidationError as exc:
                raise CocoFormatError(f"{entry_where(raw, index, 'annotation', source)}: {exc}") from None
        else:
            again = with_bbox_area(deferred[k], images[image_id].size_wh)
        instances[image_id][at] = again  # type: ignore[call-overload]  # None: left out, filtered after
        if again is None:
            emptied.add(image_id)
    return emptied, covered


def _drop_shapes_without_pixels(
    instances: dict[int, list[Instance]], images: dict[int, ImageRecord], covered: set[int] = frozenset()  # type: ignore[assignment]
) -> list[tuple[int | None, str]]:
    """Remove (in place) the instances whose shape rasterises to no pixel; ``(annotation id, file)`` of each.

    Stored, they would be invisible instances of area 0 that training and COCOeval see as empty
    masks. Only shapes the cheap bulk pre-filter flags (small or thin polygons, RLEs) are rasterised;
    instances whose ``id()`` is in ``covered`` passed that filter in the bulk pass already.
    """
    shaped = [inst for insts in instances.values() for inst in insts if id(inst) not in covered]
    counts = np.fromiter(map(len, map(attrgetter("polygons"), shaped)), dtype=np.int64, count=len(shaped))
    flags = polygons_may_cover_no_pixel(list(chain.from_iterable(map(attrgetter("polygons"), shaped))))
    # an instance may be empty only when every part is flagged (a part that surely covers a pixel
    # makes the union cover it); RLEs and instances without polygons are looked at one by one
    unflagged = np.bincount(np.repeat(np.arange(len(shaped)), counts), weights=~flags, minlength=len(shaped))
    suspects = {id(shaped[i]) for i in np.flatnonzero(unflagged == 0)}
    out: list[tuple[int | None, str]] = []
    for iid, insts in instances.items():
        if not any(id(inst) in suspects for inst in insts):
            continue
        size_wh = images[iid].size_wh
        kept = []
        for inst in insts:
            if id(inst) in suspects and covers_no_pixel(inst, size_wh):
                out.append((inst.id, images[iid].file_name))
            else:
                kept.append(inst)
        instances[iid] = kept
    return out


# --------------------------------------------------------------------------------------------------
# files


def _read_json(path: Path) -> Any:
    return read_json_file(path, error=CocoFormatError)


def _missing_message(source: str, missing: list[str], where: Iterable[Path]) -> str:
    shown = ", ".join(missing[:_MAX_LISTED])
    more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
    looked = ", ".join(str(p) for p in where)
    return f"{source}: {len(missing)} image file(s) missing: {shown}{more} (looked in {looked})"


def load_coco(
    path: Path,
    *,
    images_dir: Path | None = None,
    split: str | None = None,
    known_names: Collection[str] = (),
    root: Path | None = None,
    crowd_as_instances: bool = False,
) -> Dataset:
    """Read a COCO JSON file and find its images.

    Images are looked for in ``images_dir`` when given, else beside the JSON (roboflow), else in the
    datumaro/COCO layout ``<root>/images/<split>/`` for ``<root>/annotations/instances_<split>.json``.
    A split name outside SPLITS (datumaro's ``default``) leaves images without a split, with a warning.
    A missing file whose name is in ``known_names`` (images already in the project) is no error: its
    item keeps ``path=None`` and the importer matches it by name. File names resolve inside the
    dataset folder (``root`` when given, else ``images_dir``, else the layout's root) only: one that
    is absolute or climbs out of it (also as ``..\\`` or URL-encoded) is left out, its image named
    in ``Dataset.skipped`` with the reason. Two habits of real tools are met, each with a note: a
    Label Studio upload path (``../../label-studio/media/upload/1/x.jpg``) that is not found falls
    back to its base name in the images folder, and an image that is a symbolic link to a regular
    file (FiftyOne's symlink exports) is read from its target.
    """
    path = Path(path)
    obj = _read_json(path)
    source = str(path)
    warnings: list[str] = []
    norm_split = normalize_split(split)
    if norm_split is not None and norm_split not in SPLITS:
        warnings.append(f"{source}: split {split!r} is not one of {SPLITS}; images were left without a split")
        norm_split = None

    probe = coco_to_dataset(
        obj, source=source, images_dir=None, split=norm_split, crowd_as_instances=crowd_as_instances
    )
    known = set(known_names)
    file_names = list(dict.fromkeys(item.image.file_name for item in probe.items))
    candidates = [Path(images_dir)] if images_dir is not None else image_dir_candidates(path)
    if root is None:
        root = Path(images_dir) if images_dir is not None else dataset_root(path)
    inside = DatasetRoot(Path(root))
    best: dict[str, Resolved] = {}
    best_missing: list[str] | None = None
    fell_back: list[str] = []
    for cand in candidates:
        found = {f: inside.resolve(cand, f) for f in file_names}
        by_basename = _upload_path_fallback(found, inside, cand)
        # not found: missing inside the folder, or an upload path whose base name is not here either
        missing = [
            f for f, r in found.items()
            if r.path is None and f not in known and (r.escapes is None or _is_upload_path(f))
        ]
        if best_missing is None or len(missing) < len(best_missing):
            best, best_missing, fell_back = found, missing, by_basename
        if not missing:
            break
    best_missing = [f for f in best_missing or () if best[f].escapes is None]
    if best_missing:
        raise CocoFormatError(_missing_message(source, best_missing, candidates))
    if fell_back:
        warnings.append(
            f"{source}: {len(fell_back)} file_name(s) are Label Studio upload paths (e.g. {fell_back[0]!r}); "
            "each was found by its base name in the images folder"
        )

    items = []
    followed = 0
    for item in probe.items:
        where = best[item.image.file_name]
        if where.escapes is not None and where.path is None and item.image.file_name not in known:
            probe.skipped.append((item.image.file_name, f"{where.escapes} (file_name in {source})"))
            continue
        found_path = str(where.path) if where.path is not None else None
        if found_path is not None and os.path.islink(found_path):
            target = _link_target(found_path)
            if target is not None:
                found_path, followed = target, followed + 1
        items.append(AnnotatedImage(image=replace(item.image, path=found_path), instances=item.instances))
    if followed:
        warnings.append(
            f"{source}: {followed} image(s) are symbolic links (as FiftyOne exports with symlinks); each was "
            "read from the regular file it points to"
        )
    probe.items = items
    probe.warnings = warnings + probe.warnings
    return probe


_UPLOAD_PARTS = ("/media/upload/", "/data/upload/")
"""Where Label Studio keeps uploaded files; its COCO export writes paths there relative to itself."""


def _is_upload_path(name: str) -> bool:
    slashed = "/" + name.replace("\\", "/")
    return any(part in slashed for part in _UPLOAD_PARTS)


def _last_part(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _upload_path_fallback(found: dict[str, Resolved], inside: DatasetRoot, base: Path) -> list[str]:
    """Label Studio upload paths not found as written, looked for by base name in ``base`` (in place).

    Only names of that shape: any other name that climbs out of the folder stays refused.
    """
    out = []
    for name, where in found.items():
        if where.path is not None or not _is_upload_path(name):
            continue
        by_name = inside.resolve(base, _last_part(name))
        if by_name.path is not None:
            found[name] = Resolved(path=by_name.path, escapes=where.escapes)
            out.append(name)
    return out


def _link_target(path: str) -> str | None:
    """The file a symbolic link points to, when that is a regular file (else None: the decoder says why)."""
    try:
        target = os.path.realpath(path, strict=True)
        return target if stat.S_ISREG(os.stat(target).st_mode) else None
    except (OSError, RuntimeError):
        return None
