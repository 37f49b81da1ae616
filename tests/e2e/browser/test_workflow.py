"""End to end in Chromium: create, upload, classes, draw, edit, keypoints, autosave, export, conflicts."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.support.browser import (
    annotator,
    client_to_natural,
    create_project,
    nav,
    needs_chromium,
    new_page,
    open_project,
    wait_for,
    wait_image_drawn,
)
from tests.support.images import png_bytes

pytestmark = [pytest.mark.browser, needs_chromium]

SIZE_A = (640, 480)
SIZE_B = (400, 300)


def _store(ui_workspace: Path):
    from workbench.services.workspace import open_workspace

    return open_workspace(ui_workspace)


def _images(ws, slug: str):
    from workbench.services import annotate

    return {im.file_name: im for im in annotate.list_images(ws, slug)}


def _instances(ws, slug: str, image_id: int):
    from workbench.services import annotate

    return annotate.load_image(ws, slug, image_id).instances


def _upload(page, tmp_path: Path, files: dict[str, bytes]) -> None:
    nav(page, "Import")
    paths = []
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        paths.append(str(p))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(paths)
    for name in files:
        page.get_by_text(name, exact=True).first.wait_for()
    page.get_by_role("button", name="Import images").click()


def _click_points(page, size_wh, pts_client):
    to_nat = client_to_natural(page, size_wh)
    out = []
    for cx, cy in pts_client:
        page.mouse.click(cx, cy)
        out.append(to_nat(cx, cy))
    return out


def _close(a, b, tol=1.0):
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_annotate_flow_exports_clicked_coordinates(browser, ui_server, ui_workspace, tmp_path):
    page = new_page(browser, ui_server.url)
    create_project(page, "Flow")

    # upload two images and two bad files: each bad file gets its own message
    _upload(
        page,
        tmp_path,
        {
            "a.png": png_bytes(SIZE_A),
            "b.png": png_bytes(SIZE_B, (30, 60, 90)),
            "broken.jpg": b"\xff\xd8\xff\xe0 this is not really a jpeg",
            "notes.txt": b"hello",
        },
    )
    page.get_by_text("2 images imported").wait_for()
    err = page.locator('[data-testid="stAlertContentError"]', has_text="files were skipped")
    assert "broken.jpg" in err.inner_text() and "notes.txt" in err.inner_text()

    # a class with keypoints; its name is markup that must show literally
    nav(page, "Classes")
    page.get_by_label("Class name").fill("<b>part</b>")
    page.get_by_label("Keypoint names (comma-separated, in placing order)").fill("tip, base")
    page.get_by_label("Skeleton pairs").fill("tip-base")
    page.get_by_role("button", name="Add class").click()
    page.get_by_text("Added class").wait_for()

    ws = _store(ui_workspace)
    imgs = _images(ws, "flow")
    a_id, b_id = imgs["a.png"].id, imgs["b.png"].id

    nav(page, "Annotate")
    assert wait_image_drawn(page) == a_id
    assert annotator(page).locator("select option").first.text_content().endswith("<b>part</b>")

    # draw a 5-vertex polygon and close it on the first vertex
    box = page.locator(".wb-svg").bounding_box()
    cx0, cy0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    clicks = [
        (cx0 - 120, cy0 - 80),
        (cx0 + 10, cy0 - 110),
        (cx0 + 130, cy0 - 40),
        (cx0 + 90, cy0 + 90),
        (cx0 - 100, cy0 + 70),
    ]
    clicks = [(round(x), round(y)) for x, y in clicks]
    nat = _click_points(page, SIZE_A, clicks)
    page.mouse.click(*clicks[0])
    insts = wait_for(lambda: _instances(ws, "flow", a_id), lambda v: len(v) == 1, what="polygon saved")
    poly = insts[0].polygons[0]
    assert len(poly) == 10
    assert _close(poly, [c for p in nat for c in p]), (poly, nat)
    assert insts[0].category == "<b>part</b>"
    assert annotator(page).locator(".wb-label").first.text_content() == "<b>part</b>"

    # select the polygon (a finished shape is not selected) and drag vertex 2 with the edit tool
    page.keyboard.press("v")
    page.mouse.click(cx0, cy0)
    annotator(page).locator("circle.wb-vertex").first.wait_for()
    target = (clicks[2][0] + 25, clicks[2][1] + 30)
    page.mouse.move(*clicks[2])
    page.mouse.down()
    page.mouse.move(target[0] - 10, target[1] - 10, steps=4)
    page.mouse.move(*target, steps=2)
    page.mouse.up()
    moved = client_to_natural(page, SIZE_A)(*target)
    insts = wait_for(
        lambda: _instances(ws, "flow", a_id),
        lambda v: len(v) == 1 and _close(v[0].polygons[0][4:6], moved),
        what="vertex moved",
    )
    assert len(insts[0].polygons[0]) == 10

    # place both keypoints on the selected instance
    page.keyboard.press("k")
    kp_clicks = [(cx0 - 20, cy0 - 10), (cx0 + 15, cy0 + 35)]
    kp_nat = _click_points(page, SIZE_A, kp_clicks)
    insts = wait_for(
        lambda: _instances(ws, "flow", a_id),
        lambda v: v and v[0].keypoints is not None and v[0].num_keypoints == 2,
        what="keypoints",
    )
    kp = insts[0].keypoints
    assert kp[2] == 2 and kp[5] == 2
    assert _close(kp[0:2], kp_nat[0]) and _close(kp[3:5], kp_nat[1])
    assert annotator(page).locator(".wb-skel").count() == 1

    # a second polygon, closed with Enter, then D: the next image
    page.keyboard.press("p")
    tri = [(cx0 + 150, cy0 + 150), (cx0 + 200, cy0 + 150), (cx0 + 175, cy0 + 200)]
    _click_points(page, SIZE_A, tri)
    page.keyboard.press("Enter")
    insts = wait_for(lambda: _instances(ws, "flow", a_id), lambda v: len(v) == 2, what="second polygon")
    assert sorted(len(i.polygons[0]) for i in insts) == [6, 10]
    page.keyboard.press("d")
    assert wait_image_drawn(page, b_id) == b_id

    # export COCO and compare with the clicks
    nav(page, "Export")
    page.get_by_role("button", name="Prepare COCO zip").click()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download").click()
    blob = Path(dl.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".json"))
        coco = json.loads(zf.read(name))
    img = next(i for i in coco["images"] if i["file_name"].endswith("a.png"))
    assert (img["width"], img["height"]) == SIZE_A
    anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
    five = next(a for a in anns if len(a["segmentation"][0]) == 10)
    expected = [c for p in nat for c in p]
    expected[4:6] = moved
    assert _close(five["segmentation"][0], expected)
    assert _close(five["keypoints"][0:2], kp_nat[0]) and five["keypoints"][2] == 2
    assert five["num_keypoints"] == 2
    cat = next(c for c in coco["categories"] if c["id"] == five["category_id"])
    assert cat["name"] == "<b>part</b>" and cat["keypoints"] == ["tip", "base"]
    page.context.close()


def test_second_tab_learns_of_the_first_and_merges_its_own_shape(browser, ui_server, ui_workspace):
    """Two tabs on one image: the second shows the first tab's shape within seconds, without a click,
    and its own new shape is merged with it (edits to different shapes never ask)."""
    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import classes, imports, projects

    ws = _store(ui_workspace)  # the upload and class pages are covered above: set up directly
    slug = projects.create_project(ws, "Shared").slug
    imports.import_images(ws, slug, [ImageSource(name="c.png", data=png_bytes(SIZE_A))])
    classes.add_category(ws, slug, Category(name="thing"))
    image_id = _images(ws, slug)["c.png"].id

    first, second = new_page(browser, ui_server.url), new_page(browser, ui_server.url)
    for page in (first, second):
        open_project(page, "Shared")
        nav(page, "Annotate")
        wait_image_drawn(page, image_id)

    def draw(page, dx):
        box = page.locator(".wb-svg").bounding_box()
        x, y = box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2
        for px, py in [(x, y), (x + 60, y), (x + 30, y + 50)]:
            page.mouse.click(px, py)
        page.keyboard.press("Enter")

    draw(first, -150)
    wait_for(lambda: _instances(ws, "shared", image_id), lambda v: len(v) == 1, what="first save")
    rows = annotator(second).locator(".wb-list li[data-i]")
    wait_for(rows.count, lambda n: n == 1, timeout_s=10, what="the first tab's shape shown in the second")
    second.get_by_text("saved elsewhere").wait_for()
    canvas_top = second.locator(".wb-svg").bounding_box()["y"]
    draw(second, 50)
    wait_for(lambda: _instances(ws, "shared", image_id), lambda v: len(v) == 2, what="merged save")
    wait_for(rows.count, lambda n: n == 2, what="both shapes in the second tab")
    wait_for(
        lambda: annotator(first).locator(".wb-list li[data-i]").count(),
        lambda n: n == 2,
        timeout_s=10,
        what="the second tab's shape shown in the first",
    )
    assert second.locator(".wb-svg").bounding_box()["y"] == canvas_top  # no message moved the canvas
    first.context.close()
    second.context.close()


def test_exporting_empty_project_says_so(browser, ui_server):
    page = new_page(browser, ui_server.url)
    create_project(page, "Empty one")
    nav(page, "Export")
    page.get_by_text("has no annotations to export yet").first.wait_for()
    page.get_by_role("button", name="Prepare COCO zip").click()
    page.locator('[data-testid="stAlertContentError"]', has_text="no annotations").wait_for()
    page.context.close()
