"""Frozen records that every module speaks: the common type between formats, store, train and UI.

Glossary (after labelme): a *Category* is a class a user labels with; an *Instance* is one object
on one image (its shape: polygons or RLE, plus optional keypoints); an *ImageRecord* is an upright
image with its size; a *Dataset* is categories plus images with their instances.

Coordinates are COCO pixel coordinates in the EXIF-upright image: (0, 0) is the top-left corner of
the top-left pixel, x right, y down. Keypoint schema indices are 0-based here; COCO files use
1-based skeleton pairs and the converters translate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

IGNORE_LABEL = "__ignore__"
"""Category name of ignore regions (LabelMe's convention): 255 in index maps, skipped in training."""

SPLITS = ("train", "val", "test")
IMAGE_STATUSES = ("unlabeled", "in_progress", "done", "needs_review")
SOURCES = ("manual", "imported", "predicted")

Source = Literal["manual", "imported", "predicted"]
Polygon = tuple[float, ...]
"""Flat polygon ``(x1, y1, x2, y2, ...)``: COCO's layout, at least 3 points."""
Progress = Callable[[int, int], None] | None
"""A long task's progress callback, called with (done, total); None where nobody listens."""

PALETTE: tuple[str, ...] = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075",
)  # fmt: skip
"""Default class colours in the order classes are created: adjacent ones differ clearly on screen."""
IGNORE_COLOR = "#7f7f7f"
"""Ignore regions are grey whatever their position."""


def palette_color(index: int, name: str = "") -> str:
    """Default colour of the ``index``-th class of a project (0-based); the ignore class is grey."""
    if name == IGNORE_LABEL:
        return IGNORE_COLOR
    return PALETTE[index % len(PALETTE)]


def plural(n: int | None, noun: str, plural_noun: str | None = None) -> str:
    """A count with its noun in the right number: '1 image', '0 images', '2 classes'.

    Every layer words its messages with it (the UI and the CLI included), hence its home here.
    The plural adds 'es' after s, x, z, ch and sh ('class' -> 'classes'), else 's'; irregular ones
    are given (``plural(n, 'entry', 'entries')``). An unknown count (None) reads '? images'.
    """
    if n == 1:
        return f"1 {noun}"
    if plural_noun is None:
        # 'es' after a hissing end (class, box, batch, mesh), not after a hard 'ch' (epoch)
        hiss = noun.endswith(("s", "x", "z", "sh")) or (noun.endswith("ch") and not noun.endswith("och"))
        plural_noun = noun + ("es" if hiss else "s")
    return f"{'?' if n is None else n} {plural_noun}"


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose; the message is meant for the user."""


class ValidationError(WorkbenchError, ValueError):
    """Input that breaks a rule of the domain (a 2-point polygon, keypoints of the wrong length)."""


MAX_NAME_CHARS = 200
"""The longest project, class, run or image file name: one limit for SQLite (which stores any
length) and PostgreSQL (whose columns hold 200), so both accept and refuse the same names."""


def check_name_length(what: str, name: str) -> None:
    """Refuse a name over :data:`MAX_NAME_CHARS` in one line that gives the limit."""
    if len(name) > MAX_NAME_CHARS:
        shown = name[:40] + "..."
        raise ValidationError(
            f"{what} {shown!r} is {len(name)} characters long; names are limited to {MAX_NAME_CHARS} characters"
        )


@dataclass(frozen=True, slots=True)
class KeypointSchema:
    """Names of a category's keypoints, skeleton edges and left/right flip pairs (0-based)."""

    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        k = len(self.names)
        if k == 0:
            raise ValidationError("a keypoint schema needs at least one keypoint name")
        if len(set(self.names)) != k:
            raise ValidationError(f"keypoint names must be unique: {list(self.names)}")
        for kind, pairs in (("skeleton", self.skeleton), ("flip pair", self.flip_pairs)):
            for a, b in pairs:
                if not (0 <= a < k and 0 <= b < k) or a == b:
                    raise ValidationError(
                        f"{kind} ({a}, {b}) is not a pair of two keypoints among 0..{k - 1}"
                    )

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def flip_permutation(self) -> list[int]:
        """Index map that a horizontal flip applies: left and right keypoints trade places."""
        perm = list(range(len(self.names)))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


