"""Mask PNGs: index PNGs with a class list (ours, labelme2voc's, a plain list), folders of binary PNGs
per class, instances by connected components or one per class, and bad input in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.images import write_image
from workbench.domain import IGNORE_LABEL
from workbench.formats.mask_pngs import MaskFormatError, load_masks, read_class_list
from workbench.geometry import instance_to_mask


@pytest.mark.parametrize(
    ("text", "mapping"),
    [
        ("cat\ndog\n", {1: "cat", 2: "dog"}),
        ("_background_\ncat\ndog\n", {1: "cat", 2: "dog"}),
        ("__ignore__\n_background_\ncat\n", {1: "cat"}),  # labelme2voc's labels.txt
        ("background\n\nbird\n", {1: "bird"}),
    ],
)
def test_class_lists(tmp_path: Path, text: str, mapping: dict) -> None:
    (tmp_path / "classes.txt").write_text(text)
    assert read_class_list(tmp_path / "classes.txt") == mapping


def _index_map() -> np.ndarray:
    m = np.zeros((20, 30), dtype=np.uint8)
    m[1:6, 1:6] = 1  # cat, blob 1
    m[3:4, 3:4] = 0  # with a hole
    m[10:18, 2:8] = 1  # cat, blob 2
    m[2:9, 15:28] = 2  # dog
    m[19, :] = 255  # ignore
    return m


@pytest.mark.parametrize("one_per_class", [False, True])
@pytest.mark.parametrize("mode", ["L", "P"])
def test_index_pngs_become_instances_per_blob_or_per_class(tmp_path: Path, one_per_class: bool, mode: str) -> None:
    write_image(tmp_path / "images" / "sub" / "a.jpg", 30, 20)
    write_image(tmp_path / "images" / "b.png", 30, 20, seed=1)  # no mask: not imported
    m = _index_map()
    (tmp_path / "masks" / "sub").mkdir(parents=True)
    im = Image.fromarray(m)
    if mode == "P":
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [9] * 759)
    im.save(tmp_path / "masks" / "sub" / "a.png")
    (tmp_path / "masks" / "classes.txt").write_text("cat\ndog\n")
    ds = load_masks(tmp_path / "masks", images_dir=tmp_path / "images", one_per_class=one_per_class)
    (item,) = ds.items
    assert item.image.file_name == "sub/a.jpg" and item.image.size_wh == (30, 20)
    cats = [i.category for i in item.instances]
    assert cats == (["cat", "dog", IGNORE_LABEL] if one_per_class else ["cat", "cat", "dog", IGNORE_LABEL])
    union = np.zeros((20, 30), dtype=np.uint8)
    for inst in item.instances:
        if inst.category == "cat":
            union |= instance_to_mask(inst, (30, 20))
    np.testing.assert_array_equal(union, (m == 1).astype(np.uint8))  # the hole stays
    assert [c.name for c in ds.categories] == ["cat", "dog", IGNORE_LABEL]
    assert ds.warnings == [f"1 image(s) in {tmp_path / 'images'} have no mask; not imported"]


def test_binary_pngs_per_class_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.png", 16, 12)
    a = np.zeros((12, 16), dtype=np.uint8)
    a[1:4, 1:4] = 255
    a[6:10, 8:14] = 255
    b = np.zeros((12, 16, 3), dtype=np.uint8)
    b[5:11, 1:5] = (0, 200, 0)
    for cls, arr in (("leaf", a), ("stem", b)):
        (tmp_path / "masks" / cls).mkdir(parents=True)
        Image.fromarray(arr).save(tmp_path / "masks" / cls / "a.png")
    ds = load_masks(tmp_path / "masks", images_dir=tmp_path / "images")
    assert [i.category for i in ds.items[0].instances] == ["leaf", "leaf", "stem"]
    assert [i.area for i in ds.items[0].instances] == [9, 24, 24]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-list", "index masks need a class list"),
        ("unknown-value", "value 2 is no class of"),
        ("wrong-size", "is 10x10, the image is 30x20"),
        ("rgb-index", "an index mask must be a grey or palette PNG"),
    ],
)
def test_bad_masks_are_refused_in_one_line(tmp_path: Path, setup: str, message: str) -> None:
    write_image(tmp_path / "images" / "a.png", 30, 20)
    (tmp_path / "masks").mkdir()
    m = _index_map() if setup != "wrong-size" else np.ones((10, 10), dtype=np.uint8)
    if setup == "rgb-index":
        Image.fromarray(np.stack([m] * 3, axis=2)).save(tmp_path / "masks" / "a.png")
    else:
        Image.fromarray(m).save(tmp_path / "masks" / "a.png")
    if setup != "no-list":
        (tmp_path / "masks" / "classes.txt").write_text("cat\n" if setup == "unknown-value" else "cat\ndog\n")
    with pytest.raises(MaskFormatError) as exc:
        load_masks(tmp_path / "masks", images_dir=tmp_path / "images")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_mask_without_its_image_is_skipped_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(_index_map()).save(tmp_path / "masks" / "a.png")
    (tmp_path / "masks" / "classes.txt").write_text("cat\ndog\n")
    ds = load_masks(tmp_path / "masks", images_dir=tmp_path / "images")
    assert ds.items == [] and ds.skipped == [("a.png", f"no image named a.* in {tmp_path / 'images'}")]
