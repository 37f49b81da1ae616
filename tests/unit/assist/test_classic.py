"""The weight-free tools on synthetic scenes with known masks (textured, noisy backgrounds).

Thresholds (IoU with the truth, per object): GrabCut from a box alone >= 0.85 on solid shapes, >= 0.75
on rings (it fills the hole); magic wand from one click >= 0.85 on ellipses,
rectangles and rings (stars' thin tips are smoothed away: >= 0.6); scissors with 16 clicks on the
outline >= 0.85 on solid shapes. EXIF-rotated copies of a scene give the same masks in the same
natural pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.assist import classic
from workbench.assist.pixels import load_rgb
from workbench.assist.prompts import Prompt
from workbench.assist.shapes import mask_iou, mask_to_shape, shape_to_mask
from workbench.assist.synthetic import box_of, inner_point, make_scene, outline_points
from workbench.domain import ValidationError

SCENES = [make_scene(seed, noise=noise) for seed, noise in ((0, 6.0), (1, 12.0), (2, 8.0), (3, 16.0))]
OBJECTS = [(s, m, k) for s in SCENES for m, k in zip(s.masks, s.kinds, strict=True)]


def _ids(objs: list) -> list[str]:
    return [f"{i}-{k}" for i, (_s, _m, k) in enumerate(objs)]


@pytest.mark.parametrize(("scene", "truth", "kind"), OBJECTS, ids=_ids(OBJECTS))
def test_grabcut_from_a_box(scene, truth, kind) -> None:  # noqa: ANN001
    mask = classic.grabcut(scene.image, Prompt(box_xywh=box_of(truth)))
    # GrabCut fills a ring's hole (its smoothness term closes it; a negative click does not reopen it)
    assert mask_iou(mask, truth) >= (0.75 if kind == "ring" else 0.85)


@pytest.mark.parametrize(("scene", "truth", "kind"), OBJECTS, ids=_ids(OBJECTS))
def test_magic_wand_from_one_click(scene, truth, kind) -> None:  # noqa: ANN001
    prompt = Prompt(box_xywh=box_of(truth, 6), points=(inner_point(truth) + (True,),))
    mask = classic.magic_wand(scene.image, prompt, tolerance=classic.DEFAULT_WAND_TOLERANCE)
    assert mask_iou(mask, truth) >= (0.6 if kind == "star" else 0.85)
    # the region limits the fill: a box cut through the object keeps the fill inside it
    x, y, w, h = box_of(truth, 0)
    half = classic.magic_wand(scene.image, Prompt(box_xywh=(x, y, w, h / 2), points=(inner_point(truth[: int(y + h / 2)]) + (True,),)))
    assert not half[int(np.ceil(y + h / 2)) :].any()


@pytest.mark.parametrize(("scene", "truth", "kind"), [o for o in OBJECTS if o[2] != "ring"])
def test_scissors_along_the_outline(scene, truth, kind) -> None:  # noqa: ANN001
    clicks = tuple((x, y, True) for x, y in outline_points(truth, 16))
    mask = classic.scissors(scene.image, Prompt(points=clicks))
    assert mask_iou(mask, truth) >= 0.85


def test_wand_tolerance_and_negative_click() -> None:
    scene = SCENES[0]
    truth = scene.masks[0]
    click = inner_point(truth) + (True,)
    tight = classic.magic_wand(scene.image, Prompt(points=(click,)), tolerance=2)
    loose = classic.magic_wand(scene.image, Prompt(points=(click,)), tolerance=classic.DEFAULT_WAND_TOLERANCE)
    assert tight.sum() < loose.sum()
    neg = inner_point(np.ones_like(truth) - truth)
    with_neg = classic.magic_wand(scene.image, Prompt(points=(click, neg + (False,))), tolerance=255)
    everything = classic.magic_wand(scene.image, Prompt(points=(click,)), tolerance=255)
    assert everything.all() and not with_neg.any()  # 255 fills all; the negative click's fill removes it


def test_bad_prompts_are_refused() -> None:
    img = SCENES[0].image
    with pytest.raises(ValidationError, match="needs a box"):
        classic.grabcut(img, Prompt(points=((5, 5, True),)))
    with pytest.raises(ValidationError, match="at least 3 clicks"):
        classic.scissors(img, Prompt(points=((5, 5, True), (9, 9, True))))
    with pytest.raises(ValidationError, match="needs a click"):
        classic.magic_wand(img, Prompt(box_xywh=(1, 1, 9, 9)))
    with pytest.raises(ValidationError, match="outside the 256x192 image"):
        Prompt(points=((300, 5, True),)).checked((256, 192))
    with pytest.raises(ValidationError, match="no area"):
        Prompt(box_xywh=(3, 3, 0, 5)).checked((256, 192))
    assert Prompt(box_xywh=(-10, -10, 50, 50)).checked((256, 192)).box_xywh == (0.0, 0.0, 40.0, 40.0)


# ------------------------------------------------------------------------------------ EXIF orientation

_RAW_FOR = {  # stored pixels for an upright array, so that a viewer applying the tag shows it upright
    3: lambda a: np.rot90(a, 2),
    6: lambda a: np.rot90(a, 1),
    8: lambda a: np.rot90(a, -1),
}


@pytest.mark.parametrize("orientation", sorted(_RAW_FOR))
def test_exif_rotated_copies_line_up_in_natural_pixels(tmp_path: Path, orientation: int) -> None:
    scene = SCENES[1]
    raw = np.ascontiguousarray(_RAW_FOR[orientation](scene.image))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rot{orientation}.png"
    Image.fromarray(raw).save(path, exif=exif.tobytes())
    upright = load_rgb(path)
    assert upright.shape == scene.image.shape
    assert np.array_equal(upright, scene.image)
    truth = scene.masks[0]
    shape = mask_to_shape(classic.grabcut(upright, Prompt(box_xywh=box_of(truth))), tolerance=0.5)
    assert shape.size_wh == (scene.image.shape[1], scene.image.shape[0])
    assert mask_iou(shape_to_mask(shape), truth) >= 0.85
