"""Nothing is read from outside the dataset, and one odd file is skipped, never a hang or an abort (issue 10).

Each class is tried with generated variants through the real command line: image paths in COCO
and LabelMe files that are absolute, climb out with ``..`` (also ``..\\``), are URL-encoded or go
through a linked folder; named pipes, sockets and devices given as archives or annotation files;
link loops, dangling links and links to a parent folder at several depths; file names that are not
UTF-8 in folders and zips; zips inside zips; JSON nested a million deep in every JSON reader.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.reliability

# ----------------------------------------------------------------------------------------- helpers


def _cli(
    ws_dir: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``workbench --workspace WS ARGS`` in a child process; a hang fails the test at ``timeout``."""
    env = {**os.environ, "WORKBENCH_OFFLINE": "1", **(env or {})}
    env.pop("WORKBENCH_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "workbench.cli", "--workspace", str(ws_dir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def _ok(proc: subprocess.CompletedProcess) -> str:
    """The command succeeded without a traceback; its stdout."""
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The command failed with status 1 and one line on stderr holding every needle."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _skipped(out: str) -> dict[str, str]:
    """``name -> reason`` of the report's ``skipped NAME: REASON`` lines."""
    found = {}
    for line in out.splitlines():
        if line.startswith("  skipped "):
            name, _, reason = line[len("  skipped "):].partition(": ")
            found[name] = reason
    return found


def _png_bytes(seed: int, w: int = 16, h: int = 12) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _png(path: Path | bytes, seed: int, w: int = 16, h: int = 12) -> None:
    """A small real PNG; ``path`` may be bytes (a name that is not UTF-8)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(_png_bytes(seed, w, h))


def _stats(ws_dir: Path) -> dict:
    from workbench.services.dataset import project_stats
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws_dir)
    try:
        return project_stats(w, "p")
    finally:
        w.close()


def _stored_digests(ws_dir: Path) -> set[str]:
    """sha256 of every file stored under the workspace's project folders."""
    return {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in ws_dir.rglob("*")
        if p.is_file() and p.suffix.lower() in {".png", ".jpg", ".webp", ".bmp"}
    }


@pytest.fixture
def h7_ws(tmp_path: Path) -> Path:
    """A workspace folder with an empty project ``p``, made in this process."""
    from workbench.services.projects import create_project
    from workbench.services.workspace import open_workspace

    w = open_workspace(tmp_path / "ws")
    try:
        create_project(w, "P")
    finally:
        w.close()
    return tmp_path / "ws"


@pytest.fixture
def h7_secret(tmp_path: Path) -> Path:
    """An image outside every dataset folder: no import may read it."""
    path = tmp_path / "outside" / "secret.png"
    _png(path, seed=999)
    return path


def _escaping_names(secret: Path, depth: int) -> dict[str, str]:
    """Variant -> a name that leads from a folder ``depth`` levels inside the dataset to ``secret``."""
    up = "../" * depth
    return {
        "absolute": str(secret),
        "dot-dot": f"{up}outside/secret.png",
        "dot-dot deeper than the root": "../" * (depth + 3) + str(secret).lstrip("/"),
        "windows dot-dot": f"{up}outside/secret.png".replace("/", "\\"),
        "url-encoded dot-dot": f"{up}outside/secret.png".replace("../", "%2e%2e%2f"),
        "url-encoded windows": f"{up}outside/secret.png".replace("../", "%2E%2E%5C"),
        "file url": "file://" + str(secret),
        "in and out again": f"images/{up}../outside/secret.png",
        "linked folder": "link/secret.png",
    }


def _coco_file(path: Path, names: list[str]) -> Path:
    ims = [{"id": i + 1, "file_name": n, "width": 16, "height": 12} for i, n in enumerate(names)]
    anns = [
        {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, 6, 6],
         "segmentation": [[1, 1, 7, 1, 7, 7, 1, 7]]}
        for i in range(len(names))
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": ims, "annotations": anns, "categories": [{"id": 1, "name": "cat"}]}))
    return path


def _labelme_file(path: Path, image_path: str) -> Path:
    shape = {"label": "dog", "points": [[1, 1], [8, 1], [8, 8]], "shape_type": "polygon"}
    obj = {"shapes": [shape], "imagePath": image_path, "imageWidth": 16, "imageHeight": 12}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


# --------------------------------------------------------------- files outside the dataset are read


@pytest.mark.parametrize("layout", ["datumaro", "images-dir"])
def test_coco_file_names_outside_the_dataset_are_skipped_and_never_read(
    tmp_path: Path, h7_ws: Path, h7_secret: Path, layout: str
) -> None:
    root = tmp_path / "ds"
    if layout == "datumaro":
        coco, images, args = root / "annotations" / "instances_train.json", root / "images" / "train", []
        depth = 3  # images/train -> ds -> tmp_path
    else:
        coco, images = tmp_path / "elsewhere" / "c.json", root
        args, depth = ["--images-dir", str(root)], 1
    _png(images / "a.png", seed=1)
    _png(images / "sub" / "b.png", seed=2)
    os.symlink(h7_secret.parent, images / "link")
    bad = _escaping_names(h7_secret, depth)
    _coco_file(coco, ["a.png", "sub/../sub/b.png", *bad.values()])

    out = _ok(_cli(h7_ws, "import", "coco", "p", str(coco), *args))

    skipped = _skipped(out)
    for variant, name in bad.items():
        assert name in skipped, (variant, out)
        assert "leads outside the folder" in skipped[name] and str(coco) in skipped[name], (variant, skipped[name])
    assert _stats(h7_ws)["images"] == 2 and _stats(h7_ws)["annotations"] == 2
    assert hashlib.sha256(h7_secret.read_bytes()).hexdigest() not in _stored_digests(h7_ws)


def test_labelme_image_paths_outside_the_folder_are_skipped_and_never_read(
    tmp_path: Path, h7_ws: Path, h7_secret: Path
) -> None:
    root = tmp_path / "lm"
    _png(root / "ok.png", seed=3)
    _png(root / "sub" / "deep.png", seed=4)
    os.symlink(h7_secret.parent, root / "sub" / "link")
    _labelme_file(root / "ok.json", "ok.png")
    _labelme_file(root / "sub" / "deep.json", "deep.png")
    _labelme_file(root / "sub" / "up.json", "../ok.png")  # climbs, but stays inside: imported
    bad = _escaping_names(h7_secret, 2)  # from lm/sub to tmp_path
    for n, name in enumerate(bad.values()):
        _labelme_file(root / "sub" / f"bad{n}.json", name)

    out = _ok(_cli(h7_ws, "import", "labelme", "p", str(root)))

    skipped = _skipped(out)
    for variant, name in bad.items():
        assert name in skipped, (variant, out)
        assert "leads outside the folder" in skipped[name] and "imagePath in" in skipped[name], variant
    assert _stats(h7_ws)["images"] == 2
    assert hashlib.sha256(h7_secret.read_bytes()).hexdigest() not in _stored_digests(h7_ws)


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_an_import_whose_every_image_leads_outside_changes_nothing(
    tmp_path: Path, h7_ws: Path, h7_secret: Path, fmt: str
) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    os.symlink(h7_secret.parent, root / "link")
    bad = list(_escaping_names(h7_secret, 1).values())
    if fmt == "coco":
        given = _coco_file(root / "c.json", bad)
    else:
        for n, name in enumerate(bad):
            _labelme_file(root / f"{n}.json", name)
        given = root
    before = _stats(h7_ws)

    proc = _cli(h7_ws, "import", fmt, "p", str(given))
    if fmt == "coco":  # 0 of N images: the run fails, saying why (labelme reports and exits 0)
        out = proc.stdout
        _one_line_error(proc, f"0 of {len(bad)} images imported", "leads outside the folder")
    else:
        out = _ok(proc)

    assert f"0 images imported, {len(bad)} files skipped" in out, out
    assert _stats(h7_ws) == before  # no class either: classes come only with their images


class _Upload:
    """What the browser hands the UI: a name and the bytes."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def test_an_uploaded_coco_zip_resolves_image_paths_inside_the_archive_only(
    ws, project: str, h7_secret: Path  # noqa: ANN001
) -> None:
    from workbench.services.uploads import import_annotation_upload

    names = ["../images/a.png", "../../outside/secret.png", str(h7_secret), "..\\..\\outside\\secret.png"]
    ims = [{"id": i + 1, "file_name": n, "width": 16, "height": 12} for i, n in enumerate(names)]
    anns = [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, 6, 6]} for i in range(len(names))]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("annotations/instances.json", json.dumps(
            {"images": ims, "annotations": anns, "categories": [{"id": 1, "name": "cat"}]}))
        zf.writestr("images/a.png", _png_bytes(700))

    report = import_annotation_upload(ws, project, "coco", _Upload("export.zip", buf.getvalue()))

    assert report.imported == ["../images/a.png"]
    assert {s.name for s in report.skipped} == set(names[1:])
    assert all("leads outside the folder export.zip" in s.reason for s in report.skipped), report.skipped


@pytest.mark.parametrize(
    ("name", "inside"),
    [
        ("a.png", True),
        ("sub/../a.png", True),
        ("sub\\..\\a.png", True),
        ("sub%2F..%2Fa.png", True),
        ("../ds/a.png", True),  # out and back in by name: the same file inside
        ("../a.png", False),
        ("..\\a.png", False),
        ("%2e%2e/a.png", False),
        ("%252e%252e/a.png", None),  # encoded twice: a name inside that is not there
        ("/a.png", False),
        ("C:\\a.png", None),
        ("file:///a.png", False),
    ],
)
def test_dataset_root_resolves_every_reading_of_a_name_inside_only(
    tmp_path: Path, name: str, inside: bool | None
) -> None:
    from workbench.formats.paths import DatasetRoot

    root = tmp_path / "ds"
    _png(root / "a.png", seed=5)
    _png(tmp_path / "a.png", seed=6)
    (root / "sub").mkdir()
    found = DatasetRoot(root).resolve(root, name)
    if inside:
        assert found.path == root / "a.png" and found.escapes is None
    elif inside is False:
        assert found.path is None and found.escapes is not None and str(root) in found.escapes
    else:
        assert found.path is None and found.escapes is None


def test_coco_file_names_naming_special_files_inside_are_skipped_with_their_kind(
    tmp_path: Path, h7_ws: Path
) -> None:
    root = tmp_path / "ds"
    _png(root / "ok.png", seed=20)
    os.mkfifo(root / "pipe.png")
    (root / "folder.png").mkdir()
    os.symlink("ok.png", root / "link.png")
    coco = _coco_file(root / "c.json", ["ok.png", "pipe.png", "folder.png", "link.png"])

    out = _ok(_cli(h7_ws, "import", "coco", "p", str(coco), timeout=30))

    skipped = _skipped(out)
    assert "not a regular file (named pipe)" in skipped["pipe.png"]
    assert "not a regular file (folder)" in skipped["folder.png"]
    assert "link.png" not in skipped and "  duplicate link.png" in out  # a link to a regular file is followed
    assert _stats(h7_ws)["images"] == 1


# ------------------------------------------------------------------ pipes, sockets and devices


def _make_special(path: Path, kind: str, stack: contextlib.ExitStack) -> bool:
    """Make ``path`` a named pipe, a socket or a character device; False where that is not allowed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        if len(os.fsencode(path)) > 100:  # AF_UNIX's limit
            return False
        sock = stack.enter_context(socket.socket(socket.AF_UNIX))
        sock.bind(str(path))
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers
        except OSError:  # needs CAP_MKNOD
            return False
    return True


@contextlib.contextmanager
def _special(path: Path, kind: str) -> Iterator[Path]:
    """``path`` made a special file of ``kind`` for the block (the test skips where it cannot be)."""
    with contextlib.ExitStack() as stack:
        if not _make_special(path, kind, stack):
            pytest.skip(f"cannot make a {kind} at {path} here (AF_UNIX path length, or no CAP_MKNOD)")
        yield path


KIND_WORDS = {"fifo": "named pipe", "socket": "socket", "device": "device"}


def test_special_files_named_as_archives_are_skipped_and_the_lock_is_free(tmp_path: Path, h7_ws: Path) -> None:
    good = tmp_path / "in" / "good.png"
    _png(good, seed=7)
    with contextlib.ExitStack() as stack:
        made = [k for k in KIND_WORDS if _make_special(tmp_path / "in" / f"{k}.zip", k, stack)]
        assert "fifo" in made
        paths = [str(tmp_path / "in" / f"{k}.zip") for k in made]
        out = _ok(_cli(h7_ws, "import", "images", "p", *paths, str(good), timeout=30))
        skipped = _skipped(out)
        for kind in made:
            assert f"not a regular file ({KIND_WORDS[kind]})" in skipped[f"{kind}.zip"], out
        # the import lock was released: the next import into the project runs at once
        _png(tmp_path / "in" / "next.png", seed=8)
        _ok(_cli(h7_ws, "import", "images", "p", str(tmp_path / "in" / "next.png"), timeout=30))
    assert _stats(h7_ws)["images"] == 2


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [("fifo", "coco"), ("socket", "labelme"), ("device", "coco"), ("fifo", "coco folder"), ("fifo", "labelme folder")],
)
def test_special_files_given_as_annotation_files_are_refused_in_one_line(
    tmp_path: Path, h7_ws: Path, kind: str, fmt: str
) -> None:
    if fmt == "coco folder":  # a datumaro folder whose split file is a pipe: the folder is all or nothing
        target, given = tmp_path / "ds" / "annotations" / "instances_train.json", tmp_path / "ds"
        fmt = "coco"
    elif fmt == "labelme folder":  # its only .json a pipe: refused, saying why none was read
        target, given = tmp_path / "lm" / "ann.json", tmp_path / "lm"
        fmt = "labelme"
    else:
        target = given = tmp_path / "ann.json"
    with _special(target, kind) as special:
        _one_line_error(
            _cli(h7_ws, "import", fmt, "p", str(given), timeout=30), str(special), "not a regular file"
        )
    assert _stats(h7_ws)["images"] == 0


