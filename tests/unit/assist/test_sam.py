"""SAM plumbing with the real segment-anything classes and random weights (no download): the
embedding cache (once per image, reused per click, another model another entry), prompt coordinates
on resized and EXIF-rotated images, the mask -> shape path, and the missing-weights message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("segment_anything")

from workbench.assist import sam  # noqa: E402
from workbench.assist.pixels import load_rgb  # noqa: E402
from workbench.assist.prompts import Prompt  # noqa: E402
from workbench.assist.shapes import mask_to_shape  # noqa: E402
from workbench.assist.synthetic import make_scene  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model():  # noqa: ANN201
    return sam.build_model(sam.TINY, None)


def test_embedding_computed_once_per_image_and_model(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    scene = make_scene(0, size_wh=(200, 120))
    s = sam.SamSession(tiny_model, sam.model_key(sam.TINY, None), tmp_path)
    s.set_image(scene.image, "ab" * 32)
    first = s.predict(Prompt(points=((50.0, 40.0, True),)))
    s.set_image(scene.image, "ab" * 32)
    s.predict(Prompt(points=((50.0, 40.0, True), (120.0, 60.0, False))))
    assert s.computed == 1
    assert s.cache_file("ab" * 32).is_file()
    # a new process (a fresh session) reads the file instead of encoding, and decodes the same mask
    again = sam.SamSession(tiny_model, sam.model_key(sam.TINY, None), tmp_path)
    again.set_image(scene.image, "ab" * 32)
    assert again.computed == 0
    mask, score = again.predict(Prompt(points=((50.0, 40.0, True),)))
    assert np.array_equal(mask, first[0]) and score == pytest.approx(first[1])
    # another model (other weights) has its own entry: encoded again
    other = sam.SamSession(sam.build_model(sam.TINY, None, seed=1), sam.model_key(sam.TINY, None, seed=1), tmp_path)
    other.set_image(scene.image, "ab" * 32)
    assert other.computed == 1 and other.cache_file("ab" * 32) != s.cache_file("ab" * 32)
    # the mask is in natural pixels of the image, whatever size the model saw (1024 long side)
    assert mask.shape == scene.image.shape[:2]
    shape = mask_to_shape(mask)
    assert shape.size_wh == (200, 120)


def test_prompt_coordinates_follow_the_resize_and_exif(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    scene = make_scene(1, size_wh=(300, 180))
    raw = np.ascontiguousarray(np.rot90(scene.image, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.png"
    Image.fromarray(raw).save(path, exif=exif.tobytes())
    upright = load_rgb(path)
    s = sam.SamSession(tiny_model, "k", tmp_path)
    s.set_image(upright, "cd" * 32)
    p = s.predictor
    assert p.original_size == (180, 300) and max(p.input_size) == 1024
    # a click at natural (x, y) lands at (x, y) * 1024 / 300 in the model's input
    mapped = p.transform.apply_coords(np.array([[150.0, 90.0]]), p.original_size)
    assert mapped[0] == pytest.approx([150 * 1024 / 300, 90 * 1024 / 300], rel=1e-3)


def test_missing_weights_name_the_file_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_SAM_DIR", raising=False)
    with pytest.raises(sam.SamWeightsMissingError) as err:
        sam.weights_path(tmp_path, "vit_b")
    msg = str(err.value)
    assert "sam_vit_b_01ec64.pth" in msg and str(tmp_path / "sam" / "sam_vit_b_01ec64.pth") in msg


@pytest.mark.slow
def test_real_vit_b_with_random_weights(tmp_path: Path) -> None:
    """The smallest released variant, built by the registry with checkpoint=None (slow on CPU)."""
    model = sam.build_model("vit_b", None)
    s = sam.SamSession(model, sam.model_key("vit_b", None), tmp_path)
    scene = make_scene(2, size_wh=(160, 120))
    s.set_image(scene.image, "ef" * 32)
    mask, score = s.predict(Prompt(box_xywh=(20.0, 20.0, 60.0, 50.0)))
    assert mask.shape == (120, 160) and np.isfinite(score)


def test_real_weights_where_present(tmp_path: Path) -> None:
    import os

    folder = os.environ.get("WORKBENCH_SAM_DIR")
    if not folder or not (Path(folder) / sam.CHECKPOINTS["vit_b"]).is_file():
        pytest.skip("SAM vit_b weights not present (set WORKBENCH_SAM_DIR to the folder holding sam_vit_b_01ec64.pth)")
    scene = make_scene(3)
    truth = scene.masks[0]
    from workbench.assist.shapes import mask_iou
    from workbench.assist.synthetic import box_of

    mask, _ = sam.segment(tmp_path, scene.image, "12" * 32, Prompt(box_xywh=box_of(truth)))
    assert mask_iou(mask, truth) >= 0.8
