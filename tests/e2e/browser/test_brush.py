"""Brush and eraser in Chromium, drawn with the real mouse: the stored RLE's pixels are what was painted.

Strokes are checked against a numpy rasterisation of the same stroke (pixel centres within the
radius of the dragged segment), holes and parts against the pixels that must and must not be set,
and a hole against the COCO export read back by pycocotools. One server, one browser and one page
for the module; each test moves to an image of its own.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.browser import (
    nav,
    needs_chromium,
    new_page,
    open_project,
    view_mapping,
    wait_image_drawn,
)
from tests.support.editor import Editor
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE = (400, 300)
CLASSES = ("a", "b")
N_IMAGES = 9
Point = tuple[float, float]


@dataclass
class Painter(Editor):
    """The editor of the annotator tests, with the brush's own moves."""

    def set_radius(self, r: int) -> None:
        field = self.page.locator('[data-role="brushsize"]')
        field.fill(str(r))
        field.press("Enter")
        self.page.locator(".wb-annot").focus()

    def stroke(self, pts: list[Point], *, shift: bool = False) -> None:
        """Press at the first natural point, drag through the others, release."""
        to_client, _ = view_mapping(self.page)
        mouse = self.page.mouse
        if shift:
            self.page.keyboard.down("Shift")
        mouse.move(*to_client(*pts[0]))
        mouse.down()
        for p in pts[1:]:
            mouse.move(*to_client(*p), steps=8)
        mouse.up()
        if shift:
            self.page.keyboard.up("Shift")

    def polygon(self, pts: list[Point]) -> None:
        self.draw(pts)


@pytest.fixture(scope="module")
def pt(browser: Any, ui_server: Any, ui_workspace: Path) -> Iterator[Painter]:
    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(ui_workspace)
    slug = projects.create_project(ws, "Brushes").slug
    srcs = [ImageSource(name=f"b{i}.png", data=png_bytes(SIZE, (20 * i, 90, 120))) for i in range(N_IMAGES)]
    imports.import_images(ws, slug, srcs)
    for name in CLASSES:
        classes.add_category(ws, slug, Category(name=name))
    ids = [im.id for im in annotate.list_images(ws, slug)]
    page = new_page(browser, ui_server.url)
    open_project(page, "Brushes")
    nav(page, "Annotate")
    wait_image_drawn(page, ids[0])
    yield Painter(page=page, ws=ws, slug=slug, ids=ids)
    page.context.close()


def capsules(segments: list[tuple[Point, Point]], r: float) -> np.ndarray:
    """H x W mask of the pixels whose centre is within r of one of the segments."""
    w, h = SIZE
    yy, xx = np.mgrid[:h, :w] + 0.5
    out = np.zeros((h, w), dtype=bool)
    for (ax, ay), (bx, by) in segments:
        dx, dy = bx - ax, by - ay
        len2 = dx * dx + dy * dy
        t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / len2, 0, 1) if len2 else np.zeros_like(xx)
        out |= (xx - ax - t * dx) ** 2 + (yy - ay - t * dy) ** 2 <= r * r
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def mask_of(inst: Any) -> np.ndarray:
    from workbench.geometry import rle_to_mask

    assert inst.rle is not None and not inst.polygons
    return rle_to_mask(inst.rle).astype(bool)


def test_brush_stroke_stores_the_swept_disc(pt: Painter) -> None:
    image_id = pt.fresh_image()
    pt.page.keyboard.press("b")
    pt.set_radius(12)
    path = [(100.0, 100.0), (250.0, 160.0), (260.0, 220.0)]
    pt.stroke(path)
    [inst] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].rle is not None, "a painted mask")
    assert inst.category == "a" and inst.rle.size_hw == (SIZE[1], SIZE[0])
    want = capsules(list(zip(path, path[1:], strict=False)), 12)
    got = mask_of(inst)
    assert iou(got, want) >= 0.95
    assert inst.area == got.sum()
    x, y, w, h = inst.bbox_xywh
    assert abs(x - 88) <= 1.5 and abs(y - 88) <= 1.5 and abs(x + w - 272) <= 1.5 and abs(y + h - 232) <= 1.5
    # ] makes the brush larger, [ smaller; the field shows the radius
    pt.page.keyboard.press("]")
    assert int(pt.page.locator('[data-role="brushsize"]').input_value()) > 12
    pt.page.keyboard.press("[")
    pt.page.keyboard.press("[")
    assert int(pt.page.locator('[data-role="brushsize"]').input_value()) < 12


