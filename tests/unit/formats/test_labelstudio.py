"""Label Studio exports ("JSON" and "JSON-MIN") as Label Studio writes them.

Brush masks are encoded here by Label Studio's algorithm reimplemented from its spec
(label-studio-converter's ``brush.encode_rle``: a 32-bit count, a 5-bit word size - 1, four 4-bit
run-length sizes - 1, then per run a repeat bit, a 2-bit size index, length - 1 and the byte).
Where ``WORKBENCH_LS_PYTHON`` names a Python with ``label-studio-converter`` installed (a separate
venv: ``python -m venv /tmp/ls-venv && /tmp/ls-venv/bin/pip install label-studio-converter``), the
package itself encodes a mask for our decoder too; without it that test skips, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.images import write_image
from workbench.domain import ValidationError
from workbench.formats.labelstudio import LabelStudioFormatError, decode_ls_rle, load_labelstudio
from workbench.geometry import instance_to_mask

W, H = 40, 30


def encode_ls_rle(flat: np.ndarray, rle_sizes: tuple[int, ...] = (3, 4, 8, 16)) -> list[int]:
    """Label Studio's brush RLE of a flat uint8 array, as its converter encodes it (word size 8)."""
    bits = [f"{len(flat):032b}", f"{8 - 1:05b}", *(f"{s - 1:04b}" for s in rle_sizes)]
    values = np.asarray(flat, dtype=np.uint8)
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(values)]))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        n, v = end - start, int(values[start])
        if n == 1:
            bits.append(f"0 00 000 {v:08b}")
            continue
        while n > 0:
            take = min(n, 2**16)
            size = next(i for i, s in enumerate(rle_sizes) if take <= 2 ** s)
            bits.append(f"1 {size:02b} {take - 1:0{rle_sizes[size]}b} {v:08b}")
            n -= take
    text = "".join(bits).replace(" ", "")
    text += "0" * (8 - len(text) % 8)
    return [int(text[i : i + 8], 2) for i in range(0, len(text), 8)]


def brush(mask: np.ndarray) -> list[int]:
    """What Label Studio stores for a brush mask: the RGBA canvas, the mask in every channel."""
    return encode_ls_rle(np.repeat((mask > 0).astype(np.uint8).ravel() * 255, 4))


def a_mask() -> np.ndarray:
    m = np.zeros((H, W), dtype=np.uint8)
    m[4:20, 10:30] = 1
    m[8:12, 15:20] = 0  # a hole
    m[25:28, 0:3] = 1  # a second part
    return m


def result(kind: str, value: dict[str, Any], rid: str = "r1", **extra: Any) -> dict[str, Any]:
    return {"id": rid, "type": kind, "value": value, "from_name": "label", "to_name": "image",
            "original_width": W, "original_height": H, "image_rotation": 0, "origin": "manual", **extra}  # fmt: skip


def task(results: list[dict[str, Any]], image: str = "/data/upload/1/3f2a9c1b-img.png", **ann: Any) -> dict[str, Any]:
    return {"id": 1, "data": {"image": image}, "predictions": [],
            "annotations": [{"id": 1, "result": results, "was_cancelled": False, "created_at": "2024-05-01T10:00:00Z", **ann}]}  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_image(tmp_path / "img.png", W, H)
    return tmp_path


def load(folder: Path, obj: Any, **kw: Any):  # noqa: ANN201
    f = folder / "export.json"
    f.write_text(json.dumps(obj))
    return load_labelstudio(f, **kw)


@pytest.mark.parametrize("n", [1, 2, 8, 9, 16, 17, 256, 257, 65536, 65537, 200_000])
def test_decoder_reads_every_run_length_size(n: int) -> None:
    flat = np.concatenate([np.full(n, 255, np.uint8), [7, 9], np.zeros(3, np.uint8)])
    assert np.array_equal(decode_ls_rle(encode_ls_rle(flat)), flat)


def test_decoder_refuses_a_truncated_stream() -> None:
    with pytest.raises(LabelStudioFormatError, match="not Label Studio's RLE"):
        decode_ls_rle(encode_ls_rle(np.arange(50, dtype=np.uint8))[:-10], where="t")


