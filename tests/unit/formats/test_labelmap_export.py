from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.domain import (
    IGNORE_LABEL,
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    ValidationError,
)
from workbench.formats.labelmaps import (
    binary_label_maps,
    export_labelmaps,
    image_stems,
    keypoint_heatmaps,
    palette,
    sanitise_name,
    semantic_index_map,
)


def square(x: float, y: float, s: float) -> tuple[float, ...]:
    return (x, y, x + s, y, x + s, y + s, x, y + s)


SCHEMA = KeypointSchema(("head", "tail"), skeleton=((0, 1),))


def make_dataset() -> Dataset:
    cats = [
        Category("cat", 1),
        Category("hot dog/bun", 2, keypoints=SCHEMA),
        Category(IGNORE_LABEL, 3),
    ]
    a = AnnotatedImage(
        ImageRecord("left/photo.jpg", 10, 8, id=11),
        (
            Instance("cat", polygons=(square(0, 0, 6),)),
            Instance("hot dog/bun", polygons=(square(3, 3, 6),), keypoints=(4.5, 5.5, 2, 0.0, 0.0, 0)),
            Instance(IGNORE_LABEL, polygons=(square(0, 6, 2),)),
        ),
    )
    b = AnnotatedImage(ImageRecord("right/photo.png", 10, 8, id=12))
    c = AnnotatedImage(ImageRecord("solo.png", 6, 5, id=13), (Instance("cat", polygons=(square(1, 1, 3),)),))
    return Dataset(cats, [a, b, c])


def test_png_layout_files_and_values(tmp_path: Path):
    ds = make_dataset()
    calls: list[tuple[int, int]] = []
    out = export_labelmaps(ds, tmp_path / "maps", progress=lambda d, t: calls.append((d, t)))
    assert out == tmp_path / "maps"
    assert calls == [(1, 3), (2, 3), (3, 3)]

    meta = json.loads((out / "classes.json").read_text())
    assert meta["ignore_index"] == 255
    assert [(c["index"], c["name"]) for c in meta["classes"]] == [(1, "cat"), (2, "hot dog/bun")]
    pal = palette()
    assert meta["classes"][0]["color"] == "#{:02x}{:02x}{:02x}".format(*pal[3:6])
    files = [c["file"] for c in meta["classes"]]
    assert files == ["cat.png", "hot_dog_bun.png"]
    assert [i["stem"] for i in meta["images"]] == ["photo_11", "photo_12", "solo"]

    item = ds.items[0]
    with Image.open(out / "index" / "photo_11.png") as im:
        assert im.mode == "P"
        assert im.getpalette()[:6] == pal[:6]
        np.testing.assert_array_equal(np.array(im), semantic_index_map(item, ds.categories))
    expected = binary_label_maps(item, ds.categories)
    for channel, fname in enumerate(files):
        with Image.open(out / "binary" / "photo_11" / fname) as im:
            arr = np.array(im)
        assert set(np.unique(arr)) == {0, 1}  # the pixel values ARE 0/1
        np.testing.assert_array_equal(arr, expected[channel])

    kp = np.load(out / "keypoints" / "photo_11.npz")
    (entry,) = meta["keypoints"]
    assert entry["names"] == ["head", "tail"] and entry["skeleton"] == [[0, 1]]
    np.testing.assert_array_equal(kp[entry["key"]], keypoint_heatmaps(item, SCHEMA, "hot dog/bun", sigma=2.0))
    assert kp[entry["key"]][0, 5, 4] == pytest.approx(1.0)

    with Image.open(out / "index" / "solo.png") as im:
        assert im.size == (6, 5)
    assert not list(tmp_path.glob(".maps*"))  # no temp folders left behind


def test_npz_layout(tmp_path: Path):
    ds = make_dataset()
    out = export_labelmaps(ds, tmp_path / "maps", layout="npz", heatmap_sigma=None)
    data = np.load(out / "binary" / "photo_11.npz")  # no pickle needed
    assert list(data["classes"]) == ["cat", "hot dog/bun"]
    assert data["masks"].dtype == np.uint8 and data["masks"].shape == (2, 8, 10)
    np.testing.assert_array_equal(data["masks"], binary_label_maps(ds.items[0], ds.categories))
    assert not (out / "binary" / "photo_11").exists()
    hm = np.load(out / "keypoints" / "photo_11.npz")["hot_dog_bun"]
    assert hm[0].sum() == 1.0 and hm[0, 5, 4] == 1.0


def test_no_keypoint_folder_without_schemas(tmp_path: Path):
    ds = Dataset([Category("cat")], [AnnotatedImage(ImageRecord("a.png", 4, 4))])
    out = export_labelmaps(ds, tmp_path / "maps")
    assert not (out / "keypoints").exists()
    assert (out / "binary" / "a" / "cat.png").exists()


def test_reexport_replaces_the_folder(tmp_path: Path):
    out = tmp_path / "maps"
    export_labelmaps(make_dataset(), out)
    (out / "stale.txt").write_text("old")
    export_labelmaps(make_dataset(), out, layout="npz")
    assert not (out / "stale.txt").exists()
    assert (out / "binary" / "solo.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps"]


def test_failure_leaves_the_previous_export_untouched(tmp_path: Path):
    out = tmp_path / "maps"
    export_labelmaps(make_dataset(), out)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    bad = make_dataset()
    bad.items.append(
        AnnotatedImage(ImageRecord("z.png", 4, 4), (Instance("bird", polygons=(square(0, 0, 2),)),))
    )
    with pytest.raises(ValidationError, match="z.png: instance of 'bird'"):
        export_labelmaps(bad, out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps"]


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"layout": "tiff"}, "layout"), ({"heatmap_sigma": -1.0}, "sigma")]
)
def test_bad_options(tmp_path: Path, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        export_labelmaps(make_dataset(), tmp_path / "maps", **kwargs)


def test_stems_and_names():
    ds = Dataset(
        [],
        [
            AnnotatedImage(ImageRecord("a/img.jpg", 2, 2, id=7)),
            AnnotatedImage(ImageRecord("b/img.png", 2, 2)),
            AnnotatedImage(ImageRecord("C:\\x\\other one.jpg", 2, 2)),
        ],
    )
    assert image_stems(ds) == ["img_7", "img_1", "other_one"]
    assert sanitise_name("../etc") == "etc"
    assert sanitise_name("***") == "_"


def test_refuses_to_replace_a_folder_that_is_not_an_earlier_export(tmp_path: Path):
    """Exporting into a folder with other files must not delete them (the export swaps folders)."""
    out = tmp_path / "mydata"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    with pytest.raises(ValidationError, match="mydata: folder is not empty"):
        export_labelmaps(make_dataset(), out)
    assert (out / "thesis.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydata"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (export_labelmaps(make_dataset(), empty) / "classes.json").exists()

