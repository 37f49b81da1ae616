"""Import leftovers: invisible shapes, several COCO split files, failed batches, ambiguous names, zips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import write_image
from workbench.domain import ValidationError
from workbench.services import annotate, imports, projects

SUB_PIXEL = [10.1, 5.1, 10.6, 5.2, 10.3, 5.7]  # a valid triangle inside pixel (10, 5)
BOX = [1, 1, 6, 1, 6, 6, 1, 6]


def _coco(*images: tuple[int, str, int, int], anns: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in images],
        "annotations": list(anns),
        "categories": [{"id": 1, "name": "a"}],
    }


def _ann(aid: int, image_id: int, polygon: list[float]) -> dict[str, Any]:
    return {"id": aid, "image_id": image_id, "category_id": 1, "segmentation": [polygon], "iscrowd": 0}


def _media(ws, slug: str) -> list[Path]:  # noqa: ANN001
    """Every file under the project's media folders (images, thumbnails, display copies)."""
    root = ws.project_dir(slug)
    return sorted(
        p.relative_to(root)
        for sub in ("images", "thumbs", "display")
        for p in (root / sub).rglob("*")
        if p.is_file()
    )


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_import_skips_a_shape_covering_no_pixel_with_a_warning(
    ws,
    project,
    tmp_path: Path,
    fmt: str,  # noqa: ANN001
) -> None:
    write_image(tmp_path / "d" / "p.png", 16, 12, seed=1)
    if fmt == "coco":
        src = tmp_path / "d" / "ann.json"
        src.write_text(json.dumps(_coco((1, "p.png", 16, 12), anns=[_ann(5, 1, SUB_PIXEL), _ann(6, 1, BOX)])))
        report = imports.import_coco(ws, project, src)
        assert any(str(src) in w and "cover no pixel" in w and "5 (p.png)" in w for w in report.warnings)
    else:
        src = tmp_path / "d" / "p.json"
        shapes = [
            {"label": "a", "points": [SUB_PIXEL[i : i + 2] for i in (0, 2, 4)], "shape_type": "polygon"},
            {"label": "a", "points": [BOX[i : i + 2] for i in (0, 2, 4, 6)], "shape_type": "polygon"},
        ]
        src.write_text(
            json.dumps({"shapes": shapes, "imagePath": "p.png", "imageWidth": 16, "imageHeight": 12})
        )
        report = imports.import_labelme(ws, project, src)
        assert any(f"{src}: shape 0 ('a'): polygon covers no pixel" in w for w in report.warnings)
    assert report.imported == ["p.png"] and report.annotations == 1
    (im,) = annotate.list_images(ws, project)
    (inst,) = annotate.load_image(ws, project, im.id).instances
    assert inst.area == 25.0
    assert projects.get_project(ws, project).num_annotations == 1


