"""Split ratios a user can type (review of the backend)."""

from __future__ import annotations

import math

import pytest

from workbench.domain import ValidationError
from workbench.services import dataset


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
    """Each class group rounded its own share: 10 classes x 3 images gave 20/10/0, 20 one-image
    classes gave 20/0/0 (no val or test at all) for ratios 0.8/0.1/0.1."""
    from collections import Counter

    out = dataset.stratified_split(presence, (0.8, 0.1, 0.1), seed=0)
    assert dict(Counter(out.values())) == expected
    assert out == dataset.stratified_split(presence, (0.8, 0.1, 0.1), seed=0)
