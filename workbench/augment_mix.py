"""Mosaic and copy-paste: augmentations that mix several training images, with their instances.

Why not albumentations transforms: those see one image, while mosaic needs four and copy-paste a
second one. So the training dataset draws the extra samples and calls the pure functions here on
:class:`~workbench.augment.Sample` records; the single-image pipeline runs afterwards (its flips then
swap left/right keypoints as usual). The rules of :mod:`workbench.augment` hold here too:

* Masks are the truth: tiles are resized and cropped as masks, and boxes are derived from them
  (``Sample.boxes_xyxy``), so a box is always the tight box of what is left of its mask.
* An instance cut off by the mosaic, or covered by a pasted object, below ``min_area_px`` is dropped
  from masks, labels and keypoints at once.
* A keypoint that leaves the output, or that a pasted object covers, becomes ``v=0`` with ``x=y=0``.
* A mirrored paste swaps left/right keypoints by each label's flip permutation.

Mosaic follows Ultralytics: four images, each resized to fit the output size, meet at a random centre
(top-left, top-right, bottom-left, bottom-right of it) and the output window crops what lies beyond.
Copy-paste follows Ghiasi et al. 2021 ("Simple Copy-Paste"): a random subset of another image's
instances, optionally mirrored, is pasted on top; what lies below loses the covered pixels.
:class:`MixPolicy` says how often each applies and when they stop: the last ``close_mosaic`` epochs
see plain images again (Ultralytics' ``close_mosaic``), so training ends on images like those it is
evaluated on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.augment import Sample, drop_small_instances

FILL_VALUE = 114
"""Grey of the mosaic canvas where no tile reaches (Ultralytics' letterbox colour)."""


@dataclass(frozen=True, slots=True)
class MixPolicy:
    """How often mosaic and copy-paste apply to a training sample, and from which epoch never."""

    mosaic: float = 0.0
    copy_paste: float = 0.0
    close_mosaic: int = 0
    """The last this-many epochs of the run see neither (Ultralytics' ``close_mosaic``); 0: never."""
    epochs: int | None = None
    """The run's length in epochs, unless :meth:`active` is told a newer one (a time budget moves it)."""
    center_range: tuple[float, float] = (0.25, 0.75)
    """Where the four tiles meet, as a fraction of the output side (Ultralytics draws in 0..1)."""

    @property
    def enabled(self) -> bool:
        return self.mosaic > 0 or self.copy_paste > 0

    def active(self, epoch: int, epochs: int | None = None) -> bool:
        """Whether 0-based ``epoch`` of a run of ``epochs`` (default: :attr:`epochs`) mixes at all."""
        total = self.epochs if epochs is None else epochs
        closed = self.close_mosaic > 0 and total is not None and epoch >= total - self.close_mosaic
        return self.enabled and not closed


def fit_scale(size_hw: tuple[int, int], out_hw: tuple[int, int]) -> float:
    """The scale that fits an image of ``size_hw`` inside ``out_hw``, keeping its aspect ratio."""
    return min(out_hw[0] / size_hw[0], out_hw[1] / size_hw[1])


def _resized_image(image: np.ndarray, th: int, tw: int) -> np.ndarray:
    h, w = image.shape[:2]
    if (th, tw) == (h, w):
        return image
    import cv2  # slow to import; albumentations needs it anyway

    interp = cv2.INTER_AREA if th < h else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (tw, th), interpolation=interp)