def test_special_files_in_a_labelme_folder_are_skipped_and_the_rest_imports(
    tmp_path: Path, h7_ws: Path
) -> None:
    root = tmp_path / "lm"
    _png(root / "ok.png", seed=9)
    _labelme_file(root / "ok.json", "ok.png")
    os.mkfifo(root / "pipe.json")
    (root / "deeper").mkdir()
    os.mkfifo(root / "deeper" / "pipe2.json")
    os.symlink("loop.json", root / "loop.json")
    os.symlink("nowhere.json", root / "deeper" / "dangling.json")

    out = _ok(_cli(h7_ws, "import", "labelme", "p", str(root), timeout=30))

    skipped = _skipped(out)
    assert "named pipe" in skipped[str(root / "pipe.json")]
    assert "named pipe" in skipped[str(root / "deeper" / "pipe2.json")]
    assert "symbolic links" in skipped[str(root / "loop.json")]
    assert "not found" in skipped[str(root / "deeper" / "dangling.json")]
    assert _stats(h7_ws)["images"] == 1


# ------------------------------------------------------------------- links inside scanned folders


def test_link_loops_dangling_links_and_parent_links_are_skipped_and_the_rest_imports(
    tmp_path: Path, h7_ws: Path
) -> None:
    root = tmp_path / "f"
    expected: dict[str, str] = {}
    seed = 10
    for depth in range(3):
        rel = "/".join(f"d{i}" for i in range(depth))
        folder = root / rel if rel else root
        lead = f"{rel}/" if rel else ""
        for n in range(2):
            _png(folder / f"img{n}.png", seed=seed)
            seed += 1
        os.symlink("self.png", folder / "self.png")
        os.symlink("b", folder / "a")
        os.symlink("a", folder / "b")
        os.symlink("nowhere.png", folder / "dangling.png")
        os.symlink("no/such/dir", folder / "dangling_dir")
        os.symlink(".", folder / "here")
        os.symlink("../" * depth or ".", folder / "to_root")
        expected.update({
            f"{lead}self.png": "symbolic link loop",
            f"{lead}a": "symbolic link loop",
            f"{lead}b": "symbolic link loop",
            f"{lead}dangling.png": "dangling symbolic link",
            f"{lead}dangling_dir": "dangling symbolic link",
            f"{lead}here": "its own folder or one above it",
            f"{lead}to_root": "its own folder or one above it",
        })
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "d0" / "pipe.png")
        expected["d0/pipe.png"] = "not a regular file (named pipe)"

    out = _ok(_cli(h7_ws, "import", "images", "p", str(root), timeout=30))

    skipped = _skipped(out)
    for name, reason in expected.items():
        assert name in skipped and reason in skipped[name], (name, out)
    assert _stats(h7_ws)["images"] == 6


