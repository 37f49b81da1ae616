"""The Import and Export pages offer every format of the formats table (services/formats.py): a small
real file of each (written by our exporters, or as Label Studio exports it) imports through the page
into a fresh project, and each other export arrives as a zip download with its notes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.support.apptest import app, make_project
from tests.support.images import png_bytes
from workbench.domain import Category, Instance, ValidationError
from workbench.services import annotate, classes, formats, projects
from workbench.services.workspace import Workspace
from workbench.ui.app_pages import imports as imports_page

W, H = 64, 48
SQUARE = Instance(category="cat", polygons=((8.0, 8.0, 40.0, 8.0, 40.0, 36.0, 8.0, 36.0),))
TRIANGLE = Instance(category="cat", polygons=((44.0, 10.0, 60.0, 10.0, 52.0, 40.0),))


@pytest.fixture
def source(ws: Workspace, tmp_path: Path) -> str:
    """Two annotated images; their files also lie in tmp_path/src (the masks import's images folder)."""
    slug = make_project(ws, "Source", n_images=2, with_class=False)
    classes.add_category(ws, slug, Category(name="cat", color="#00aa00"))
    (tmp_path / "src").mkdir()
    for im in annotate.list_images(ws, slug):
        loaded = annotate.load_image(ws, slug, im.id)
        annotate.save_image(ws, slug, im.id, [SQUARE, TRIANGLE], expected_version=loaded.version)
    for i in range(2):  # the same bytes as make_project's images
        (tmp_path / "src" / f"im{i}.png").write_bytes(png_bytes((W, H), (10 * i, 20, 30)))
    return slug


def _labelstudio(folder: Path) -> Path:
    """A Label Studio "JSON" export naming its image by an upload path; the image lies beside it."""
    folder.mkdir()
    (folder / "im0.png").write_bytes(png_bytes((W, H), (0, 20, 30)))
    box = {"x": 25, "y": 50, "width": 50, "height": 25, "rotation": 0, "rectanglelabels": ["cat"]}
    tasks = [{
        "id": 7, "data": {"image": "/data/upload/3/8c2f11aa-im0.png"},
        "annotations": [{"id": 1, "was_cancelled": False, "result": [
            {"id": "r", "type": "rectanglelabels", "value": box, "from_name": "label", "to_name": "image",
             "original_width": W, "original_height": H},
        ]}],
    }]  # fmt: skip
    (folder / "export.json").write_text(json.dumps(tasks))
    return folder / "export.json"


def _files(ws: Workspace, source: str, tmp: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """Per format: the path to import and the page's text inputs besides it (key suffix -> text)."""
    yolo = formats.run_export(ws, source, "yolo", tmp / "yolo").path
    voc = formats.run_export(ws, source, "voc", tmp / "voc").path
    cvat = formats.run_export(ws, source, "cvat", tmp / "cvat", copy_images=True).path
    maps = formats.run_export(ws, source, "labelmaps", tmp / "maps").path
    return {
        "yolo": (yolo, {}),
        "voc": (voc if voc.is_dir() else voc.parent, {}),
        "cvat": (cvat, {}),
        "labelstudio": (_labelstudio(tmp / "ls"), {}),
        "masks": (maps, {"images": str(tmp / "src")}),
    }


def test_the_import_page_offers_every_format_the_cli_imports() -> None:
    from workbench.cli.imports import IMPORT_KINDS

    assert set(IMPORT_KINDS) == set(formats.IMPORT_FORMATS)
    assert set(imports_page.OTHER_FORMATS) | {"coco", "labelme"} == set(formats.IMPORT_FORMATS)


def test_every_other_format_imports_through_the_page(ws: Workspace, source: str, tmp_path: Path) -> None:
    files = _files(ws, source, tmp_path)
    assert set(files) == set(imports_page.OTHER_FORMATS)
    for name, (path, inputs) in files.items():
        target = projects.create_project(ws, f"Into {name}").slug
        at = app("import", target)
        next(s for s in at.selectbox if s.key == "import_format").set_value(name).run()
        next(t for t in at.text_input if t.key == f"import_format_path_{name}").input(str(path))
        for suffix, text in inputs.items():
            next(t for t in at.text_input if t.key == f"import_format_{suffix}_{name}").input(text)
        next(b for b in at.button if b.key == "import_format_run").click().run()
        assert not at.exception, (name, at.exception)
        assert not at.error, (name, [e.value for e in at.error])
        info = projects.get_project(ws, target)
        want = 1 if name == "labelstudio" else 4
        assert info.num_annotations >= want, (name, info.num_annotations)
        assert any("annotation" in s.value for s in at.success), (name, [s.value for s in at.success])


def test_a_masks_import_without_its_images_folder_says_so(ws: Workspace, source: str, tmp_path: Path) -> None:
    maps = formats.run_export(ws, source, "labelmaps", tmp_path / "maps").path
    target = projects.create_project(ws, "No images").slug
    at = app("import", target)
    next(s for s in at.selectbox if s.key == "import_format").set_value("masks").run()
    next(t for t in at.text_input if t.key == "import_format_path_masks").input(str(maps))
    next(b for b in at.button if b.key == "import_format_run").click().run()
    assert any("images folder" in w.value for w in at.warning)
    assert projects.get_project(ws, target).num_images == 0


@pytest.mark.parametrize("name", ["cvat", "yolo", "voc"])
def test_other_exports_download_as_a_zip(ws: Workspace, source: str, name: str) -> None:
    at = app("export", source)
    next(s for s in at.selectbox if s.key == "export_format").set_value(name).run()
    next(b for b in at.button if b.key == "export_other").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (download,) = at.get("download_button")
    assert f"{source}-{name}.zip" in download.proto.label
    blob = at.session_state["wb_export_blob"]["data"]
    names = zipfile.ZipFile(io.BytesIO(blob)).namelist()
    expected = {"cvat": "annotations.xml", "yolo": "data.yaml", "voc": "Annotations/"}[name]
    assert any(n.endswith(expected) or expected in n for n in names), names


def test_unknown_format_names_list_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown import format 'coco2'; known: coco, labelme"):
        formats.import_format("coco2")
    with pytest.raises(ValidationError, match="known: coco, labelmaps, cvat, yolo, voc"):
        formats.export_format("tiff")


def test_an_option_the_format_ignores_is_refused(ws: Workspace, source: str, tmp_path: Path) -> None:
    yolo = formats.run_export(ws, source, "yolo", tmp_path / "yolo").path
    target = projects.create_project(ws, "Strict").slug
    with pytest.raises(ValidationError, match=r"--split: not an option of import yolo \(it takes no options\)"):
        formats.run_import(ws, target, "yolo", yolo, split="train")
    assert projects.get_project(ws, target).num_annotations == 0
