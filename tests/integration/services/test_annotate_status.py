"""An image's status follows its shapes on save: the first shape starts it, deleting every shape of an
image in progress makes it unlabeled again; a status the user chose (done, needs review) stays."""

from __future__ import annotations

import pytest

from tests.support.factories import add_images
from workbench.domain import Category, Instance
from workbench.services import annotate, classes

SQUARE = (2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0)


def _save(ws, project: str, image_id: int, instances: list[Instance], status: str | None = None) -> str:  # noqa: ANN001
    version = annotate.load_image(ws, project, image_id).version
    annotate.save_image(ws, project, image_id, instances, expected_version=version, status=status)
    return annotate.load_image(ws, project, image_id).image.status


def test_deleting_every_shape_of_an_image_in_progress_makes_it_unlabeled(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project)[0]
    assert _save(ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))]) == "in_progress"
    assert _save(ws, project, im.id, []) == "unlabeled"
    assert annotate.load_image(ws, project, im.id).instances == []
    assert _save(ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))]) == "in_progress"


@pytest.mark.parametrize("chosen", ["done", "needs_review"])
def test_a_status_the_user_chose_stays_when_the_shapes_go(ws, project, chosen: str) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="box"))
    im = add_images(ws, project)[0]
    _save(ws, project, im.id, [Instance(category="box", polygons=(SQUARE,))])
    annotate.set_status(ws, project, im.id, chosen)
    assert _save(ws, project, im.id, []) == chosen


def test_an_explicit_status_with_no_shapes_is_kept(ws, project) -> None:  # noqa: ANN001
    """Saving 'in progress' on purpose (the status buttons) is what the user asked for."""
    im = add_images(ws, project)[0]
    assert _save(ws, project, im.id, [], status="in_progress") == "in_progress"
