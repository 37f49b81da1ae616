"""Projects, classes, saving with optimistic concurrency, splits and stats through the services."""

from __future__ import annotations

import threading

import pytest

from tests.support.images import image_bytes
from workbench.domain import (
    Category,
    ConflictError,
    Instance,
    KeypointSchema,
    NotFoundError,
    ValidationError,
    WorkbenchError,
)
from workbench.images.decode import ImageSource
from workbench.services import annotate, classes, dataset, imports, projects


def _with_images(ws, slug, n=2):  # noqa: ANN001, ANN202
    imports.import_images(
        ws, slug, [ImageSource(name=f"im{i}.png", data=image_bytes(40, 30, seed=i)) for i in range(n)]
    )
    return annotate.list_images(ws, slug)


SQUARE = (2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0)


def test_project_lifecycle_removes_rows_and_files(ws) -> None:  # noqa: ANN001
    info = projects.create_project(ws, "Cats & Dogs")
    assert info.slug == "cats-dogs"
    with pytest.raises(ValidationError, match="already exists"):
        projects.create_project(ws, "Cats & Dogs")
    _with_images(ws, info.slug)
    assert projects.get_project(ws, info.slug).num_images == 2
    folder = ws.project_dir(info.slug)
    assert any((folder / "images").rglob("*.png"))
    projects.delete_project(ws, info.slug)
    assert projects.list_projects(ws) == []
    assert not folder.exists()
    with pytest.raises(NotFoundError, match="no project 'cats-dogs'"):
        projects.get_project(ws, info.slug)


def test_save_load_and_bbox_area_are_computed(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = _with_images(ws, project)[0]
    loaded = annotate.load_image(ws, project, im.id)
    assert loaded.instances == [] and im.status == "unlabeled"
    v = annotate.save_image(
        ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))], expected_version=loaded.version
    ).version
    again = annotate.load_image(ws, project, im.id)
    assert again.version == v == loaded.version + 1
    (inst,) = again.instances
    assert inst.bbox_xywh == (2.0, 2.0, 10.0, 10.0) and inst.area == 100.0
    assert again.image.status == "in_progress"


def test_stale_save_is_refused_and_nothing_is_overwritten(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = _with_images(ws, project)[0]
    v0 = annotate.load_image(ws, project, im.id).version
    annotate.save_image(
        ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))], expected_version=v0
    )
    with pytest.raises(ConflictError, match="saved elsewhere"):
        annotate.save_image(ws, project, im.id, [], expected_version=v0)
    assert len(annotate.load_image(ws, project, im.id).instances) == 1


def test_concurrent_saves_only_one_wins(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = _with_images(ws, project)[0]
    v0 = annotate.load_image(ws, project, im.id).version
    results: list[str] = []

    def save(k: int) -> None:
        try:
            shifted = tuple(c + k for c in SQUARE)
            annotate.save_image(
                ws, project, im.id, [Instance(category="box", polygons=(shifted,))], expected_version=v0
            )
            results.append("ok")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=save, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 3 + ["ok"]
    assert annotate.load_image(ws, project, im.id).version == v0 + 1


def test_unknown_class_in_save_rolls_back(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = _with_images(ws, project)[0]
    v0 = annotate.load_image(ws, project, im.id).version
    with pytest.raises(ValidationError, match="unknown class 'cat'"):
        annotate.save_image(
            ws,
            project,
            im.id,
            [Instance(category="box", polygons=(SQUARE,)), Instance(category="cat", polygons=(SQUARE,))],
            expected_version=v0,
        )
    after = annotate.load_image(ws, project, im.id)
    assert after.version == v0 and after.instances == []


def test_category_delete_needs_explicit_choice(ws, project) -> None:  # noqa: ANN001
    box = classes.add_category(ws, project, Category(name="box"))
    im = _with_images(ws, project)[0]
    annotate.save_image(
        ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))], expected_version=1
    )
    with pytest.raises(WorkbenchError, match="has 1 annotations"):
        classes.delete_category(ws, project, box.id)
    assert classes.category_annotation_counts(ws, project) == {box.id: 1}
    assert classes.delete_category(ws, project, box.id, delete_annotations=True) == 1
    assert classes.list_categories(ws, project) == []
    assert annotate.load_image(ws, project, im.id).instances == []


