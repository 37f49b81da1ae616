"""Splits and stats through the services: stratified, seeded, typed ratios."""

from __future__ import annotations

import math

import pytest

from workbench.domain import ValidationError
from workbench.services import annotate, classes, dataset


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


@pytest.mark.parametrize("ratios", [(math.nan, 1.0, 1.0), (math.inf, 1.0, 1.0), (1.0, -math.inf, 1.0)])
def test_non_finite_ratios_are_refused_with_a_clear_message(ratios) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="split ratios"):
        dataset.stratified_split({1: {"a"}, 2: set()}, ratios, seed=0)


@pytest.mark.parametrize(("ratios", "expected"), [((2.0, 0.0, 0.0), {"train"}), ((0.0, 0.0, 5.0), {"test"})])
def test_ratios_need_not_sum_to_one_and_may_hold_zeros(ratios, expected) -> None:  # noqa: ANN001
    out = dataset.stratified_split({i: {"a"} for i in range(1, 8)}, ratios, seed=0)
    assert set(out.values()) == expected and len(out) == 7


@pytest.mark.parametrize(
    ("presence", "expected"),
    [
        ({i: {f"c{i // 3}"} for i in range(30)}, {"train": 24, "val": 3, "test": 3}),  # 10 classes x 3
        ({i: {f"c{i}"} for i in range(20)}, {"train": 16, "val": 2, "test": 2}),  # one image per class
    ],
)
def test_many_small_groups_still_fill_val_and_test(presence, expected) -> None:  # noqa: ANN001
    """Shares are rounded over all groups, not per class group: rounding each group alone would give
    20/10/0 for 10 classes x 3 images and 20/0/0 (no val or test at all) for 20 one-image classes at
    ratios 0.8/0.1/0.1."""
    from collections import Counter

    out = dataset.stratified_split(presence, (0.8, 0.1, 0.1), seed=0)
    assert dict(Counter(out.values())) == expected
    assert out == dataset.stratified_split(presence, (0.8, 0.1, 0.1), seed=0)