def check_flip_pairs(schema: KeypointSchema) -> None:
    """Refuse flip pairs that share a keypoint: a flip swaps each left keypoint with one right partner.

    ``a-b, b-c`` made the flip a rotation (a->b->c->a), so augmentation mirrored keypoints wrongly.
    Checked where a schema is entered (classes, COCO import), not in ``KeypointSchema`` itself, so a
    store written before the check still opens.
    """
    paired: set[int] = set()
    for a, b in schema.flip_pairs:
        for i in (a, b):
            if i in paired:
                pairs = ", ".join(f"{schema.names[x]}-{schema.names[y]}" for x, y in schema.flip_pairs)
                raise ValidationError(
                    f"keypoint {schema.names[i]!r} is in more than one flip pair ({pairs}); "
                    "each keypoint swaps with at most one other"
                )
            paired.add(i)


ATTRIBUTE_KINDS = ("checkbox", "select", "text", "number")
BUILTIN_ATTRIBUTES = ("occluded", "truncated")
"""Checkboxes every class has (CVAT's): they need no definition."""


@dataclass(frozen=True, slots=True)
class AttributeDef:
    """One attribute of a class's instances (CVAT-style): a checkbox, one of ``options``, text or a number."""

    name: str
    kind: str = "checkbox"
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or self.name != self.name.strip():
            raise ValidationError(
                f"an attribute name must be a non-empty string without outer spaces, got {self.name!r}"
            )
        check_name_length("attribute name", self.name)
        if self.kind not in ATTRIBUTE_KINDS:
            raise ValidationError(
                f"attribute {self.name!r}: kind must be one of {ATTRIBUTE_KINDS}, got {self.kind!r}"
            )
        if self.kind == "select":
            if not self.options or not all(isinstance(o, str) and o.strip() for o in self.options):
                raise ValidationError(
                    f"attribute {self.name!r}: a select needs non-empty options, got {list(self.options)}"
                )
            if len(set(self.options)) != len(self.options):
                raise ValidationError(
                    f"attribute {self.name!r}: options must be unique, got {list(self.options)}"
                )
        elif self.options:
            raise ValidationError(
                f"attribute {self.name!r}: only a select has options ({self.kind} has none)"
            )

    def check(self, value: Any) -> Any:
        """The value as stored (a checkbox is a bool, a number an int or float); ValidationError if it
        does not fit this definition."""
        ok = {
            "checkbox": isinstance(value, bool) or value in (0, 1),
            "select": isinstance(value, str) and value in self.options,
            "text": isinstance(value, str),
            "number": isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
        }[self.kind]
        if not ok:
            want = f"one of {list(self.options)}" if self.kind == "select" else f"a {self.kind} value"
            raise ValidationError(f"attribute {self.name!r} must be {want}, got {value!r}")
        return bool(value) if self.kind == "checkbox" else value


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    id: int | None = None
    color: str = "#1f77b4"
    supercategory: str = ""
    keypoints: KeypointSchema | None = None
    attributes: tuple[AttributeDef, ...] = ()
    """The class's own attribute definitions; ``occluded`` and ``truncated`` come on top (see ``all_attributes``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError(f"category name must be a non-empty string, got {self.name!r}")
        names = [a.name for a in self.attributes]
        for n in names:
            if n in BUILTIN_ATTRIBUTES:
                raise ValidationError(f"class {self.name!r}: every class has the attribute {n!r} already")
            if names.count(n) > 1:
                raise ValidationError(f"class {self.name!r}: two attributes are named {n!r}")

    @property
    def all_attributes(self) -> tuple[AttributeDef, ...]:
        return tuple(AttributeDef(n) for n in BUILTIN_ATTRIBUTES) + self.attributes

    def check_attributes(
        self, values: dict[str, Any], before: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Instance attribute values checked against the definitions; None unsets one.

        Keys the class does not define (an import's) and values unchanged since ``before`` (an
        imported value that no longer fits an edited definition) are kept as they are.
        """
        defs = {a.name: a for a in self.all_attributes}
        before = before or {}
        out: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            d = defs.get(key)
            out[key] = value if d is None or (key in before and before[key] == value) else d.check(value)
        return out

    @property
    def is_ignore(self) -> bool:
        return self.name == IGNORE_LABEL


