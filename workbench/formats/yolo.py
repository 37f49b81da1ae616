"""Ultralytics YOLO datasets (detect, segment, pose) <-> domain records.

A dataset is a ``data.yaml`` (``names``, ``train``/``val``/``test`` image folders or lists,
``kpt_shape`` and ``flip_idx`` for pose) and one ``labels/.../<stem>.txt`` per image, found as
Ultralytics finds it: the last ``/images/`` of the image path becomes ``/labels/``. A line is
``class cx cy w h`` (a box), ``class x1 y1 x2 y2 ...`` (a polygon) or, with ``kpt_shape``,
``class cx cy w h`` + K x (x y [v]) keypoints; coordinates are fractions of the upright image.

What YOLO cannot say, the export leaves out or simplifies and counts in its notes: crowd and ignore
regions (left out), masks (traced as outer contours: no holes), several polygon parts (joined into
one line by zero-width bridges, as Ultralytics' own converter joins them), box-only instances in a
segment dataset (left out), classes with another keypoint count than the dataset's one
``kpt_shape`` (left out of a pose export); see :mod:`workbench.formats.yolo_write`.
``kpt_names`` (Ultralytics) and ``skeleton`` (ours, 0-based) travel in the yaml.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from workbench.domain import (
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    ValidationError,
    check_flip_pairs,
    palette_color,
)
from workbench.formats.coco.layouts import normalize_split
from workbench.formats.folders import image_files, upright_size
from workbench.formats.paths import DatasetRoot
from workbench.geometry import (
    clip_polygon,
    covers_no_pixel,
    with_bbox_area,
)

__all__ = ["YoloFormatError", "find_yaml", "load_yolo", "parse_label_file"]

_YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
_SPLIT_KEYS = ("train", "val", "test")


class YoloFormatError(ValidationError):
    """A YOLO dataset breaks a rule; the message names the file (and line) and the problem."""


# --------------------------------------------------------------------------------------------------
# data.yaml


def find_yaml(path: Path) -> Path:
    """The dataset's yaml: ``path`` itself, or ``data.yaml`` (or the one ``*.yaml``) in the folder."""
    if not path.is_dir():
        return path
    for name in _YAML_NAMES:
        if (path / name).is_file():
            return path / name
    found = sorted(p for p in path.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise YoloFormatError(f"{path}: no data.yaml in this folder (a YOLO dataset needs one, with 'names')")
    raise YoloFormatError(f"{path}: several yaml files ({', '.join(p.name for p in found)}); give the dataset's one")


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # PyYAML: only the YOLO reader needs it

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YoloFormatError(f"{path}: cannot read ({exc})") from None
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise YoloFormatError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        raise YoloFormatError(f"{path}: not a YOLO data.yaml (the top level must be a mapping)")
    return obj


def _names(obj: dict[str, Any], src: Path) -> tuple[str, ...]:
    names = obj.get("names")
    if isinstance(names, dict):
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in names):
            raise YoloFormatError(f"{src}: 'names' keys must be class indices 0..N-1, got {list(names)}")
        if sorted(names) != list(range(len(names))):
            raise YoloFormatError(f"{src}: 'names' must number the classes 0..{len(names) - 1}, got {sorted(names)}")
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names:
        raise YoloFormatError(f"{src}: 'names' must be a list or a mapping of class names, got {names!r}")
    out = []
    for n in names:
        if not isinstance(n, str | int) or isinstance(n, bool) or not str(n).strip():
            raise YoloFormatError(f"{src}: class name {n!r} is not a non-empty name")
        out.append(str(n).strip())
    if len(set(out)) != len(out):
        dup = [n for n, c in Counter(out).items() if c > 1]
        raise YoloFormatError(f"{src}: class names must be unique, {dup} appear twice")
    nc = obj.get("nc")
    if nc is not None and nc != len(out):
        raise YoloFormatError(f"{src}: nc is {nc} but 'names' lists {len(out)} classes")
    return tuple(out)


