"""Records -> Mask R-CNN targets, and the DataLoader the trainer uses (batches from :mod:`.sampler`).

The run folder's COCO files are read once into domain records (``formats.coco.read.coco_to_dataset``);
each item is rasterised, augmented (``workbench.augment``) and turned into torchvision's target dict:
boxes float32 [N, 4] xyxy, labels int64 [N], masks uint8 [N, H, W], keypoints float32 [N, K, 3]
(only when the schema has keypoints). Images without instances give empty tensors of those shapes.

Randomness is per sample: the batch sampler yields ``(index, seed)`` pairs, the seed derived from
(run seed, epoch, index), so augmentations do not depend on worker count or on resuming mid-epoch.
Mosaic and copy-paste (``workbench.augment_mix``) draw their extra samples from the same seed; the
trainer tells the dataset the epoch (:meth:`MaskRCNNDataset.set_epoch`) so that they stop for the
last epochs, through a shared value that persistent loader workers read too.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import multiprocessing.context
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from workbench.augment import Augmenter, Sample, mask_areas, masks_to_boxes_xyxy
from workbench.augment_mix import MixPolicy, mix_sample
from workbench.domain import AnnotatedImage, Category, Dataset, KeypointSchema, ValidationError
from workbench.geometry.masks import instance_to_rle
from workbench.geometry.rle import rles_to_masks
from workbench.train.config import TrainConfig


class DatasetError(ValidationError):
    """The run's frozen dataset is unusable (missing file, no classes, unreadable image)."""


