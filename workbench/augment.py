"""Augmentation pipelines (albumentations) that move image, masks and keypoints together.

Why our own layer over albumentations: it knows nothing of keypoint *semantics* (a mirrored left
wrist must become the right wrist) and it keeps boxes and masks in separate worlds. Here:

* Masks are the source of truth for each instance. Boxes are recomputed from the transformed masks
  (tight, exact under rotation and elastic transforms), so boxes and masks can never disagree.
* An instance whose mask is pushed out of the image or falls below ``min_area_px`` is dropped from
  masks, boxes, labels and keypoints at once.
* Keypoints are transformed as points (``remove_invisible=False`` keeps indices aligned); points that
  leave the image become ``v=0`` with ``x=y=0`` (COCO's convention).
* After every *reflection* (HorizontalFlip, VerticalFlip, Transpose, the mirror elements of D4, an
  Affine whose matrix has a negative determinant) the left/right keypoints of each instance trade
  places by its schema's flip pairs. A vertical flip is a mirror too (it is a horizontal flip followed
  by a 180 degree rotation), so it swaps as well; rotations alone never swap.

Pipelines are plain JSON lists ``[{"name": "HorizontalFlip", "params": {"p": 0.5}}, ...]`` so a project
can save its own; :func:`validate_pipeline_spec` explains what is wrong with a bad one.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.domain import ValidationError

PRESET_NAMES = ("none", "light", "medium", "heavy")

PRESETS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "light": [
        {"name": "HorizontalFlip", "params": {"p": 0.5}},
        {"name": "RandomBrightnessContrast", "params": {"brightness_limit": 0.15, "contrast_limit": 0.15, "p": 0.3}},
    ],
    "medium": [
        {"name": "HorizontalFlip", "params": {"p": 0.5}},
        {
            "name": "Affine",
            "params": {"scale": [0.85, 1.15], "translate_percent": [-0.08, 0.08], "rotate": [-10, 10], "p": 0.5},
        },
        {"name": "RandomBrightnessContrast", "params": {"brightness_limit": 0.2, "contrast_limit": 0.2, "p": 0.5}},
        {"name": "HueSaturationValue", "params": {"p": 0.3}},
    ],
    "heavy": [
        {"name": "HorizontalFlip", "params": {"p": 0.5}},
        {"name": "VerticalFlip", "params": {"p": 0.1}},
        {
            "name": "Affine",
            "params": {"scale": [0.7, 1.3], "translate_percent": [-0.15, 0.15], "rotate": [-25, 25], "shear": [-8, 8], "p": 0.7},
        },
        {"name": "ColorJitter", "params": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05, "p": 0.6}},
        {"name": "GaussNoise", "params": {"p": 0.2}},
        {"name": "MotionBlur", "params": {"p": 0.1}},
    ],
}

_REFLECTIONS = {"HorizontalFlip", "VerticalFlip", "Transpose"}
_D4_REFLECTIONS = {"h", "v", "t", "hvt"}


class AugmentationConfigError(ValidationError):
    """A pipeline spec that cannot be built: unknown transform, bad parameter, wrong shape of JSON."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One training image with its instances, in the array layout the trainer uses.

    image: H x W x 3 uint8; masks: N x H x W uint8 0/1; labels: N int64 (1-based class index);
    keypoints: N x K x 3 float32 (x, y, v) with K possibly 0; boxes are derived (xyxy float32).
    """

    image: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    keypoints: np.ndarray

    @property
    def boxes_xyxy(self) -> np.ndarray:
        return masks_to_boxes_xyxy(self.masks)


def empty_sample(image: np.ndarray, num_keypoints: int = 0) -> Sample:
    h, w = image.shape[:2]
    return Sample(
        image=image,
        masks=np.zeros((0, h, w), np.uint8),
        labels=np.zeros((0,), np.int64),
        keypoints=np.zeros((0, num_keypoints, 3), np.float32),
    )


def masks_to_boxes_xyxy(masks: np.ndarray) -> np.ndarray:
    """Tight boxes around N masks in COCO pixel-corner coordinates (a 1-pixel mask is 1 x 1).

    Vectorised over all masks (row and column maxima, then first and last nonzero); empty masks give
    zeros. The loader runs this on every augmented sample, so no per-mask Python loop.
    """
    masks = np.asarray(masks)
    n = masks.shape[0]
    boxes = np.zeros((n, 4), np.float32)
    if n == 0 or masks.size == 0:
        return boxes
    if masks.dtype != np.bool_ and not np.issubdtype(masks.dtype, np.unsignedinteger):
        masks = masks != 0
    rows = masks.max(axis=2) > 0  # N x H
    cols = masks.max(axis=1) > 0  # N x W
    found = rows.any(axis=1)
    h, w = rows.shape[1], cols.shape[1]
    y0 = rows.argmax(axis=1)
    y1 = h - rows[:, ::-1].argmax(axis=1)
    x0 = cols.argmax(axis=1)
    x1 = w - cols[:, ::-1].argmax(axis=1)
    boxes[found] = np.stack([x0, y0, x1, y1], axis=1)[found].astype(np.float32)
    return boxes


def mask_areas(masks: np.ndarray) -> np.ndarray:
    """Foreground pixel count of each of N masks (int64); for 0/1 masks equal to the pixel sum."""
    masks = np.asarray(masks)
    return np.fromiter((np.count_nonzero(m) for m in masks), dtype=np.int64, count=masks.shape[0])


def _albumentations():  # noqa: ANN202 - imported lazily: cv2 is slow to import and only needed here
    import albumentations as A

    return A


def parse_pipeline_spec(spec: str | Sequence[Mapping[str, Any]] | None, *, where: str = "pipeline") -> list[dict[str, Any]]:
    """Normalise a preset name, a JSON string or a list into ``[{"name", "params"}]``."""
    if spec is None:
        return []
    if isinstance(spec, str):
        text = spec.strip()
        if text in PRESETS:
            return [dict(step) for step in PRESETS[text]]
        if not text.startswith("["):
            raise AugmentationConfigError(
                f"{where}: unknown augmentation preset {spec!r}; use one of {list(PRESET_NAMES)} or a JSON list"
            )
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AugmentationConfigError(f"{where}: not valid JSON: {exc}") from exc
        except RecursionError:
            raise AugmentationConfigError(f"{where}: not valid JSON (nested too deeply)") from None
    if not isinstance(spec, Sequence) or isinstance(spec, str | bytes):
        raise AugmentationConfigError(f"{where}: a pipeline is a list of transforms, got {type(spec).__name__}")
    steps: list[dict[str, Any]] = []
    for i, step in enumerate(spec):
        if not isinstance(step, Mapping) or not isinstance(step.get("name"), str):
            raise AugmentationConfigError(
                f"{where}[{i}]: each transform is an object with a 'name' (and optional 'params'), got {step!r}"
            )
        extra = set(step) - {"name", "params"}
        params = dict(step.get("params") or {})
        if extra:  # accept the flat form {"name": ..., "p": 0.5} too
            params.update({k: step[k] for k in extra})
        if not isinstance(step.get("params", {}) or {}, Mapping):
            raise AugmentationConfigError(f"{where}[{i}] ({step['name']}): 'params' must be an object")
        steps.append({"name": step["name"], "params": params})
    return steps


def _build_transform(step: dict[str, Any], where: str) -> Any:
    A = _albumentations()
    name, params = step["name"], step["params"]
    cls = getattr(A, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, A.BasicTransform)) or issubclass(cls, A.BaseCompose):
        raise AugmentationConfigError(f"{where} ({name}): unknown transform {name!r} (not an albumentations transform)")
    targets = {t.value for t in getattr(cls, "_targets", ())}
    if issubclass(cls, A.DualTransform) and not {"Mask", "Keypoints"} <= targets:
        raise AugmentationConfigError(
            f"{where} ({name}): this transform does not support masks and keypoints together, "
            f"so instances would fall out of alignment"
        )
    sig = inspect.signature(cls.__init__)
    known = [p.name for p in sig.parameters.values() if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    unknown = [k for k in params if k not in known]
    if unknown:
        raise AugmentationConfigError(
            f"{where} ({name}): unknown parameter(s) {unknown}; valid parameters are {known}"
        )
    try:
        return cls(**params)
    except Exception as exc:  # pydantic / ValueError from albumentations: pass its words on
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "errors.pydantic.dev" not in ln]
        msg = "; ".join(lines)
        raise AugmentationConfigError(f"{where} ({name}): bad parameter: {msg}") from exc


def validate_pipeline_spec(spec: str | Sequence[Mapping[str, Any]] | None, *, where: str = "pipeline") -> list[dict[str, Any]]:
    """Check a spec by building every transform; returns the normalised spec or raises a clear error."""
    steps = parse_pipeline_spec(spec, where=where)
    for i, step in enumerate(steps):
        _build_transform(step, f"{where}[{i}]")
    return steps


def _is_reflection(name: str, params: Mapping[str, Any]) -> bool:
    if name in _REFLECTIONS:
        return True
    if name == "D4":
        return str(params.get("group_element")) in _D4_REFLECTIONS
    matrix = params.get("matrix")
    if matrix is not None:
        m = np.asarray(matrix, dtype=np.float64)
        return bool(np.linalg.det(m[:2, :2]) < 0)
    return False


class Augmenter:
    """A built pipeline. Call :meth:`apply` with a :class:`Sample`; reseed per sample for determinism."""

    def __init__(
        self,
        spec: str | Sequence[Mapping[str, Any]] | None = "none",
        *,
        min_area_px: float = 1.0,
        seed: int | None = None,
    ) -> None:
        A = _albumentations()
        self.steps = validate_pipeline_spec(spec)
        self.min_area_px = float(min_area_px)
        transforms = [_build_transform(s, f"pipeline[{i}]") for i, s in enumerate(self.steps)]
        self._compose = None if not transforms else A.Compose(
            transforms,
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
            save_applied_params=True,
            seed=seed,
        )

    @property
    def is_identity(self) -> bool:
        return not self.steps

    def reseed(self, seed: int) -> None:
        if self._compose is not None:
            self._compose.set_random_seed(int(seed) % (2**32))

    def apply(self, sample: Sample, flip_permutations: Mapping[int, Sequence[int]] | None = None) -> Sample:
        """Transform a sample; ``flip_permutations`` maps a label to its keypoint flip permutation."""
        if self._compose is None:
            return drop_small_instances(sample, self.min_area_px)
        n, k = sample.keypoints.shape[:2] if sample.keypoints.ndim == 3 else (len(sample.labels), 0)
        # albumentations puts pixel centres at integers, COCO at +0.5: shift there and back.
        points = (sample.keypoints[..., :2].reshape(-1, 2).astype(np.float32) - 0.5) if k else np.zeros((0, 2), np.float32)
        data: dict[str, Any] = {"image": sample.image, "keypoints": points}
        if n:
            data["masks"] = sample.masks
        out = self._compose(**data)
        image = out["image"]
        h, w = image.shape[:2]
        masks = np.asarray(out["masks"], dtype=np.uint8).reshape(n, h, w) if n else np.zeros((0, h, w), np.uint8)
        keypoints = sample.keypoints.astype(np.float32, copy=True)
        if k and n:
            xy = np.asarray(out["keypoints"], dtype=np.float32)[:, :2].reshape(n, k, 2) + 0.5
            keypoints[..., :2] = xy
            visible = keypoints[..., 2] > 0
            inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
            gone = ~(visible & inside)
            keypoints[gone] = 0.0
            reflections = sum(_is_reflection(name, p) for name, p in out.get("applied_transforms", []))
            if reflections % 2 and flip_permutations:
                for i, label in enumerate(sample.labels.tolist()):
                    perm = flip_permutations.get(int(label))
                    if perm is not None:
                        keypoints[i] = keypoints[i][list(perm)]
        result = Sample(image=image, masks=masks, labels=sample.labels.copy(), keypoints=keypoints)
        return drop_small_instances(result, self.min_area_px)

    def apply_maps(self, image: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The image and M x H x W uint8 label maps (class maps, an index map) moved together.

        Semantic targets keep every map, empty or not (nothing is dropped as instances are), and
        albumentations moves masks nearest-neighbour, so class and ignore values stay exact.
        """
        if self._compose is None:
            return image, maps
        out = self._compose(image=image, masks=maps, keypoints=np.zeros((0, 2), np.float32))
        img = out["image"]
        h, w = img.shape[:2]
        return img, np.asarray(out["masks"], dtype=np.uint8).reshape(len(maps), h, w)


def drop_small_instances(sample: Sample, min_area_px: float) -> Sample:
    """Drop instances whose mask area is below ``min_area_px`` (and empty ones) from every target."""
    if not len(sample.labels):
        return sample
    keep = mask_areas(sample.masks) >= max(min_area_px, 1.0)
    if keep.all():
        return sample
    return Sample(
        image=sample.image,
        masks=sample.masks[keep],
        labels=sample.labels[keep],
        keypoints=sample.keypoints[keep],
    )


def augment_preview(
    sample: Sample,
    spec: str | Sequence[Mapping[str, Any]] | None,
    *,
    count: int = 8,
    seed: int = 0,
    flip_permutations: Mapping[int, Sequence[int]] | None = None,
    min_area_px: float = 1.0,
) -> list[Sample]:
    """``count`` augmented versions of one sample (the UI's preview grid; a new seed re-rolls)."""
    aug = Augmenter(spec, min_area_px=min_area_px)
    results = []
    for i in range(count):
        aug.reseed(seed * 1_000_003 + i)
        results.append(aug.apply(sample, flip_permutations))
    return results
