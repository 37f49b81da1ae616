"""Saves of changes only (issue 11): one moved vertex on an image of 1,000 shapes writes one row."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.images import image_bytes
from workbench.domain import Category, ConflictError, Instance
from workbench.images.decode import ImageSource
from workbench.services import annotate, classes, imports

W, H = 400, 300


def grid(n: int) -> list[Instance]:
    """n squares of 6 x 6 px on a 40-column grid over the image."""
    out = []
    for k in range(n):
        x, y = 10.0 * (k % 40) + 2, 12.0 * (k // 40) + 2
        out.append(Instance(category="thing", polygons=((x, y, x + 6, y, x + 6, y + 6, x, y + 6),)))
    return out


@pytest.fixture
def many(ws, project):  # noqa: ANN001, ANN201
    """An image of 1,000 saved squares: (image id, its instances as loaded, its version)."""
    classes.add_category(ws, project, Category(name="thing"))
    imports.import_images(ws, project, [ImageSource(name="big.png", data=image_bytes(W, H, seed=3))])
    im = annotate.list_images(ws, project)[0]
    annotate.save_image(ws, project, im.id, grid(1000), expected_version=1)
    ann = annotate.load_image(ws, project, im.id)
    return im.id, ann.instances, ann.version


def test_one_moved_vertex_writes_exactly_one_row(ws, project, many) -> None:  # noqa: ANN001
    image_id, before, version = many
    assert len(before) == 1000 and {i.version for i in before} == {1}
    target = before[517]
    poly = list(target.polygons[0])
    poly[0] += 1.5  # vertex 0 moves right
    saved = annotate.save_changes(
        ws, project, image_id, [replace(target, polygons=(tuple(poly),))], expected_version=version
    )
    assert saved.version == version + 1 and saved.ids == [target.id] and saved.deleted == []
    (written,) = saved.instances
    assert written.id == target.id and written.version == 2 and written.polygons[0][0] == poly[0]
    after = annotate.load_image(ws, project, image_id)
    assert after.version == version + 1
    changed = [(b, a) for b, a in zip(before, after.instances, strict=True) if (b.id, b.version) != (a.id, a.version)]
    assert [(b.id, a.version) for b, a in changed] == [(target.id, 2)]
    assert after.instances[517].polygons[0][0] == poly[0]
    assert after.instances[517].area != target.area  # measured again from the moved vertex
    assert [i.polygons for i in after.instances[:517]] == [i.polygons for i in before[:517]]


def test_stale_change_is_refused_and_writes_nothing(ws, project, many) -> None:  # noqa: ANN001
    image_id, before, version = many
    moved = replace(before[3], polygons=(tuple(v + 1 for v in before[3].polygons[0]),))
    annotate.save_changes(ws, project, image_id, [moved], expected_version=version)  # another tab
    mine = replace(before[900], category="thing", polygons=(tuple(v + 2 for v in before[900].polygons[0]),))
    with pytest.raises(ConflictError, match="saved elsewhere"):
        annotate.save_changes(ws, project, image_id, [mine], [before[10].id], expected_version=version)
    after = annotate.load_image(ws, project, image_id)
    assert after.version == version + 1 and len(after.instances) == 1000
    assert after.instances[900].polygons == before[900].polygons and after.instances[900].version == 1
    assert after.instances[10].id == before[10].id


def test_new_deleted_and_unchanged_shapes(ws, project, many) -> None:  # noqa: ANN001
    image_id, before, version = many
    new = Instance(category="thing", polygons=((100.0, 250.0, 120.0, 250.0, 110.0, 270.0),))
    saved = annotate.save_changes(
        ws, project, image_id, [before[0], new], [before[1].id, before[2].id], expected_version=version
    )
    assert saved.ids[0] == before[0].id and saved.ids[1] > max(i.id for i in before)
    assert saved.deleted == sorted([before[1].id, before[2].id])
    after = annotate.load_image(ws, project, image_id)
    assert len(after.instances) == 999
    assert after.instances[0].version == 1  # given unchanged: not written
    assert {i.id for i in after.instances} == ({i.id for i in before} - {before[1].id, before[2].id}) | {saved.ids[1]}
    # nothing that differs from the rows: no new version (another tab has nothing to merge)
    again = annotate.save_changes(ws, project, image_id, [after.instances[5]], expected_version=saved.version)
    assert again.version == saved.version == annotate.image_version(ws, project, image_id)


def test_deleted_row_brought_back_gets_a_new_row(ws, project, many) -> None:  # noqa: ANN001
    image_id, before, version = many
    gone = annotate.save_changes(ws, project, image_id, [], [before[7].id], expected_version=version)
    back = annotate.save_changes(ws, project, image_id, [before[7]], expected_version=gone.version)
    assert back.ids[0] != before[7].id  # ids are never reused
    after = annotate.load_image(ws, project, image_id)
    assert len(after.instances) == 1000 and after.instances[-1].polygons == before[7].polygons


def test_status_follows_shapes_in_change_saves(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="thing"))
    imports.import_images(ws, project, [ImageSource(name="s.png", data=image_bytes(W, H, seed=4))])
    im = annotate.list_images(ws, project)[0]
    first = annotate.save_changes(ws, project, im.id, grid(2), expected_version=1)
    assert annotate.image_record(ws, project, im.id).status == "in_progress"
    one = annotate.save_changes(ws, project, im.id, [], [first.ids[0]], expected_version=first.version)
    assert annotate.image_record(ws, project, im.id).status == "in_progress"  # one shape left
    annotate.save_changes(ws, project, im.id, [], [first.ids[1]], expected_version=one.version)
    assert annotate.image_record(ws, project, im.id).status == "unlabeled"