def _schema(obj: dict[str, Any], names: tuple[str, ...], src: Path) -> tuple[tuple[int, int] | None, KeypointSchema | None]:
    shape = obj.get("kpt_shape")
    if shape is None:
        return None, None
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
            and shape[0] > 0 and shape[1] in (2, 3)):
        raise YoloFormatError(f"{src}: kpt_shape must be [K, 2] or [K, 3] with K > 0, got {shape!r}")
    k = shape[0]
    kp_names: Any = obj.get("kpt_names")
    if isinstance(kp_names, dict):  # Ultralytics: per class index; one kpt_shape, so take the first
        kp_names = next(iter(kp_names.values()), None)
    if not (isinstance(kp_names, list) and len(kp_names) == k and len({str(n) for n in kp_names}) == k):
        kp_names = [f"kp{i + 1}" for i in range(k)]
    flip = obj.get("flip_idx")
    pairs: list[tuple[int, int]] = []
    if flip is not None:
        if not (isinstance(flip, list) and len(flip) == k and sorted(flip) == list(range(k))
                and all(flip[flip[i]] == i for i in range(k))):
            raise YoloFormatError(f"{src}: flip_idx must swap the {k} keypoints in pairs (a permutation of 0..{k - 1} "
                                  f"that is its own inverse), got {flip!r}")
        pairs = [(i, flip[i]) for i in range(k) if flip[i] > i]
    skeleton = obj.get("skeleton") or []
    edges = tuple((int(a), int(b)) for a, b in skeleton) if isinstance(skeleton, list) and all(
        isinstance(e, list) and len(e) == 2 and all(isinstance(v, int) and 0 <= v < k for v in e) and e[0] != e[1]
        for e in skeleton) else ()
    try:
        schema = KeypointSchema(tuple(str(n) for n in kp_names), skeleton=edges, flip_pairs=tuple(pairs))
        check_flip_pairs(schema)
    except ValidationError as exc:
        raise YoloFormatError(f"{src}: {exc}") from None
    return (k, shape[1]), schema


# --------------------------------------------------------------------------------------------------
# label files


def _floats(text: str, where: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split()]
    except ValueError:
        raise YoloFormatError(f"{where}: not a line of numbers: {text.strip()[:60]!r}") from None
    if not all(math.isfinite(v) for v in vals):
        raise YoloFormatError(f"{where}: numbers must be finite (no NaN or infinity)")
    return vals


def _unit(vals: list[float], where: str) -> list[float]:
    """Fractions of the image: a little outside 0..1 is clipped (Ultralytics allows 1 %), more refused."""
    bad = [v for v in vals if v < -0.01 or v > 1.01]
    if bad:
        raise YoloFormatError(
            f"{where}: coordinates must be fractions of the image size (0..1), got {bad[0]:g}; "
            "pixel coordinates are not YOLO labels"
        )
    return [min(max(v, 0.0), 1.0) for v in vals]


def _px(v: float, size: int) -> float:
    """A fraction as pixels, rounded to 1e-4: undoes the rounding of the written fraction, so that
    a vertex on a half pixel (20.5) does not come back as 20.499999 and move a rasterised edge."""
    return round(v * size, 4)


def parse_label_file(
    text: str, *, names: tuple[str, ...], size_wh: tuple[int, int], kpt_shape: tuple[int, int] | None = None,
    src: str = "", warnings: list[str] | None = None,
) -> list[Instance]:
    """One label file's instances in pixel coordinates (boxes, polygons, or boxes with keypoints)."""
    warns = warnings if warnings is not None else []
    w, h = size_wh
    out: list[Instance] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        if not line.strip():
            continue
        where = f"{src}: line {n}"
        vals = _floats(line, where)
        c = vals[0]
        if c != int(c) or not 0 <= c < len(names):
            raise YoloFormatError(f"{where}: class {c:g} is not among the {len(names)} classes of names (0..{len(names) - 1})")
        name = names[int(c)]
        rest = vals[1:]
        if kpt_shape is not None:
            k, dim = kpt_shape
            if len(rest) != 4 + k * dim:
                raise YoloFormatError(f"{where}: a pose line needs 1 + 4 + {k} x {dim} = {5 + k * dim} numbers "
                                      f"(kpt_shape {[k, dim]}), got {len(vals)}")
            cx, cy, bw, bh = _unit(rest[:4], where)
            kps = np.asarray(rest[4:], dtype=np.float64).reshape(k, dim)
            flat: list[float] = []
            for row in kps:
                x, y = _unit([float(row[0]), float(row[1])], where)
                v = int(round(float(row[2]))) if dim == 3 else (0 if x == 0 and y == 0 else 2)
                if v not in (0, 1, 2):
                    raise YoloFormatError(f"{where}: keypoint visibility must be 0, 1 or 2, got {row[2]:g}")
                flat += [_px(x, w), _px(y, h), v] if v else [0.0, 0.0, 0]
            box = (_px(cx - bw / 2, w), _px(cy - bh / 2, h), _px(bw, w), _px(bh, h))
            inst = Instance(name, bbox_xywh=box, area=box[2] * box[3], keypoints=tuple(flat), source="imported")
        elif len(rest) == 4:
            cx, cy, bw, bh = _unit(rest, where)
            if bw <= 0 or bh <= 0:
                warns.append(f"{where}: box of zero width or height; skipped")
                continue
            box = (_px(cx - bw / 2, w), _px(cy - bh / 2, h), _px(bw, w), _px(bh, h))
            inst = Instance(name, bbox_xywh=box, area=box[2] * box[3], source="imported")
        elif len(rest) >= 6 and len(rest) % 2 == 0:
            pts = _unit(rest, where)
            poly = tuple(_px(v, w if i % 2 == 0 else h) for i, v in enumerate(pts))
            clipped = clip_polygon(poly, size_wh)
            if clipped is None or covers_no_pixel(Instance(name, polygons=(clipped,)), size_wh):
                warns.append(f"{where}: polygon covers no pixel of the image; skipped")
                continue
            inst = with_bbox_area(Instance(name, polygons=(clipped,), source="imported"), size_wh)
        else:
            raise YoloFormatError(f"{where}: expected 'class cx cy w h' (5 numbers) or 'class x1 y1 x2 y2 x3 y3 ...' "
                                  f"(a polygon of at least 3 points), got {len(vals)} numbers")
        out.append(inst)
    return out