def test_a_linked_split_folder_of_a_coco_folder_is_not_read(tmp_path: Path, h7_ws: Path) -> None:
    root, other = tmp_path / "ds", tmp_path / "elsewhere" / "val"
    _png(root / "train" / "a.png", seed=40)
    _coco_file(root / "train" / "_annotations.coco.json", ["a.png"])
    _png(other / "b.png", seed=41)
    _coco_file(other / "_annotations.coco.json", ["b.png"])
    os.symlink(other, root / "val")
    os.symlink("..", root / "up")
    os.symlink("loop", root / "loop")

    _ok(_cli(h7_ws, "import", "coco", "p", str(root), timeout=30))

    assert _stats(h7_ws)["images"] == 1


# ----------------------------------------------------------------------------- names not UTF-8


def _zip_with_raw_name(path: Path, good: dict[str, bytes], raw_name: bytes, data: bytes, *, utf8_flag: bool) -> None:
    """A zip whose last entry's stored name is ``raw_name`` (bytes that may not be UTF-8)."""
    # zipfile sets the UTF-8 flag for a name that is not ASCII: "é" (2 bytes) makes it set it
    placeholder = "\u00e9" + "Z" * (len(raw_name) - 2) if utf8_flag else "Z" * len(raw_name)
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in good.items():
            zf.writestr(name, content)
        zf.writestr(placeholder, data)
    path.write_bytes(path.read_bytes().replace(placeholder.encode(), raw_name))


