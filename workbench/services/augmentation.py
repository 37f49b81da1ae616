"""A project's augmentation pipeline: saved per project, validated, and previewed on real images.

The pipeline is the project setting ``"augmentation"``: a preset name (none, light, medium, heavy) or
a custom list ``[{"name": <albumentations transform>, "params": {...}}]``. Training uses it unless a
run overrides it (:func:`workbench.services.training.default_config`).

The preview goes through the very code the training loader runs (``train.dataset.item_to_sample``,
``augment.Augmenter`` with the schema's flip permutations and the trainer's minimum instance area,
per-sample reseeding), so what the grid shows is what the model is fed; only the overlay is added.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from workbench.augment import (
    PRESET_NAMES,
    PRESETS,
    AugmentationConfigError,
    Augmenter,
    Sample,
    parse_pipeline_spec,
    validate_pipeline_spec,
)
from workbench.domain import AnnotatedImage, Category, ValidationError
from workbench.images.overlay import UNKNOWN_COLOR, Shape, color_rgb, draw_shapes
from workbench.services.export import project_dataset
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo
from workbench.utils.staged import staged_folder

SETTING_KEY = "augmentation"
DEFAULT_PIPELINE = "light"
MIN_INSTANCE_AREA_PX = 4.0
"""TrainConfig.min_instance_area's default: instances smaller than this after augmenting are dropped."""

PipelineSpec = str | list[dict[str, Any]]

KNOWN_TRANSFORMS: dict[str, dict[str, Any]] = {
    # geometric (masks, boxes and keypoints move together; mirrors swap left/right keypoints)
    "HorizontalFlip": {"p": 0.5},
    "VerticalFlip": {"p": 0.5},
    "RandomRotate90": {"p": 0.5},
    "Affine": {"scale": [0.9, 1.1], "translate_percent": [-0.1, 0.1], "rotate": [-15, 15], "p": 0.5},
    "Rotate": {"limit": [-20, 20], "p": 0.5},
    "SafeRotate": {"limit": [-20, 20], "p": 0.5},
    "Perspective": {"scale": [0.05, 0.1], "p": 0.3},
    "ElasticTransform": {"alpha": 1.0, "sigma": 50.0, "p": 0.2},
    "GridDistortion": {"p": 0.2},
    "RandomScale": {"scale_limit": 0.1, "p": 0.5},
    # photometric (image only)
    "RandomBrightnessContrast": {"brightness_limit": 0.2, "contrast_limit": 0.2, "p": 0.5},
    "HueSaturationValue": {"hue_shift_limit": 10, "sat_shift_limit": 20, "val_shift_limit": 10, "p": 0.3},
    "ColorJitter": {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.05, "p": 0.5},
    "RGBShift": {"p": 0.3},
    "RandomGamma": {"p": 0.3},
    "CLAHE": {"p": 0.1},
    "ToGray": {"p": 0.05},
    "GaussNoise": {"p": 0.2},
    "ISONoise": {"p": 0.2},
    "GaussianBlur": {"blur_limit": [3, 5], "p": 0.1},
    "MotionBlur": {"p": 0.1},
    "ImageCompression": {"quality_range": [60, 95], "p": 0.2},
    "Sharpen": {"p": 0.1},
    "CoarseDropout": {"p": 0.2},
}
"""Transforms the Augment page offers in its 'add a transform' form, with sensible starting params."""

EXAMPLE_PIPELINE: list[dict[str, Any]] = [
    {"name": "HorizontalFlip", "params": {"p": 0.5}},
    {"name": "Affine", "params": {"scale": [0.9, 1.1], "rotate": [-15, 15], "p": 0.5}},
    {"name": "RandomBrightnessContrast", "params": {"brightness_limit": 0.2, "contrast_limit": 0.2, "p": 0.5}},
]


