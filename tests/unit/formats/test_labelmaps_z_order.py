"""The semantic index map follows the annotator's drawing order: higher ``z_order`` is painted on top."""

from __future__ import annotations

from workbench.domain import IGNORE_LABEL, AnnotatedImage, Category, ImageRecord, Instance
from workbench.formats.labelmaps import semantic_index_map

CATS = [Category("cat", 1), Category("dog", 2), Category(IGNORE_LABEL, 3)]


def square(x: float, y: float, s: float) -> tuple[float, ...]:
    return (x, y, x + s, y, x + s, y + s, x, y + s)


def index_of(*instances: Instance):
    return semantic_index_map(AnnotatedImage(ImageRecord("img.png", 16, 12, id=1), tuple(instances)), CATS)


def test_a_higher_z_order_wins_the_overlap_whatever_the_row_order() -> None:
    cat = Instance("cat", polygons=(square(0, 0, 8),), z_order=1)
    dog = Instance("dog", polygons=(square(4, 4, 8),))
    assert index_of(cat, dog)[5, 5] == 1  # the cat is listed first yet lies on top
    assert index_of(dog, cat)[5, 5] == 1
    assert index_of(cat, dog)[10, 10] == 2 and index_of(cat, dog)[1, 1] == 1  # each keeps its own pixels


def test_equal_z_orders_keep_the_later_instance_on_top_and_negative_ones_go_under() -> None:
    cat = Instance("cat", polygons=(square(0, 0, 8),))
    dog = Instance("dog", polygons=(square(4, 4, 8),))
    assert index_of(cat, dog)[5, 5] == 2
    assert index_of(cat, Instance("dog", polygons=(square(4, 4, 8),), z_order=-1))[5, 5] == 1


def test_ignore_stays_on_top_of_any_z_order() -> None:
    ign = Instance(IGNORE_LABEL, polygons=(square(0, 0, 8),), z_order=-5)
    cat = Instance("cat", polygons=(square(0, 0, 8),), z_order=9)
    assert index_of(cat, ign)[2, 2] == 255