def _datumaro(root: Path, splits: dict[str, dict[str, Any] | str], task: str = "instances") -> Path:
    """``root/annotations/<task>_<split>.json`` (a dict, or raw text) with images in root/images/<split>."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, obj in splits.items():
        text = obj if isinstance(obj, str) else json.dumps(obj)
        (root / "annotations" / f"{task}_{split}.json").write_text(text)
        if not isinstance(obj, str):
            for im in obj["images"]:
                write_image(
                    root / "images" / split / im["file_name"], im["width"], im["height"], seed=im["id"]
                )
    return root


def _store_state(ws, slug: str) -> tuple:  # noqa: ANN001
    from workbench.services import classes

    info = projects.get_project(ws, slug)
    return (info.num_images, info.num_annotations, [c.name for c in classes.list_categories(ws, slug)])


GOOD_TRAIN = _coco((1, "t1.png", 16, 12), (2, "t2.png", 16, 12), anns=[_ann(1, 1, BOX), _ann(2, 2, BOX)])


@pytest.mark.parametrize(
    "bad_val",
    [
        "{not json",  # refused while reading
        _coco((3, "v.png", 16, 12), anns=[{**_ann(1, 3, BOX), "category_id": 9}]),  # refused while parsing
    ],
    ids=["bad-json", "unknown-category"],
)
def test_coco_folder_with_a_bad_second_file_imports_nothing(
    ws,
    project,
    tmp_path: Path,
    bad_val: Any,  # noqa: ANN001
) -> None:
    root = _datumaro(tmp_path / "set", {"train": GOOD_TRAIN, "val": bad_val})
    before, media_before = _store_state(ws, project), _media(ws, project)
    with pytest.raises(ValidationError, match="instances_val.json"):
        imports.import_coco(ws, project, root)
    assert _store_state(ws, project) == before
    assert _media(ws, project) == media_before == []


def test_coco_folder_refused_at_the_row_stage_leaves_no_rows_and_no_files(
    ws,
    project,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    """Both files parse, but they give class 'a' different keypoints: only the transaction can tell."""
    train = {**GOOD_TRAIN, "categories": [{"id": 1, "name": "a", "keypoints": ["p", "q"], "skeleton": []}]}
    val = _coco((3, "v.png", 16, 12), anns=[_ann(1, 3, BOX)])
    val["categories"] = [{"id": 1, "name": "a", "keypoints": ["x", "y", "z"], "skeleton": []}]
    root = _datumaro(tmp_path / "set", {"train": train, "val": val})
    with pytest.raises(ValidationError, match="keypoints"):
        imports.import_coco(ws, project, root)
    assert _store_state(ws, project) == (0, 0, [])
    assert _media(ws, project) == []


def test_coco_folder_imports_every_split_in_one_go(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    val = _coco((3, "v.png", 16, 12), anns=[_ann(1, 3, BOX)])
    root = _datumaro(tmp_path / "set", {"train": GOOD_TRAIN, "val": val})
    report = imports.import_coco(ws, project, root)
    assert sorted(report.imported) == ["t1.png", "t2.png", "v.png"] and report.annotations == 3
    assert projects.get_project(ws, project).split_counts == {"train": 2, "val": 1}
    assert len(_media(ws, project)) == 9  # image, thumbnail, display copy of each


def test_keypoints_file_of_a_split_annotates_images_its_instances_file_left_empty(
    ws,
    project,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    """instances_train.json adds the images; person_keypoints_train.json (same images) brings their
    annotations within the same import: they join the new images rather than being dropped."""
    root = tmp_path / "set"
    _datumaro(root, {"train": _coco((1, "t1.png", 16, 12))})
    kp = _coco((1, "t1.png", 16, 12), anns=[_ann(4, 1, BOX)])
    kp["categories"] = [{"id": 1, "name": "a", "keypoints": ["p"], "skeleton": []}]
    kp["annotations"][0]["keypoints"] = [2, 2, 2]
    _datumaro(root, {"train": kp}, task="person_keypoints")
    report = imports.import_coco(ws, project, root)
    assert report.imported == ["t1.png"] and report.annotations == 1
    (im,) = annotate.list_images(ws, project)
    assert im.status == "done"
    (inst,) = annotate.load_image(ws, project, im.id).instances
    assert inst.keypoints == (2.0, 2.0, 2)


class _Cancelled(Exception):
    pass


def _cancel_at(k: int):  # noqa: ANN202
    def progress(n: int, total: int) -> None:
        if n == k:
            raise _Cancelled(f"cancelled at {n} of {total}")

    return progress


def _folder_of_images(folder: Path, n: int, first_seed: int = 10) -> Path:
    for i in range(n):
        write_image(folder / f"im{i}.png", 12, 8, seed=first_seed + i)
    return folder


def test_a_failed_image_import_removes_its_files_at_once(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    """Files of the batch that never committed go at once, not at the next import's sweep."""
    imports.import_images(ws, project, [write_image(tmp_path / "first.png", 12, 8, seed=1)])
    before = _media(ws, project)
    assert len(before) == 3
    with pytest.raises(_Cancelled):
        imports.import_images(ws, project, [_folder_of_images(tmp_path / "d", 3)], progress=_cancel_at(3))
    assert _media(ws, project) == before
    assert projects.get_project(ws, project).num_images == 1


