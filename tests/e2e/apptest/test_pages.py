"""AppTest for the pages' Python logic; annotator actions are injected as the component's trigger."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.apptest import APP, action, app, make_project, polygon_item, send_action
from workbench.domain import Instance, KeypointSchema, Rle
from workbench.services import annotate, classes, projects
from workbench.services.workspace import Workspace
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
    # what the user typed stays for them to correct (the form was emptied after a refused add)
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
    """A reload is a new session: it opened the first image, losing the user's place (now ?image=)."""
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


def test_conflict_is_reported_and_overwrite_keeps_mine(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("annotate", slug)
    image_id = saved_elsewhere(ws, slug, at)
    mine = polygon_item(SQUARE)
    send_action(at, action(at, "save", [mine]))
    assert at.session_state["wb_ann"]["conflict"] is not None
    assert any("saved elsewhere" in e.value for e in at.error)
    assert [i.polygons[0] for i in annotate.load_image(ws, slug, image_id).instances] == [(1, 1, 5, 1, 5, 5)]
    # navigation is refused while the conflict stands
    send_action(at, action(at, "navigate", [mine], delta=1))
    assert at.session_state["wb_ann"]["image_id"] == image_id
    next(b for b in at.button if b.label == "Overwrite with my version").click().run()
    assert [i.polygons[0] for i in annotate.load_image(ws, slug, image_id).instances] == [tuple(SQUARE)]
    assert at.session_state["wb_ann"]["conflict"] is None


def test_conflict_reload_takes_theirs(ws: Workspace) -> None:
    slug = make_project(ws)
    at = app("annotate", slug)
    saved_elsewhere(ws, slug, at)
    send_action(at, action(at, "save", [polygon_item(SQUARE)]))
    epoch = at.session_state["wb_ann"]["epoch"]
    next(b for b in at.button if b.label == "Reload the saved version").click().run()
    s = at.session_state["wb_ann"]
    assert s["conflict"] is None and s["epoch"] == epoch + 1
    assert [i.polygons[0] for i in s["loaded"]] == [(1, 1, 5, 1, 5, 5)]


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