@dataclass(frozen=True, slots=True)
class TrainingSchema:
    """What a model predicts: class names (label = index + 1, 0 is background) and keypoint schemas."""

    class_names: tuple[str, ...]
    keypoint_schemas: tuple[tuple[str, KeypointSchema], ...] = ()

    @property
    def num_classes(self) -> int:
        """Including background, as torchvision wants it."""
        return len(self.class_names) + 1

    @property
    def num_keypoints(self) -> int:
        return max((s.num_keypoints for _, s in self.keypoint_schemas), default=0)

    def label_of(self, name: str) -> int:
        return self.class_names.index(name) + 1

    def schema_of(self, name: str) -> KeypointSchema | None:
        return dict(self.keypoint_schemas).get(name)

    def flip_permutations(self) -> dict[int, list[int]]:
        """Per label, the keypoint permutation of a mirror, padded with identity up to K."""
        k = self.num_keypoints
        perms: dict[int, list[int]] = {}
        for name, schema in self.keypoint_schemas:
            perm = schema.flip_permutation() + list(range(schema.num_keypoints, k))
            perms[self.label_of(name)] = perm
        return perms

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_names": list(self.class_names),
            "keypoints": {
                name: {
                    "names": list(s.names),
                    "skeleton": [list(p) for p in s.skeleton],
                    "flip_pairs": [list(p) for p in s.flip_pairs],
                }
                for name, s in self.keypoint_schemas
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSchema:
        kps = tuple(
            (
                name,
                KeypointSchema(
                    tuple(d["names"]),
                    tuple(tuple(p) for p in d.get("skeleton", ())),
                    tuple(tuple(p) for p in d.get("flip_pairs", ())),
                ),
            )
            for name, d in dict(data.get("keypoints", {})).items()
        )
        return cls(tuple(data["class_names"]), kps)


def mix_policy(config: TrainConfig) -> MixPolicy:
    """The run's mosaic / copy-paste settings (off unless the config sets them)."""
    return MixPolicy(
        mosaic=config.mosaic, copy_paste=config.copy_paste, close_mosaic=config.close_mosaic, epochs=config.epochs
    )


def schema_from_categories(categories: Sequence[Category]) -> TrainingSchema:
    cats = [c for c in categories if not c.is_ignore]
    if not cats:
        raise DatasetError("the dataset has no classes to train on")
    return TrainingSchema(
        tuple(c.name for c in cats),
        tuple((c.name, c.keypoints) for c in cats if c.keypoints is not None),
    )


def load_run_splits(data_dir: Path) -> tuple[Dataset, Dataset | None]:
    """A run folder's frozen ``dataset/``: its train split, and its val split where it has one. Images
    resolve inside ``dataset/images`` (a self-contained run) or ``dataset/`` itself."""
    images_dir = data_dir / "images" if (data_dir / "images").is_dir() else data_dir
    train = load_coco_split(data_dir / "coco_train.json", images_dir)
    val_path = data_dir / "coco_val.json"
    return train, load_coco_split(val_path, images_dir) if val_path.exists() else None


def load_coco_split(path: Path, images_dir: Path | None) -> Dataset:
    """Read a run folder's COCO file; image paths resolve against ``images_dir`` (absolute names win)."""
    from workbench.formats.coco.read import coco_to_dataset

    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: the run's dataset file is missing") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from exc
    return coco_to_dataset(obj, source=str(path), images_dir=images_dir)


def load_image_rgb_array(path: str | Path) -> np.ndarray:
    """H x W x 3 uint8; run folders hold upright copies, so no EXIF handling is needed here."""
    try:
        with Image.open(path) as im:
            # convert() of an RGB image is only a copy: skip it (the array is read-only either way)
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except (FileNotFoundError, OSError) as exc:
        raise DatasetError(f"{path}: cannot read image: {exc}") from exc


def item_to_sample(item: AnnotatedImage, image: np.ndarray, schema: TrainingSchema) -> Sample:
    """Rasterise an item's instances; crowd, ignore and unknown-class instances are left out.

    An instance without a shape (keypoints with a box only) gets its box as the mask, since Mask R-CNN
    needs a mask for every object. All masks are decoded into one N x H x W array (pycocotools'
    rasterisation, so COCO semantics) without per-instance copies.
    """
    h, w = image.shape[:2]
    rec = item.image
    if (rec.width, rec.height) != (w, h):
        raise DatasetError(
            f"{rec.file_name}: the image file is {w}x{h} but the dataset says {rec.width}x{rec.height}"
        )
    k = schema.num_keypoints
    rles, boxes, labels, keypoints = [], [], [], []
    for inst in item.instances:
        if inst.iscrowd or inst.category not in schema.class_names:
            continue
        if inst.has_shape:
            rles.append(instance_to_rle(inst, (w, h)))
            boxes.append(None)
        elif inst.bbox_xywh is not None:
            rles.append(None)
            boxes.append(inst.bbox_xywh)
        else:
            continue
        kp = np.zeros((k, 3), np.float32)
        if k and inst.keypoints is not None:
            arr = np.asarray(inst.keypoints, np.float32).reshape(-1, 3)[:k]
            kp[: len(arr)] = arr
        labels.append(schema.label_of(inst.category))
        keypoints.append(kp)
    masks = rles_to_masks(rles, (h, w))
    for i, box in enumerate(boxes):
        if box is not None:
            x, y, bw, bh = box
            x0, y0 = max(int(math.floor(x)), 0), max(int(math.floor(y)), 0)
            x1, y1 = min(int(math.ceil(x + bw)), w), min(int(math.ceil(y + bh)), h)
            masks[i, y0:y1, x0:x1] = 1
    return Sample(
        image=image,
        masks=masks,
        labels=np.asarray(labels, np.int64),
        keypoints=np.stack(keypoints) if keypoints else np.zeros((0, k, 3), np.float32),
    )


def _owned(arr: np.ndarray, dtype: np.dtype | type) -> torch.Tensor:
    """A tensor with its own memory: read-only arrays (the cache, PIL pixels) are copied, others not."""
    arr = np.asarray(arr, dtype=dtype)
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, dtype=dtype, order="C", copy=True)
    return torch.from_numpy(arr)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float32 in [0, 1] (x / 255, channels-last strides as before)."""
    src = image if image.flags.writeable else np.array(image, copy=True)
    return torch.from_numpy(src).permute(2, 0, 1).float().div_(255.0)


def sample_to_tensors(
    sample: Sample,
    *,
    with_keypoints: bool,
    boxes_xyxy: np.ndarray | None = None,
    areas: np.ndarray | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """torchvision's image and target; ``boxes_xyxy`` / ``areas`` when already known (from the cache)."""
    n = len(sample.labels)
    boxes = sample.boxes_xyxy if boxes_xyxy is None else boxes_xyxy
    areas = mask_areas(sample.masks) if areas is None else areas
    target = {
        "boxes": _owned(boxes, np.float32).reshape(-1, 4),
        "labels": _owned(sample.labels, np.int64),
        "masks": _owned(sample.masks, np.uint8),
        "area": torch.from_numpy(np.array(areas, dtype=np.float32)),
        "iscrowd": torch.zeros((n,), dtype=torch.int64),
    }
    if with_keypoints:
        target["keypoints"] = _owned(sample.keypoints, np.float32)
    return image_to_tensor(sample.image), target