def test_file_names_that_are_not_utf8_import_under_escaped_names(tmp_path: Path, h7_ws: Path) -> None:
    root = os.fsencode(tmp_path / "f")
    for n in range(70):  # more than one commit batch of 64
        _png(root + b"/good%03d.png" % n, seed=100 + n)
    raw = [b"/caf\xe9.png", b"/\xff\xfe.png", b"/sub\xe9/x\xc3(.png", b"/deep/er/\x80.png"]
    for n, name in enumerate(raw):
        _png(root + name, seed=200 + n)
    cp437 = tmp_path / "cp437.zip"
    _zip_with_raw_name(cp437, {"z_ok.png": _png_bytes(300)}, b"caf\x82.png", _png_bytes(301), utf8_flag=False)
    lying = tmp_path / "lying.zip"
    _zip_with_raw_name(lying, {"l_ok.png": _png_bytes(302)}, b"b\xff\xfed.png", _png_bytes(303), utf8_flag=True)

    out = _ok(_cli(h7_ws, "import", "images", "p", os.fsdecode(root), str(cp437), str(lying), timeout=60))

    for name in raw:
        shown = name[1:].decode("utf-8", "backslashreplace")
        assert f"note: {shown}: the file name is not UTF-8; imported under this name" in out, (shown, out)
    reason = _skipped(out)["lying.zip"]
    assert "b\\xff\\xfed.png" in reason and "marked UTF-8 but is not" in reason
    assert _stats(h7_ws)["images"] == 70 + len(raw) + 2  # the cp437 archive reads as cp437, like unzip


