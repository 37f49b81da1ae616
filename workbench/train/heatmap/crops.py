"""The crop a top-down model sees: one affine map from natural image pixels to model-input pixels.

Coordinates are COCO's on both sides ((0, 0) is the top-left corner of the top-left pixel), so a
keypoint goes into the crop and back through the same 2 x 3 matrix and its inverse, exactly (up to
float rounding). The window is the box, padded (``padding``, 1.25 as in SimpleBaseline / HRNet) and
widened to the model's aspect ratio so nothing is squashed; augmentation scales and rotates the
window about its centre and may mirror it, all folded into the one matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from workbench.domain import ValidationError

DEFAULT_PADDING = 1.25


@dataclass(frozen=True)
class CropTransform:
    """``matrix`` maps image (x, y) to crop (x, y); ``size_wh`` is the crop's size in pixels."""

    matrix: np.ndarray
    size_wh: tuple[int, int]
    flipped: bool = False

    @classmethod
    def from_box(
        cls,
        box_xywh: Sequence[float],
        size_wh: tuple[int, int],
        *,
        padding: float = DEFAULT_PADDING,
        scale: float = 1.0,
        rotation_deg: float = 0.0,
        flip: bool = False,
    ) -> CropTransform:
        """The window around ``box_xywh`` (padded, at the crop's aspect ratio, times ``scale``),
        rotated by ``rotation_deg`` (counter-clockwise as seen) and mirrored when ``flip``."""
        x, y, w, h = (float(v) for v in box_xywh)
        out_w, out_h = int(size_wh[0]), int(size_wh[1])
        if out_w < 1 or out_h < 1:
            raise ValidationError(f"a crop needs a positive size, got {size_wh}")
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
            raise ValidationError(f"a crop needs a finite box with w, h >= 0, got {list(box_xywh)}")
        cx, cy = x + w / 2, y + h / 2
        win_w, win_h = max(w * padding, 1.0), max(h * padding, 1.0)
        aspect = out_w / out_h
        if win_w < aspect * win_h:
            win_w = aspect * win_h
        else:
            win_h = win_w / aspect
        s = out_w / (win_w * scale)
        t = math.radians(rotation_deg)
        cos, sin = math.cos(t) * s, math.sin(t) * s
        # crop = s * R(-t) (p - c) + centre: y points down, so -t turns the content counter-clockwise
        m = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
        m[:, 2] = np.array([out_w / 2, out_h / 2]) - m[:, :2] @ np.array([cx, cy])
        if flip:
            m = np.array([[-1.0, 0.0, out_w], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0.0, 0.0, 1.0]])
        return cls(m, (out_w, out_h), bool(flip))

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(math.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def inverse(self) -> np.ndarray:
        """The 2 x 3 matrix from crop (x, y) back to image (x, y)."""
        full = np.vstack([self.matrix, [0.0, 0.0, 1.0]])
        return np.linalg.inv(full)[:2]

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        """N x 2 image points -> N x 2 crop points (float64)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return xy @ self.matrix[:, :2].T + self.matrix[:, 2]

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """N x 2 crop points -> N x 2 image points (float64)."""
        inv = self.inverse
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return xy @ inv[:, :2].T + inv[:, 2]

    def warp(self, image: np.ndarray) -> np.ndarray:
        """The crop of an H x W x C image (bilinear, black outside the image).

        cv2 maps pixel *indices* (pixel centres at integers); COCO coordinates put centres at +0.5,
        so the matrix is shifted by half a pixel on both sides.
        """
        m = self.matrix.copy()
        m[:, 2] = m[:, :2] @ np.array([0.5, 0.5]) + m[:, 2] - 0.5
        return cv2.warpAffine(
            np.ascontiguousarray(image), m, self.size_wh, flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )


def keypoints_to_crop(
    transform: CropTransform, keypoints: np.ndarray, flip_permutation: Sequence[int] | None = None
) -> np.ndarray:
    """K x 3 (x, y, v) in the image -> K x 3 in the crop; a flipped crop also swaps left and right
    (``flip_permutation[j]`` is the keypoint whose point lands in slot j), so "left" stays left."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    out = kp.copy()
    out[:, :2] = transform.to_crop(kp[:, :2])
    if transform.flipped and flip_permutation is not None:
        out = out[list(flip_permutation)]
    return out
