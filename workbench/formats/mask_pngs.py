"""Mask PNGs -> domain records: an index PNG per image with a class list, or binary PNGs per class.

Two layouts, matched to images by file stem (the path below the mask folder without suffix):

- ``index``: ``<stem>.png`` holds 0 for background, ``i`` for class ``i`` and 255 for ignore.
  The classes come from a list: ``classes.txt`` / ``class_names.txt`` / ``labels.txt`` (one name a
  line; values 1, 2, ... in order, or 0, 1, ... when the first line is a background name, as
  labelme2voc writes it; ``__ignore__`` lines are skipped) or the ``classes.json`` of our own label
  map export, whose ``index/`` folder is then the masks.
- ``binary``: one folder per class (its name is the class) holding ``<stem>.png``, nonzero where
  the class is.

Instances are the 8-connected components of each class's pixels, or one per class per image
(``one_per_class``); their shapes are RLE masks, so holes stay.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workbench.domain import (
    IGNORE_LABEL,
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    ValidationError,
    palette_color,
)
from workbench.formats.folders import images_by_stem, mask_instances, read_label_png, upright_size
from workbench.formats.labelmaps import IGNORE_INDEX
from workbench.formats.paths import DatasetRoot
from workbench.geometry import mask_to_rle, with_bbox_area

__all__ = ["LAYOUTS", "MaskFormatError", "load_masks", "read_class_list"]

LAYOUTS = ("auto", "index", "binary")
_CLASS_FILES = ("classes.txt", "class_names.txt", "labels.txt")
_BACKGROUND = ("_background_", "background", "__background__", "_bg_")


class MaskFormatError(ValidationError):
    """Mask PNGs that cannot be read as classes; the message names the file and the problem."""


def read_class_list(path: Path) -> dict[int, str]:
    """Index value -> class name from a class list (``.txt``, or our label maps' ``classes.json``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MaskFormatError(f"{path}: cannot read the class list ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            meta = json.loads(text)
            return {int(c["index"]): str(c["name"]) for c in meta["classes"]}
        except (ValueError, KeyError, TypeError):
            raise MaskFormatError(f"{path}: not a classes.json of a label-map export (classes with index and name)") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    names = [n for n in names if n != IGNORE_LABEL]
    if not names:
        raise MaskFormatError(f"{path}: the class list names no class")
    start = 0 if names[0].lower() in _BACKGROUND else 1
    out = {i + start: n for i, n in enumerate(names)}
    out.pop(0, None)
    if len(set(out.values())) != len(out):
        raise MaskFormatError(f"{path}: a class is listed twice")
    return out


def _find_class_list(folder: Path) -> Path | None:
    for base in (folder, folder.parent):
        for name in _CLASS_FILES:
            if (base / name).is_file():
                return base / name
    return None


def _pngs(folder: Path, root: DatasetRoot) -> dict[str, Path]:
    return {stem: p for stem, p in images_by_stem(folder, root).items() if p.suffix.lower() == ".png"}


def load_masks(
    path: Path,
    *,
    images_dir: Path,
    layout: str = "auto",
    classes: Path | None = None,
    one_per_class: bool = False,
) -> Dataset:
    """Read mask PNGs under ``path`` for the images under ``images_dir`` (matched by stem)."""
    folder = Path(path)
    if layout not in LAYOUTS:
        raise MaskFormatError(f"mask layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not folder.is_dir():
        raise MaskFormatError(f"{folder}: mask PNGs are read from a folder")
    if not Path(images_dir).is_dir():
        raise MaskFormatError(f"{images_dir}: the images folder is not a folder")
    meta = folder / "classes.json"
    if classes is None and meta.is_file() and (folder / "index").is_dir() and layout != "binary":
        classes, folder, layout = meta, folder / "index", "index"  # our own label-map export
    root = DatasetRoot(folder)
    if layout == "auto":
        listed = classes is not None or _find_class_list(folder) is not None
        layout = "index" if listed or _pngs_here(folder) else "binary"
    images = images_by_stem(Path(images_dir), DatasetRoot(Path(images_dir)))
    warnings: list[str] = []
    skipped: list[tuple[str, str]] = []
    per_stem: dict[str, list[tuple[str, np.ndarray]]] = {}  # stem -> [(class, bool mask)]
    names: list[str] = []
    if layout == "index":
        listing = classes or _find_class_list(folder)
        if listing is None:
            raise MaskFormatError(f"{folder}: index masks need a class list (--classes FILE, or classes.txt beside them)")
        by_value = read_class_list(Path(listing))
        names = list(by_value.values())
        for stem, png in sorted(_pngs(folder, root).items()):
            arr = read_label_png(png, MaskFormatError)
            if arr.ndim != 2:
                raise MaskFormatError(f"{png}: an index mask must be a grey or palette PNG, not colour")
            values = [int(v) for v in np.unique(arr) if v not in (0, IGNORE_INDEX)]
            unknown = [v for v in values if v not in by_value]
            if unknown:
                raise MaskFormatError(
                    f"{png}: value {unknown[0]} is no class of {listing} (values {min(by_value)}..{max(by_value)}, 255 ignore)"
                )
            masks = [(by_value[v], arr == v) for v in values]
            if (arr == IGNORE_INDEX).any():
                masks.append((IGNORE_LABEL, arr == IGNORE_INDEX))
            per_stem[stem] = masks
    else:
        class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
        if not class_dirs:
            raise MaskFormatError(f"{folder}: binary masks are one folder per class, holding <image stem>.png; none found")
        for d in class_dirs:
            names.append(d.name)
            for stem, png in sorted(_pngs(d, root).items()):
                arr = read_label_png(png, MaskFormatError)
                m = arr != 0 if arr.ndim == 2 else (arr != 0).any(axis=2)
                per_stem.setdefault(stem, []).append((d.name, m))
    items: list[AnnotatedImage] = []
    for stem, masks in sorted(per_stem.items()):
        image = images.get(stem)
        if image is None:
            skipped.append((f"{stem}.png", f"no image named {stem}.* in {images_dir}"))
            continue
        size_wh = upright_size(image, MaskFormatError)
        instances: list[Instance] = []
        for name, m in masks:
            if m.shape != (size_wh[1], size_wh[0]):
                raise MaskFormatError(
                    f"{folder}: the mask of {stem} for {name!r} is {m.shape[1]}x{m.shape[0]}, the image is {size_wh[0]}x{size_wh[1]}"
                )
            if name == IGNORE_LABEL:
                instances.append(with_bbox_area(Instance(name, rle=mask_to_rle(m), source="imported"), size_wh))
            else:
                instances += mask_instances(m, name, size_wh, split_components=not one_per_class)
        record = ImageRecord(image.relative_to(images_dir).as_posix(), size_wh[0], size_wh[1], path=str(image))
        items.append(AnnotatedImage(record, tuple(instances)))
    unmatched = len(set(images) - set(per_stem))
    if unmatched:
        warnings.append(f"{unmatched} image(s) in {images_dir} have no mask; not imported")
    if any(i.category == IGNORE_LABEL for it in items for i in it.instances):
        names.append(IGNORE_LABEL)
    categories = [Category(n, color=palette_color(i, n)) for i, n in enumerate(names)]
    return Dataset(categories=categories, items=items, warnings=warnings, skipped=skipped)


def _pngs_here(folder: Path) -> bool:
    return any(p.suffix.lower() == ".png" and p.is_file() for p in folder.iterdir())