DEFAULT_CACHE_BYTES = 1 << 30
"""Default budget for decoded images and masks kept between epochs, per dataset, shared by its workers."""


def default_cache_bytes() -> int:
    """1 GiB, or an eighth of the machine's memory when that is less."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return DEFAULT_CACHE_BYTES
    return int(min(DEFAULT_CACHE_BYTES, total // 8))


def _frozen(arr: np.ndarray, *, fresh: bool = False) -> np.ndarray:
    """A read-only array: ``fresh`` ones (made here, shared with nobody) in place, others as a copy."""
    if arr.flags.writeable:
        arr = arr if fresh else arr.copy()
        arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True)
class _CachedSample:
    """A rasterised, unaugmented sample kept between epochs: read-only arrays, masks bit-packed (1/8).

    Read-only so that nothing handed out can write into the cache: :func:`sample_to_tensors` copies
    read-only arrays, and :meth:`to_sample` unpacks fresh masks.
    """

    image: np.ndarray
    packed_masks: np.ndarray
    width: int
    labels: np.ndarray
    keypoints: np.ndarray
    boxes_xyxy: np.ndarray
    areas: np.ndarray

    @classmethod
    def from_sample(cls, sample: Sample) -> _CachedSample:
        return cls(
            image=_frozen(sample.image),
            packed_masks=_frozen(np.packbits(sample.masks, axis=-1), fresh=True),
            width=int(sample.masks.shape[2]),
            labels=_frozen(sample.labels),
            keypoints=_frozen(sample.keypoints),
            boxes_xyxy=_frozen(masks_to_boxes_xyxy(sample.masks), fresh=True),
            areas=_frozen(mask_areas(sample.masks), fresh=True),
        )

    @property
    def nbytes(self) -> int:
        return self.image.nbytes + self.packed_masks.nbytes + self.keypoints.nbytes + 256

    def to_sample(self) -> Sample:
        """Fresh masks, labels and keypoints (callers may write them); the image stays read-only."""
        return Sample(
            image=self.image,
            masks=np.unpackbits(self.packed_masks, axis=-1, count=self.width),
            labels=self.labels.copy(),
            keypoints=self.keypoints.copy(),
        )


class MaskRCNNDataset(torch.utils.data.Dataset):
    """Map-style dataset; ``__getitem__`` takes an index or an ``(index, seed)`` pair.

    Decoded images and rasterised masks are kept between epochs (training runs many epochs over a
    small dataset, and decoding is most of the loader's work) up to ``cache_bytes`` in all; each loader
    worker keeps its own share (``cache_bytes / num_workers``). ``cache_bytes=0`` turns it off. The
    cache never changes what an item gives: the same arrays as decoding again.
    """

    def __init__(
        self,
        items: Sequence[AnnotatedImage],
        schema: TrainingSchema,
        augmenter: Augmenter | None = None,
        *,
        seed: int = 0,
        cache_bytes: int | None = None,
        mix: MixPolicy | None = None,
    ) -> None:
        self.items = list(items)
        self.schema = schema
        self.augmenter = augmenter
        self.seed = seed
        self.mix = mix if mix is not None and mix.enabled else None
        # Shared memory: forked and spawned loader workers (persistent ones too) see set_epoch's values.
        self._epoch = multiprocessing.RawArray("i", [0, -1])  # epoch, run length (-1: the policy's)
        self.cache_bytes = default_cache_bytes() if cache_bytes is None else int(cache_bytes)
        self._flip = schema.flip_permutations()
        self._cache: dict[int, _CachedSample] = {}
        self._cache_used = 0

    def __getstate__(self) -> dict[str, Any]:
        """Workers started by spawn get an empty cache, not a pickled copy of this one.

        They share the epoch values; any other pickle (a copy) carries them as numbers.
        """
        state = self.__dict__.copy()
        state["_cache"], state["_cache_used"] = {}, 0
        if multiprocessing.context.get_spawning_popen() is None:
            state["_epoch"] = list(self._epoch)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["_epoch"], list):
            state["_epoch"] = multiprocessing.RawArray("i", state["_epoch"])
        self.__dict__.update(state)

    def set_epoch(self, epoch: int, epochs: int | None = None) -> None:
        """The epoch the next items belong to, and the run's length when it changed (a time budget).

        Mosaic and copy-paste stop for the last ``mix.close_mosaic`` epochs. Call it before iterating
        the loader: persistent workers read it from shared memory.
        """
        self._epoch[0] = int(epoch)
        if epochs is not None:
            self._epoch[1] = int(epochs)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def mixing(self) -> bool:
        """Whether mosaic or copy-paste may apply to the current epoch's items."""
        epochs = int(self._epoch[1])
        return self.mix is not None and self.mix.active(self.epoch, epochs if epochs >= 0 else None)

    def __len__(self) -> int:
        return len(self.items)

    def aspect_ratios(self) -> list[float]:
        return [item.image.width / item.image.height for item in self.items]

    def image_id(self, index: int) -> int:
        rec = self.items[index].image
        return int(rec.id) if rec.id is not None else index

    def _cache_budget(self) -> int:
        info = torch.utils.data.get_worker_info()
        return self.cache_bytes // max(info.num_workers if info is not None else 1, 1)

    def _decode(self, index: int) -> Sample:
        item = self.items[index]
        path = item.image.path or item.image.file_name
        return item_to_sample(item, load_image_rgb_array(path), self.schema)

    def _load(self, index: int) -> tuple[Sample, np.ndarray | None, np.ndarray | None]:
        """The unaugmented sample, with its boxes and areas when the cache knows them."""
        entry = self._cache.get(index) if self.cache_bytes > 0 else None
        if entry is not None:
            return entry.to_sample(), entry.boxes_xyxy, entry.areas
        sample = self._decode(index)
        if self.cache_bytes > 0:
            need = sample.image.nbytes + sample.masks.nbytes // 8 + sample.keypoints.nbytes + 256
            if self._cache_used + need <= self._cache_budget():
                entry = _CachedSample.from_sample(sample)
                self._cache[index] = entry
                self._cache_used += entry.nbytes
                return sample, entry.boxes_xyxy, entry.areas
        return sample, None, None

    def load_sample(self, index: int) -> Sample:
        """The item's image and rasterised, unaugmented targets (from the cache when it is there)."""
        return self._load(index)[0]

    def _mixed(self, sample: Sample, sample_seed: int) -> Sample | None:
        """Mosaic and/or copy-paste of ``sample`` with others drawn by its seed; None: neither applied."""
        if not self.mixing():
            return None
        min_area = self.augmenter.min_area_px if self.augmenter is not None else 1.0
        return mix_sample(
            sample, self.load_sample, len(self.items), self.mix, sample_seed, flip_permutations=self._flip, min_area_px=min_area
        )

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, sample_seed = key if isinstance(key, tuple) else (key, self.seed * 1_000_003 + key)
        aug = self.augmenter
        sample, boxes, areas = self._load(index)
        mixed = self._mixed(sample, sample_seed)
        if mixed is not None:
            sample, boxes, areas = mixed, None, None
        if aug is not None and aug.is_identity:
            # What Augmenter.apply does for an empty pipeline (drop below min area), without recounting.
            areas = mask_areas(sample.masks) if areas is None else areas
            keep = areas >= max(aug.min_area_px, 1.0)
            if not keep.all():
                sample = Sample(sample.image, sample.masks[keep], sample.labels[keep], sample.keypoints[keep])
                boxes = None if boxes is None else boxes[keep]
                areas = areas[keep]
        elif aug is not None:
            aug.reseed(sample_seed)
            sample = aug.apply(sample, self._flip)
            boxes = areas = None
        image, target = sample_to_tensors(
            sample, with_keypoints=self.schema.num_keypoints > 0, boxes_xyxy=boxes, areas=areas
        )
        target["image_id"] = torch.tensor(self.image_id(index))
        return image, target


def collate(batch: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list[torch.Tensor], list[dict]]:
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


def make_loader(
    dataset: MaskRCNNDataset,
    batch_sampler: torch.utils.data.Sampler | None,
    *,
    num_workers: int,
    pin_memory: bool,
    batch_size: int = 1,
) -> torch.utils.data.DataLoader:
    """Workers, persistent workers and pinned memory (on CUDA) keep the accelerator fed."""
    kwargs: dict[str, Any] = {
        "num_workers": num_workers,
        "collate_fn": collate,
        "pin_memory": pin_memory,
        "persistent_workers": num_workers > 0,
    }
    if num_workers > 0:
        kwargs["prefetch_factor"] = 4
    if batch_sampler is not None:
        return torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, **kwargs)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, **kwargs)
