"""Semantic targets: the stored annotations as label maps, through the export's label-map code.

Per image: the C x H x W binary maps (:func:`workbench.formats.labelmaps.binary_label_maps`,
classes may overlap) and the index map (:func:`~workbench.formats.labelmaps.semantic_index_map`,
0 background, class c -> c + 1, 255 ignore: LabelMe's ``__ignore__``), so what trains is what
``workbench export labelmaps`` writes. Images are resized to ``size`` x ``size`` (bilinear; maps
nearest-neighbour) once and kept between epochs; the project's augmentation pipeline then moves
image and maps together. Validation items also carry the index map at the image's own size, since
metrics are counted on the original pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from workbench.augment import Augmenter
from workbench.domain import AnnotatedImage, Category
from workbench.formats.labelmaps import IGNORE_INDEX, binary_label_maps, semantic_index_map
from workbench.train.dataset import DatasetError, default_cache_bytes, image_to_tensor, load_image_rgb_array


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interp)


def resize_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """M x H x W uint8 -> M x size x size, nearest-neighbour (values stay class ids)."""
    if maps.shape[1:] == (size, size):
        return maps
    out = np.empty((len(maps), size, size), np.uint8)
    for i, m in enumerate(maps):
        out[i] = cv2.resize(np.ascontiguousarray(m), (size, size), interpolation=cv2.INTER_NEAREST)
    return out


class SemanticDataset(torch.utils.data.Dataset):
    """Items -> (3 x S x S float image, target): ``index`` S x S int64 (255 ignore), ``binary``
    C x S x S uint8, ``image_id``; with ``full_index`` also ``full_index`` H x W at the image's size.
    ``__getitem__`` takes an index or the batch sampler's ``(index, seed)`` pair."""

    def __init__(
        self,
        items: Sequence[AnnotatedImage],
        categories: Sequence[Category],
        size: int,
        augmenter: Augmenter | None = None,
        *,
        seed: int = 0,
        full_index: bool = False,
        cache_bytes: int | None = None,
    ) -> None:
        self.items = list(items)
        self.categories = list(categories)
        self.size = int(size)
        self.augmenter = augmenter if augmenter is not None and not augmenter.is_identity else None
        self.seed = seed
        self.full_index = full_index
        self.cache_bytes = default_cache_bytes() if cache_bytes is None else int(cache_bytes)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        self._cache_used = 0

    def __len__(self) -> int:
        return len(self.items)

    def aspect_ratios(self) -> list[float]:
        return [1.0] * len(self.items)  # every item is resized to a square

    def set_epoch(self, epoch: int, epochs: int | None = None) -> None:
        """Nothing changes by epoch here (no mosaic); the loop calls it for every task."""

    def image_id(self, index: int) -> int:
        rec = self.items[index].image
        return int(rec.id) if rec.id is not None else index

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        item = self.items[index]
        image = load_image_rgb_array(item.image.path or item.image.file_name)
        h, w = image.shape[:2]
        if (item.image.width, item.image.height) != (w, h):
            raise DatasetError(
                f"{item.image.file_name}: the image file is {w}x{h} but the dataset says "
                f"{item.image.width}x{item.image.height}"
            )
        index_map = semantic_index_map(item, self.categories)
        maps = np.concatenate([binary_label_maps(item, self.categories), index_map[None]], axis=0)
        return resize_image(image, self.size), resize_maps(maps, self.size), index_map if self.full_index else None

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        entry = self._decode(index)
        need = sum(a.nbytes for a in entry if a is not None)
        info = torch.utils.data.get_worker_info()
        budget = self.cache_bytes // max(info.num_workers if info is not None else 1, 1)
        if self._cache_used + need <= budget:
            for a in entry:
                if a is not None:
                    a.setflags(write=False)
            self._cache[index] = entry
            self._cache_used += need
        return entry

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, sample_seed = key if isinstance(key, tuple) else (key, self.seed * 1_000_003 + key)
        image, maps, full = self._load(index)
        if self.augmenter is not None:
            self.augmenter.reseed(sample_seed)
            image, maps = self.augmenter.apply_maps(image, maps)
        maps = np.array(maps, dtype=np.uint8, copy=True)
        target: dict[str, Any] = {
            "index": torch.from_numpy(maps[-1]).long(),
            "binary": torch.from_numpy(maps[:-1]),
            "image_id": torch.tensor(self.image_id(index)),
        }
        if full is not None:
            target["full_index"] = torch.from_numpy(np.array(full, copy=True)).long()
        return image_to_tensor(np.ascontiguousarray(image)), target


__all__ = ["IGNORE_INDEX", "SemanticDataset", "resize_image", "resize_maps"]
