"""In Chromium: Review on the annotator's canvas. A finished run's evaluation shows without a second
Predict, at the best-F1 threshold; hovering a row highlights its shape; the wheel zooms; clicking a
shape and accepting writes that geometry as an annotation (the view stays); R rejects; Open in
Annotate opens the image there."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import annotator, needs_chromium, view_box, view_mapping, wait_for, wait_idle

pytestmark = [pytest.mark.browser, needs_chromium]

BOXES = ((20, 20, 40, 40, 0.9), (120, 20, 40, 40, 0.6))
"""Hand-made square predictions (x, y, w, h, score) on the first image, apart from each other."""


def _page(browser: Any, url: str) -> Any:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    page.goto(url)
    return page


def _canvas(page: Any, image_id: int) -> Any:
    root = annotator(page)
    page.locator(f'.wb-annot[data-mode="review"][data-loaded-image="{image_id}"]').wait_for()
    return root


@pytest.fixture(scope="module")
def hand_made(ui_workspace: Path) -> dict[str, Any]:
    """A demo project with a run whose only predictions are two squares on its first image."""
    import numpy as np

    from tests.support.predictions import make_run
    from workbench.domain import Instance
    from workbench.geometry import mask_to_rle
    from workbench.services import annotate, review
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, name="Canvas review", num_images=2).slug
    image = min(annotate.list_images(ws, slug), key=lambda im: im.id)
    preds = []
    for x, y, w, h, score in BOXES:
        mask = np.zeros((image.height, image.width), dtype=np.uint8)
        mask[y : y + h, x : x + w] = 1
        preds.append(
            Instance("square", rle=mask_to_rle(mask), bbox_xywh=(x, y, w, h), score=score, source="predicted")
        )
    run = make_run(ws, slug, "hand-made")
    review.store_run_predictions(ws, slug, run, {image.id: preds})
    ids = [p.id for p in sorted(review.list_predictions(ws, slug, run_id=run), key=lambda p: -p.score)]
    return {"ws": ws, "slug": slug, "image": image, "run": run, "ids": ids}


def test_evaluated_run_shows_its_predictions_at_the_best_f1_threshold(
    browser: Any, ui_server: Any, ui_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.support.predictions import run_with_model
    from workbench.services import evaluation, review
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace
    from workbench.store import runs as run_repo

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, name="Evaluated", num_images=6).slug
    run = run_with_model(ws, slug, tmp_path_factory.mktemp("evaluated"))
    evaluation.evaluate_run(ws, slug, run, split="val")  # what the worker runs when training ends
    with ws.store.transaction() as s:
        info = run_repo.get_run(s, run)
    start, _ = review.default_threshold(info)
    shown = [
        p for p in review.list_predictions(ws, slug, run_id=run) if p.score >= math.floor(start * 100) / 100
    ]
    assert shown, "the evaluation stored no prediction above its own threshold"
    page = _page(browser, f"{ui_server.url}/review?project={slug}")
    try:
        slider = page.locator('[data-testid="stSlider"]').filter(has_text="Min score")
        slider.wait_for()
        thumb = slider.locator('[data-testid="stSliderThumbValue"]')
        assert float(thumb.inner_text()) == pytest.approx(math.floor(start * 100) / 100), slider.inner_html()
        root = annotator(page)
        page.locator('.wb-annot[data-mode="review"][data-loaded-image]').wait_for()
        rows = root.locator(".wb-list li[data-prediction-id]")
        n = wait_for(rows.count, lambda c: c > 0, what="prediction rows of the evaluation")
        on_image = int(page.locator(".wb-annot").get_attribute("data-loaded-image"))
        assert n == sum(p.image_id == on_image for p in shown)
    finally:
        page.context.close()


def test_hover_zoom_accept_and_reject_on_the_canvas(
    browser: Any, ui_server: Any, hand_made: dict[str, Any]
) -> None:
    from workbench.geometry import instance_to_rle, rle_iou
    from workbench.services import annotate, review

    ws, slug, image = hand_made["ws"], hand_made["slug"], hand_made["image"]
    top, low = hand_made["ids"]
    page = _page(browser, f"{ui_server.url}/review?project={slug}")
    try:
        root = _canvas(page, image.id)
        shape = lambda pid: root.locator(f'.wb-shape[data-prediction-id="{pid}"]')  # noqa: E731
        row = lambda pid: root.locator(f'.wb-list li[data-prediction-id="{pid}"]')  # noqa: E731
        shape(low).wait_for()
        wait_idle(page)
        # the editing tools are not there
        assert not root.locator('.wb-tool[data-tool="polygon"]').is_visible()

        # hovering a row highlights its shape, and only that one
        row(low).hover()
        wait_for(lambda: shape(low).get_attribute("class"), lambda c: "wb-hover" in c, what="hover class")
        assert "wb-hover" not in shape(top).get_attribute("class")
        page.mouse.move(5, 5)
        wait_for(lambda: shape(low).get_attribute("class"), lambda c: "wb-hover" not in c, what="hover gone")

        # the wheel over the first square zooms in there
        fitted = view_box(page)
        assert fitted == (0, 0, image.width, image.height)
        to_client, _ = view_mapping(page)
        x, y, w, h, _ = BOXES[0]
        page.mouse.move(*to_client(x + w / 2, y + h / 2))
        page.mouse.wheel(0, -400)
        zoomed = wait_for(lambda: view_box(page), lambda vb: vb[2] < fitted[2], what="a zoomed viewBox")
        assert zoomed[3] < fitted[3]

        # click the square, accept in the box beside it: its geometry becomes an annotation
        to_client, _ = view_mapping(page)
        page.mouse.click(*to_client(x + w / 2, y + h / 2))
        wait_for(lambda: shape(top).get_attribute("class"), lambda c: "wb-sel" in c, what="selected shape")
        popup = root.locator('[data-testid="wb-review-popup"]')
        popup.locator('button[data-act="accept"]').click()
        accepted = wait_for(
            lambda: {p.id: p for p in review.list_predictions(ws, slug, run_id=hand_made["run"])}[top],
            lambda p: p.status == "accepted",
            what="the prediction accepted",
        )
        saved = {i.id: i for i in annotate.load_image(ws, slug, image.id).instances}[accepted.annotation_id]
        assert saved.source == "predicted" and saved.category == "square" and saved.polygons
        size = (image.width, image.height)
        assert rle_iou([instance_to_rle(saved, size)], [accepted.instance.rle], [False])[0][0] > 0.95
        wait_for(
            lambda: row(top).get_attribute("data-status"), lambda s: s == "accepted", what="row accepted"
        )
        assert shape(top).count() == 0  # now drawn as ground truth, not as a prediction
        assert view_box(page) == zoomed  # the decision kept the view

        # F fits; click the other square and press R: rejected
        page.keyboard.press("f")
        wait_for(lambda: view_box(page), lambda vb: vb == fitted, what="fitted again")
        to_client, _ = view_mapping(page)
        x, y, w, h, _ = BOXES[1]
        page.mouse.click(*to_client(x + w / 2, y + h / 2))
        wait_for(lambda: shape(low).get_attribute("class"), lambda c: "wb-sel" in c, what="selected shape")
        page.keyboard.press("r")
        wait_for(
            lambda: {p.id: p.status for p in review.list_predictions(ws, slug, run_id=hand_made["run"])}[low],
            lambda s: s == "rejected",
            what="the prediction rejected",
        )
        wait_for(
            lambda: row(low).get_attribute("data-status"), lambda s: s == "rejected", what="row rejected"
        )
        assert shape(low).count() == 0
    finally:
        page.context.close()


def test_open_in_annotate_opens_that_image(browser: Any, ui_server: Any, hand_made: dict[str, Any]) -> None:
    from tests.support.browser import nav, wait_image_drawn
    from workbench.services import annotate

    slug, image = hand_made["slug"], hand_made["image"]
    other = max(annotate.list_images(hand_made["ws"], slug), key=lambda im: im.id)
    page = _page(browser, f"{ui_server.url}/annotate?project={slug}&image={other.id}")
    try:
        wait_image_drawn(page, other.id)  # this tab has another image open on Annotate
        nav(page, "Review")
        _canvas(page, image.id)
        page.get_by_role("button", name="Open in Annotate").click()
        page.get_by_role("heading", name="Annotate").first.wait_for()
        wait_image_drawn(page, image.id)
        assert f"image={image.id}" in page.url
    finally:
        page.context.close()