@dataclass(frozen=True, slots=True)
class _Tile:
    """A sample resized to ``th x tw`` and placed with its top-left corner at (ox, oy) of the output."""

    sample: Sample
    th: int
    tw: int
    ox: int
    oy: int

    def window(self, out_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """The part of the output it covers: y0, y1, x0, x1 (empty when y0 >= y1 or x0 >= x1)."""
        return (max(self.oy, 0), min(self.oy + self.th, out_hw[0]), max(self.ox, 0), min(self.ox + self.tw, out_hw[1]))

    def draw(self, canvas: np.ndarray, masks_out: np.ndarray, keypoints_out: np.ndarray) -> None:
        """Write its pixels, its masks (one row per instance) and its keypoints into the output arrays.

        Masks are resampled by nearest pixel centre (a source pixel ``i`` of ``h`` covers output rows
        whose centres fall in ``[i, i+1) * th / h``), keypoints by the same continuous map.
        """
        out_hw = canvas.shape[:2]
        y0, y1, x0, x1 = self.window(out_hw)
        s = self.sample
        h, w = s.image.shape[:2]
        if y0 < y1 and x0 < x1:
            canvas[y0:y1, x0:x1] = _resized_image(s.image, self.th, self.tw)[y0 - self.oy : y1 - self.oy, x0 - self.ox : x1 - self.ox]
            if len(s.labels):
                if (self.th, self.tw) == (h, w):
                    masks_out[:, y0:y1, x0:x1] = s.masks[:, y0 - self.oy : y1 - self.oy, x0 - self.ox : x1 - self.ox]
                else:
                    rows = np.minimum(((np.arange(y0, y1) - self.oy + 0.5) * h / self.th).astype(np.int64), h - 1)
                    cols = np.minimum(((np.arange(x0, x1) - self.ox + 0.5) * w / self.tw).astype(np.int64), w - 1)
                    masks_out[:, y0:y1, x0:x1] = s.masks[:, rows[:, None], cols[None, :]]
        if keypoints_out.shape[1]:
            kp = s.keypoints.astype(np.float32, copy=True)
            kp[..., 0] = kp[..., 0] * (self.tw / w) + self.ox
            kp[..., 1] = kp[..., 1] * (self.th / h) + self.oy
            inside = (kp[..., 0] >= x0) & (kp[..., 0] < x1) & (kp[..., 1] >= y0) & (kp[..., 1] < y1)
            kp[~(inside & (kp[..., 2] > 0))] = 0.0
            keypoints_out[:] = kp


def _tile(sample: Sample, scale: float, ox: int, oy: int) -> _Tile:
    h, w = sample.image.shape[:2]
    return _Tile(sample, max(int(round(h * scale)), 1), max(int(round(w * scale)), 1), ox, oy)


def _render(tiles: Sequence[_Tile], out_hw: tuple[int, int], num_keypoints: int) -> Sample:
    """All tiles drawn onto one canvas; instances in tile order (they do not overlap in a mosaic)."""
    n = sum(len(t.sample.labels) for t in tiles)
    canvas = np.full((*out_hw, 3), FILL_VALUE, np.uint8)
    masks = np.zeros((n, *out_hw), np.uint8)
    keypoints = np.zeros((n, num_keypoints, 3), np.float32)
    start = 0
    for t in tiles:
        stop = start + len(t.sample.labels)
        t.draw(canvas, masks[start:stop], keypoints[start:stop])
        start = stop
    labels = np.concatenate([t.sample.labels for t in tiles]).astype(np.int64) if tiles else np.zeros((0,), np.int64)
    return Sample(image=canvas, masks=masks, labels=labels, keypoints=keypoints)


def _num_keypoints(samples: Sequence[Sample]) -> int:
    ks = {s.keypoints.shape[1] if s.keypoints.ndim == 3 else 0 for s in samples}
    if len(ks) != 1:
        raise ValueError(f"samples to mix have different keypoint counts {sorted(ks)}")
    return ks.pop()


def mosaic(
    samples: Sequence[Sample],
    out_size: tuple[int, int],
    rng: np.random.Generator,
    *,
    center_range: tuple[float, float] = (0.25, 0.75),
    min_area_px: float = 1.0,
) -> Sample:
    """Four samples around a random centre in an ``out_size`` (h, w) image, as Ultralytics' mosaic.

    Each sample is resized to fit ``out_size``; the first ends at the centre from the top left, the
    second from the top right, the third from the bottom left, the fourth from the bottom right.
    """
    if len(samples) != 4:
        raise ValueError(f"a mosaic takes 4 samples, got {len(samples)}")
    out_h, out_w = int(out_size[0]), int(out_size[1])
    lo, hi = center_range
    cx = int(rng.uniform(lo, hi) * out_w)
    cy = int(rng.uniform(lo, hi) * out_h)
    tiles = []
    for i, s in enumerate(samples):
        t = _tile(s, fit_scale(s.image.shape[:2], (out_h, out_w)), 0, 0)
        ox = cx - t.tw if i in (0, 2) else cx
        oy = cy - t.th if i in (0, 1) else cy
        tiles.append(_Tile(s, t.th, t.tw, ox, oy))
    out = _render(tiles, (out_h, out_w), _num_keypoints(samples))
    return drop_small_instances(out, min_area_px)


def mirror(sample: Sample, flip_permutations: Mapping[int, Sequence[int]] | None = None) -> Sample:
    """The sample flipped left to right, left/right keypoints swapped by each label's permutation."""
    w = sample.image.shape[1]
    kp = sample.keypoints.astype(np.float32, copy=True)
    if kp.ndim == 3 and kp.shape[1]:
        visible = kp[..., 2] > 0
        kp[..., 0] = np.where(visible, w - kp[..., 0], 0.0)
        for i, label in enumerate(sample.labels.tolist()):
            perm = (flip_permutations or {}).get(int(label))
            if perm is not None:
                kp[i] = kp[i][list(perm)]
    return Sample(
        image=np.ascontiguousarray(sample.image[:, ::-1]),
        masks=np.ascontiguousarray(sample.masks[:, :, ::-1]),
        labels=sample.labels.copy(),
        keypoints=kp,
    )


def copy_paste(
    dst: Sample,
    src: Sample,
    rng: np.random.Generator,
    *,
    flip_p: float = 0.5,
    flip_permutations: Mapping[int, Sequence[int]] | None = None,
    min_area_px: float = 1.0,
) -> Sample:
    """A random non-empty subset of ``src``'s instances pasted onto ``dst`` (Simple Copy-Paste).

    ``src`` is mirrored with probability ``flip_p``, shrunk to fit ``dst`` when larger, and placed at
    a random offset. The pasted pixels replace ``dst``'s: masks below lose them (and disappear below
    ``min_area_px``), keypoints below become ``v=0``. Pasted instances come after ``dst``'s.
    """
    k = _num_keypoints([dst, src])
    n_src = len(src.labels)
    if n_src == 0:
        return drop_small_instances(dst, min_area_px)
    if rng.random() < flip_p:
        src = mirror(src, flip_permutations)
    chosen = np.sort(rng.choice(n_src, size=int(rng.integers(1, n_src + 1)), replace=False))
    src = Sample(src.image, src.masks[chosen], src.labels[chosen], src.keypoints[chosen])
    out_hw = dst.image.shape[:2]
    t = _tile(src, min(1.0, fit_scale(src.image.shape[:2], out_hw)), 0, 0)
    ox = int(rng.integers(0, out_hw[1] - t.tw + 1))
    oy = int(rng.integers(0, out_hw[0] - t.th + 1))
    pasted = _render([_Tile(src, t.th, t.tw, ox, oy)], out_hw, k)
    cover = pasted.masks.any(axis=0) if len(pasted.labels) else np.zeros(out_hw, np.bool_)
    image = np.array(dst.image, copy=True)
    image[cover] = pasted.image[cover]
    below = dst.masks * ~cover[None]  # uint8 0/1 kept
    kp_below = dst.keypoints.astype(np.float32, copy=True)
    if k and len(dst.labels):
        xi = np.clip(kp_below[..., 0].astype(np.int64), 0, out_hw[1] - 1)
        yi = np.clip(kp_below[..., 1].astype(np.int64), 0, out_hw[0] - 1)
        kp_below[cover[yi, xi] & (kp_below[..., 2] > 0)] = 0.0
    out = Sample(
        image=image,
        masks=np.concatenate([below.astype(np.uint8), pasted.masks]),
        labels=np.concatenate([dst.labels, pasted.labels]).astype(np.int64),
        keypoints=np.concatenate([kp_below, pasted.keypoints]),
    )
    return drop_small_instances(out, min_area_px)


def mix_sample(
    sample: Sample,
    load: Callable[[int], Sample],
    count: int,
    policy: MixPolicy,
    seed: int,
    *,
    flip_permutations: Mapping[int, Sequence[int]] | None = None,
    min_area_px: float = 1.0,
) -> Sample | None:
    """What the dataset does to one sample: a mosaic with 3 others (probability ``policy.mosaic``),
    then a paste from another (``policy.copy_paste``), those drawn by ``load`` from ``count`` samples.

    All draws come from ``seed`` (the sample's), on a stream apart from the single-image pipeline's;
    None when neither applied. The epoch check (``policy.active``) is the caller's.
    """
    rng = np.random.default_rng([int(seed) % (2**32), 0x6D1F])
    mixed = False
    if policy.mosaic > 0 and rng.random() < policy.mosaic:
        others = [load(int(j)) for j in rng.integers(0, count, size=3)]
        sample = mosaic([sample, *others], sample.image.shape[:2], rng, center_range=policy.center_range, min_area_px=min_area_px)
        mixed = True
    if policy.copy_paste > 0 and rng.random() < policy.copy_paste:
        src = load(int(rng.integers(0, count)))
        sample = copy_paste(sample, src, rng, flip_permutations=flip_permutations, min_area_px=min_area_px)
        mixed = True
    return sample if mixed else None
