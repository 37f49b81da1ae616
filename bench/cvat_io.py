"""Reading a CVAT for images 1.1 XML file: ours beside the XML parse floor and datumaro on the same file.

A file of N images x K shapes (default 500 x 40: polygons, with every tenth a mask in CVAT's RLE and
every fifth a box) is written with empty image files beside it; then we time
  floor:    ``xml.etree.ElementTree.fromstring`` of the bytes (no validation, no geometry);
  ours:     ``formats.cvat.load_cvat`` (safe parse, validation, clipping, areas, masks to RLE);
  datumaro: ``Dataset.import_from(path, "cvat")`` and every annotation touched (masks decoded),
            in a subprocess of ``WORKBENCH_PEER_PYTHON`` where it is set (datumaro is no dependency).
Run: python bench/cvat_io.py [--images N] [--shapes K]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.formats.cvat import load_cvat  # noqa: E402
from workbench.formats.cvat_parts import mask_to_cvat_rle  # noqa: E402

PEER = """
import sys, time
import datumaro as dm
t = time.perf_counter()
ds = dm.Dataset.import_from(sys.argv[1], "cvat")
n = 0
for item in ds:
    for a in item.annotations:
        if a.type.name == "mask":
            a.image.sum()
        n += 1
print(time.perf_counter() - t, n)
"""


def make_file(folder: Path, images: int, shapes: int) -> Path:
    rng = np.random.default_rng(0)
    blob = np.zeros((40, 40), dtype=np.uint8)
    blob[5:35, 8:30] = 1
    blob[15:20, 12:18] = 0
    (folder / "images").mkdir()
    body = []
    for i in range(images):
        (folder / "images" / f"img{i}.jpg").write_bytes(b"")
        parts = []
        for j in range(shapes):
            x, y = rng.uniform(40, 560), rng.uniform(40, 400)
            if j % 10 == 9:
                full = np.zeros((480, 640), dtype=np.uint8)
                full[int(y) : int(y) + 40, int(x) : int(x) + 40] = blob
                counts, (left, top, w, h) = mask_to_cvat_rle(full)
                parts.append(
                    f'<mask label="c{j % 4}" source="manual" occluded="0" rle="{", ".join(map(str, counts))}" '
                    f'left="{left}" top="{top}" width="{w}" height="{h}" z_order="0"></mask>'
                )
            elif j % 5 == 4:
                parts.append(
                    f'<box label="c{j % 4}" source="manual" occluded="0" xtl="{x:.2f}" ytl="{y:.2f}" '
                    f'xbr="{x + 30:.2f}" ybr="{y + 20:.2f}" z_order="0"></box>'
                )
            else:
                pts = ";".join(
                    f"{x + 25 * math.cos(k / 3):.2f},{y + 18 * math.sin(k / 3):.2f}" for k in range(19)
                )
                parts.append(
                    f'<polygon label="c{j % 4}" source="manual" occluded="0" points="{pts}" z_order="{j % 3}">'
                    f'<attribute name="kind">a</attribute></polygon>'
                )
        body.append(f'<image id="{i}" name="img{i}.jpg" width="640" height="480">{"".join(parts)}</image>')
    labels = "".join(
        f"<label><name>c{k}</name><type>any</type><attributes><attribute><name>kind</name>"
        "<mutable>False</mutable><input_type>text</input_type><default_value></default_value>"
        "<values></values></attribute></attributes></label>"
        for k in range(4)
    )
    xml = f"<annotations><version>1.1</version><meta><task><labels>{labels}</labels></task></meta>{''.join(body)}</annotations>"
    path = folder / "annotations.xml"
    path.write_text(xml)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--shapes", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_file(Path(tmp), args.images, args.shapes)
        data = path.read_bytes()
        t = time.perf_counter()
        ET.fromstring(data)
        floor = time.perf_counter() - t
        t = time.perf_counter()
        ds = load_cvat(path)
        ours = time.perf_counter() - t
        n = ds.num_instances
        print(
            f"{args.images} images x {args.shapes} shapes, {len(data) / 1e6:.1f} MB, load {os.getloadavg()[0]:.1f}"
        )
        print(f"  ElementTree.fromstring  {floor:7.2f} s")
        print(
            f"  ours (load_cvat)        {ours:7.2f} s   {n} instances   {ours / floor:5.1f}x the parse floor"
        )
        peer = os.environ.get("WORKBENCH_PEER_PYTHON")
        if not peer:
            print("  datumaro                (WORKBENCH_PEER_PYTHON not set)")
            return
        out = subprocess.run([peer, "-c", PEER, str(path)], capture_output=True, text=True, check=True)
        dm_s, dm_n = out.stdout.split()
        print(
            f"  datumaro import_from    {float(dm_s):7.2f} s   {dm_n} annotations   ours / datumaro {ours / float(dm_s):.2f}"
        )


if __name__ == "__main__":
    main()
