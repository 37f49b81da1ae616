"""`workbench assist` and `workbench next` through the real CLI on real projects.

The demo project's objects are flat shapes on a plain background: GrabCut from their box and the
wand from one click reach IoU >= 0.85 with the stored truth. An EXIF-rotated JPEG imported into a
project comes back as a shape in the upright image's natural pixels (IoU >= 0.8 after JPEG loss).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.predictions import run_with_model
from workbench import cli
from workbench.assist.shapes import mask_iou
from workbench.assist.synthetic import box_of, inner_point, make_scene
from workbench.geometry import instance_to_mask, polygons_to_mask, rle_to_mask
from workbench.services import annotate
from workbench.services.imports import import_images
from workbench.services.projects import create_project
from workbench.store import images as image_repo
from workbench.store import projects as project_repo


def _main(ws, *argv: str) -> int:  # noqa: ANN001
    return cli.main([*argv, "--workspace", str(ws.root)])


def _mask_of(coco: dict, size_wh: tuple[int, int]) -> np.ndarray:
    seg = coco["segmentation"]
    if isinstance(seg, dict):
        from workbench.domain import Rle

        return rle_to_mask(Rle(size_hw=tuple(seg["size"]), counts=seg["counts"]))
    return polygons_to_mask(seg, size_wh)


def _first_object(ws, slug: str):  # noqa: ANN001, ANN202
    with ws.store.transaction() as s:
        rec = image_repo.list_images(s, project_repo.project_id(s, slug))[0]
    loaded = annotate.load_image(ws, slug, int(rec.id))
    inst = next(i for i in loaded.instances if i.category in ("circle", "square"))
    return rec, instance_to_mask(inst, rec.size_wh)


@pytest.mark.parametrize("method", ["grabcut", "wand"])
def test_assist_on_a_demo_object(ws, demo, capsys, method: str) -> None:  # noqa: ANN001
    rec, truth = _first_object(ws, demo)
    x, y, w, h = box_of(truth, 3)
    args = ["assist", demo, rec.file_name, "--method", method, "--box", f"{x},{y},{w},{h}", "--json"]
    if method == "wand":
        px, py = inner_point(truth)
        args += ["--point", f"{px},{py},+", "--tolerance", "30"]
    assert _main(ws, *args) == 0, capsys.readouterr().err
    coco = json.loads(capsys.readouterr().out)
    assert coco["image_id"] == rec.id and coco["method"] == method
    got = _mask_of(coco, rec.size_wh)
    assert mask_iou(got, truth) >= 0.85
    assert coco["area"] == pytest.approx(float(got.sum()))
    bx, by, bw, bh = coco["bbox"]
    assert bx >= x - 1 and by >= y - 1 and bx + bw <= x + w + 1 and by + bh <= y + h + 1
    # the same by id, as a line of text
    assert _main(ws, "assist", demo, str(rec.id), "--method", "grabcut", "--box", f"{x},{y},{w},{h}") == 0
    assert f"grabcut on {rec.file_name}: 1 polygon(s)" in capsys.readouterr().out


def test_assist_on_an_exif_rotated_image(ws, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    slug = create_project(ws, "Rotated").slug
    scene = make_scene(5, noise=6.0, kinds=("ellipse", "rectangle"))
    raw = np.ascontiguousarray(np.rot90(scene.image, 1))  # orientation 6: a viewer turns it back upright
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    Image.fromarray(raw).save(path, quality=95, exif=exif.tobytes())
    import_images(ws, slug, [path])
    truth = scene.masks[0]
    x, y, w, h = box_of(truth)
    assert _main(ws, "assist", slug, "turned.jpg", "--method", "grabcut", "--box", f"{x},{y},{w},{h}", "--json") == 0
    coco = json.loads(capsys.readouterr().out)
    size_wh = (scene.image.shape[1], scene.image.shape[0])
    assert mask_iou(_mask_of(coco, size_wh), truth) >= 0.8


def test_bad_input_is_one_line_and_exit_1(ws, demo, capsys) -> None:  # noqa: ANN001
    rec, _ = _first_object(ws, demo)
    cases = [
        (["--method", "lasso", "--box", "1,1,5,5"], "unknown method 'lasso'"),
        (["--method", "grabcut"], "grabcut needs a box"),
        (["--method", "grabcut", "--box", "1,2,3"], "--box is X,Y,W,H"),
        (["--method", "wand", "--point", "9999,3"], "outside the"),
        (["--method", "scissors", "--point", "3,3", "--point", "9,9"], "at least 3 clicks"),
        (["--method", "grabcut", "--box", "1,1,20,20", "--tolerance", "5"], "--tolerance is the magic wand"),
        (["--method", "run:x", "--box", "1,1,20,20"], "run:RUN takes a run id"),
        (["--method", "sam", "--box", "1,1,20,20"], "sam_vit_b_01ec64.pth"),
    ]
    for extra, message in cases:
        assert _main(ws, "assist", demo, rec.file_name, *extra) == 1, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert _main(ws, "assist", demo, "nope.png", "--method", "grabcut", "--box", "1,1,5,5") == 1
    assert "no image 'nope.png'" in capsys.readouterr().err


def test_assist_with_a_run_and_label_next(ws, demo, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    run = run_with_model(ws, demo, tmp_path)  # a tiny model that sees a confident circle everywhere
    rec, truth = _first_object(ws, demo)
    x, y, w, h = box_of(truth, 3)
    code = _main(ws, "assist", demo, str(rec.id), "--method", f"run:{run}", "--box", f"{x},{y},{w},{h}", "--json")
    got = capsys.readouterr()
    assert code == 0, got.err
    coco = json.loads(got.out)
    assert 0 < coco["score"] <= 1 and coco["category"] == "circle" and coco["method"] == f"run:{run}"
    bx, by, bw, bh = coco["bbox"]  # the detection chosen overlaps the box asked about
    assert bx < x + w and by < y + h and bx + bw > x and by + bh > y
    assert _main(ws, "assist", demo, str(rec.id), "--method", "run:999", "--box", "1,1,9,9") == 1
    assert "999" in capsys.readouterr().err

    # label next: the demo's images are all labelled; unlabelled ones come from a fresh import
    scene = make_scene(7)
    for i in range(2):
        Image.fromarray(np.ascontiguousarray(np.rot90(scene.image, i))).save(tmp_path / f"new{i}.png")
    import_images(ws, demo, [tmp_path / "new0.png", tmp_path / "new1.png"])
    assert _main(ws, "next", demo, "--run", str(run), "--json") == 0
    ranked = json.loads(capsys.readouterr().out)
    assert sorted(r["file_name"] for r in ranked) == ["new0.png", "new1.png"]
    u = [r["uncertainty"] for r in ranked]
    assert u == sorted(u, reverse=True) and all(0 <= v <= 1 for v in u)
    for r in ranked:
        assert (r["detections"] == 0) == (r["uncertainty"] == 1.0)
    assert _main(ws, "next", demo, "--run", str(run), "--count", "1") == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert _main(ws, "next", demo, "--run", str(run), "--count", "0") == 1
    assert "--count must be at least 1" in capsys.readouterr().err
