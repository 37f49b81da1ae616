"""An annotator driven in Chromium over a project made through the services (tests of editing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.browser import view_mapping, wait_for, wait_image_drawn

Point = tuple[float, float]


@dataclass
class Editor:
    page: Any
    ws: Any
    slug: str
    ids: list[int]
    at: int = 0

    def fresh_image(self) -> int:
        """Leave the current image (no draft, fitted, polygon tool) for the next, untouched one."""
        for key in ("Escape", "f", "p"):
            self.page.keyboard.press(key)
        self.at += 1
        self.page.keyboard.press("d")
        wait_image_drawn(self.page, self.ids[self.at])
        self.page.keyboard.press("1")  # the class picked last carries over to the next image
        return self.ids[self.at]

    def instances(self, image_id: int) -> list[Any]:
        from workbench.services import annotate

        return annotate.load_image(self.ws, self.slug, image_id).instances

    def wait(self, image_id: int, pred: Any, what: str) -> list[Any]:
        return wait_for(lambda: self.instances(image_id), pred, what=what)

    def click(self, pts: list[Point]) -> None:
        to_client, _ = view_mapping(self.page)
        for x, y in pts:
            self.page.mouse.click(*to_client(x, y))

    def draw(self, pts: list[Point]) -> None:
        """A polygon through these natural points, closed with Enter (which saves it)."""
        self.click(pts)
        self.page.keyboard.press("Enter")