def test_a_failed_commit_removes_the_batch_files(ws, project, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The store refuses the batch (disk full, locked database, ...): no files stay behind."""
    from workbench.store import images as image_repo

    before = _media(ws, project)

    def refuse(*_a: object, **_k: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(image_repo, "add_image", refuse)
    with pytest.raises(OSError, match="No space"):
        imports.import_images(ws, project, [_folder_of_images(tmp_path / "d", 3)])
    assert _media(ws, project) == before == []


def test_committed_batches_stay_when_a_later_one_fails(ws, project, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(imports, "BATCH", 2)
    with pytest.raises(_Cancelled):
        imports.import_images(ws, project, [_folder_of_images(tmp_path / "d", 5)], progress=_cancel_at(3))
    kept = annotate.list_images(ws, project)
    assert [im.file_name for im in kept] == ["im0.png", "im1.png"]  # the first batch committed
    files = _media(ws, project)
    assert len(files) == 6 and {p.stem for p in files} == {Path(im.path).stem for im in kept}


def test_a_failing_thumbnail_leaves_no_stored_image(ws, project, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from workbench.images import storage

    def broken(*_a: object, **_k: object) -> Path:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storage, "make_display_copy", broken)
    with pytest.raises(OSError, match="Input/output"):
        imports.import_images(ws, project, [write_image(tmp_path / "a.png", 12, 8, seed=3)])
    assert _media(ws, project) == []


def _two_same_named(ws, slug: str, tmp_path: Path, second_size_wh: tuple[int, int]) -> list:  # noqa: ANN001
    """Two different project images both named same.png (imported from two folders)."""
    a = write_image(tmp_path / "a" / "same.png", 16, 12, seed=1)
    b = write_image(tmp_path / "b" / "same.png", *second_size_wh, seed=2)
    imports.import_images(ws, slug, [a])
    imports.import_images(ws, slug, [b])
    ims = annotate.list_images(ws, slug)
    assert [im.file_name for im in ims] == ["same.png", "same.png"]
    return ims


def test_coco_by_name_refuses_a_name_shared_by_two_project_images(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    """It used to put the annotations on whichever same-named image came last."""
    _two_same_named(ws, project, tmp_path, (16, 12))
    ann = tmp_path / "ann" / "coco.json"  # no image files beside it: matched by file name
    ann.parent.mkdir()
    ann.write_text(json.dumps(_coco((1, "same.png", 16, 12), anns=[_ann(1, 1, BOX)])))
    with pytest.raises(ValidationError) as err:
        imports.import_coco(ws, project, ann)
    text = str(err.value)
    assert text.startswith(f"{ann}: image 'same.png' (16x12) matches 2 project images")
    assert "cannot be matched by name" in text
    assert projects.get_project(ws, project).num_annotations == 0
    # without annotations there is nothing to place: no error
    ann.write_text(json.dumps(_coco((1, "same.png", 16, 12))))
    assert imports.import_coco(ws, project, ann).annotations == 0


def test_coco_by_name_takes_the_same_named_image_of_the_right_size(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    small, wide = sorted(_two_same_named(ws, project, tmp_path, (20, 10)), key=lambda im: im.width)
    ann = tmp_path / "ann" / "coco.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(_coco((1, "same.png", 20, 10), anns=[_ann(1, 1, BOX)])))
    assert imports.import_coco(ws, project, ann).annotations == 1
    assert annotate.load_image(ws, project, small.id).instances == []
    assert len(annotate.load_image(ws, project, wide.id).instances) == 1
    # a size that fits neither is skipped, naming both sizes
    ann.write_text(json.dumps(_coco((1, "same.png", 30, 30), anns=[_ann(2, 1, BOX)])))
    (skip,) = imports.import_coco(ws, project, ann).skipped
    assert "the project's images of that name are 16x12, 20x10" in skip.reason


def _zip_of_images(path: Path, n: int) -> Path:
    import zipfile

    from tests.support.images import image_bytes

    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            zf.writestr(f"z{i}.png", image_bytes(12, 8, seed=100 + i))
    return path


@pytest.mark.parametrize("limit", ["cap", "free-space"])
def test_a_zip_too_large_for_the_disk_or_the_cap_is_refused_before_anything_is_stored(
    ws, project, tmp_path: Path, monkeypatch, limit: str  # noqa: ANN001
) -> None:
    import shutil
    from collections import namedtuple

    from workbench.images import sources

    imports.import_images(ws, project, [write_image(tmp_path / "first.png", 12, 8, seed=1)])
    before = _media(ws, project)
    folder = _folder_of_images(tmp_path / "d", 2)
    zpath = _zip_of_images(tmp_path / "big.zip", 3)
    if limit == "cap":
        monkeypatch.setattr(sources, "MAX_ZIP_TOTAL_BYTES", 100)
        message = "over the limit of 100 bytes"
    else:
        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**6, 10**6 - 100, 100))
        message = "only 100 bytes are free on the workspace disk"
    with pytest.raises(sources.ZipTooLargeError, match=message) as err:
        imports.import_images(ws, project, [folder, zpath])
    assert str(err.value).startswith(f"{zpath}: its 3 images unpack to")
    assert _media(ws, project) == before  # not even the folder's images, listed before the zip
    assert projects.get_project(ws, project).num_images == 1
    monkeypatch.undo()
    assert len(imports.import_images(ws, project, [folder, zpath]).imported) == 5
