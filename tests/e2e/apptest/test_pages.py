"""AppTest for the pages' Python logic; annotator actions are injected as the component's trigger."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.apptest import APP, action, app, button, make_project, polygon_item, send_action
from tests.support.images import png_bytes
from workbench.domain import Instance, KeypointSchema, Rle, ValidationError
from workbench.services import annotate, classes, projects, uploads
from workbench.services.imports import ImportReport
from workbench.services.workspace import Workspace
from workbench.ui.app_pages import imports as imports_page
from workbench.ui.app_pages.classes import schema_from_text
from workbench.ui.app_pages.dataset import filters_to_kwargs
from workbench.ui.components.annotator import instance_to_payload, payload_to_instances
from workbench.ui.context import md_escape

SQUARE = [10.0, 10.0, 50.0, 10.0, 50.0, 40.0, 10.0, 40.0]


# ------------------------------------------------------------------------------------------ projects


def test_projects_empty_state_then_create(ws: Workspace) -> None:
    at = app()
    assert any("No projects yet" in i.value for i in at.info)
    at.text_input[0].input("Garden birds")
    at.button[0].click().run()
    assert [p.slug for p in projects.list_projects(ws)] == ["garden-birds"]
    assert at.session_state["wb_project"] == "garden-birds"
    assert any("Created and opened" in s.value for s in at.success)


def test_delete_project_asks_first(ws: Workspace) -> None:
    slug = make_project(ws, n_images=0, with_class=False)
    at = app()
    next(b for b in at.button if b.label == "Delete…").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    assert projects.list_projects(ws)  # not yet
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert projects.list_projects(ws) == []
    assert slug not in [p.slug for p in projects.list_projects(ws)]


@pytest.mark.parametrize("page", ["import", "classes", "annotate", "dataset", "export"])
def test_pages_without_project_say_what_to_do(ws: Workspace, page: str) -> None:
    at = app(page)
    assert any("No project is open" in i.value for i in at.info)


# ------------------------------------------------------------------------------------------- classes


@pytest.mark.parametrize(
    ("names", "skeleton", "flips", "expected"),
    [
        ("", "", "", None),
        ("a, b, c", "a-b, b-c", "", KeypointSchema(names=("a", "b", "c"), skeleton=((0, 1), (1, 2)))),
        ("l_eye\nr_eye", "", "l_eye-r_eye", KeypointSchema(names=("l_eye", "r_eye"), flip_pairs=((0, 1),))),
        ("a, b", "1-2", "", KeypointSchema(names=("a", "b"), skeleton=((0, 1),))),
    ],
)
def test_schema_from_text(names: str, skeleton: str, flips: str, expected: KeypointSchema | None) -> None:
    assert schema_from_text(names, skeleton, flips) == expected


@pytest.mark.parametrize(("names", "skeleton"), [("a, b", "a-z"), ("", "a-b"), ("a, a", ""), ("a, b", "a-a")])
def test_schema_from_text_rejects(names: str, skeleton: str) -> None:
    with pytest.raises(ValueError):
        schema_from_text(names, skeleton, "")


@pytest.mark.parametrize(
    ("skeleton", "flips", "field"),
    [("a-z", "", "Skeleton pairs: "), ("a-b", "a-z", "Left/right flip pairs: "), ("a", "", "Skeleton pairs: ")],
)
def test_schema_errors_name_the_field(skeleton: str, flips: str, field: str) -> None:
    with pytest.raises(ValueError) as got:
        schema_from_text("a, b", skeleton, flips)
    assert str(got.value).startswith(field), got.value


def test_add_class_with_keypoints_and_markup_name(ws: Workspace) -> None:
    slug = make_project(ws, n_images=0, with_class=False)
    at = app("classes", slug)
    assert any("No classes yet" in i.value for i in at.info)
    name = "<img src=x onerror=alert(1)>"
    at.text_input(key="new_class_name").input(name)
    at.text_input(key="new_kp_names").input("head, tail")
    at.text_input(key="new_kp_skeleton").input("head-tail")
    next(b for b in at.button if b.label == "Add class").click().run()
    cats = classes.list_categories(ws, slug)
    assert [c.name for c in cats] == [name]
    assert cats[0].keypoints == KeypointSchema(names=("head", "tail"), skeleton=((0, 1),))
    shown = [m.value for m in at.markdown if "img" in m.value]
    assert shown == [f"**{md_escape(name)}**"] and "\\<img" in shown[0]


def test_bad_class_input_shows_error(ws: Workspace) -> None:
    slug = make_project(ws, n_images=0, with_class=False)
    at = app("classes", slug)
    at.text_input(key="new_class_name").input("x")
    at.text_input(key="new_kp_names").input("a, b")
    at.text_input(key="new_kp_skeleton").input("a-q")
    next(b for b in at.button if b.label == "Add class").click().run()
    assert classes.list_categories(ws, slug) == []
    assert any("q" in e.value for e in at.error)
    # what the user typed stays for them to correct (a refused add keeps the form filled)
    assert at.text_input(key="new_class_name").value == "x"
    assert at.text_input(key="new_kp_names").value == "a, b"
    at.text_input(key="new_kp_skeleton").input("a-b")
    next(b for b in at.button if b.label == "Add class").click().run()
    assert [c.name for c in classes.list_categories(ws, slug)] == ["x"]
    assert any("Added class 'x'" in s.value for s in at.success)
    assert at.text_input(key="new_class_name").value == "" and at.text_input(key="new_kp_names").value == ""


# ------------------------------------------------------------------------------------------ annotate


def test_annotate_without_images_says_import(ws: Workspace) -> None:
    slug = make_project(ws, n_images=0)
    at = app("annotate", slug)
    assert any("no images yet" in i.value for i in at.info)


def test_save_action_saves_polygon_and_keypoints(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("annotate", slug)
    image_id = at.session_state["wb_ann"]["image_id"]
    item = polygon_item(SQUARE, keypoints=[12.5, 11.25, 2, 0, 0, 0], uid="tab-1")
    send_action(at, action(at, "save", [item]))
    ann = annotate.load_image(ws, slug, image_id)
    assert [i.polygons for i in ann.instances] == [(tuple(SQUARE),)]
    assert ann.instances[0].keypoints == (12.5, 11.25, 2, 0.0, 0.0, 0)
    assert ann.instances[0].bbox_xywh == (10.0, 10.0, 40.0, 30.0)
    assert ann.version == at.session_state["wb_ann"]["version"] == 2
    # the same list again (before the browser learnt the row id) is not saved again
    send_action(at, action(at, "save", [item]))
    assert annotate.load_image(ws, slug, image_id).version == 2


def test_saved_shapes_keep_their_row_ids(ws: Workspace) -> None:
    """The browser learns each new shape's row id by uid; later saves update those rows in place."""
    slug = make_project(ws)
    at = app("annotate", slug)
    image_id = at.session_state["wb_ann"]["image_id"]
    a = polygon_item(SQUARE, uid="t-1")
    b = polygon_item([1.0, 1.0, 9.0, 1.0, 9.0, 9.0], uid="t-2")
    send_action(at, action(at, "save", [a, b]))
    first = {i.polygons[0][0]: i.id for i in annotate.load_image(ws, slug, image_id).instances}
    sent_ids = at.session_state["wb_ann"]["ids"]
    assert sent_ids == {"t-1": first[10.0], "t-2": first[1.0]}
    comp = next(e for e in at.main if getattr(e, "type", "") == "bidi_component")
    assert json.loads(comp.proto.json)["ids"] == sent_ids  # what the browser merges by uid
    # the browser merged the ids into a and b; now it draws a third shape
    c = polygon_item([20.0, 20.0, 30.0, 20.0, 30.0, 30.0], uid="t-3")
    send_action(at, action(at, "save", [{**a, "id": sent_ids["t-1"]}, {**b, "id": sent_ids["t-2"]}, c]))
    # and (a race) an action that left the browser before the ids arrived: same rows, no re-insert
    b2 = {**b, "polygons": [[1.0, 1.0, 9.0, 1.0, 9.0, 12.0]]}
    send_action(at, action(at, "save", [a, b2, c]))
    ann = annotate.load_image(ws, slug, image_id)
    after = {i.polygons[0][0]: i for i in ann.instances}
    assert after[10.0].id == first[10.0] and after[1.0].id == first[1.0]
    # a row is rewritten, and its version bumped, only when it changed
    assert after[1.0].polygons[0][-1] == 12.0 and after[1.0].version == 2 and after[10.0].version == 1
    assert len(ann.instances) == 3 and at.session_state["wb_ann"]["ids"]["t-3"] == after[20.0].id