@pytest.mark.skipif(not os.environ.get("WORKBENCH_LS_PYTHON"), reason="WORKBENCH_LS_PYTHON (a Python with label-studio-converter) not set")
def test_decoder_reads_label_studio_converters_own_encoding() -> None:
    mask = a_mask()
    code = (
        "import sys, json, numpy as np\nfrom label_studio_converter import brush\n"
        "m = np.array(json.load(sys.stdin), dtype=np.uint8) * 255\n"
        "print(json.dumps([int(x) for x in brush.mask2rle(m)]))"
    )
    out = subprocess.run([os.environ["WORKBENCH_LS_PYTHON"], "-c", code], input=json.dumps(mask.tolist()),
                         capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    assert theirs == brush(mask)  # our reimplementation of the encoder is theirs, byte for byte
    assert np.array_equal(decode_ls_rle(theirs).reshape(H, W, 4)[:, :, 3] > 0, mask > 0)


def test_json_export_every_region_kind(folder: Path) -> None:
    results = [
        result("rectanglelabels", {"x": 10, "y": 20, "width": 25, "height": 50, "rotation": 0, "rectanglelabels": ["car"]}, "a"),
        result("polygonlabels", {"points": [[5, 5], [50, 5], [50, 40]], "closed": True, "polygonlabels": ["car"]}, "b"),
        result("brushlabels", {"format": "rle", "rle": brush(a_mask()), "brushlabels": ["blob"]}, "c"),
        result("keypointlabels", {"x": 50, "y": 50, "width": 0.5, "keypointlabels": ["nose"]}, "k1", parentID="a"),
        result("keypointlabels", {"x": 25, "y": 10, "width": 0.5, "keypointlabels": ["eye"]}, "k2", parentID="a"),
        result("keypointlabels", {"x": 75, "y": 90, "width": 0.5, "keypointlabels": ["tip"]}, "k3"),
        result("choices", {"choices": ["red"]}, "a", from_name="color"),
        result("textarea", {"text": ["dented"]}, "b", from_name="note"),
        result("choices", {"choices": ["sunny"]}, "whole-image", from_name="weather"),
    ]  # fmt: skip
    ds = load(folder, [task(results)])
    (item,) = ds.items
    assert item.image.file_name == "img.png" and item.image.path == str(folder / "img.png")
    box, poly, blob, tip = item.instances
    assert box.bbox_xywh == pytest.approx((4.0, 6.0, 10.0, 15.0)) and not box.has_shape
    assert box.keypoints == pytest.approx((20.0, 15.0, 2, 10.0, 3.0, 2))  # joined their parent by parentID
    assert box.attributes == {"color": "red"} and poly.attributes == {"note": "dented"}
    assert poly.polygons == (pytest.approx((2.0, 1.5, 20.0, 1.5, 20.0, 12.0)),)
    assert np.array_equal(instance_to_mask(blob, (W, H)), a_mask())
    assert tip.keypoints == pytest.approx((30.0, 27.0, 2)) and tip.bbox_xywh == pytest.approx((29.5, 26.5, 1, 1))
    cats = {c.name: c for c in ds.categories}
    assert cats["car"].keypoints.names == ("nose", "eye") and cats["tip"].keypoints.names == ("tip",)
    assert cats["blob"].keypoints is None
    assert any("upload prefix" in w for w in ds.warnings)


def test_rotated_rectangle_turns_about_its_top_left_corner(folder: Path) -> None:
    value = {"x": 50, "y": 10, "width": 25, "height": 20, "rotation": 90, "rectanglelabels": ["car"]}
    (inst,) = load(folder, [task([result("rectanglelabels", value)])]).items[0].instances
    # 10 x 6 px from (20, 3), turned 90 degrees clockwise (y down) about (20, 3): x 14..20, y 3..13
    assert inst.polygons[0] == pytest.approx((20.0, 3.0, 20.0, 13.0, 14.0, 13.0, 14.0, 3.0))


def test_json_min_form(folder: Path) -> None:
    record = {
        "image": "/data/upload/1/3f2a9c1b-img.png", "id": 1,
        "label": [{"x": 10, "y": 20, "width": 25, "height": 50, "rotation": 0, "rectanglelabels": ["car"],
                   "original_width": W, "original_height": H}],
        "mask": [{"format": "rle", "rle": brush(a_mask()), "brushlabels": ["blob"], "original_width": W, "original_height": H}],
        "kp": [{"x": 75, "y": 90, "width": 0.5, "keypointlabels": ["tip"], "original_width": W, "original_height": H}],
        "annotator": 1, "annotation_id": 3, "created_at": "2024-05-01", "updated_at": "2024-05-01", "lead_time": 3.2,
    }  # fmt: skip
    ds = load(folder, [record])
    assert [i.category for i in ds.items[0].instances] == ["car", "blob", "tip"]
    assert np.array_equal(instance_to_mask(ds.items[0].instances[1], (W, H)), a_mask())


def test_newest_annotation_read_cancelled_ones_not(folder: Path) -> None:
    box = {"x": 0, "y": 0, "width": 50, "height": 50, "rectanglelabels": ["old"]}
    t = task([result("rectanglelabels", box)])
    new = {**box, "rectanglelabels": ["new"]}
    t["annotations"] += [
        {"id": 2, "result": [result("rectanglelabels", new)], "created_at": "2024-06-01T10:00:00Z"},
        {"id": 3, "result": [result("rectanglelabels", {**box, "rectanglelabels": ["gone"]})],
         "created_at": "2024-07-01T10:00:00Z", "was_cancelled": True},
    ]  # fmt: skip
    ds = load(folder, [t])
    assert [i.category for i in ds.items[0].instances] == ["new"]
    assert any("several annotations" in w for w in ds.warnings)


@pytest.mark.parametrize(
    ("stored", "want"),
    [
        ("/data/upload/1/3f2a9c1b-img.png", "img.png"),  # upload path: hash prefix dropped
        ("/data/upload/1/abc-img.png", "img.png"),
        ("/data/local-files/?d=sub/deep.png", "sub/deep.png"),  # local storage: the path given
        ("../../label-studio/media/upload/2/img.png", "img.png"),  # climbs out: found by basename inside
        ("http://example.com/media/img.png?x=1", "img.png"),
        ("/data/upload/1/ab-cd-other.png", "ab-cd-other.png"),  # a file of that very name wins
    ],
)
def test_images_matched_inside_the_folder(folder: Path, stored: str, want: str) -> None:
    write_image(folder / "sub" / "deep.png", W, H)
    write_image(folder / "ab-cd-other.png", W, H)
    (item,) = load(folder, [task([], image=stored)]).items
    assert item.image.file_name == want and Path(item.image.path) == folder / want
    assert item.image.size_wh == (W, H)  # no regions: measured from the file


def test_missing_image_is_one_error_unless_the_project_has_it(folder: Path) -> None:
    with pytest.raises(LabelStudioFormatError, match="1 image file.s. not found .* /data/upload/1/9e-nothere.png"):
        load(folder, [task([], image="/data/upload/1/9e-nothere.png")])
    box = {"x": 0, "y": 0, "width": 50, "height": 50, "rectanglelabels": ["car"]}
    ds = load(folder, [task([result("rectanglelabels", box)], image="/data/upload/1/9e-nothere.png")],
              known_names={"nothere.png"})  # fmt: skip
    assert ds.items[0].image.file_name == "nothere.png" and ds.items[0].image.path is None


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"a": 1}, "no image path in the task's data"),
        ("text", "not a Label Studio export"),
        ([task([result("rectanglelabels", {"x": "1", "y": 0, "width": 5, "height": 5, "rectanglelabels": ["c"]})])],
         "x must be a finite number"),
        ([task([{**result("polygonlabels", {"points": [[1, 1], [2, 2]], "polygonlabels": ["c"]}), "original_width": 0}])],
         "original_width must be a positive integer"),
        ([task([result("brushlabels", {"format": "rle", "rle": encode_ls_rle(np.zeros(12, np.uint8)), "brushlabels": ["c"]})])],
         "it holds 12 values, the image's RGBA canvas 4800"),
        ([task([result("brushlabels", {"format": "rle", "rle": [0, 0, 0, 200], "brushlabels": ["c"]},
                       original_width=100000, original_height=100000)])], "more than this reader decodes"),
    ],
)  # fmt: skip
def test_bad_exports_are_one_line(folder: Path, obj: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as exc:
        load(folder, obj)
    assert str(exc.value).startswith(str(folder / "export.json")) and "\n" not in str(exc.value)