def test_keypoint_schema_and_rename(ws, project) -> None:  # noqa: ANN001
    names = ["nose", "left_eye", "right_eye"]
    schema = KeypointSchema(
        names=tuple(names),
        skeleton=classes.parse_pairs("nose-left_eye, 1-3", names),
        flip_pairs=classes.parse_pairs("left_eye-right_eye", names),
    )
    cat = classes.add_category(ws, project, Category(name="face", keypoints=schema))
    assert cat.keypoints.skeleton == ((0, 1), (0, 2)) and cat.keypoints.flip_permutation() == [0, 2, 1]
    renamed = classes.update_category(ws, project, cat.id, name="head", color="#00ff00")
    assert (renamed.name, renamed.color, renamed.keypoints) == ("head", "#00ff00", schema)
    with pytest.raises(ValidationError, match="colour"):
        classes.update_category(ws, project, cat.id, color="green")
    with pytest.raises(ValueError, match="'ear' is not one of the keypoints"):
        classes.parse_pairs("nose-ear", names)


def test_delete_image_removes_row_and_files(ws, project) -> None:  # noqa: ANN001
    im = _with_images(ws, project)[0]
    stored = ws.project_dir(project) / im.path
    thumb = annotate.image_file(ws, project, im.id, "thumb")
    annotate.delete_image(ws, project, im.id)
    assert not stored.exists() and not thumb.exists()
    assert len(annotate.list_images(ws, project)) == 1


def test_stratified_split_is_deterministic_and_covers_rare_classes() -> None:
    presence = {i: {"common"} for i in range(80)}
    presence.update({100 + i: {"common", "rare"} for i in range(10)})
    presence.update({200 + i: set() for i in range(10)})
    a = dataset.stratified_split(presence, (0.8, 0.1, 0.1), seed=1)
    b = dataset.stratified_split(presence, (0.8, 0.1, 0.1), seed=1)
    c = dataset.stratified_split(presence, (0.8, 0.1, 0.1), seed=2)
    assert a == b and a != c
    rare_splits = [a[100 + i] for i in range(10)]
    assert (
        rare_splits.count("train") == 8 and rare_splits.count("val") == 1 and rare_splits.count("test") == 1
    )
    assert sum(1 for v in a.values() if v == "train") == 80


def test_split_and_stats_on_the_demo(ws) -> None:  # noqa: ANN001
    from workbench.services.demo import create_demo_project

    slug = create_demo_project(ws, num_images=20).slug
    counts = dataset.split_project(ws, slug, ratios=(0.6, 0.2, 0.2), seed=3)
    assert sum(counts.values()) == 20 and set(counts) == {"train", "val", "test"}
    st = dataset.project_stats(ws, slug)
    assert st["images"] == 20
    assert sum(r["instances"] for r in st["classes"].values()) == st["annotations"]
    assert st["classes"]["triangle"]["with_keypoints"] == st["classes"]["triangle"]["instances"] > 0
    assert annotate.list_images(ws, slug, unannotated=True) == []
    tri = next(c for c in classes.list_categories(ws, slug) if c.name == "triangle")
    with_tri = annotate.list_images(ws, slug, category_id=tri.id)
    assert 0 < len(with_tri) == st["classes"]["triangle"]["images"]


def test_saved_polygons_are_clipped_to_the_image(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = _with_images(ws, project)[0]  # 40 x 30
    over = (30.0, 20.0, 60.0, 20.0, 60.0, 50.0, 30.0, 50.0)
    annotate.save_image(ws, project, im.id, [Instance(category="box", polygons=(over,))], expected_version=1)
    (inst,) = annotate.load_image(ws, project, im.id).instances
    xs, ys = inst.polygons[0][0::2], inst.polygons[0][1::2]
    assert max(xs) == 40.0 and max(ys) == 30.0
    assert inst.bbox_xywh == (30.0, 20.0, 10.0, 10.0) and inst.area == 100.0
    outside = (50.0, 40.0, 60.0, 40.0, 60.0, 50.0)
    with pytest.raises(ValidationError, match="outside the image"):
        annotate.save_image(ws, project, im.id, [Instance(category="box", polygons=(outside,))], expected_version=2)


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        ("left-eye-right-eye", ["left-eye", "right-eye"], ((0, 1),)),
        ("a-b, b:c", ["a", "b", "c"], ((0, 1), (1, 2))),
        ("1-left-wing", ["beak", "left-wing"], ((0, 1),)),
        (" tail - beak ", ["beak", "tail"], ((1, 0),)),
    ],
)
def test_parse_pairs_splits_where_both_sides_are_keypoints(text: str, names: list[str], expected) -> None:  # noqa: ANN001
    assert classes.parse_pairs(text, names) == expected


@pytest.mark.parametrize(
    ("text", "names", "message"),
    [
        ("a-b-c", ["a", "b", "c", "a-b", "b-c"], "more than one way"),
        ("left-eye-nose", ["left-eye", "right-eye"], "is not two of the keypoints"),
        ("ab", ["a", "b"], "a pair looks like"),
        ("a-z", ["a", "b"], "'z' is not one of the keypoints"),
    ],
)
def test_parse_pairs_refuses_what_it_cannot_split(text: str, names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classes.parse_pairs(text, names)
