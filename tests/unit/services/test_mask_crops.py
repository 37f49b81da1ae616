"""The annotator's mask crops both ways: every pixel survives, and bad crops are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.domain import ValidationError
from workbench.geometry import mask_to_rle, rle_to_mask
from workbench.services.mask_crops import crop_to_rle, rle_to_crop


def _ring(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(xx - w * 0.4, yy - h * 0.5)
    return ((d < min(h, w) * 0.3) & (d > min(h, w) * 0.1)).astype(np.uint8)


def _decode_crop(crop: dict) -> np.ndarray:
    """An independent reading of the crop format: runs over the crop, column-major, zeros first."""
    h_img, w_img = crop["size"]
    flat = np.zeros(crop["w"] * crop["h"], dtype=np.uint8)
    pos, value = 0, 0
    for run in crop["counts"]:
        flat[pos : pos + run] = value
        pos, value = pos + run, 1 - value
    out = np.zeros((h_img, w_img), dtype=np.uint8)
    out[crop["y"] : crop["y"] + crop["h"], crop["x"] : crop["x"] + crop["w"]] = flat.reshape(
        crop["w"], crop["h"]
    ).T
    return out


@pytest.mark.parametrize(
    "mask",
    [
        _ring(60, 80),  # a hole
        np.pad(np.ones((5, 7), np.uint8), ((0, 55), (73, 0))),  # in the top right corner
        np.ones((30, 40), np.uint8),  # the whole image: runs go on from each column's bottom to the next top
        np.random.default_rng(3).integers(0, 2, (37, 41), dtype=np.uint8),
    ],
    ids=["ring", "corner", "full", "noise"],
)
def test_crop_round_trip_keeps_every_pixel(mask: np.ndarray) -> None:
    rle = mask_to_rle(mask)
    crop = rle_to_crop(rle)
    assert np.array_equal(_decode_crop(crop), mask)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert (crop["x"], crop["y"], crop["w"], crop["h"]) == (
        cols[0],
        rows[0],
        cols[-1] - cols[0] + 1,
        rows[-1] - rows[0] + 1,
    )
    back = crop_to_rle(crop)
    assert back is not None
    assert np.array_equal(rle_to_mask(back), mask)
    assert back.counts == rle.counts  # canonical: the same string pycocotools writes for the mask


def test_a_crop_wider_than_its_pixels_is_the_same_mask() -> None:
    mask = _ring(50, 50)
    # the browser may send an untrimmed crop: zeros around the shape
    crop = {"size": [50, 50], "x": 2, "y": 3, "w": 45, "h": 44}
    sub = mask[3:47, 2:47]
    flat = sub.ravel(order="F")
    runs, value, n = [], 0, 0
    for v in flat:
        if v != value:
            runs.append(n)
            value, n = v, 0
        n += 1
    runs.append(n)
    back = crop_to_rle({**crop, "counts": runs})
    assert back is not None and np.array_equal(rle_to_mask(back), mask)


def test_a_crop_with_no_pixel_is_none() -> None:
    assert crop_to_rle({"size": [10, 10], "x": 0, "y": 0, "w": 0, "h": 0, "counts": []}) is None
    assert crop_to_rle({"size": [10, 10], "x": 1, "y": 1, "w": 3, "h": 2, "counts": [6]}) is None
    empty = rle_to_crop(mask_to_rle(np.zeros((4, 5), np.uint8)))
    assert empty == {"size": [4, 5], "x": 0, "y": 0, "w": 0, "h": 0, "counts": []}


@pytest.mark.parametrize(
    ("crop", "words"),
    [
        ({"size": [10, 10], "x": 8, "y": 0, "w": 3, "h": 1, "counts": [0, 3]}, "leaves the 10x10 image"),
        ({"size": [10, 10], "x": 0, "y": 0, "w": 3, "h": 1, "counts": [1, 1]}, "cover 2 pixels"),
        ({"size": [10, 10], "x": 0, "y": 0, "w": 2, "h": 1, "counts": [1, -1, 2]}, "non-negative"),
        ({"size": [10], "x": 0, "y": 0, "w": 1, "h": 1, "counts": [1]}, "'size'"),
        ({"size": [10, 10], "x": -1, "y": 0, "w": 1, "h": 1, "counts": [1]}, "'x'"),
        ({"size": [10, 10], "x": 0, "y": 0, "w": 1, "h": 1, "counts": "PP"}, "'counts'"),
        ([1, 2], "must be an object"),
    ],
)
def test_bad_crops_are_refused_in_one_line(crop: object, words: str) -> None:
    with pytest.raises(ValidationError) as exc:
        crop_to_rle(crop, where="mask 7")
    assert words in str(exc.value) and str(exc.value).startswith("mask 7: ")
    assert "\n" not in str(exc.value)


def test_random_masks_round_trip_canonically() -> None:
    """Small random masks hit every run layout: runs across columns, full columns, single pixels."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        rle = mask_to_rle(mask)
        crop = rle_to_crop(rle)
        assert np.array_equal(_decode_crop(crop), mask)
        back = crop_to_rle(crop)
        if mask.any():
            assert back is not None and back.counts == rle.counts
        else:
            assert back is None and crop["w"] == 0


def test_untrimmed_crops_anywhere_with_empty_runs_are_the_same_mask() -> None:
    """What the browser may send: a crop with zeros around the shape, anywhere in a larger image, its
    runs split by zero-length ones; the stored Rle is the one pycocotools writes for the pixels."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        h_img, w_img = (int(v) for v in rng.integers(1, 15, 2))
        h, w = int(rng.integers(1, h_img + 1)), int(rng.integers(1, w_img + 1))
        y, x = int(rng.integers(0, h_img - h + 1)), int(rng.integers(0, w_img - w + 1))
        sub = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        runs, value, n = [], 0, 0
        for v in sub.ravel(order="F"):
            if v != value:
                runs.append(n)
                value, n = v, 0
            n += 1
        runs.append(n)
        for _split in range(int(rng.integers(0, 3))):  # a run cut in two by an empty run between
            k = int(rng.integers(0, len(runs)))
            cut = int(rng.integers(0, runs[k] + 1))
            runs[k : k + 1] = [cut, 0, runs[k] - cut]
        mask = np.zeros((h_img, w_img), np.uint8)
        mask[y : y + h, x : x + w] = sub
        back = crop_to_rle({"size": [h_img, w_img], "x": x, "y": y, "w": w, "h": h, "counts": runs})
        if mask.any():
            assert back is not None and back.counts == mask_to_rle(mask).counts
        else:
            assert back is None