def _label_path(image: Path) -> Path:
    """Ultralytics' ``img2label_paths``: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``."""
    s = str(image)
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sa in s:
        s = sb.join(s.rsplit(sa, 1))
    return Path(os.path.splitext(s)[0] + ".txt")


def _split_images(value: Any, base: Path, root: DatasetRoot, src: Path, skipped: list[tuple[str, str]],
                  notes: list[str]) -> list[tuple[str, Path]]:
    """``(file name, path)`` of a split's images: folders (recursive), ``.txt`` lists, image files."""
    entries = value if isinstance(value, list) else [value]
    out: list[tuple[str, Path]] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise YoloFormatError(f"{src}: a split must name folders, .txt lists or images, got {entry!r}")
        where = root.resolve(base, entry)
        if where.path is None and entry.startswith("../"):  # Ultralytics (and roboflow's yaml) retry without it
            retry = root.resolve(base, entry[3:])
            if retry.path is not None:
                where = retry
        if where.path is None:
            if where.escapes:
                skipped.append((entry, f"{where.escapes} (in {src})"))
            else:
                notes.append(f"{src}: {entry} not found; that split has no images")
            continue
        p = where.path
        if p.is_dir():
            out += [(q.relative_to(p).as_posix(), q) for q in image_files(p, root)]
        elif p.suffix.lower() == ".txt":
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip()
                if not line:
                    continue
                got = root.resolve(p.parent, line)
                if got.path is not None:
                    out.append((PurePosixPath(line.replace("\\", "/")).name, got.path))
                elif got.escapes:
                    skipped.append((line, f"{got.escapes} (listed in {p})"))
                else:
                    skipped.append((line, f"listed in {p} but not found"))
        else:
            out.append((p.name, p))
    return out


def load_yolo(path: Path) -> list[Dataset]:
    """One Dataset per split of the yaml (``train``, ``val``, ``test``), all with the yaml's classes.

    Image paths resolve inside the dataset folder only (the yaml's folder, or the one given);
    an image met in an earlier split is not read again.
    """
    path = Path(path)
    src = find_yaml(path)
    obj = _read_yaml(src)
    names = _names(obj, src)
    kpt_shape, schema = _schema(obj, names, src)
    folder = path if path.is_dir() else src.parent
    root = DatasetRoot(folder)
    notes: list[str] = []
    base = src.parent
    given = obj.get("path")
    if isinstance(given, str) and given.strip():
        there = root.resolve(src.parent, given)
        if there.path is not None and there.path.is_dir():
            base = there.path
        elif given.strip() not in (".", "./"):
            notes.append(f"{src}: path {given!r} is not a folder inside {folder}; splits are read from the yaml's folder")
    categories = [
        Category(n, color=palette_color(i, n), keypoints=schema) for i, n in enumerate(names)
    ]
    splits = [k for k in _SPLIT_KEYS if obj.get(k)]
    if not splits:
        raise YoloFormatError(f"{src}: names no split ('train', 'val' or 'test' image folders)")
    seen: set[str] = set()
    out: list[Dataset] = []
    for key in splits:
        skipped: list[tuple[str, str]] = []
        warnings = list(notes) if not out else []
        items: list[AnnotatedImage] = []
        for name, image in _split_images(obj[key], base, root, src, skipped, warnings):
            real = os.path.realpath(image)
            if real in seen:
                continue
            seen.add(real)
            size_wh = upright_size(image, YoloFormatError)
            label = _label_path(image)
            instances: list[Instance] = []
            if label.is_file() and root.inside(os.path.normpath(os.path.abspath(label))):
                try:
                    text = label.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise YoloFormatError(f"{label}: cannot read ({exc})") from None
                instances = parse_label_file(text, names=names, size_wh=size_wh, kpt_shape=kpt_shape,
                                             src=str(label), warnings=warnings)
            record = ImageRecord(name, size_wh[0], size_wh[1], path=str(image), split=normalize_split(key))
            items.append(AnnotatedImage(record, tuple(instances)))
        out.append(Dataset(categories=list(categories), items=items, warnings=warnings, skipped=skipped))
    return out