class PipelineError(AugmentationConfigError):
    """A pipeline with one or more problems; ``errors`` holds one message per problem."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(self.errors))


# ------------------------------------------------------------------------------------------- the spec


def pipeline_errors(spec: Any) -> list[str]:
    """Every problem of a spec (one message per bad transform), or [] when it can be built."""
    try:
        steps = parse_pipeline_spec(spec)
    except AugmentationConfigError as exc:
        return [str(exc)]
    errors = []
    for i, step in enumerate(steps):
        try:
            validate_pipeline_spec([step], where=f"pipeline[{i}]")
        except AugmentationConfigError as exc:
            errors.append(_tidy(str(exc).replace(f"pipeline[{i}][0]", f"pipeline[{i}]")))
    return errors


def _tidy(message: str) -> str:
    """Drop pydantic's machine detail (``[type=..., input_value=...]``, 'N validation errors for
    InitSchema') so that the user reads which parameter is wrong and why."""
    message = re.sub(r"\s*\[type=[^\]]*\]", "", message)
    return re.sub(r"\d+ validation errors? for \w+;\s*", "", message)


def normalise_pipeline(spec: Any) -> PipelineSpec:
    """A preset name stays a name; anything else becomes a validated ``[{"name", "params"}]`` list."""
    if isinstance(spec, str) and spec.strip() in PRESETS:
        return spec.strip()
    errors = pipeline_errors(spec)
    if errors:
        raise PipelineError(errors)
    return [{"name": s["name"], "params": dict(s["params"])} for s in parse_pipeline_spec(spec)]


def pipeline_steps(spec: Any) -> list[dict[str, Any]]:
    """The transforms of a spec (a preset expanded), for showing and editing."""
    return parse_pipeline_spec(spec)


def pipeline_to_json(spec: Any) -> str:
    """The spec's transforms as indented JSON (what the custom editor starts from)."""
    return json.dumps(pipeline_steps(spec), indent=2)


def describe_pipeline(spec: Any) -> str:
    """One line for captions: the preset name, or the transforms' names."""
    if isinstance(spec, str) and spec in PRESETS:
        return f"preset {spec!r}"
    steps = parse_pipeline_spec(spec)
    return "custom: " + (", ".join(s["name"] for s in steps) if steps else "no transforms")


def transform_parameters(name: str) -> list[str]:
    """The parameter names an albumentations transform accepts (for the form's help text)."""
    import albumentations as A

    cls = getattr(A, name, None)
    if not inspect.isclass(cls):
        raise AugmentationConfigError(f"unknown transform {name!r}")
    sig = inspect.signature(cls.__init__)
    return [
        p.name for p in sig.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "strict"
    ]


@requires("project.read")
def get_pipeline(ws: Workspace, slug: str) -> PipelineSpec:
    """The project's saved pipeline; ``"light"`` when none was saved."""
    with ws.store.transaction() as s:
        value = project_repo.project_settings(s, slug).get(SETTING_KEY)
    return DEFAULT_PIPELINE if value is None or value == "" else value


@requires("augment.edit")
def set_pipeline(ws: Workspace, slug: str, spec: Any) -> PipelineSpec:
    """Validate and save a pipeline (a preset name, a JSON string or a list); nothing is saved when
    it has a problem (:class:`PipelineError` lists them all). Returns what was saved."""
    value = normalise_pipeline(spec)
    with ws.store.transaction() as s:
        project_repo.set_project_setting(s, slug, SETTING_KEY, value)
    return value


# ------------------------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class PreviewTile:
    """One augmented training sample as the loader produces it, before drawing."""

    image_id: int
    file_name: str
    sample: Sample


def _annotated_items(ws: Workspace, slug: str) -> tuple[list[AnnotatedImage], list[Category]]:
    ds = project_dataset(ws, slug)
    items = sorted((it for it in ds.items if it.instances), key=lambda it: int(it.image.id or 0))
    return items, ds.categories


