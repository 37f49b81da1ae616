"""First zoom to 1:1 right after opening each of several 50-MP photos in turn, in Chromium.

bench/ui_native_pixels.py's "first zoom, right after opening the image" case has two samples a run;
this repeats it over ``--images`` photos (each opened with D, then 1:1 at once: its tiles are being
cut in the background since it or the image before it was opened). The reference is the same
script run on another tree (``--repo``, e.g. a clean export of an older commit) right before or
after, on the same machine: ``python bench/ui_first_zoom.py --repo /tmp/old-tree``.
Photos are generated once into ``--cache`` (about 16 MB each).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "wb-first-zoom-photos")
    args = ap.parse_args()
    repo = args.repo.resolve()
    sys.path[:0] = [str(repo), str(repo / "bench")]
    from playwright.sync_api import sync_playwright
    from ui_native_pixels import BIG_WH, SMALL_WH, fit, one_to_one, photo_jpeg, tab, visit

    from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, UiServer, nav, open_project, wait_image_drawn
    from workbench.domain import Category
    from workbench.images.decode import ImageSource
    from workbench.services import annotate, classes, imports, projects
    from workbench.services.workspace import open_workspace

    if not CHROMIUM.exists():
        print("needs /usr/bin/chromium (apt-get install chromium)")
        return 2
    args.cache.mkdir(parents=True, exist_ok=True)

    def jpeg(size: tuple[int, int], seed: int) -> bytes:
        path = args.cache / f"{size[0]}x{size[1]}_{seed}.jpg"
        if not path.exists():
            path.write_bytes(photo_jpeg(size, seed))
        return path.read_bytes()

    zoom: list[float] = []
    opens: list[float] = []
    with tempfile.TemporaryDirectory(prefix="wb-first-zoom-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp) / "ws"
        ws = open_workspace(root)
        slug = projects.create_project(ws, "Native").slug
        srcs = [ImageSource(name="a_small.jpg", data=jpeg(SMALL_WH, 2))]
        srcs += [ImageSource(name=f"b{k}.jpg", data=jpeg(BIG_WH, 10 + k)) for k in range(args.images)]
        imports.import_images(ws, slug, srcs)
        classes.add_category(ws, slug, Category(name="thing"))
        ids = [im.id for im in annotate.list_images(ws, slug)]
        server = UiServer(root)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
                )
                page = tab(browser, server.url, False)
                open_project(page, "Native")
                nav(page, "Annotate")
                wait_image_drawn(page, ids[0])
                for k, big in enumerate(ids[1:]):
                    if k:
                        fit(page)
                    opens.append(visit(page, "d", big))
                    zoom.append(one_to_one(page, big, True))
                browser.close()
        finally:
            server.stop()
    print(f"tree {repo}, {args.images} x {BIG_WH[0]}x{BIG_WH[1]} JPEGs, ms")
    print(
        f"first zoom to 1:1 right after opening: {[round(z) for z in zoom]}, p50 {statistics.median(zoom):.0f}"
    )
    print(f"open -> editable: {[round(o) for o in opens]}, p50 {statistics.median(opens):.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
