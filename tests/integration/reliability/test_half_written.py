"""Half-written results: exports, previews and reports are all or nothing, and readable by others.

A full disk (a small tmpfs, where this machine lets us mount one), a failing source file and a
kill -9 of a real process each leave the previous export byte for byte as it was, with no hidden
leftovers once the next export of that kind has run; files and folders follow the umask.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[3]
EXPORTS = {
    "coco": ["coco"],
    "coco-copy": ["coco", "--copy-images"],
    "labelmaps-png": ["labelmaps"],
    "labelmaps-npz": ["labelmaps", "--layout", "npz"],
}


# --------------------------------------------------------------------------------------------------
# helpers


def _png(path: Path, seed: int, side: int = 48) -> Path:
    """An incompressible (noise) PNG, so that copies take real space on the small disk."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def _fill(ws, slug: str, tmp_path: Path, n_train: int = 3, n_val: int = 3) -> None:  # noqa: ANN001
    """Class ``a``; ``n_train`` + ``n_val`` annotated noise images."""
    from workbench.domain import Category, Instance
    from workbench.services import annotate, classes, imports

    classes.add_category(ws, slug, Category(name="a"))
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for i in range(n_train + n_val):
        split = "train" if i < n_train else "val"
        imports.import_images(ws, slug, [_png(src / f"im{i}.png", seed=i)], split=split)
    square = (2.0, 2.0, 20.0, 2.0, 20.0, 20.0)
    for im in annotate.list_images(ws, slug):
        annotate.save_image(ws, slug, im.id, [Instance("a", polygons=(square,))], expected_version=1)


def _cli(ws, *args: str, umask: int | None = None) -> subprocess.CompletedProcess:  # noqa: ANN001
    def pre() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--workspace", str(ws.root), *args],
        capture_output=True, text=True, cwd=REPO, timeout=120, preexec_fn=pre,
    )


def _export(ws, slug: str, kind: str, out: Path, *extra: str) -> subprocess.CompletedProcess:  # noqa: ANN001
    name, *opts = EXPORTS[kind]
    return _cli(ws, "export", name, slug, str(out), *opts, *extra)


def _export_here(ws, slug: str, kind: str, out: Path, splits: list[str] | None = None) -> None:  # noqa: ANN001
    """The same export in this process (setup and follow-ups; the CLI runs the case under test)."""
    from workbench.services import export

    if kind.startswith("coco"):
        export.export_coco(ws, slug, out, splits=splits, copy_images=kind == "coco-copy")
    else:
        export.export_labelmaps(ws, slug, out, splits=splits, layout=kind.split("-")[1])


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too) -> content hash ('dir' for folders)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _hidden(folder: Path) -> list[str]:
    """Hidden entries in and beside ``folder``: what an interrupted write leaves."""
    inside = [p.relative_to(folder).as_posix() for p in folder.rglob(".*")] if folder.is_dir() else []
    beside = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}")]
    return inside + beside


def _assert_one_line_error(res: subprocess.CompletedProcess, *needles: str) -> str:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip() and not x.startswith("export")]
    assert len(lines) == 1, res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def h9_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that can be filled in a test (skipped where mount is refused)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk case: {(res.stderr or res.stdout).strip() or res.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill_disk(mnt: Path, leave: int) -> None:
    """Write a ballast file until the disk is full, then give back ``leave`` bytes."""
    ballast = mnt / "ballast"
    with open(ballast, "ab", buffering=0) as f:
        chunk = b"\0" * 65536
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        size = f.tell()
    with open(ballast, "r+b") as f:
        f.truncate(max(0, size - leave))


# --------------------------------------------------------------------------------------------------
# full disk


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_full_disk_keeps_the_previous_export_and_names_the_export_folder(
    ws, project, tmp_path: Path, h9_tmpfs: Path, kind: str  # noqa: ANN001
) -> None:
    """Through the CLI with a few KiB left (the export fails part-way), then in this process with
    nothing left (it fails at once): one line naming the export folder; nothing there changes."""
    from workbench.domain import WorkbenchError

    _fill(ws, project, tmp_path)
    out = h9_tmpfs / "export"
    _export_here(ws, project, kind, out, ["train"])
    before = _snapshot(out)
    _fill_disk(h9_tmpfs, 4096)
    line = _assert_one_line_error(_export(ws, project, kind, out), f"error: {out}: ", "disk is full")
    assert str(ws.root) not in line  # not the source image inside the project
    assert _snapshot(out) == before
    assert _hidden(out) == []
    _fill_disk(h9_tmpfs, 0)
    with pytest.raises(WorkbenchError, match="disk is full"):
        _export_here(ws, project, kind, out)
    assert _snapshot(out) == before
    assert _hidden(out) == []
    (h9_tmpfs / "ballast").unlink()
    _export_here(ws, project, kind, out)
    assert _hidden(out) == []
    assert _snapshot(out) != before


def test_full_disk_on_a_first_export_leaves_no_folder(ws, project, tmp_path: Path, h9_tmpfs: Path) -> None:  # noqa: ANN001
    _fill(ws, project, tmp_path)
    _fill_disk(h9_tmpfs, 24 * 1024)
    out = h9_tmpfs / "new" / "export"
    _assert_one_line_error(_export(ws, project, "coco-copy", out), str(out), "disk is full")
    assert not out.exists()


def test_full_disk_keeps_the_previous_preview(tmp_path: Path, h9_tmpfs: Path) -> None:
    """The preview writer itself (computing tiles takes the augmentation stack's import, seconds)."""
    from workbench.domain import WorkbenchError
    from workbench.services import augmentation

    rng = np.random.default_rng(0)
    tiles = [(i, rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)) for i in range(4)]
    previews = h9_tmpfs / "previews"
    augmentation.write_preview(previews, tiles[:2], seed=0)
    (previews / "notes.txt").write_text("the user's own file")
    before = _snapshot(previews)
    for leave in (4096, 0):
        _fill_disk(h9_tmpfs, leave)
        with pytest.raises(WorkbenchError, match="disk is full") as err:
            augmentation.write_preview(previews, tiles, seed=7)
        assert str(err.value).startswith(f"{previews}: ") and "\n" not in str(err.value)
        assert _snapshot(previews) == before
        assert _hidden(previews) == []
        (h9_tmpfs / "ballast").unlink()
    assert len(augmentation.write_preview(previews, tiles, seed=7)) == 4
    assert sorted(p.name for p in previews.iterdir())[-1] == "notes.txt"
    assert len(list(previews.glob(augmentation.PREVIEW_GLOB))) == 4


