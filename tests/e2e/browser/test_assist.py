"""The annotator's Assist tool in Chromium with the real mouse: a box -> GrabCut's polygon and a click
-> the magic wand's, each accepted with Enter, stored, then edited like a drawn polygon; the chosen
run auto-labels the open image (I); the "label next" order of a run in the Annotate picker.

Images: one flat ellipse on a darker background with light noise; the truth is the ellipse as drawn.
Thresholds: GrabCut from a box IoU >= 0.85 (the issue's target for 2 clicks), wand from one click IoU
>= 0.9. The run is a real Mask R-CNN file (tests/support/predictions.write_model: untrained, biased to
a confident "circle"); its detections on the image are what the store must get, counted by the service
on the same image. One server, one browser and one page for the module.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.support.browser import (
    nav,
    needs_chromium,
    new_page,
    open_project,
    view_mapping,
    wait_for,
    wait_image_drawn,
)
from tests.support.editor import Editor

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE = (320, 240)
N_IMAGES = 6
Box = tuple[float, float, float, float]


def scene(i: int) -> tuple[bytes, np.ndarray, Box]:
    """PNG bytes, the truth mask and the ellipse's box of image i."""
    x0, y0 = 60 + 15 * i, 50 + 8 * i
    box = (x0, y0, x0 + 140, y0 + 100)
    img = Image.new("RGB", SIZE, (50, 55, 60))
    ImageDraw.Draw(img).ellipse(box, fill=(205, 70, 40))
    m = Image.new("L", SIZE, 0)
    ImageDraw.Draw(m).ellipse(box, fill=1)
    rng = np.random.default_rng(i)
    arr = np.clip(np.asarray(img, dtype=np.int16) + rng.normal(0, 4, (SIZE[1], SIZE[0], 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue(), np.asarray(m, dtype=bool), (box[0], box[1], box[2] - box[0], box[3] - box[1])


@dataclass
class Assist(Editor):
    truths: dict[int, np.ndarray] | None = None
    boxes: dict[int, Box] | None = None
    run: int = 0

    def drag(self, a: tuple[float, float], b: tuple[float, float]) -> None:
        to_client, _ = view_mapping(self.page)
        mouse = self.page.mouse
        mouse.move(*to_client(*a))
        mouse.down()
        mouse.move(*to_client(*b), steps=8)
        mouse.up()

    def method(self, value: str) -> None:
        self.page.locator('[data-role="assist-method"]').select_option(value)
        self.page.locator(".wb-annot").focus()

    def proposal(self) -> None:
        self.page.locator('.wb-annot[data-assist="proposal"]').wait_for()


def polygon_mask(inst: Any) -> np.ndarray:
    from workbench.geometry import instance_to_mask

    return instance_to_mask(inst, SIZE).astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def ed(browser: Any, ui_server: Any, ui_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assist]:
    from tests.support.predictions import run_with_model
    from workbench.domain import Category, Instance
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Assisted").slug
    made = [scene(i) for i in range(N_IMAGES)]
    imports.import_images(ws, slug, [ImageSource(name=f"s{i}.png", data=m[0]) for i, m in enumerate(made)])
    for name in ("circle", "square"):
        classes.add_category(ws, slug, Category(name=name))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    # the last two are labelled: "label next" ranks only the others, so its order is not the image order
    for image_id in ids[-2:]:
        version = annotate.load_image(ws, slug, image_id).version
        square = Instance(category="square", polygons=((5, 5, 30, 5, 30, 30),))
        annotate.save_image(ws, slug, image_id, [square], expected_version=version)
    run = run_with_model(ws, slug, tmp_path_factory.mktemp("assist-run"))
    page = new_page(browser, ui_server.url)
    open_project(page, "Assisted")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    yield Assist(
        page=page, ws=ws, slug=slug, ids=ids, at=-1, truths={i: m[1] for i, m in zip(ids, made, strict=True)},
        boxes={i: m[2] for i, m in zip(ids, made, strict=True)}, run=run,
    )
    page.context.close()


def open_image(ed: Assist, n: int) -> int:
    """Image n of the project, with the assist tool and the first class."""
    ed.page.keyboard.press("Escape")
    while ed.at < n:
        if ed.at >= 0:
            ed.page.keyboard.press("d")
        ed.at += 1
        wait_image_drawn(ed.page, ed.ids[ed.at])
    ed.page.keyboard.press("m")
    ed.page.keyboard.press("1")
    ed.page.locator('[data-testid="wb-assistbar"]').wait_for()
    return ed.ids[ed.at]


def test_label_next_order_in_the_picker(ed: Assist) -> None:
    from workbench.services import annotate, assist

    wait_image_drawn(ed.page, ed.ids[0])
    labelled = {im.id for im in annotate.list_images(ed.ws, ed.slug) if im.status != "unlabeled"}
    ranked = [n.image_id for n in assist.rank_next(ed.ws, ed.slug, ed.run)]
    assert ranked and not labelled & set(ranked)
    ed.page.locator('[data-testid="stSelectbox"]', has_text="Label next by").click()
    ed.page.get_by_role("option", name=f"run #{ed.run}").click()
    names = {im.id: im.file_name for im in annotate.list_images(ed.ws, ed.slug)}
    first = f"1. {names[ranked[0]]} · unsure"
    picker = ed.page.locator('input[aria-label="Image"]')  # the old one may linger beside the new until the rerun ends

    def values() -> list[str]:
        return picker.evaluate_all("els => els.map((e) => e.value)")

    # the run predicts every unlabelled image first
    shown_now = wait_for(values, lambda v: any(x.startswith(first) for x in v), 120, "the ranked picker")
    picker.nth(next(n for n, x in enumerate(shown_now) if x.startswith(first))).click()
    shown = ed.page.get_by_role("option").all_text_contents()
    want = [names[i] for i in ranked] + [names[i] for i in ed.ids if i not in ranked]
    assert [t.split(". ", 1)[1].split(" · ")[0] for t in shown] == want
    assert all("· unsure" in t for t in shown[: len(ranked)]) and not any("unsure" in t for t in shown[len(ranked) :])
    ed.page.keyboard.press("Escape")
    # back to the image order (the tests that follow step through it)
    ed.page.locator('[data-testid="stSelectbox"]', has_text="Label next by").click()
    ed.page.get_by_role("option", name="image order").click()
    wait_for(values, lambda v: f"1. {names[ed.ids[0]]}" in v and not any("unsure" in x for x in v), 60, "image order")


def test_box_to_polygon_with_grabcut_then_edit(ed: Assist) -> None:
    image_id = open_image(ed, 0)
    ed.method("grabcut")
    x, y, w, h = ed.boxes[image_id]
    ed.drag((x - 6, y - 6), (x + w + 6, y + h + 6))  # two clicks: the box's corners
    ed.proposal()
    assert ed.instances(image_id) == []  # a proposal is not stored before Enter
    ed.page.keyboard.press("Enter")
    [inst] = ed.wait(image_id, lambda v: len(v) == 1, "the accepted GrabCut shape")
    assert inst.category == "circle" and inst.polygons and inst.rle is None and inst.source == "manual"
    assert iou(polygon_mask(inst), ed.truths[image_id]) >= 0.85
    # an ordinary polygon: select it and drag its first vertex 25 px to the right
    ed.page.keyboard.press("v")
    vx, vy = inst.polygons[0][0], inst.polygons[0][1]
    ed.click([(x + w / 2, y + h / 2)])
    ed.page.locator(".wb-vertex").first.wait_for()
    ed.drag((vx, vy), (vx + 25, vy))
    [moved] = ed.wait(image_id, lambda v: len(v) == 1 and v[0].polygons[0][0] != vx, "the vertex moved")
    assert moved.id == inst.id
    assert abs(moved.polygons[0][0] - (vx + 25)) <= 1.5 and abs(moved.polygons[0][1] - vy) <= 1.5
    assert len(moved.polygons[0]) == len(inst.polygons[0])


def test_wand_click_then_move_the_shape(ed: Assist) -> None:
    image_id = open_image(ed, 1)
    ed.method("wand")
    x, y, w, h = ed.boxes[image_id]
    ed.click([(x + w / 2, y + h / 2)])
    ed.proposal()
    ed.page.keyboard.press("2")  # the class of the next shape: the proposal takes it on Enter
    ed.page.keyboard.press("Enter")
    [inst] = ed.wait(image_id, lambda v: len(v) == 1, "the accepted wand shape")
    assert inst.category == "square" and inst.polygons
    assert iou(polygon_mask(inst), ed.truths[image_id]) >= 0.9
    # edit: drag the whole shape 20 px down
    ed.page.keyboard.press("v")
    ed.drag((x + w / 2, y + h / 2), (x + w / 2, y + h / 2 + 20))
    [moved] = ed.wait(image_id, lambda v: len(v) == 1 and v[0].polygons != inst.polygons, "the shape moved")
    dy = np.array(moved.polygons[0][1::2]) - np.array(inst.polygons[0][1::2])
    assert np.allclose(dy, 20, atol=1.5)


def test_missing_sam_weights_named_in_the_hint(ed: Assist) -> None:
    open_image(ed, 2)
    ed.method("sam:")
    hint = ed.page.locator('[data-role="hint"]')
    wait_for(hint.text_content, lambda t: "sam_vit_b_01ec64.pth" in (t or ""), what="the missing-weights hint")


def test_auto_label_the_open_image_with_the_run(ed: Assist) -> None:
    from workbench.services import assist_ui

    image_id = open_image(ed, 2)
    want = assist_ui.auto_label(ed.ws, ed.slug, image_id, ed.run, 0.5)
    assert want  # the run sees its circle here
    ed.page.locator('[data-role="assist-run"]').select_option(str(ed.run))
    ed.page.locator(".wb-annot").focus()
    ed.page.keyboard.press("i")
    got = ed.wait(image_id, lambda v: len(v) == len(want), f"{len(want)} pre-labels stored")
    assert {i.category for i in got} == {"circle"}
    assert all(i.source == "predicted" and i.score is not None and i.score >= 0.5 for i in got)
    assert sorted(round(i.score, 4) for i in got) == sorted(round(w["score"], 4) for w in want)
    ed.page.locator(".wb-list li[data-i]").nth(len(want) - 1).wait_for()
