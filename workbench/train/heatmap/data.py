"""The top-down dataset: one item per labelled instance of a keypoint class, cropped around its box.

Each item is the crop (3 x H x W float in [0, 1]) and its target dict: ``heatmaps`` C x h x w (the
instance's class's channels hold its Gaussians, every other channel 0), ``weights`` C (1 for the
class's labelled keypoints inside the crop), ``index`` (the item, so validation finds its crop
transform again) and ``image_id``. Training crops are augmented by scale, rotation and a mirror
that swaps left and right keypoints (:mod:`.layout`); randomness comes from the per-sample seed the
trainer's batch sampler hands out, so resuming mid-epoch replays the same crops.

Crowd and ignore instances, instances of classes without a schema, and instances without a
labelled keypoint are left out (no target to learn from; OKS ignores them too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workbench.domain import AnnotatedImage
from workbench.geometry.masks import instance_bbox_area
from workbench.train.heatmap.config import HeatmapConfig
from workbench.train.heatmap.crops import CropTransform, keypoints_to_crop
from workbench.train.heatmap.layout import ChannelLayout
from workbench.train.heatmap.targets import gaussian_targets

ROTATE_SHARE = 0.6
"""SimpleBaseline rotates 60 % of the training crops."""
IMAGE_CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class CropItem:
    """One instance to crop: where it is, its class, its box and its K x 3 keypoints."""

    item_index: int
    image_id: int
    category: str
    box_xywh: tuple[float, float, float, float]
    keypoints: np.ndarray


def crop_items(items: Sequence[AnnotatedImage], layout: ChannelLayout) -> list[CropItem]:
    """The instances a heatmap model trains and validates on, in image order."""
    out = []
    names = set(layout.class_names)
    for i, item in enumerate(items):
        size = (item.image.width, item.image.height)
        for inst in item.instances:
            if inst.iscrowd or inst.category not in names or inst.keypoints is None or inst.num_keypoints == 0:
                continue
            k = layout.schema(inst.category).num_keypoints
            kp = np.zeros((k, 3), np.float64)
            arr = np.asarray(inst.keypoints, np.float64).reshape(-1, 3)[:k]
            kp[: len(arr)] = arr
            box = inst.bbox_xywh if inst.bbox_xywh is not None else instance_bbox_area(inst, size)[0]
            image_id = int(item.image.id) if item.image.id is not None else i
            out.append(CropItem(i, image_id, inst.category, tuple(float(v) for v in box), kp))  # type: ignore[arg-type]
    return out


def augment_params(rng: np.random.Generator, cfg: HeatmapConfig) -> tuple[float, float, bool]:
    """(scale, rotation in degrees, flip) for one training crop (SimpleBaseline's recipe)."""
    sf, rf = cfg.scale_jitter, cfg.rotation_deg
    scale = float(np.clip(rng.normal() * sf + 1, 1 - sf, 1 + sf)) if sf > 0 else 1.0
    rot = float(np.clip(rng.normal() * rf, -2 * rf, 2 * rf)) if rf > 0 and rng.random() < ROTATE_SHARE else 0.0
    flip = bool(rng.random() < cfg.flip_prob)
    return scale, rot, flip


class HeatmapDataset(torch.utils.data.Dataset):
    """Map-style; ``__getitem__`` takes an index or an ``(index, seed)`` pair (the trainer's sampler)."""

    def __init__(
        self,
        items: Sequence[AnnotatedImage],
        layout: ChannelLayout,
        cfg: HeatmapConfig,
        stride: int,
        *,
        train: bool,
        seed: int = 0,
        load_image: Any = None,
    ) -> None:
        from workbench.train.dataset import load_image_rgb_array

        self.items = list(items)
        self.layout = layout
        self.cfg = cfg
        self.stride = int(stride)
        self.train = train
        self.seed = seed
        self.crops = crop_items(self.items, layout)
        self._load_image = load_image or (lambda it: load_image_rgb_array(it.image.path or it.image.file_name))
        self._cache: dict[int, np.ndarray] = {}
        self._cache_used = 0
        self._flip = {name: layout.class_flip_permutation(name) for name in layout.class_names}

    def __len__(self) -> int:
        return len(self.crops)

    def set_epoch(self, epoch: int, epochs: int | None = None) -> None:
        """The trainer's call at each epoch; crops depend on the per-sample seed only."""

    def aspect_ratios(self) -> list[float]:
        return [1.0] * len(self.crops)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"], state["_cache_used"] = {}, 0  # loader workers start with their own cache
        return state

    def image(self, item_index: int) -> np.ndarray:
        arr = self._cache.get(item_index)
        if arr is None:
            arr = np.asarray(self._load_image(self.items[item_index]))
            if self._cache_used + arr.nbytes <= IMAGE_CACHE_BYTES:
                self._cache[item_index] = arr
                self._cache_used += arr.nbytes
        return arr

    def transform(self, index: int, *, scale: float = 1.0, rotation: float = 0.0, flip: bool = False) -> CropTransform:
        c = self.crops[index]
        return CropTransform.from_box(
            c.box_xywh, self.cfg.input_size, padding=self.cfg.padding, scale=scale, rotation_deg=rotation, flip=flip
        )

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, sample_seed = key if isinstance(key, tuple) else (key, self.seed * 1_000_003 + key)
        c = self.crops[index]
        if self.train:
            scale, rot, flip = augment_params(np.random.default_rng(sample_seed), self.cfg)
        else:
            scale, rot, flip = 1.0, 0.0, False
        t = self.transform(index, scale=scale, rotation=rot, flip=flip)
        crop = t.warp(self.image(c.item_index))
        kp = keypoints_to_crop(t, c.keypoints, self._flip[c.category])
        w, h = self.cfg.input_size
        hw = (w // self.stride, h // self.stride)
        hm, wt = gaussian_targets(kp, hw, self.stride, self.cfg.sigma)
        heatmaps = np.zeros((self.layout.num_channels, hw[1], hw[0]), np.float32)
        weights = np.zeros(self.layout.num_channels, np.float32)
        sl = self.layout.channels(c.category)
        heatmaps[sl], weights[sl] = hm, wt
        image = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div_(255.0)
        target = {
            "heatmaps": torch.from_numpy(heatmaps),
            "weights": torch.from_numpy(weights),
            "index": torch.tensor(index),
            "image_id": torch.tensor(c.image_id),
        }
        return image, target