def test_painting_on_the_selected_mask_grows_it_and_undo_restores_the_stored_pixels(pt: Painter) -> None:
    image_id = pt.fresh_image()
    pt.page.keyboard.press("b")
    pt.set_radius(10)
    first = [(80.0, 80.0), (160.0, 80.0)]
    pt.stroke(first)
    [one] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].rle is not None, "first stroke")
    # a stroke starting on the selected mask paints into it
    second = [(160.0, 85.0), (160.0, 200.0)]
    pt.stroke(second)
    [two] = pt.wait(
        image_id, lambda v: len(v) == 1 and v[0].area > one.area + 500, "second stroke, same shape"
    )
    assert two.id == one.id
    want = capsules([tuple(first), tuple(second)], 10)  # type: ignore[list-item]
    assert iou(mask_of(two), want) >= 0.95
    pt.page.keyboard.press("Control+z")  # the store goes back to the first stroke's pixels exactly
    [back] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].area == one.area, "undone")
    assert np.array_equal(mask_of(back), mask_of(one))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools on NumPy 2
def test_eraser_cuts_a_hole_into_a_polygon_and_coco_keeps_it(pt: Painter) -> None:
    from pycocotools import mask as mask_utils

    from workbench.services import export

    image_id = pt.fresh_image()
    square = [(80.0, 80.0), (240.0, 80.0), (240.0, 220.0), (80.0, 220.0)]
    pt.polygon(square)
    keep = [(300.0, 40.0), (360.0, 40.0), (330.0, 90.0)]
    pt.polygon(keep)
    pt.wait(image_id, lambda v: len(v) == 2, "two polygons")
    pt.page.keyboard.press("e")
    pt.set_radius(15)
    pt.stroke([(160.0, 150.0)])  # press and release: one disc
    insts = pt.wait(image_id, lambda v: any(i.rle is not None for i in v), "the square became a mask")
    masked = next(i for i in insts if i.rle is not None)
    poly = next(i for i in insts if i.rle is None)
    assert len(poly.polygons) == 1  # the triangle was not touched
    m = mask_of(masked)
    assert not m[150, 160] and not m[145:155, 155:165].any()  # the hole
    for y, x in ((150, 130), (150, 190), (120, 160), (180, 160), (90, 90), (210, 230)):
        assert m[y, x], (x, y)  # the ring around it and the square's corners
    square_px = np.zeros_like(m)
    square_px[80:220, 80:240] = True
    want = square_px & ~capsules([((160.0, 150.0), (160.0, 150.0))], 15)
    assert iou(m, want) >= 0.95

    with zipfile.ZipFile(io.BytesIO(export.export_coco_zip(pt.ws, pt.slug))) as zf:
        coco = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith(".json"))))
    anns = [a for a in coco["annotations"] if a["image_id"] == image_id]
    rle_anns = [a for a in anns if isinstance(a["segmentation"], dict)]
    poly_anns = [a for a in anns if isinstance(a["segmentation"], list)]
    assert len(rle_anns) == 1 and len(poly_anns) == 1  # RLE for the shape with a hole, polygons otherwise
    seg = rle_anns[0]["segmentation"]
    exported = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
    assert np.array_equal(exported.astype(bool), m)
    assert rle_anns[0]["area"] == m.sum()