@dataclass(frozen=True, slots=True)
class Rle:
    """COCO run-length encoding; ``counts`` is the compressed string form, ``size_hw`` is [h, w]."""

    size_hw: tuple[int, int]
    counts: str

    def to_coco(self) -> dict[str, Any]:
        return {"size": [self.size_hw[0], self.size_hw[1]], "counts": self.counts}


@dataclass(frozen=True, slots=True)
class Instance:
    """One object on one image. Its shape is ``polygons`` (a union of parts) or ``rle`` (holes).

    ``bbox_xywh`` and ``area`` are COCO's (the area is the mask's pixel count); every way in fills
    them once with ``geometry.with_bbox_area``, so readers of an instance never compute them again.
    """

    category: str
    polygons: tuple[Polygon, ...] = ()
    rle: Rle | None = None
    bbox_xywh: tuple[float, float, float, float] | None = None
    area: float | None = None
    keypoints: tuple[float, ...] | None = None
    """Flat ``(x, y, v) * K`` with v in {0, 1, 2}; x = y = 0 where v = 0."""
    iscrowd: bool = False
    score: float | None = None
    source: Source = "manual"
    id: int | None = None
    version: int = 1
    attributes: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    z_order: int = 0
    """Drawing order on its image (CVAT's z_order): higher is drawn on top; ties keep row order."""

    def __post_init__(self) -> None:
        if self.polygons and self.rle is not None:
            raise ValidationError("an instance has polygons or an RLE mask, not both")
        for poly in self.polygons:
            if len(poly) < 6 or len(poly) % 2:
                raise ValidationError(
                    f"a polygon needs an even number of coordinates and at least 3 points, "
                    f"got {len(poly)} numbers"
                )
        if self.keypoints is not None:
            if len(self.keypoints) % 3:
                raise ValidationError(
                    f"keypoints must be (x, y, v) triples, got {len(self.keypoints)} numbers"
                )
            for v in self.keypoints[2::3]:
                if v not in (0, 1, 2):
                    raise ValidationError(f"keypoint visibility must be 0, 1 or 2, got {v}")
        if self.bbox_xywh is not None:
            x, y, w, h = self.bbox_xywh
            if not math.isfinite(x + y + w + h) or w < 0 or h < 0:
                raise ValidationError(f"bbox must be finite [x, y, w, h] with w, h >= 0: {self.bbox_xywh}")
        if self.source not in SOURCES:
            raise ValidationError(f"source must be one of {SOURCES}, got {self.source!r}")

    @property
    def num_keypoints(self) -> int:
        """COCO's ``num_keypoints``: keypoints with v > 0."""
        if self.keypoints is None:
            return 0
        return sum(1 for v in self.keypoints[2::3] if v > 0)

    @property
    def has_shape(self) -> bool:
        return bool(self.polygons) or self.rle is not None


