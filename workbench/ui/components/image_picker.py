"""A grid of thumbnails with each image's status, a page at a time: pick an image by sight.

Shown only while its toggle is on: every thumbnail is a media registration, which the Annotate page
would otherwise repeat on every rerun (every save).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from workbench.domain import ImageRecord

PER_PAGE = 24
COLUMNS = 6
STATUS_MARK = {"unlabeled": "○", "in_progress": "◐", "done": "●", "needs_review": "⚑"}


def image_picker(
    images: Sequence[ImageRecord], current: int, thumb: Callable[[int], Path], *, key: str = "ann_picker"
) -> int | None:
    """The index of the image the user picked in the grid, or None; ``current`` is the open image's."""
    if not st.toggle("Thumbnails", key=f"{key}_on", help="Pick an image from a grid of thumbnails"):
        return None
    pages = max(1, -(-len(images) // PER_PAGE))
    default = current // PER_PAGE + 1
    page = (
        int(st.number_input("Page", 1, pages, default, key=f"{key}_page_{current // PER_PAGE}"))
        if pages > 1
        else 1
    )
    start = (page - 1) * PER_PAGE
    cols = st.columns(COLUMNS)
    picked = None
    for n, rec in enumerate(images[start : start + PER_PAGE]):
        index = start + n
        assert rec.id is not None
        with cols[n % COLUMNS]:
            st.image(str(thumb(rec.id)), width="stretch")
            label = f"{STATUS_MARK.get(rec.status, '')} {index + 1}. {rec.file_name}"
            if st.button(
                label,
                key=f"{key}_{rec.id}",
                type="primary" if index == current else "secondary",
                help=f"{rec.file_name}: {rec.status.replace('_', ' ')}",
                width="stretch",
            ):
                picked = index
    return picked