def test_shift_brush_adds_a_second_part(pt: Painter) -> None:
    image_id = pt.fresh_image()
    pt.page.keyboard.press("b")
    pt.set_radius(8)
    pt.stroke([(60.0, 60.0), (100.0, 60.0)])
    [one] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].rle is not None, "first part")
    pt.stroke([(300.0, 220.0), (340.0, 240.0)], shift=True)  # far from it, with Shift: the same shape
    [both] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].area > one.area + 200, "second part")
    assert both.id == one.id
    m = mask_of(both)
    assert m[60, 80] and m[230, 320] and not m[150, 200]
    # without Shift, a stroke away from the selected shape starts a new one
    pt.stroke([(200.0, 150.0), (210.0, 150.0)])
    insts = pt.wait(image_id, lambda v: len(v) == 2, "a new shape")
    assert sorted(i.id == one.id for i in insts) == [False, True]


def test_part_mode_adds_a_polygon_part_to_the_selected_shape(pt: Painter) -> None:
    image_id = pt.fresh_image()
    first = [(40.0, 40.0), (120.0, 40.0), (80.0, 110.0)]
    pt.polygon(first)
    [one] = pt.wait(image_id, lambda v: len(v) == 1, "a triangle")
    pt.page.keyboard.press("v")
    to_client, _ = view_mapping(pt.page)
    pt.page.mouse.click(*to_client(80.0, 65.0))  # select it
    pt.page.keyboard.press("p")
    pt.page.keyboard.press("Shift+N")  # part mode
    second = [(250.0, 150.0), (330.0, 150.0), (290.0, 230.0)]
    pt.polygon(second)
    [both] = pt.wait(image_id, lambda v: len(v) == 1 and len(v[0].polygons) == 2, "two parts")
    assert both.id == one.id
    for got, want in zip(both.polygons, (first, second), strict=True):
        assert len(got) == 2 * len(want)
        assert all(abs(g - w) <= 1.0 for g, w in zip(got, [c for q in want for c in q], strict=True))
    pt.page.keyboard.press("Shift+N")  # part mode off: the next polygon is a shape of its own
    pt.polygon([(250.0, 40.0), (330.0, 40.0), (290.0, 100.0)])
    pt.wait(image_id, lambda v: len(v) == 2, "a separate triangle")


def test_a_stored_mask_with_a_hole_is_shown_and_painted_on(pt: Painter) -> None:
    from workbench.domain import Instance
    from workbench.geometry import mask_to_rle
    from workbench.services import annotate

    image_id = pt.ids[pt.at + 1]
    ring = np.zeros((SIZE[1], SIZE[0]), dtype=np.uint8)
    ring[100:200, 100:200] = 1
    ring[130:170, 130:170] = 0
    loaded = annotate.load_image(pt.ws, pt.slug, image_id)
    annotate.save_image(
        pt.ws,
        pt.slug,
        image_id,
        [Instance(category="b", rle=mask_to_rle(ring))],
        expected_version=loaded.version,
    )
    assert pt.fresh_image() == image_id
    canvas = pt.page.locator(".wb-maskcv")
    canvas.wait_for()
    assert canvas.evaluate("c => [c.width, c.height]") == [100, 100]
    # drawn where the mask is: its box on screen is the natural box mapped by the view
    to_client, _ = view_mapping(pt.page)
    box = pt.page.locator(".wb-maskfo").bounding_box()
    (x0, y0), (x1, y1) = to_client(100, 100), to_client(200, 200)
    assert max(abs(box["x"] - x0), abs(box["y"] - y0), abs(box["x"] + box["width"] - x1)) <= 1.5
    assert abs(box["y"] + box["height"] - y1) <= 1.5
    pt.page.keyboard.press("b")
    pt.set_radius(6)
    pt.stroke([(20.0, 20.0), (30.0, 20.0)])  # nothing selected: a new shape of the current class
    pt.wait(image_id, lambda v: len(v) == 2, "a new shape")
    pt.page.keyboard.press("Control+z")
    pt.wait(image_id, lambda v: len(v) == 1, "undone")
    pt.page.locator('.wb-list li[data-i="0"]').click()  # select the stored mask
    pt.stroke([(195.0, 150.0), (240.0, 150.0)])  # starts on it: paints into it, the hole stays
    [inst] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].area > ring.sum(), "painted on")
    m = mask_of(inst)
    assert inst.category == "b" and not m[150, 150] and m[150, 230] and m[110, 110]
    assert np.array_equal(m[100:200, 100:200] | ring[100:200, 100:200].astype(bool), m[100:200, 100:200])
    # erasing every pixel deletes the shape
    pt.page.keyboard.press("e")
    pt.set_radius(150)
    pt.stroke([(170.0, 150.0)])
    pt.wait(image_id, lambda v: v == [], "erased away")