class AnnotationRecord(NamedTuple):
    """One annotation as the COCO writer takes it: ids and JSON values laid out as COCO has them.

    The store's export query yields these straight from its rows (store ids, JSON columns parsed);
    the writer's domain feed builds them from instances. A named tuple rather than a frozen
    dataclass: a 200k-annotation export makes one per row, and a tuple is built six times faster.
    """

    id: int
    image_id: int
    category_id: int
    segmentation: list[Any] | dict[str, Any]
    """Polygons ``[[x1, y1, ...], ...]`` (``[]`` for none) or an RLE ``{"size": [h, w], "counts": ...}``."""
    bbox: list[float] | None
    area: float | None
    iscrowd: bool
    keypoints: list[float] | None
    """Flat ``[x, y, v] * K`` as stored."""
    score: float | None
    attributes: dict[str, Any] | None
    z_order: int = 0


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An image in upright pixel space. ``file_name`` is the name users know it by."""

    file_name: str
    width: int
    height: int
    id: int | None = None
    sha256: str = ""
    path: str | None = None
    """Where the bytes are: relative to the project folder in the store, absolute in imports."""
    split: str | None = None
    status: str = "unlabeled"

    def __post_init__(self) -> None:
        if not (isinstance(self.width, int) and isinstance(self.height, int)):
            raise ValidationError(f"{self.file_name}: width/height must be integers")
        if self.width <= 0 or self.height <= 0:
            raise ValidationError(
                f"{self.file_name}: width and height must be positive, got {self.width}x{self.height}"
            )
        if self.split is not None and self.split not in SPLITS:
            raise ValidationError(f"{self.file_name}: split must be one of {SPLITS}, got {self.split!r}")
        if self.status not in IMAGE_STATUSES:
            raise ValidationError(f"{self.file_name}: status must be one of {IMAGE_STATUSES}")

    @property
    def size_wh(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass(frozen=True, slots=True)
class AnnotatedImage:
    image: ImageRecord
    instances: tuple[Instance, ...] = ()
    data: bytes | None = field(default=None, compare=False, repr=False)
    """Image bytes embedded in the source file (LabelMe's imageData); ``image.path`` otherwise."""


@dataclass(slots=True)
class Dataset:
    """What a format reads or writes: categories and images with their instances."""

    categories: list[Category] = field(default_factory=list)
    items: list[AnnotatedImage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """``(image name, reason)`` of images the reader left out (a path leading outside the dataset)."""

    def category(self, name: str) -> Category:
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(f"no category named {name!r}; have {[c.name for c in self.categories]}")

    @property
    def num_instances(self) -> int:
        return sum(len(item.instances) for item in self.items)


class NotFoundError(WorkbenchError, LookupError):
    """A project, image, category or run that does not exist; the message lists what does."""


class ConflictError(WorkbenchError):
    """A save against a stale version: someone else saved first. Nothing was overwritten."""


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: int
    slug: str
    name: str
    description: str = ""
    num_images: int = 0
    num_annotations: int = 0
    num_categories: int = 0
    status_counts: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
    split_counts: dict[str, int] = field(default_factory=dict, compare=False, hash=False)


PREDICTION_STATUSES = ("pending", "accepted", "rejected")


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's instance on an image, kept apart from annotations until a reviewer accepts it.

    ``instance`` carries the shape (usually RLE), box, keypoints and ``score``, with source
    ``predicted``; ``annotation_id`` is the annotation it became once accepted (None if deleted since).
    """

    id: int
    run_id: int
    image_id: int
    instance: Instance
    status: str = "pending"
    annotation_id: int | None = None

    def __post_init__(self) -> None:
        if self.status not in PREDICTION_STATUSES:
            raise ValidationError(f"prediction status must be one of {PREDICTION_STATUSES}, got {self.status!r}")

    @property
    def score(self) -> float:
        return float(self.instance.score) if self.instance.score is not None else 0.0


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A training run as the store keeps it: its row, read once, for the queue, the pages and the CLI."""

    id: int
    project_id: int
    name: str
    status: str
    config: dict[str, Any]
    device: str | None
    pid: int | None
    heartbeat_at: datetime | None
    progress: dict[str, Any] | None
    metrics: dict[str, Any] | None
    error: str | None
    run_dir: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def is_active(self) -> bool:
        return self.status in ("queued", "running")


@dataclass(frozen=True, slots=True)
class Accepted:
    """What accepting predictions did: the annotations written, in order, and notes for the reviewer
    (keypoints dropped because the class's schema changed since the prediction was stored)."""

    annotation_ids: list[int]
    notes: list[str] = field(default_factory=list)


ROLES = ("admin", "reviewer", "annotator", "viewer")
"""Team mode's roles (issue 15); what each may do is services/permissions.py's matrix."""

REVIEW_STATES = ("in_review", "accepted", "rejected")
"""An assigned image's review stage after its annotator marks it done."""


@dataclass(frozen=True, slots=True)
class Account:
    """A user of a team workspace. The password hash never leaves the store."""

    id: int
    name: str
    role: str
    disabled: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None
    last_login_at: datetime | None = None


class PermissionDenied(WorkbenchError):
    """A user's role or membership does not allow an action; the message names user, role and action."""