@requires("project.read")
def annotated_image_ids(ws: Workspace, slug: str) -> list[int]:
    """Images with at least one annotation (what the preview can show), by id."""
    return [int(it.image.id) for it in _annotated_items(ws, slug)[0] if it.image.id is not None]


def _preview_tiles(
    ws: Workspace, slug: str, *, count: int, seed: int, image_ids: Sequence[int] | None, spec: Any,
) -> tuple[list[PreviewTile], Any, list[Category]]:
    from workbench.images.storage import load_image_rgb
    from workbench.train.dataset import item_to_sample, schema_from_categories

    if count < 0:
        raise ValidationError(f"preview count must be >= 0, got {count}")
    items, categories = _annotated_items(ws, slug)
    if image_ids is not None:
        by_id = {int(it.image.id): it for it in items if it.image.id is not None}
        missing = [i for i in image_ids if int(i) not in by_id]
        if missing:
            raise ValidationError(f"project {slug!r}: no annotated image with id(s) {missing}")
        items = [by_id[int(i)] for i in image_ids]
    spec = get_pipeline(ws, slug) if spec is None else normalise_pipeline(spec)
    if not items or count == 0:
        return [], None, categories
    schema = schema_from_categories(categories)
    augmenter = Augmenter(spec, min_area_px=MIN_INSTANCE_AREA_PX)
    flips = schema.flip_permutations()
    project_dir = ws.project_dir(slug)
    cache: dict[int, Sample] = {}
    tiles = []
    for i in range(count):
        j = i % len(items)
        item = items[j]
        if j not in cache:
            cache[j] = item_to_sample(item, load_image_rgb(project_dir, item.image.path or ""), schema)
        augmenter.reseed(seed * 1_000_003 + i)  # the loader's per-sample reseed
        sample = augmenter.apply(cache[j], flips)
        tiles.append(PreviewTile(int(item.image.id or 0), item.image.file_name, sample))
    return tiles, schema, categories


@requires("project.read")
def preview_samples(
    ws: Workspace, slug: str, *, count: int = 8, seed: int = 0, image_ids: Sequence[int] | None = None,
    spec: Any = None,
) -> list[PreviewTile]:
    """``count`` augmented samples of the project's annotated images (cycled), without drawing."""
    return _preview_tiles(ws, slug, count=count, seed=seed, image_ids=image_ids, spec=spec)[0]


@requires("project.read")
def preview(
    ws: Workspace,
    slug: str,
    *,
    count: int = 8,
    seed: int = 0,
    image_ids: Sequence[int] | None = None,
    spec: Any = None,
    overlay: bool = True,
    max_side_px: int | None = None,
) -> list[tuple[int, np.ndarray]]:
    """(image id, H x W x 3 uint8) for ``count`` augmented versions of real project images, with the
    augmented masks, boxes, keypoints and skeletons drawn over them (``overlay=False``: the bare
    augmented image). ``spec`` previews an unsaved pipeline; None uses the saved one. The same seed
    gives the same grid; another seed re-rolls it. ``max_side_px`` shrinks tiles for display.
    Empty when the project has no annotated images."""
    tiles, schema, categories = _preview_tiles(ws, slug, count=count, seed=seed, image_ids=image_ids, spec=spec)
    colors = {c.name: c.color for c in categories}
    out = []
    for tile in tiles:
        sample = tile.sample
        if max_side_px is not None:
            sample = scale_sample(sample, max_side_px)
        img = draw_sample(sample, schema, colors) if overlay else np.asarray(sample.image, np.uint8)
        out.append((tile.image_id, img))
    return out


PREVIEW_GLOB = "aug_[0-9][0-9][0-9]_image*_seed*.png"
"""The preview PNGs :func:`write_preview` names; other files in the folder are left alone."""