def test_status_action_marks_done(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("annotate", slug)
    image_id = at.session_state["wb_ann"]["image_id"]
    send_action(at, action(at, "status", [polygon_item(SQUARE)], status="done"))
    ann = annotate.load_image(ws, slug, image_id)
    assert ann.image.status == "done" and len(ann.instances) == 1


def test_navigate_autosaves_and_moves(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("annotate", slug)
    first = at.session_state["wb_ann"]["image_id"]
    epoch = at.session_state["wb_ann"]["epoch"]
    send_action(at, action(at, "navigate", [polygon_item(SQUARE)], delta=1))
    s = at.session_state["wb_ann"]
    assert s["image_id"] != first and s["index"] == 1 and s["epoch"] == epoch + 1
    assert len(annotate.load_image(ws, slug, first).instances) == 1
    # past the end stays on the last image
    send_action(at, action(at, "navigate", [], delta=1))
    assert at.session_state["wb_ann"]["index"] == 1


def test_a_reload_reopens_the_image_in_the_url(ws: Workspace) -> None:
    """A reload is a new session: ?image= in the URL reopens the user's image, not the first one."""
    from streamlit.util import calc_hash

    slug = make_project(ws, n_images=3)
    at = app("annotate", slug)
    ids = [im.id for im in annotate.list_images(ws, slug)]
    assert at.query_params.get("image") in (str(ids[0]), [str(ids[0])])
    send_action(at, action(at, "navigate", [], delta=1))
    send_action(at, action(at, "navigate", [], delta=1))
    assert at.query_params.get("image") in (str(ids[2]), [str(ids[2])])
    for wanted, opened in ((str(ids[2]), ids[2]), ("999999", ids[0]), ("x", ids[0])):
        fresh = AppTest.from_file(APP, default_timeout=30)
        fresh.query_params["project"] = slug
        fresh.query_params["image"] = wanted
        fresh.run()
        fresh._page_hash = calc_hash("annotate")
        fresh.run()
        assert not fresh.exception, fresh.exception
        assert fresh.session_state["wb_ann"]["image_id"] == opened, wanted


def test_stale_action_from_left_image_is_ignored(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("annotate", slug)
    old = action(at, "save", [polygon_item(SQUARE)])
    send_action(at, action(at, "navigate", [], delta=1))
    send_action(at, old)
    assert annotate.load_image(ws, slug, old["image_id"]).instances == []


def saved_elsewhere(ws: Workspace, slug: str, at: AppTest) -> int:
    """Another tab saves the image this page shows first; returns the image id."""
    image_id = at.session_state["wb_ann"]["image_id"]
    other = annotate.load_image(ws, slug, image_id)
    theirs = [Instance(category="bird", polygons=((1, 1, 5, 1, 5, 5),))]
    annotate.save_image(ws, slug, image_id, theirs, expected_version=other.version)
    return image_id


def test_new_shapes_of_two_tabs_merge_without_a_question(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("annotate", slug)
    image_id = saved_elsewhere(ws, slug, at)
    epoch = at.session_state["wb_ann"]["epoch"]
    send_action(at, action(at, "save", [polygon_item(SQUARE)]))
    s = at.session_state["wb_ann"]
    assert s["conflict"] is None and s["epoch"] == epoch + 1  # the merged shapes go to the browser
    stored = sorted(i.polygons[0] for i in annotate.load_image(ws, slug, image_id).instances)
    assert stored == sorted([(1, 1, 5, 1, 5, 5), tuple(SQUARE)])


def _changed_on_both_sides(ws: Workspace) -> tuple[str, AppTest, int]:
    """A shape this tab loaded is moved in another tab, and relabelled here."""
    slug = make_project(ws)
    at = app("annotate", slug)
    image_id = at.session_state["wb_ann"]["image_id"]
    base = annotate.load_image(ws, slug, image_id)
    annotate.save_image(
        ws, slug, image_id, [Instance(category="bird", polygons=(tuple(SQUARE),))], expected_version=base.version
    )
    at.run()  # the page notices the save (a full run) and loads it
    (loaded,) = at.session_state["wb_ann"]["loaded"]
    theirs = annotate.load_image(ws, slug, image_id)
    moved = replace(loaded, polygons=((1, 1, 5, 1, 5, 5),))
    annotate.save_image(ws, slug, image_id, [moved], expected_version=theirs.version)
    mine = {**polygon_item(SQUARE), "id": loaded.id, "category": "bird", "polygons": [SQUARE]}
    mine["source"] = "manual"
    send_action(at, action(at, "save", [{**mine, "polygons": [[2.0, 2.0, 6.0, 2.0, 6.0, 6.0]]}]))
    at.session_state["mine"] = {**mine, "polygons": [[2.0, 2.0, 6.0, 2.0, 6.0, 6.0]]}
    return slug, at, image_id


def test_the_same_shape_changed_in_two_tabs_asks_and_keep_mine_saves_mine(ws: Workspace) -> None:
    slug, at, image_id = _changed_on_both_sides(ws)
    assert at.session_state["wb_ann"]["conflict"] is not None
    assert any("changed here and in another tab" in e.value for e in at.error)
    assert [i.polygons[0] for i in annotate.load_image(ws, slug, image_id).instances] == [(1, 1, 5, 1, 5, 5)]
    mine = at.session_state["mine"]
    send_action(at, action(at, "navigate", [mine], delta=1))  # refused while the question stands
    assert at.session_state["wb_ann"]["image_id"] == image_id
    next(b for b in at.button if b.label == "Keep mine").click().run()
    assert [i.polygons[0] for i in annotate.load_image(ws, slug, image_id).instances] == [(2, 2, 6, 2, 6, 6)]
    assert at.session_state["wb_ann"]["conflict"] is None


def test_the_same_shape_changed_in_two_tabs_take_theirs(ws: Workspace) -> None:
    slug, at, image_id = _changed_on_both_sides(ws)
    next(b for b in at.button if b.label == "Take theirs").click().run()
    s = at.session_state["wb_ann"]
    assert s["conflict"] is None
    assert [i.polygons[0] for i in s["loaded"]] == [(1, 1, 5, 1, 5, 5)]
    assert [i.polygons[0] for i in annotate.load_image(ws, slug, image_id).instances] == [(1, 1, 5, 1, 5, 5)]


def test_bad_shape_from_browser_is_an_error_not_a_crash(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("annotate", slug)
    send_action(at, action(at, "save", [polygon_item([1.0, 2.0, 3.0, 4.0])]))
    assert any("Not saved" in e.value for e in at.error)


# ------------------------------------------------------------------------------- component payloads


def test_payload_round_trip_keeps_rle_and_normalises_keypoints() -> None:
    rle = Instance(category="blob", rle=Rle(size_hw=(4, 4), counts="04L0"), id=7, bbox_xywh=(0, 0, 2, 2))
    poly = Instance(category="bird", polygons=(tuple(SQUARE),), id=8, source="predicted", score=0.9)
    items = [instance_to_payload(rle), instance_to_payload(poly)]
    assert items[0]["rle"] is True and items[0]["polygons"] == []
    items[0].pop("mask", None)  # the browser sends a mask back only once it painted it
    items[0]["category"] = "bird"
    items[1]["keypoints"] = [3.0, 4.0, 2, 9.0, 9.0, 0]
    items.append(polygon_item([], keypoints=[0, 0, 0, 0, 0, 0]))  # nothing to save: dropped
    out = payload_to_instances(items, [rle, poly])
    assert out[0].rle == rle.rle and out[0].category == "bird" and out[0].id == 7
    assert out[1].keypoints == (3.0, 4.0, 2, 0.0, 0.0, 0) and out[1].source == "predicted"
    assert len(out) == 2


def test_payload_unknown_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="mask"):
        payload_to_instances([{"id": 99, "category": "a", "rle": True}], [])


# ---------------------------------------------------------------------------------- dataset, export


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("all", "all", None, "all"),
            {"split": None, "status": None, "category_id": None, "unannotated": None},
        ),
        (
            ("val", "done", 3, "only unannotated"),
            {"split": "val", "status": "done", "category_id": 3, "unannotated": True},
        ),
        (
            ("unassigned", "all", None, "only annotated"),
            {"split": "unassigned", "status": None, "category_id": None, "unannotated": False},
        ),
    ],
)
def test_dataset_filters(args: tuple, expected: dict) -> None:
    assert filters_to_kwargs(*args) == expected


def test_dataset_page_lists_images_and_assigns_split(ws: Workspace) -> None:
    slug = make_project(ws, n_images=3)
    at = app("dataset", slug)
    assert any("3 of 3 images match" in c.value for c in at.caption)
    assert sum("im" in c.value and "no split" in c.value for c in at.caption) == 3
    at.checkbox[0].check()
    next(b for b in at.button if b.label == "Assign").click().run()
    assert {im.split for im in annotate.list_images(ws, slug)} == {"train"}


def test_export_empty_project_says_so(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("export", slug)
    assert any("no annotations to export" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Prepare COCO zip").click().run()
    assert any("no annotations" in e.value for e in at.error)


def test_the_only_project_opens_by_itself_but_two_need_a_choice(ws: Workspace) -> None:
    make_project(ws, "Only", n_images=1)
    at = app("dataset")
    assert not any("No project is open" in i.value for i in at.info)
    assert any("Dataset · Only" in h.value for h in at.header)
    make_project(ws, "Second", n_images=0, with_class=False)
    at = app("dataset")
    assert any("No project is open" in i.value for i in at.info)


@dataclass
class Upload:
    """What st.file_uploader hands the page: a name and the bytes."""

    name: str
    data: bytes

    def getvalue(self) -> bytes:
        return self.data


@pytest.mark.parametrize("kind", ["coco", "labelme"])
def test_bad_annotation_upload_names_the_uploaded_file_not_a_temp_folder(ws: Workspace, kind: str) -> None:
    slug = make_project(ws, n_images=1)
    with pytest.raises(ValidationError) as info:
        uploads.import_annotation_upload(ws, slug, kind, Upload("bad.json", b"{not json"))
    msg = str(info.value)
    assert msg.startswith("bad.json"), msg
    assert "wb-upload-" not in msg


def test_import_warnings_show_class_names_literally_in_one_box(ws: Workspace) -> None:
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


def test_an_import_report_stays_with_its_project(ws: Workspace, tmp_path: Path) -> None:
    """The last import's report ('3 images imported', skipped files) shows on its own project's Import
    page only, never on another project opened afterwards in the session as if it were theirs."""
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


def test_an_empty_path_says_what_to_type(ws: Workspace) -> None:
    slug = make_project(ws, n_images=0)
    at = app("import", slug)
    for key, what in (("import_path", "folder or zip"), ("import_coco_path", "COCO"), ("import_lm_path", "LabelMe")):
        next(b for b in at.button if b.key == key).click().run()
        assert not at.exception, at.exception
        assert any(what in w.value and "first" in w.value for w in at.warning), key


def _annotated_project(ws: Workspace, name: str, splits: tuple[str | None, ...]) -> str:
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


def test_label_map_zip_holds_only_the_chosen_split_and_names_it(ws: Workspace) -> None:
    import io
    import zipfile

    slug = _annotated_project(ws, "Maps", ("train", "val"))
    at = app("export", slug)
    at.multiselect[0].select("val").run()
    button(at, "Prepare label-map zip").click().run()
    assert not at.exception, at.exception
    entry = at.session_state["wb_export_blob"]
    assert entry["name"] == f"{slug}-labelmaps-val.zip"
    names = zipfile.ZipFile(io.BytesIO(entry["data"])).namelist()
    assert any("im1" in n for n in names) and not any("im0" in n for n in names), names


def test_prepared_download_goes_when_the_project_or_splits_change(ws: Workspace) -> None:
    a = _annotated_project(ws, "Alpha", ("train", "val"))
    b = _annotated_project(ws, "Beta", ("train",))
    at = app("export", a)
    button(at, "Prepare COCO zip").click().run()
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


def test_assigning_splits_updates_the_grid_above_at_once(ws: Workspace) -> None:
    slug = make_project(ws, n_images=2)
    at = app("dataset", slug)
    assert sum("no split" in c.value for c in at.caption) == 2
    at.checkbox[0].check()
    button(at, "Assign").click().run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption if ".png" in c.value]
    assert len(captions) == 2 and all("train" in c for c in captions), captions
    assert any("2 images → train" in s.value for s in at.success)


def test_a_reload_keeps_the_open_project_through_the_url(ws: Workspace) -> None:
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash

    from tests.support.apptest import APP

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


def test_annotate_shows_a_change_made_elsewhere_when_the_user_comes_back(ws: Workspace) -> None:
    from tests.support.apptest import action, polygon_item, send_action
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


def test_deleting_a_class_with_annotations_says_what_to_tick(ws: Workspace) -> None:
    from workbench.services import classes

    slug = _annotated_project(ws, "Del", ("train",))
    at = app("classes", slug)
    button(at, "Delete class").click().run()
    assert not at.exception, at.exception
    msg = " ".join(e.value for e in at.error)
    assert "Also delete its 1 annotation*" in msg and "1 annotations" not in msg and "--delete-annotations" not in msg, msg
    assert [c.name for c in classes.list_categories(ws, slug)] == ["bird"]
    next(c for c in at.checkbox if c.label.startswith("Also delete")).check()
    button(at, "Delete class").click().run()
    assert classes.list_categories(ws, slug) == []


def test_dataset_page_uses_no_deprecated_width_argument(ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    slug = _annotated_project(ws, "Wide", ("train",))
    with caplog.at_level("WARNING"):
        at = app("dataset", slug)
    assert not at.exception, at.exception
    assert not [r for r in caplog.records if "use_container_width" in r.getMessage()]


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


def test_dataset_grid_thumbnails_are_equal_for_wide_and_tall_images(ws: Workspace) -> None:
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


def test_counts_of_one_read_in_the_singular(ws: Workspace) -> None:
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


TRIANGLE = (6.0, 1.0, 9.0, 1.0, 9.0, 4.0)


def _box_only(keypoints: tuple[float, ...] | None = None) -> Instance:
    """What a CVAT or datumaro COCO file's ``segmentation: []`` annotation becomes on import."""
    return Instance(
        category="b", bbox_xywh=(2.0, 2.0, 3.0, 1.0), area=3.0, keypoints=keypoints, source="imported", id=15
    )


@pytest.mark.parametrize("keypoints", [None, (0.0, 0.0, 0, 0.0, 2.0, 1, 4.0, 1.0, 2)])
def test_saving_an_image_keeps_its_imported_box_only_annotation(keypoints: tuple[float, ...] | None) -> None:
    # Drawing a polygon beside an imported box sends both back; the box (no polygon, no visible
    # keypoints) is kept, so the save does not delete it from the store.
    box = _box_only(keypoints)
    items = [instance_to_payload(box), {"id": None, "category": "a", "polygons": [list(TRIANGLE)]}]
    out = payload_to_instances(items, [box])
    assert len(out) == 2
    kept = out[0]
    assert kept.id == 15 and kept.bbox_xywh == (2.0, 2.0, 3.0, 1.0) and kept.area == 3.0
    assert kept.keypoints == keypoints


def test_a_box_only_annotation_keeps_its_box_when_its_keypoints_move_or_its_class_changes() -> None:
    box = _box_only((0.0, 0.0, 0, 0.0, 2.0, 1, 4.0, 1.0, 2))
    item = instance_to_payload(box) | {"category": "a", "keypoints": [1.0, 1.0, 2, 0.0, 2.0, 1, 4.0, 1.0, 2]}
    (kept,) = payload_to_instances([item], [box])
    assert kept.category == "a" and kept.bbox_xywh == (2.0, 2.0, 3.0, 1.0)
    assert kept.keypoints == (1.0, 1.0, 2, 0.0, 2.0, 1, 4.0, 1.0, 2)


def test_a_keypoint_only_instance_still_gets_the_box_of_its_moved_keypoints() -> None:
    # its stored box is the box of its keypoints (what the save computed): moving them recomputes it
    kp = (1.0, 1.0, 2, 5.0, 3.0, 2)
    inst = Instance(category="a", keypoints=kp, bbox_xywh=(1.0, 1.0, 4.0, 2.0), area=8.0, id=3)
    moved = [1.0, 1.0, 2, 7.0, 4.0, 2]
    (out,) = payload_to_instances([instance_to_payload(inst) | {"keypoints": moved}], [inst])
    assert out.bbox_xywh is None and out.area is None
    # with every keypoint removed it has nothing left to save
    gone = [0.0, 0.0, 0, 0.0, 0.0, 0]
    assert payload_to_instances([instance_to_payload(inst) | {"keypoints": gone}], [inst]) == []


def test_a_prepared_export_zip_goes_when_the_user_leaves_the_page(ws: Workspace) -> None:
    # Prepare the COCO zip, fix a polygon on Annotate, come back: the zip made from the old data is
    # gone, so the button never offers it as if it were the current data.
    from streamlit.util import calc_hash

    slug = _annotated(ws)
    at = app("export", slug)
    button(at, "Prepare COCO zip").click().run()
    assert len(at.get("download_button")) == 1
    at.run()  # a rerun of the same page (another widget) keeps it
    assert len(at.get("download_button")) == 1
    at._page_hash = calc_hash("annotate")
    at.run()
    at._page_hash = calc_hash("export")
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 0
    button(at, "Prepare COCO zip").click().run()
    assert len(at.get("download_button")) == 1


def test_saving_a_class_says_saved(ws: Workspace) -> None:
    # 'Saved.' survives the st.rerun() that follows the save, so the page shows it once
    slug = _annotated(ws)
    at = app("classes", slug)
    cid = classes.list_categories(ws, slug)[0].id
    at.text_input(key=f"cls_{cid}_kp_names").input("head, left_hand, right_hand")
    at.text_input(key=f"cls_{cid}_kp_flip").input("left_hand-right_hand")
    at.text_input(key=f"cls_{cid}_kp_skeleton").input("head-left_hand, head-right_hand")
    button(at, "Save changes").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    assert [s.value for s in at.success] == ["Saved 'bird'."]
    assert classes.list_categories(ws, slug)[0].keypoints.flip_pairs == ((1, 2),)
    at.run()  # once
    assert [s.value for s in at.success] == []


def _annotated(ws: Workspace) -> str:
    from tests.support.apptest import make_project

    slug = make_project(ws, n_images=1)
    image_id = annotate.list_images(ws, slug)[0].id
    version = annotate.load_image(ws, slug, image_id).version
    annotate.save_image(ws, slug, image_id, [Instance(category="bird", polygons=(TRIANGLE,))], expected_version=version)
    return slug