def test_non_utf8_folder_names_are_reported_escaped_even_on_a_strict_terminal(tmp_path: Path, h7_ws: Path) -> None:
    sub = os.fsencode(tmp_path / "lm") + b"/\xe9t\xe9"
    _png(sub + b"/a.png", seed=30)
    shapes = [{"label": "dog", "points": [[1, 1], [8, 1], [8, 8]]}, {"label": "l", "points": [[1, 1], [2, 2]], "shape_type": "line"}]
    with open(sub + b"/a.json", "w") as f:
        json.dump({"shapes": shapes, "imagePath": "a.png", "imageWidth": 16, "imageHeight": 12}, f)

    out = _ok(_cli(h7_ws, "import", "labelme", "p", str(tmp_path / "lm"), env={"PYTHONIOENCODING": "utf-8:strict"}))

    assert "lm/\\xe9t\\xe9/a.json: shape 1 ('l')" in out, out
    assert _stats(h7_ws)["images"] == 1


def test_lone_surrogate_escapes_in_a_labelme_file_are_one_line(tmp_path: Path, h7_ws: Path) -> None:
    """``\\udce9`` is how a tool writes a non-UTF-8 file name into JSON; no store can hold it."""
    raw = os.fsencode(tmp_path / "lm") + b"/caf\xe9.png"
    _png(raw, seed=31)
    path = tmp_path / "lm" / "a.json"
    path.write_text('{"shapes": [{"label": "dog", "points": [[1, 1], [8, 1], [8, 8]]}], '
                    '"imagePath": "caf\\udce9.png", "imageWidth": 16, "imageHeight": 12}')
    _one_line_error(_cli(h7_ws, "import", "labelme", "p", str(path)), str(path), "lone UTF-16 surrogate")
    assert _stats(h7_ws)["images"] == 0


