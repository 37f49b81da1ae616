"""Where COCO files and their images sit in the folder layouts other tools write.

datumaro / COCO: ``<root>/annotations/{instances,person_keypoints}_<split>.json`` with images in
``<root>/images/<split>/``; roboflow: ``<root>/<split>/_annotations.coco.json`` with the images beside
it (``valid`` for val). Split names found in file and folder names map onto the domain's SPLITS.
"""

from __future__ import annotations

import re
from pathlib import Path

from workbench.domain import SPLITS

__all__ = ["dataset_root", "find_coco_files", "find_coco_splits", "image_dir_candidates", "normalize_split"]

_SPLIT_ALIASES = {"valid": "val", "validation": "val", "training": "train", "testing": "test"}
_DATUMARO_RE = re.compile(r"^(?P<task>instances|person_keypoints)_(?P<split>.+)\.json$")


def normalize_split(name: str | None) -> str | None:
    """Map folder/file split names (``valid``, ``train.person_keypoints``) onto the domain's SPLITS."""
    if name is None:
        return None
    base = name.split(".", 1)[0].strip().lower()
    return _SPLIT_ALIASES.get(base, base)


def _split_from_layout(path: Path) -> str | None:
    """``annotations/instances_val.json`` -> ``val``; ``valid/_annotations.coco.json`` -> ``valid``."""
    m = _DATUMARO_RE.match(path.name)
    if m:
        return m.group("split")
    if path.name == "_annotations.coco.json":
        return path.parent.name
    return None


def dataset_root(path: Path) -> Path:
    """The folder of the dataset the COCO file ``path`` belongs to: its images must lie inside it.

    ``<root>`` for ``<root>/annotations/x.json``, else the file's own folder.
    """
    folder = Path(path).parent
    return folder.parent if folder.name == "annotations" else folder


def image_dir_candidates(path: Path) -> list[Path]:
    """Folders that may hold the images of the COCO file ``path``, most likely first."""
    folder = path.parent
    candidates = [folder]
    layout_split = _split_from_layout(path)
    if folder.name == "annotations":
        root = folder.parent
        if layout_split:
            candidates.append(root / "images" / layout_split)
            candidates.append(root / layout_split)
        candidates += [root / "images", root]
    else:
        candidates.append(folder / "images")
    return candidates


def find_coco_files(folder: Path) -> list[tuple[str, Path]]:
    """Every COCO JSON of a datumaro or roboflow export as ``(split, file)``, instances files first.

    Several files may share a split (``instances_train.json`` and ``person_keypoints_train.json``):
    the caller imports each of them into that split. Split names are normalised (``valid`` -> ``val``).
    """
    folder = Path(folder)
    found: list[tuple[int, str, Path]] = []
    ann_dir = folder / "annotations"
    if ann_dir.is_dir():
        for p in sorted(ann_dir.glob("*.json")):
            m = _DATUMARO_RE.match(p.name)
            if m:
                order = 0 if m.group("task") == "instances" else 1
                found.append((order, normalize_split(m.group("split")) or "", p))
    for p in sorted(folder.glob("*/_annotations.coco.json")):
        if p.parent.is_symlink():  # a linked folder (to a parent, or elsewhere) is not part of this one
            continue
        found.append((0, normalize_split(p.parent.name) or "", p))
    if (folder / "_annotations.coco.json").is_file():
        found.append((0, normalize_split(folder.name) or "", folder / "_annotations.coco.json"))
    rank = {s: i for i, s in enumerate(SPLITS)}
    found.sort(key=lambda t: (rank.get(t[1], len(SPLITS)), t[1], t[0], str(t[2])))
    return [(split, path) for _, split, path in found]


def find_coco_splits(folder: Path) -> dict[str, Path]:
    """Split name -> COCO JSON for datumaro (``annotations/instances_train.json``) and roboflow
    (``train/_annotations.coco.json``, ``valid`` -> ``val``) layouts.

    Where a split has several files (instances and person_keypoints), the first keeps the split
    name as key and the others get ``<split>.<task>`` (``train.person_keypoints``); ``load_coco``
    and ``normalize_split`` read such a key as its split.
    """
    out: dict[str, Path] = {}
    for split, path in find_coco_files(folder):
        key = split
        if key in out:
            m = _DATUMARO_RE.match(path.name)
            key = f"{split}.{m.group('task') if m else path.stem}"
            n = 2
            while key in out:
                key = f"{split}.{path.stem}{n}"
                n += 1
        out[key] = path
    return out