def shown_mask(pt: Painter) -> np.ndarray:
    """H x W mask of the pixels the page shows for its one mask shape (its canvas, where it lies)."""
    fo = pt.page.locator(".wb-maskfo")
    x, y = (int(float(fo.get_attribute(k) or 0)) for k in ("x", "y"))
    w, h, alpha = pt.page.locator(".wb-maskcv").evaluate(
        "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
        ".filter((_, i) => i % 4 === 3))]"
    )
    out = np.zeros((SIZE[1], SIZE[0]), dtype=bool)
    out[y : y + h, x : x + w] = np.asarray(alpha, dtype=np.uint8).reshape(h, w) > 0
    return out


def test_strokes_into_a_growing_mask_store_exactly_the_pixels_painted(pt: Painter) -> None:
    # A save encodes only the columns a stroke touched (mask.js keeps each column's runs): after
    # strokes that grow the mask up, left, right and down, an eraser stroke, an undo (the runs read
    # again from the stored crop) and a stroke after it, the store holds exactly the pixels shown.
    image_id = pt.fresh_image()
    pt.page.keyboard.press("b")
    pt.set_radius(9)
    pt.stroke([(200.0, 150.0), (230.0, 170.0)])
    [first] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].rle is not None, "first stroke")
    areas = [first.area]
    for path in (
        [(60.0, 40.0), (90.0, 60.0)],
        [(330.0, 260.0), (360.0, 230.0)],
        [(90.0, 60.0), (330.0, 250.0)],
    ):
        pt.stroke(path, shift=True)
        [grown] = pt.wait(image_id, lambda v, a=areas[-1]: len(v) == 1 and v[0].area > a, "a Shift stroke")
        areas.append(grown.area)
        assert grown.id == first.id
    assert np.array_equal(mask_of(grown), shown_mask(pt))
    pt.page.keyboard.press("e")
    pt.stroke([(205.0, 151.0), (205.0, 100.0), (205.0, 200.0)])  # from on it, across: cuts it in two
    [cut] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].area < areas[-1], "erased across")
    m = mask_of(cut)
    assert np.array_equal(m, shown_mask(pt)) and not m[155, 205] and m[170, 230] and m[50, 75] and m[60, 90]
    pt.page.keyboard.press("Control+z")
    pt.wait(image_id, lambda v: len(v) == 1 and v[0].area == areas[-1], "undone")
    pt.page.keyboard.press("b")
    pt.stroke([(40.0, 280.0), (60.0, 290.0)], shift=True)
    [last] = pt.wait(image_id, lambda v: len(v) == 1 and v[0].area > areas[-1], "a stroke after the undo")
    m = mask_of(last)
    assert np.array_equal(m, shown_mask(pt)) and m[285, 50] and m[155, 205]
    want = capsules(
        [
            ((200.0, 150.0), (230.0, 170.0)),
            ((60.0, 40.0), (90.0, 60.0)),
            ((330.0, 260.0), (360.0, 230.0)),
            ((90.0, 60.0), (330.0, 250.0)),
            ((40.0, 280.0), (60.0, 290.0)),
        ],
        9,
    )
    assert iou(m, want) >= 0.95
