"""AppTest checks for problems found by walking the UI as a new user (one test per fix)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.ui.test_pages import app, make_project, ws  # noqa: F401  (ws is a fixture)

from tests.support.images import png_bytes
from workbench.domain import ValidationError
from workbench.services import uploads
from workbench.services.imports import ImportReport
from workbench.services.workspace import Workspace
from workbench.ui.app_pages import imports as imports_page


@dataclass
class Upload:
    """What st.file_uploader hands the page: a name and the bytes."""

    name: str
    data: bytes

    def getvalue(self) -> bytes:
        return self.data


@pytest.mark.parametrize("kind", ["coco", "labelme"])
def test_bad_annotation_upload_names_the_uploaded_file_not_a_temp_folder(ws: Workspace, kind: str) -> None:  # noqa: F811
    slug = make_project(ws, n_images=1)
    with pytest.raises(ValidationError) as info:
        uploads.import_annotation_upload(ws, slug, kind, Upload("bad.json", b"{not json"))
    msg = str(info.value)
    assert msg.startswith("bad.json"), msg
    assert "wb-upload-" not in msg


def test_import_warnings_show_class_names_literally_in_one_box(ws: Workspace) -> None:  # noqa: F811
    slug = make_project(ws, n_images=1)
    at = app("import", slug)
    report = ImportReport(warnings=["added class '__ignore__'", "added class 'car'"], annotations=2)
    at.session_state[imports_page.REPORT_KEY] = {"kind": "labelme", "slug": slug, "report": report}
    at.run()
    assert not at.exception, at.exception
    assert len(at.warning) == 1
    box = at.warning[0].value
    assert "\\_\\_ignore\\_\\_" in box  # escaped: markdown shows the underscores, not bold text
    assert "car" in box


def test_an_import_report_stays_with_its_project(ws: Workspace, tmp_path: Path) -> None:  # noqa: F811
    """The last import's report ('3 images imported', skipped files) showed on the Import page of every
    project opened afterwards in the session, as if it were theirs."""
    from workbench.ui.context import PROJECT_KEY

    first = make_project(ws, "First", n_images=0)
    second = make_project(ws, "Second", n_images=0)
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes((40, 30)))
    at = app("import", first)
    next(t for t in at.text_input if t.key == "import_folder").input(str(folder))
    next(b for b in at.button if b.key == "import_path").click().run()
    assert not at.exception, at.exception
    assert any("1 image imported" in s.value for s in at.success)
    at.session_state[PROJECT_KEY] = second
    at.run()
    assert not at.exception, at.exception
    assert any("Import · Second" in h.value for h in at.header)
    assert not any("imported" in s.value for s in at.success)
    at.session_state[PROJECT_KEY] = first  # back in the first project: its report is there again
    at.run()
    assert any("1 image imported" in s.value for s in at.success)


def test_an_empty_path_says_what_to_type(ws: Workspace) -> None:  # noqa: F811
    slug = make_project(ws, n_images=0)
    at = app("import", slug)
    for key, what in (("import_path", "folder or zip"), ("import_coco_path", "COCO"), ("import_lm_path", "LabelMe")):
        next(b for b in at.button if b.key == key).click().run()
        assert not at.exception, at.exception
        assert any(what in w.value and "first" in w.value for w in at.warning), key


def _annotated_project(ws: Workspace, name: str, splits: tuple[str | None, ...]) -> str:  # noqa: F811
    """A project whose images each carry one square, with the given splits."""
    from workbench.domain import Instance
    from workbench.services import annotate, classes

    slug = make_project(ws, name, n_images=len(splits))
    cat = classes.list_categories(ws, slug)[0]
    images = annotate.list_images(ws, slug)
    for im, split in zip(images, splits, strict=True):
        inst = Instance(category=cat.name, polygons=((10.0, 10.0, 40.0, 10.0, 40.0, 30.0, 10.0, 30.0),))
        annotate.save_image(ws, slug, im.id, [inst], expected_version=annotate.load_image(ws, slug, im.id).version)
        annotate.set_split(ws, slug, [im.id], split)
    return slug


def _button(at, label: str):  # noqa: ANN001, ANN202
    return next(b for b in at.button if b.label == label)


def test_label_map_zip_holds_only_the_chosen_split_and_names_it(ws: Workspace) -> None:  # noqa: F811
    import io
    import zipfile

    slug = _annotated_project(ws, "Maps", ("train", "val"))
    at = app("export", slug)
    at.multiselect[0].select("val").run()
    _button(at, "Prepare label-map zip").click().run()
    assert not at.exception, at.exception
    entry = at.session_state["wb_export_blob"]
    assert entry["name"] == f"{slug}-labelmaps-val.zip"
    names = zipfile.ZipFile(io.BytesIO(entry["data"])).namelist()
    assert any("im1" in n for n in names) and not any("im0" in n for n in names), names


def test_prepared_download_goes_when_the_project_or_splits_change(ws: Workspace) -> None:  # noqa: F811
    a = _annotated_project(ws, "Alpha", ("train", "val"))
    b = _annotated_project(ws, "Beta", ("train",))
    at = app("export", a)
    _button(at, "Prepare COCO zip").click().run()
    assert at.session_state["wb_export_blob"]["name"] == f"{a}-coco.zip"
    assert len(at.get("download_button")) == 1
    at.multiselect[0].select("val").run()  # other settings: the old zip is not offered for them
    assert len(at.get("download_button")) == 0
    at.multiselect[0].unselect("val").run()
    assert len(at.get("download_button")) == 1
    at.session_state["wb_project"] = b  # another project: Alpha's zip is not offered as Beta's
    at.run()
    assert any("Export · Beta" in h.value for h in at.header)
    assert len(at.get("download_button")) == 0


def test_assigning_splits_updates_the_grid_above_at_once(ws: Workspace) -> None:  # noqa: F811
    slug = make_project(ws, n_images=2)
    at = app("dataset", slug)
    assert sum("no split" in c.value for c in at.caption) == 2
    at.checkbox[0].check()
    _button(at, "Assign").click().run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption if ".png" in c.value]
    assert len(captions) == 2 and all("train" in c for c in captions), captions
    assert any("2 images → train" in s.value for s in at.success)


def test_a_reload_keeps_the_open_project_through_the_url(ws: Workspace) -> None:  # noqa: F811
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash
    from tests.ui.test_pages import APP

    make_project(ws, "First", n_images=1)
    second = make_project(ws, "Second", n_images=1)
    at = app("dataset", second)  # opened in this session: the URL says so
    assert any("Dataset · Second" in h.value for h in at.header)
    assert at.query_params.get("project") in (second, [second])
    fresh = AppTest.from_file(APP, default_timeout=30)  # a reload: a new session with that URL
    fresh.query_params["project"] = second
    fresh.run()
    fresh._page_hash = calc_hash("dataset")
    fresh.run()
    assert not fresh.exception, fresh.exception
    assert any("Dataset · Second" in h.value for h in fresh.header)
    assert not any("No project is open" in i.value for i in fresh.info)


def test_annotate_shows_a_change_made_elsewhere_when_the_user_comes_back(ws: Workspace) -> None:  # noqa: F811
    from tests.ui.test_pages import action, polygon_item, send_action

    from workbench.domain import Instance
    from workbench.services import annotate
    from workbench.ui.components.annotator import instance_to_payload

    slug = make_project(ws)
    at = app("annotate", slug)
    image_id = at.session_state["wb_ann"]["image_id"]
    # meanwhile, on the Review page: a prediction accepted as an annotation of this image
    before = annotate.load_image(ws, slug, image_id)
    accepted = Instance(category="bird", polygons=((1.0, 1.0, 9.0, 1.0, 9.0, 9.0),), source="predicted")
    annotate.save_image(ws, slug, image_id, [accepted], expected_version=before.version)
    at.run()  # back on Annotate: a full run of the page
    s = at.session_state["wb_ann"]
    assert [i.source for i in s["loaded"]] == ["predicted"]
    assert s["version"] == annotate.load_image(ws, slug, image_id).version
    # and the next edit saves without a conflict
    items = [*(instance_to_payload(i) for i in s["loaded"]), polygon_item([10.0, 10.0, 30.0, 10.0, 30.0, 30.0])]
    send_action(at, action(at, "save", items))
    assert at.session_state["wb_ann"]["conflict"] is None
    assert len(annotate.load_image(ws, slug, image_id).instances) == 2


def test_deleting_a_class_with_annotations_says_what_to_tick(ws: Workspace) -> None:  # noqa: F811
    from workbench.services import classes

    slug = _annotated_project(ws, "Del", ("train",))
    at = app("classes", slug)
    _button(at, "Delete class").click().run()
    assert not at.exception, at.exception
    msg = " ".join(e.value for e in at.error)
    assert "Also delete its 1 annotation*" in msg and "1 annotations" not in msg and "--delete-annotations" not in msg, msg
    assert [c.name for c in classes.list_categories(ws, slug)] == ["bird"]
    next(c for c in at.checkbox if c.label.startswith("Also delete")).check()
    _button(at, "Delete class").click().run()
    assert classes.list_categories(ws, slug) == []


def test_dataset_page_uses_no_deprecated_width_argument(ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    slug = _annotated_project(ws, "Wide", ("train",))
    with caplog.at_level("WARNING"):
        at = app("dataset", slug)
    assert not at.exception, at.exception
    assert not [r for r in caplog.records if "use_container_width" in r.getMessage()]


def test_review_opens_on_the_newest_run_that_has_a_model(ws: Workspace) -> None:  # noqa: F811
    from tests.support.predictions import make_run
    from workbench.store import runs as run_repo

    slug = make_project(ws, n_images=1)
    good = make_run(ws, slug, "good")
    bad = make_run(ws, slug, "crashed")  # newer, but it failed: nothing to predict or review with
    with ws.store.transaction() as s:
        run_repo.finish_run(s, good, "succeeded")
        run_repo.finish_run(s, bad, "failed", error="boom")
    at = app("review", slug)
    assert not at.exception, at.exception
    picker = next(s for s in at.selectbox if s.label == "Run")
    assert picker.value == good
    assert "succeeded" not in picker.format_func(good)  # status lives in the page, not in the label


@pytest.mark.parametrize("size_wh", [(400, 100), (100, 400), (30, 30), (256, 192), (10, 500)])
def test_letterbox_gives_every_thumbnail_the_same_box_centred(size_wh: tuple[int, int]) -> None:
    from PIL import Image

    from workbench.ui.app_pages import dataset as dataset_page

    img = Image.new("RGB", size_wh, (200, 0, 0))
    out = dataset_page.letterbox(img)
    bw, bh = dataset_page.THUMB_BOX_WH
    assert out.size == (bw, bh)
    assert out.getpixel((bw // 2, bh // 2)) == (200, 0, 0)  # the picture, centred
    w, h = size_wh
    if w / h > bw / bh:  # wide: padded above and below
        assert out.getpixel((bw // 2, 0)) == dataset_page.THUMB_FILL
    elif w / h < bw / bh:  # tall: padded left and right
        assert out.getpixel((0, bh // 2)) == dataset_page.THUMB_FILL


def test_dataset_grid_thumbnails_are_equal_for_wide_and_tall_images(ws: Workspace) -> None:  # noqa: F811
    import io

    from PIL import Image

    from tests.support.images import png_bytes
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, imports, projects
    from workbench.ui.app_pages import dataset as dataset_page

    slug = projects.create_project(ws, "Shapes").slug
    srcs = [ImageSource(name="wide.png", data=png_bytes((400, 100))), ImageSource(name="tall.png", data=png_bytes((100, 400), (9, 9, 9)))]
    imports.import_images(ws, slug, srcs)
    thumbs = [annotate.image_file(ws, slug, im.id, "thumb") for im in annotate.list_images(ws, slug)]
    assert len({Image.open(t).size for t in thumbs}) == 2  # the stored thumbnails differ ...
    boxed = [Image.open(io.BytesIO(dataset_page._boxed_thumb(str(t), t.stat().st_mtime_ns))).size for t in thumbs]
    assert boxed == [dataset_page.THUMB_BOX_WH] * 2  # ... the grid shows them in equal boxes
    at = app("dataset", slug)
    assert not at.exception, at.exception
    assert len(at.get("image")) == 2


@pytest.mark.parametrize(
    ("n", "noun", "given", "expected"),
    [
        (1, "image", None, "1 image"),
        (0, "image", None, "0 images"),
        (2, "annotation", None, "2 annotations"),
        (1, "class", None, "1 class"),
        (3, "class", None, "3 classes"),
        (2, "box", None, "2 boxes"),
        (2, "entry", "entries", "2 entries"),
        (None, "image", None, "? images"),
        (2, "epoch", None, "2 epochs"),
        (2, "batch", None, "2 batches"),
    ],
)
def test_plural(n: int | None, noun: str, given: str | None, expected: str) -> None:
    from workbench.ui.context import plural

    assert plural(n, noun, given) == expected


def test_counts_of_one_read_in_the_singular(ws: Workspace) -> None:  # noqa: F811
    """'1 images · 1 annotations · 1 classes' on Projects; the same on Dataset and Train."""
    slug = _annotated_project(ws, "Single", ("train",))
    at = app("projects", slug)
    captions = " ".join(c.value for c in at.caption)
    assert "1 image · 1 annotation · 1 class" in captions, captions
    at = app("dataset", slug)
    captions = " ".join(c.value for c in at.caption)
    assert "1 of 1 image matches" in captions, captions
    at = app("train", slug)
    captions = " ".join(c.value for c in at.caption)
    assert "1 training image, 0 validation images" in captions, captions
    assert not [w for w in ("1 images", "1 annotations", "1 classes") if w in captions]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cancelled by the user", "Cancelled by the user."),
        ("predictions with score >= 0.05 evaluated", "Predictions with score >= 0.05 evaluated."),
        ("Done.", "Done."),
        ("  ", ""),
    ],
)
def test_as_sentence(text: str, expected: str) -> None:
    from workbench.ui.context import as_sentence

    assert as_sentence(text) == expected
