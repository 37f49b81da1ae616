"""PostgreSQL never reuses an annotation id either (its SERIAL sequence), and keeps z_order/attributes."""

from __future__ import annotations

from pathlib import Path

from tests.support.factories import add_images
from workbench.domain import AttributeDef, Category, Instance
from workbench.services import annotate, classes, projects
from workbench.services.workspace import open_workspace

SQUARE = (2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0)


def test_postgres_does_not_reuse_the_newest_annotation_id(pg_url: str, tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "pg", database_url=pg_url)
    try:
        slug = projects.create_project(ws, "P").slug
        classes.add_category(
            ws, slug, Category(name="box", attributes=(AttributeDef("kind", "select", ("a", "b")),))
        )
        im = add_images(ws, slug, 1)[0]
        box = Instance("box", polygons=(SQUARE,))
        saved = annotate.save_image(ws, slug, im.id, [box, box], expected_version=1)
        first, newest = saved.ids
        attrs = {"occluded": True, "kind": "b"}
        again = annotate.save_image(
            ws,
            slug,
            im.id,
            [
                Instance("box", polygons=(SQUARE,), id=first),
                Instance("box", polygons=(SQUARE,), z_order=2, attributes=attrs),
            ],
            expected_version=saved.version,
        )
        assert again.ids[0] == first and again.ids[1] > newest
        loaded = annotate.load_image(ws, slug, im.id).instances
        assert [(i.z_order, i.attributes) for i in loaded] == [(0, {}), (2, attrs)]
        assert classes.list_categories(ws, slug)[0].attributes == (
            AttributeDef("kind", "select", ("a", "b")),
        )
    finally:
        ws.close()