def write_preview(out: Path, tiles: Sequence[tuple[int, np.ndarray]], *, seed: int) -> list[Path]:
    """Write :func:`preview` tiles as ``aug_NNN_image<id>_seed<seed>.png`` in ``out``; earlier preview
    PNGs there go, so the folder shows this preview only (other seeds or counts would mix in). The
    PNGs are staged and moved in together (``utils.staged``): a failure leaves the earlier preview."""
    written = []
    with staged_folder(out, what="augmentation preview") as stage:
        for i, (image_id, image) in enumerate(tiles):
            name = f"aug_{i:03d}_image{image_id}_seed{seed}.png"
            Image.fromarray(image).save(stage.put(name), format="PNG")
            written.append(out / name)
        for old in set(out.glob(PREVIEW_GLOB)) - set(written):
            stage.drop(old.name)
    return written


def scale_sample(sample: Sample, max_side_px: int) -> Sample:
    """A display-sized copy: image bilinear, masks nearest, keypoints scaled (v kept)."""
    h, w = sample.image.shape[:2]
    f = min(1.0, max_side_px / max(h, w))
    if f >= 1.0:
        return sample
    size_wh = (max(1, round(w * f)), max(1, round(h * f)))
    image = np.asarray(Image.fromarray(sample.image).resize(size_wh, Image.BILINEAR))
    masks = np.stack([np.asarray(Image.fromarray(m).resize(size_wh, Image.NEAREST)) for m in sample.masks]) \
        if len(sample.masks) else np.zeros((0, size_wh[1], size_wh[0]), np.uint8)
    kp = sample.keypoints.astype(np.float32, copy=True)
    if kp.size:
        kp[..., 0] *= size_wh[0] / w
        kp[..., 1] *= size_wh[1] / h
    return Sample(image=image, masks=masks, labels=sample.labels, keypoints=kp)


def draw_sample(sample: Sample, schema: Any, colors: Mapping[str, str], *, opacity: float = 0.4) -> np.ndarray:
    """The sample's image with its targets drawn by the one overlay drawer: tinted masks, boxes (from
    the masks, as training computes them), visible keypoints and the class's skeleton edges."""
    h, w = sample.image.shape[:2]
    width = max(1, round(max(h, w) / 320))
    shapes = []
    for mask, label, box, kps in zip(sample.masks, sample.labels, sample.boxes_xyxy, sample.keypoints, strict=True):
        name = schema.class_names[int(label) - 1]
        kschema = schema.schema_of(name)
        k = min(kschema.num_keypoints, len(kps)) if kschema is not None else 0
        x0, y0, x1, y1 = (float(v) for v in box)
        shapes.append(Shape(
            rgb=color_rgb(colors.get(name, UNKNOWN_COLOR)),
            mask=mask.astype(bool),
            # pixel-corner box: the outline on the mask's last row and column; an empty mask has none
            box_xyxy=(x0, y0, x1 - 1, y1 - 1) if x1 > x0 and y1 > y0 else None,
            keypoints=[(float(x), float(y), float(v)) for x, y, v in kps[:k]],
            dot_radius=max(2, width + 1),
            skeleton=kschema.skeleton if kschema is not None else (),
            width_px=width,
        ))
    return np.asarray(draw_shapes(Image.fromarray(np.asarray(sample.image, np.uint8)), shapes, opacity=opacity))


__all__ = [
    "DEFAULT_PIPELINE",
    "EXAMPLE_PIPELINE",
    "KNOWN_TRANSFORMS",
    "PRESET_NAMES",
    "PREVIEW_GLOB",
    "SETTING_KEY",
    "PipelineError",
    "PreviewTile",
    "annotated_image_ids",
    "describe_pipeline",
    "draw_sample",
    "get_pipeline",
    "normalise_pipeline",
    "pipeline_errors",
    "pipeline_steps",
    "pipeline_to_json",
    "preview",
    "preview_samples",
    "scale_sample",
    "set_pipeline",
    "transform_parameters",
    "write_preview",
]
