"""The import report's one-line summary reads right for counts of one."""

from __future__ import annotations

import pytest

from workbench.images.sources import Skipped
from workbench.services.imports import ImportReport


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, "1 image imported, 1 annotation, 1 duplicate skipped, 1 file skipped"),
        (2, "2 images imported, 2 annotations, 2 duplicates skipped, 2 files skipped"),
    ],
)
def test_summary_counts_in_the_right_number(n: int, expected: str) -> None:
    report = ImportReport(
        imported=[f"a{i}.png" for i in range(n)],
        duplicates=[f"d{i}.png" for i in range(n)],
        skipped=[Skipped(f"s{i}.png", "not an image") for i in range(n)],
        annotations=n,
    )
    assert report.summary() == expected


def test_summary_of_an_empty_import() -> None:
    assert ImportReport().summary() == "0 images imported"
