"""Export through the services: copied images stay inside the export folder, ids agree across formats, empty splits are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.factories import project_with_train_and_val
from tests.support.images import write_image
from workbench.domain import ImageRecord
from workbench.services import export, imports


def _coco_file(folder: Path, file_names: list[str]) -> Path:
    coco = {
        "images": [{"id": i, "file_name": n, "width": 8, "height": 8} for i, n in enumerate(file_names, 1)],
        "annotations": [],
        "categories": [{"id": 1, "name": "a"}],
    }
    path = folder / "ann.json"
    path.write_text(json.dumps(coco))
    return path


def test_copy_images_stays_inside_the_export_folder(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    """A stored file_name holding '..' (COCO names that climb out and back into the images folder are
    imported as written) must not make --copy-images write outside out/."""
    deep = tmp_path / "src" / "imgs" / "deep" / "er"
    deep.mkdir(parents=True)
    write_image(deep / "x.png", 8, 8, seed=1)
    write_image(deep / "y.png", 8, 8, seed=2)
    ann = _coco_file(tmp_path / "src", ["../../deep/er/x.png", "./y.png"])
    report = imports.import_coco(ws, project, ann, images_dir=deep)
    assert len(report.imported) == 2
    assert "../../deep/er/x.png" in report.imported  # stored as written, '..' and all
    out = tmp_path / "exp" / "out"
    (path,) = export.export_coco(ws, project, out, copy_images=True)
    outside = [p for p in (tmp_path / "exp").rglob("*") if p.is_file() and out not in p.parents]
    assert outside == []
    data = json.loads(path.read_text())
    for im in data["images"]:
        assert (out / "images" / "unassigned" / im["file_name"]).is_file(), im["file_name"]
        assert ".." not in Path(im["file_name"]).parts


def test_copy_images_names_never_collide() -> None:
    """A renamed duplicate ('img.jpg' -> 'img_3.jpg') must not take the name of another image."""
    ims = [
        ImageRecord("img_3.jpg", 8, 8, id=1, path="images/aa/1.jpg"),
        ImageRecord("img.jpg", 8, 8, id=2, path="images/aa/2.jpg"),
        ImageRecord("img.jpg", 8, 8, id=3, path="images/aa/3.jpg"),
        ImageRecord("sub/../img.jpg", 8, 8, id=4, path="images/aa/4.jpg"),
    ]
    names = export._unique_names(ims, stored_suffix=True)
    assert len(set(names)) == len(names) == 4


def test_labelmap_category_ids_match_the_coco_export(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    """classes.json's category_id (and the training snapshot's ids) are the COCO export's ids, even
    when an ignore class sits between other classes (COCO leaves it out and numbers the rest 1..N)."""
    from workbench.domain import IGNORE_LABEL, Category, Instance
    from workbench.services import annotate, classes

    for name in ("a", IGNORE_LABEL, "b"):
        classes.add_category(ws, project, Category(name=name))
    write_image(tmp_path / "src" / "p.png", 16, 16, seed=3)
    imports.import_images(ws, project, [tmp_path / "src"])
    (im,) = annotate.list_images(ws, project)
    square = (1.0, 1.0, 6.0, 1.0, 6.0, 6.0, 1.0, 6.0)
    insts = [Instance(category=n, polygons=(square,)) for n in ("a", IGNORE_LABEL, "b")]
    annotate.save_image(ws, project, im.id, insts, expected_version=annotate.load_image(ws, project, im.id).version)
    (coco_path,) = export.export_coco(ws, project, tmp_path / "coco")
    coco_ids = {c["name"]: c["id"] for c in json.loads(coco_path.read_text())["categories"]}
    maps = export.export_labelmaps(ws, project, tmp_path / "maps")
    map_ids = {c["name"]: c["category_id"] for c in json.loads((maps / "classes.json").read_text())["classes"]}
    assert coco_ids == map_ids == {"a": 1, "b": 2}
    ds = export.project_dataset(ws, project)
    assert {c.name: c.id for c in ds.categories if not c.is_ignore} == coco_ids


@pytest.mark.parametrize("kind", ["coco", "labelmaps"])
def test_an_unknown_split_name_is_refused(tmp_path: Path, kind: str) -> None:
    """A typo ('trian') is refused naming the split, rather than giving an empty export or 'no images'."""
    from workbench.domain import ValidationError
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(tmp_path / "w")
    slug = create_demo_project(ws, num_images=3).slug
    fn = export.export_coco if kind == "coco" else export.export_labelmaps
    with pytest.raises(ValidationError, match="unknown split 'trian'"):
        fn(ws, slug, tmp_path / "out", splits=["trian"])
    assert not (tmp_path / "out").exists()
    assert fn(ws, slug, tmp_path / "ok", splits=["train", "unassigned"])


@pytest.mark.parametrize("kind", ["labelmaps", "coco"])
def test_export_of_a_split_without_images_is_refused_with_the_counts(
    ws, project, tmp_path: Path, kind: str  # noqa: ANN001
) -> None:
    """An empty export (for label maps, classes.json and nothing else) would look like a success: refused."""
    from workbench.domain import WorkbenchError

    project_with_train_and_val(ws, project, tmp_path)
    run = export.export_labelmaps if kind == "labelmaps" else export.export_coco
    out = tmp_path / "out"
    with pytest.raises(WorkbenchError) as err:
        run(ws, project, out, splits=["test"])
    assert str(err.value).startswith(f"project {project!r}: split 'test' has no images to export")
    assert "images per split: train 2, val 1, test 0, unassigned 0" in str(err.value)
    assert not out.exists()
    with pytest.raises(WorkbenchError, match="splits 'test' and 'unassigned' have no images"):
        run(ws, project, out, splits=["test", "unassigned"])
    assert not out.exists()
    run(ws, project, out, splits=["val", "test"])  # a split with images still exports
    assert any(p.is_file() for p in out.rglob("*"))
