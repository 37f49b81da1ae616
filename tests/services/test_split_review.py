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