_GT = {
    "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
    "categories": [{"id": 1, "name": "a"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16.0, "iscrowd": 0,
                     "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}],
}


def test_full_disk_keeps_the_previous_report(h9_tmpfs: Path) -> None:
    from workbench.domain import WorkbenchError
    from workbench.evaluate import evaluate_coco, write_report

    report_dir = h9_tmpfs / "eval"
    result = evaluate_coco(_GT, [])
    write_report(result, report_dir, title="first", extra={"detections.json": b"[]"})
    (report_dir / "compare-2").mkdir()
    (report_dir / "compare-2" / "report.html").write_text("a compare report stays")
    before = _snapshot(report_dir)
    _fill_disk(h9_tmpfs, 0)
    with pytest.raises(WorkbenchError, match="disk is full") as err:
        write_report(result, report_dir, title="second", extra={"detections.json": b"[1]"})
    assert str(report_dir) in str(err.value)
    assert _snapshot(report_dir) == before
    assert _hidden(report_dir) == []
    (h9_tmpfs / "ballast").unlink()
    write_report(result, report_dir, title="third", extra={"detections.json": b"[2]"})
    assert (report_dir / "detections.json").read_bytes() == b"[2]"
    assert (report_dir / "compare-2" / "report.html").exists()
    assert _hidden(report_dir) == []
    umask = os.umask(0)
    os.umask(umask)
    written = [report_dir, *(report_dir / n for n in ("metrics.json", "report.html", "detections.json"))]
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o777 & ~umask, 0o666 & ~umask}


# --------------------------------------------------------------------------------------------------
# a failure that is not the disk


def test_a_failed_copy_keeps_the_previous_export_and_names_the_missing_source(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    from workbench.services import annotate

    _fill(ws, project, tmp_path)
    out = tmp_path / "out"
    _export_here(ws, project, "coco-copy", out)
    (out / "README.txt").write_text("kept beside the export")
    before = _snapshot(out)
    last = annotate.list_images(ws, project)[-1]
    (ws.project_dir(project) / last.path).unlink()  # the last image's stored file: the copy fails late
    _assert_one_line_error(_export(ws, project, "coco-copy", out), Path(last.path).name)
    assert _snapshot(out) == before
    assert _hidden(out) == []


# --------------------------------------------------------------------------------------------------
# kill -9 of a real process mid-export

_KILLED = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from workbench.services import export
    from workbench.services.workspace import open_workspace

    ws_root, slug, kind, out, marker = sys.argv[1:]
    ws = open_workspace(Path(ws_root))

    def stall(done, total):
        if done == 2:
            Path(marker).write_text("staged")
            time.sleep(120)

    if kind == "coco":
        export.export_coco(ws, slug, Path(out), copy_images=True, progress=stall)
    else:
        export.export_labelmaps(ws, slug, Path(out), progress=stall)
    """
)


def _start_stalled(ws, slug: str, kind: str, out: Path, marker: Path) -> subprocess.Popen:  # noqa: ANN001
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(ws.root), slug, kind, str(out), str(marker)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the export never reached its second image"
        time.sleep(0.02)
    return proc


@pytest.mark.parametrize("kind", ["coco", "labelmaps"])
def test_kill_9_mid_export_keeps_the_previous_one_and_the_next_export_sweeps(
    ws, project, tmp_path: Path, kind: str  # noqa: ANN001
) -> None:
    _fill(ws, project, tmp_path)
    out = tmp_path / "out"
    cli_kind = "coco-copy" if kind == "coco" else "labelmaps-png"
    _export_here(ws, project, cli_kind, out, ["train"])
    before = _snapshot(out)
    proc = _start_stalled(ws, project, kind, out, tmp_path / "marker")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _hidden(out), "the killed export left no staging folder: the test did not kill it mid-write"
    assert {k: v for k, v in _snapshot(out).items() if not k.startswith(".")} == before
    _export_here(ws, project, cli_kind, out)
    assert _hidden(out) == []


def test_a_stage_in_use_is_not_swept_by_a_concurrent_export(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    _fill(ws, project, tmp_path)
    out = tmp_path / "out"
    proc = _start_stalled(ws, project, "coco", out, tmp_path / "marker")
    try:
        stage = [p for p in out.iterdir() if p.name.startswith(".wb-staging-")]
        assert len(stage) == 1
        _export_here(ws, project, "coco", out)
        assert stage[0].is_dir()  # still there: its writer holds the lock
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    _export_here(ws, project, "coco", out)
    assert _hidden(out) == []


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_leftovers_of_earlier_versions_are_swept_by_the_next_export(ws, project, tmp_path: Path, kind: str) -> None:  # noqa: ANN001
    """What a kill -9 left before exports were staged: atomic-write temps, ``.maps.tmp-*`` beside."""
    _fill(ws, project, tmp_path, n_val=0)
    out = tmp_path / "maps"
    (out / "annotations").mkdir(parents=True)
    (out / "annotations" / ".instances_train.json.k3j_9x2a.tmp").write_bytes(b"{half")
    (out / ".aug_000_image1_seed0.png.0a1b2c3d.tmp").write_bytes(b"half")
    for name in (".maps.tmp-abc123", ".maps.old-def456", "maps/.wb-staging-0badf00d", "maps/.wb-old-12345678"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part.png").write_bytes(b"half")
    if kind.startswith("labelmaps"):
        (out / "annotations" / ".instances_train.json.k3j_9x2a.tmp").unlink()
        (out / "annotations").rmdir()
    _export_here(ws, project, kind, out)
    assert _hidden(out) == []


def test_an_error_inside_a_staged_write_changes_nothing_and_user_files_stay(tmp_path: Path) -> None:
    """The mechanism every exporter uses: put replaces, drop removes, the rest of the folder stays."""
    from workbench.utils.staged import staged_folder

    out = tmp_path / "out"
    with staged_folder(out, what="test export") as stage:
        stage.put("a/x.txt").write_text("1")
        stage.put("stale.txt").write_text("old")
    (out / "mine.txt").write_text("the user's")
    before = _snapshot(out)
    with pytest.raises(RuntimeError), staged_folder(out, what="test export") as stage:
        stage.put("a/x.txt").write_text("2")
        stage.drop("stale.txt")
        raise RuntimeError("the exporter failed")
    assert _snapshot(out) == before and _hidden(out) == []
    with staged_folder(out, what="test export") as stage:
        stage.put("a/x.txt").write_text("2")
        stage.drop("stale.txt")
    assert set(_snapshot(out)) == {"a", "a/x.txt", "mine.txt"}
    assert (out / "a" / "x.txt").read_text() == "2" and _hidden(out) == []
    with pytest.raises(ValueError, match="inside the target"), staged_folder(out, what="test export") as stage:
        stage.put("../escape.txt")
    assert not (tmp_path / "escape.txt").exists()


# --------------------------------------------------------------------------------------------------
# permissions follow the umask


def _modes(folder: Path) -> set[tuple[str, int]]:
    return {("dir" if p.is_dir() else "file", stat.S_IMODE(p.stat().st_mode)) for p in [folder, *folder.rglob("*")]}


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_exports_and_stored_images_follow_the_umask(
    ws, project, tmp_path: Path, umask: int, file_mode: int, dir_mode: int  # noqa: ANN001
) -> None:
    from workbench.domain import Category, Instance
    from workbench.services import annotate, augmentation, classes

    classes.add_category(ws, project, Category(name="a"))
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        _png(src / f"im{i}.png", seed=i)
    assert _cli(ws, "import", "images", project, str(src), "--split", "train", umask=umask).returncode == 0
    first = annotate.list_images(ws, project)[0]
    square = (2.0, 2.0, 20.0, 2.0, 20.0, 20.0)
    annotate.save_image(ws, project, first.id, [Instance("a", polygons=(square,))], expected_version=1)
    project_dir = ws.project_dir(project)
    for sub in ("images", "thumbs", "display"):
        files = [p for p in (project_dir / sub).rglob("*") if p.is_file()]
        assert files, sub
        assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {file_mode}, sub
    old = os.umask(umask)  # the writers in this process, under the same umask
    try:
        for kind in ("coco-copy", "labelmaps-png", "labelmaps-npz"):
            _export_here(ws, project, kind, tmp_path / kind)
        augmentation.write_preview(tmp_path / "previews", [(1, np.zeros((4, 4, 3), np.uint8))], seed=0)
    finally:
        os.umask(old)
    for name in ("coco-copy", "labelmaps-png", "labelmaps-npz", "previews"):
        assert _modes(tmp_path / name) == {("file", file_mode), ("dir", dir_mode)}, name