# ------------------------------------------------------------------------------- a zip in a zip


def test_zip_inside_a_zip_is_reported_as_skipped_and_the_rest_imports(tmp_path: Path, h7_ws: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("inside.png", _png_bytes(400))
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("a.png", _png_bytes(401))
        zf.writestr("inner.zip", inner.getvalue())
        zf.writestr("sub/deeper/INNER.ZIP", inner.getvalue())
        zf.writestr("sub/b.png", _png_bytes(402))

    out = _ok(_cli(h7_ws, "import", "images", "p", str(outer), timeout=30))

    skipped = _skipped(out)
    for name in ("outer.zip:inner.zip", "outer.zip:sub/deeper/INNER.ZIP"):
        assert "zip archive inside a zip archive, not opened" in skipped[name], out
    assert _stats(h7_ws)["images"] == 2


# ------------------------------------------------------------------------ JSON nested too deeply


def _deep(kind: str, depth: int = 1_000_000) -> str:
    if kind == "arrays":
        return "[" * depth + "]" * depth
    if kind == "objects":
        return '{"a":' * depth + "1" + "}" * depth
    # a valid-looking file whose one field goes deep
    return '{"images": [], "categories": [], "shapes": ' + "[" * depth + "]" * depth + "}"


def _annotated_train_image(tmp_path: Path, ws_dir: Path) -> None:
    from workbench.services.imports import import_coco
    from workbench.services.workspace import open_workspace

    _png(tmp_path / "train" / "t.png", seed=600)
    coco = _coco_file(tmp_path / "train" / "t.json", ["t.png"])
    w = open_workspace(ws_dir)
    try:
        assert import_coco(w, "p", coco, split="train").imported == ["t.png"]
    finally:
        w.close()


@pytest.mark.parametrize(
    ("reader", "kind"),
    [
        ("coco", "arrays"),
        ("labelme", "objects"),
        ("labelme folder", "in a field"),
        ("augment pipeline", "in a field"),
        ("train config", "objects"),
    ],
)
def test_json_nested_too_deeply_is_one_line_in_every_reader(
    tmp_path: Path, h7_ws: Path, reader: str, kind: str
) -> None:
    path = tmp_path / "in" / "deep.json"
    path.parent.mkdir()
    path.write_text(_deep(kind))
    if reader == "train config":  # the config is read once the project has images to train on
        _annotated_train_image(tmp_path, h7_ws)
    before = _stats(h7_ws)
    args = {
        "coco": ["import", "coco", "p", str(path)],
        "labelme": ["import", "labelme", "p", str(path)],
        "labelme folder": ["import", "labelme", "p", str(path.parent)],
        "augment pipeline": ["augment", "set", "p", "--pipeline", str(path)],
        "train config": ["train", "p", "--config", str(path)],
    }[reader]
    _one_line_error(_cli(h7_ws, *args, timeout=60), str(path), "nested too deeply")
    assert _stats(h7_ws) == before


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("coco", lambda deep: {"images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 12}],
                               "categories": [{"id": 1, "name": "cat"}],
                               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4],
                                                "attributes": deep}]}),
        ("labelme", lambda deep: {"imagePath": "a.png", "imageWidth": 16, "imageHeight": 12,
                                  "shapes": [{"label": "dog", "points": [[1, 1], [8, 1], [8, 8]],
                                              "flags": deep}]}),
    ],
)
def test_values_nested_deeper_than_the_store_takes_are_refused_in_one_line(
    tmp_path: Path, h7_ws: Path, fmt: str, body
) -> None:  # noqa: ANN001
    deep: dict = {"x": 1}
    for _ in range(400):  # parses (orjson allows 1024) but the store's JSON writer stops at 255
        deep = {"a": deep}
    _png(tmp_path / "in" / "a.png", seed=500)
    path = tmp_path / "in" / "ann.json"
    path.write_text(json.dumps(body(deep)))
    _one_line_error(_cli(h7_ws, "import", fmt, "p", str(path)), str(path), "nested too deeply")
    assert _stats(h7_ws)["images"] == 0 and _stats(h7_ws)["classes"] == {}
