"""In Chromium: accept a stored prediction on the Review page's canvas list, then find it in the
annotator's shape list; the image picker's counts follow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.browser import (
    annotator,
    nav,
    needs_chromium,
    new_page,
    open_project,
    wait_for,
    wait_idle,
    wait_image_drawn,
)

pytestmark = [pytest.mark.browser, needs_chromium]

SQUARE_XYWH = (150, 100, 40, 30)


def _setup(ui_workspace: Path) -> tuple[object, str, int, int, int]:
    """The demo project, a runs row and one hand-made prediction (a mask) on its first image."""
    import numpy as np

    from tests.support.predictions import make_run
    from workbench.domain import Instance
    from workbench.geometry import mask_to_rle
    from workbench.services import annotate, review
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, name="Review demo", num_images=2).slug
    image = min(annotate.list_images(ws, slug), key=lambda im: im.id)
    mask = np.zeros((image.height, image.width), dtype=np.uint8)
    x, y, w, h = SQUARE_XYWH
    mask[y : y + h, x : x + w] = 1
    pred = Instance("square", rle=mask_to_rle(mask), bbox_xywh=(x, y, w, h), score=0.87, source="predicted")
    run = make_run(ws, slug, "hand-made")
    review.store_run_predictions(ws, slug, run, {image.id: [pred]})
    (stored,) = review.list_predictions(ws, slug, run_id=run)
    return ws, slug, image.id, run, stored.id


def test_accept_prediction_then_find_it_in_the_annotator(browser, ui_server, ui_workspace) -> None:  # noqa: ANN001
    from workbench.services import annotate, review

    ws, slug, image_id, run, pred_id = _setup(ui_workspace)
    page = new_page(browser, ui_server.url)
    open_project(page, "Review demo")
    nav(page, "Review")
    row = annotator(page).locator(f'.wb-list li[data-prediction-id="{pred_id}"]')
    row.filter(has_text="square").filter(has_text="0.87").filter(has_text="pending").wait_for()
    row.locator('button[data-act="accept"]').click()
    # the success message (case-sensitive: the prediction row also says "accepted as annotation")
    page.get_by_text(re.compile(r"^Accepted as annotation #\d+")).wait_for()

    (pred,) = wait_for(
        lambda: review.list_predictions(ws, slug, run_id=run),
        lambda ps: ps[0].status == "accepted",
        what="accept",
    )
    assert pred.id == pred_id and pred.annotation_id is not None
    saved = {i.id: i for i in annotate.load_image(ws, slug, image_id).instances}
    assert saved[pred.annotation_id].source == "predicted" and saved[pred.annotation_id].category == "square"

    nav(page, "Annotate")
    wait_image_drawn(page, image_id)
    items = annotator(page).locator(".wb-list li[data-i]")
    n = wait_for(lambda: items.count(), lambda c: c == len(saved), what="shapes in the annotator list")
    tags = [items.nth(i).inner_text() for i in range(n)]
    predicted = [t for t in tags if "predicted" in t]
    assert len(predicted) == 1 and "square" in predicted[0], tags
    page.context.close()


def test_review_picker_counts_follow_an_accept_and_buttons_fit(browser, ui_server, ui_workspace) -> None:  # noqa: ANN001
    import numpy as np

    from tests.support.predictions import make_run
    from workbench.domain import Instance
    from workbench.geometry import mask_to_rle
    from workbench.services import annotate, review
    from workbench.services.demo import create_demo_project
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = create_demo_project(ws, name="Pending", num_images=2).slug
    image = min(annotate.list_images(ws, slug), key=lambda im: im.id)
    preds = []
    for x, score in ((20, 0.9), (120, 0.8)):
        mask = np.zeros((image.height, image.width), dtype=np.uint8)
        mask[20:60, x : x + 40] = 1
        preds.append(
            Instance(
                "square", rle=mask_to_rle(mask), bbox_xywh=(x, 20, 40, 40), score=score, source="predicted"
            )
        )
    run = make_run(ws, slug, "two preds")
    review.store_run_predictions(ws, slug, run, {image.id: preds})
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{ui_server.url}/review?project={slug}")
        picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Image (").locator("input")
        rows = annotator(page).locator(".wb-list li[data-prediction-id]")
        rows.first.filter(has_text="square").filter(has_text="0.90").wait_for()
        wait_idle(page)
        assert "2 pending" in picker.input_value()
        accept = rows.first.locator('button[data-act="accept"]')
        fits = accept.evaluate(
            "b => b.scrollWidth <= b.clientWidth + 1 && b.getBoundingClientRect().width > 0"
        )
        assert fits, "the Accept button's label is cut off"
        accept.click()
        page.get_by_text("Accepted as annotation").wait_for()
        # (until the rerun ends the old picker may still be in the page beside the new one)
        shown = wait_for(
            # one snapshot of every picker (a picker the rerun removes between all() and
            # input_value() left a locator waiting out its 20 s timeout)
            lambda: picker.evaluate_all("els => els.map(e => e.value)"),
            lambda vals: len(vals) == 1 and "2 pending" not in vals[0],
            what="one image picker with fresh counts",
        )
        assert "1 pending" in shown[0], shown
    finally:
        ctx.close()
