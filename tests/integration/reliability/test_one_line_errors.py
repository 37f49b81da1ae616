"""Errors a user can cause end in one line and exit status 1, and change nothing (issue 10).

Each class is tried with several generated variants through the real command line: a
``workbench.db`` that is not a workbench database, a database busy with another writer, names
over the store's limit (on SQLite and PostgreSQL alike), model files that are not workbench models
(one of them a pickle that would run code), and annotation imports whose every image is skipped.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pickle
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.domain import MAX_NAME_CHARS, Category

pytestmark = pytest.mark.reliability


# ----------------------------------------------------------------------------------------- helpers


def _cli(ws_dir: Path, *args: str, url: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "workbench.cli", "--workspace", str(ws_dir)]
    if url is not None:
        cmd += ["--database-url", url]
    full_env = {**os.environ, "WORKBENCH_OFFLINE": "1", **(env or {})}
    full_env.pop("WORKBENCH_DATABASE_URL", None)
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=full_env, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The command failed with status 1 and one line on stderr that holds every needle."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "sqlalche.me" not in proc.stderr and "Background on this error" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _png(path: Path, w: int = 32, h: int = 24, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)).save(path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, str]:
    """Every file under a project folder with its digest (the import lock file aside)."""
    return {
        str(p.relative_to(folder)): _digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".import.lock"
    }


def _stats(ws_dir: Path, slug: str, url: str | None = None) -> dict:
    """What `workbench stats SLUG --json` prints, computed in this process."""
    from workbench.services.dataset import project_stats
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws_dir, database_url=url)
    try:
        return project_stats(w, slug)
    finally:
        w.close()


def _coco(path: Path, images: list[tuple[str, int, int]], *, classes: tuple[str, ...] = ("cat",)) -> Path:
    """A COCO file with one box-and-polygon object of the first class on each image."""
    cats = [{"id": i + 1, "name": name} for i, name in enumerate(classes)]
    ims = [{"id": i + 1, "file_name": name, "width": w, "height": h} for i, (name, w, h) in enumerate(images)]
    anns = [
        {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0,
         "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]}
        for i in range(len(images))
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": ims, "annotations": anns, "categories": cats}))
    return path


# ------------------------------------------------------------------ a workbench.db that is not ours


@pytest.fixture(scope="module")
def h8_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real workspace database with a project and an image, closed (checkpointed) by its process."""
    root = tmp_path_factory.mktemp("h8_template")
    ws_dir = root / "ws"
    assert _cli(ws_dir, "project", "create", "P").returncode == 0
    assert _cli(ws_dir, "import", "images", "p", str(_png(root / "a.png"))).returncode == 0
    return ws_dir / "workbench.db"


def _foreign_sqlite(path: Path, _template: bytes) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()


def _pages_overwritten(path: Path, template: bytes) -> None:
    """The header page intact, every other page random: SQLite finds out only when it reads them."""
    rng = np.random.default_rng(3)
    path.write_bytes(template[:4096] + rng.integers(0, 256, len(template) - 4096, dtype=np.uint8).tobytes())


DB_VARIANTS: dict[str, Callable[[Path, bytes], None]] = {
    "text": lambda p, _t: p.write_text("this is a shopping list, not a database\n"),
    "random bytes": lambda p, _t: p.write_bytes(np.random.default_rng(1).bytes(8192)),
    "empty file": lambda p, _t: p.write_bytes(b""),
    "truncated in the header": lambda p, t: p.write_bytes(t[:50]),
    "truncated to its first page": lambda p, t: p.write_bytes(t[:4096]),
    "truncated to half": lambda p, t: p.write_bytes(t[: len(t) // 2]),
    "another program's SQLite": _foreign_sqlite,
    "pages overwritten": _pages_overwritten,
}


@pytest.mark.parametrize(
    ("variant", "command"),
    [
        ("text", ["stats", "p", "--json"]),
        ("random bytes", ["project", "create", "Q"]),
        ("empty file", ["project", "list"]),
        ("truncated in the header", ["project", "create", "Q"]),
        ("truncated to its first page", ["stats", "p", "--json"]),
        ("truncated to half", ["project", "create", "Q"]),
        ("another program's SQLite", ["project", "create", "Q"]),
        ("pages overwritten", ["stats", "p", "--json"]),
        ("pages overwritten", ["project", "create", "Q"]),
    ],
)
def test_a_workbench_db_that_is_not_a_workbench_database_is_refused_and_left_untouched(
    h8_template: Path, tmp_path: Path, variant: str, command: list[str]
) -> None:
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    db = ws_dir / "workbench.db"
    DB_VARIANTS[variant](db, h8_template.read_bytes())
    before = _digest(db)
    proc = _cli(ws_dir, *command)
    _one_line_error(proc, str(db), "not a workbench database")
    assert _digest(db) == before
    assert sorted(p.name for p in ws_dir.iterdir() if not p.name.endswith(("-wal", "-shm"))) == ["workbench.db"]


# ------------------------------------------------------------------------ a database busy elsewhere


@pytest.fixture
def h8_busy_ws(tmp_path: Path) -> tuple[Path, str]:
    from workbench.services.imports import import_images
    from workbench.services.projects import create_project
    from workbench.services.workspace import open_workspace

    ws_dir = tmp_path / "ws"
    w = open_workspace(ws_dir)
    slug = create_project(w, "P").slug
    import_images(w, slug, [_png(tmp_path / "first.png")])
    w.close()
    return ws_dir, slug


def _hold_write_lock(db: Path, *, exclusive: bool) -> sqlite3.Connection:
    """Another writer in the middle of a transaction; ``exclusive`` keeps readers out as well."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=5)
    if exclusive:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE" if exclusive else "BEGIN IMMEDIATE")
    conn.execute("UPDATE projects SET description = 'being edited elsewhere'")
    return conn


@pytest.mark.parametrize(
    ("exclusive", "command"),
    [
        (False, ["project", "create", "Q"]),
        (False, ["classes", "add", "p", "thing"]),
        (False, ["import", "images", "p", "{new}"]),
        (True, ["stats", "p", "--json"]),
        (True, ["import", "images", "p", "{new}"]),
    ],
)
def test_a_database_busy_past_the_timeout_says_so_and_nothing_changes(
    h8_busy_ws: tuple[Path, str], tmp_path: Path, exclusive: bool, command: list[str]
) -> None:
    ws_dir, slug = h8_busy_ws
    db = ws_dir / "workbench.db"
    new = _png(tmp_path / "in" / "second.png", seed=2)
    stats, files = _stats(ws_dir, slug), _files(ws_dir / slug)
    holder = _hold_write_lock(db, exclusive=exclusive)
    try:
        args = [a.replace("{new}", str(new.parent)) for a in command]
        proc = _cli(ws_dir, *args, env={"WORKBENCH_DB_BUSY_TIMEOUT": "0.3"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _one_line_error(proc, str(db), "is busy", "0.3 s", "nothing was changed")
    assert _stats(ws_dir, slug) == stats
    assert _files(ws_dir / slug) == files
    from workbench.services.projects import list_projects
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws_dir)
    assert [p.slug for p in list_projects(w)] == [slug]
    w.close()


# ------------------------------------------------------------------ one name limit on both stores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def h8_pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL server (initdb + pg_ctl in a temp folder), skipped where there is none."""
    pytest.importorskip("psycopg", reason="psycopg is needed for PostgreSQL")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not bins:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    tmp = Path(tempfile.mkdtemp(prefix="wb-h8-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(tmp / "data"), "-U", "postgres", "-A", "trust"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(tmp / "data"), "-w", "-l", str(tmp / "log"),
                                 "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(tmp / "data"), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def h8_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str | None]:
    """A workspace folder and its database URL: None (the folder's SQLite file) or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "ws", None
    import psycopg

    server = request.getfixturevalue("h8_pg_server")
    name = f"wb_h8_{os.getpid()}_{_free_port()}"
    with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return tmp_path / "ws", f"{server}/{name}"


def _project(ws_dir: Path, url: str | None, name: str = "P") -> str:
    from workbench.services.classes import add_category
    from workbench.services.projects import create_project
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws_dir, database_url=url)
    slug = create_project(w, name).slug
    add_category(w, slug, Category(name="dog"))
    w.close()
    return slug


def test_the_name_limit_is_the_same_on_both_stores(h8_store: tuple[Path, str | None]) -> None:
    from workbench.domain import ImageRecord, ValidationError
    from workbench.services.workspace import open_workspace
    from workbench.store import categories, images, projects, runs

    ws_dir, url = h8_store
    w = open_workspace(ws_dir, database_url=url)
    longest = "n" * MAX_NAME_CHARS
    with w.store.transaction() as s:  # the longest name fits each column
        pid = projects.create_project(s, longest, slug="longest").id
        categories.add_category(s, pid, Category(name=longest, supercategory=longest))
        images.add_image(s, pid, ImageRecord(file_name=longest, width=4, height=4, sha256="0" * 64, path="x.png"))
        runs.create_run(s, pid, longest, {}, "runs/x")
    over = "o" * (MAX_NAME_CHARS + 1)
    refusals = [
        lambda s: projects.create_project(s, over),
        lambda s: categories.add_category(s, pid, Category(name=over)),
        lambda s: categories.add_category(s, pid, Category(name="c", supercategory=over)),
        lambda s: images.add_image(s, pid, ImageRecord(file_name=over, width=4, height=4, sha256="1" * 64)),
        lambda s: runs.create_run(s, pid, over, {}, "runs/y"),
    ]
    for refuse in refusals:
        with pytest.raises(ValidationError, match=f"is {MAX_NAME_CHARS + 1} characters long; names are limited to 200"):
            with w.store.transaction() as s:
                refuse(s)
    w.close()


@pytest.mark.parametrize(
    "case", ["10000-character project name", "201-character project name", "10000-character class name",
             "10000-character class rename"]
)
def test_a_name_over_the_limit_is_refused_in_one_line_on_both_stores(
    h8_store: tuple[Path, str | None], case: str
) -> None:
    ws_dir, url = h8_store
    slug = _project(ws_dir, url)
    stats = _stats(ws_dir, slug, url)
    length = int(case.split("-")[0])
    name = "Ä" + "x" * (length - 1)  # characters, not bytes, are counted
    if "project" in case:
        args = ["project", "create", name]
    elif "rename" in case:
        args = ["classes", "rename", slug, "dog", name]
    else:
        args = ["classes", "add", slug, name]
    proc = _cli(ws_dir, *args, url=url)
    _one_line_error(proc, f"is {length} characters long", f"limited to {MAX_NAME_CHARS} characters")
    assert len(proc.stderr) < 400  # the name is shortened in the message, not printed whole
    assert _stats(ws_dir, slug, url) == stats
    from workbench.services.projects import list_projects
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws_dir, database_url=url)
    assert [p.slug for p in list_projects(w)] == [slug]
    w.close()


@pytest.mark.parametrize("fmt", ["coco", "images"])
def test_an_image_file_name_over_the_limit_is_skipped_with_the_limit_and_the_rest_imported(
    h8_store: tuple[Path, str | None], tmp_path: Path, fmt: str
) -> None:
    ws_dir, url = h8_store
    slug = _project(ws_dir, url)
    data = tmp_path / "data"
    deep = "/".join(["d" * 99] * 6) + "/long.png"  # over 600 characters, each folder within NAME_MAX
    _png(data / "images" / deep)
    _png(data / "images" / "short.png", seed=5)
    if fmt == "coco":
        target = _coco(data / "annotations.json", [("short.png", 32, 24), (deep, 32, 24)])
    else:
        target = data / "images"
    proc = _cli(ws_dir, "import", fmt, slug, str(target), url=url)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "1 image imported" in proc.stdout
    (line,) = [line for line in proc.stdout.splitlines() if "skipped" in line and "d" * 99 in line]
    assert f"is {len(deep)} characters long; names are limited to {MAX_NAME_CHARS} characters" in line
    stats = _stats(ws_dir, slug, url)
    assert stats["images"] == 1 and stats["annotations"] == (1 if fmt == "coco" else 0)
    from workbench.services.annotate import list_images
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws_dir, database_url=url)
    assert [im.file_name for im in list_images(w, slug)] == ["short.png"]
    w.close()


# ---------------------------------------------------------------- model files that are not models

MARKER_NAME = "the-pickle-ran"


class _RunsCode:
    """Unpickling this writes the marker file: proof that a model file's code was run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _torch_bytes(obj: object) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _workbench_model_bytes(*, fits: bool = True) -> bytes:
    import torch

    from workbench.train.model import MODEL_FORMAT

    state = {"backbone.body.conv1.weight": torch.zeros(2, 2)} if not fits else {"w": torch.zeros(3)}
    payload = {"format": MODEL_FORMAT, "state_dict": state, "config": {}, "class_names": ["cat"],
               "schema": {"class_names": ["cat"]},
               "model_args": {"backbone": "tiny", "num_classes": 2, "num_keypoints": 0}}
    return _torch_bytes(payload)


def _model_variant(name: str, marker: Path) -> bytes:
    if name == "pickle that runs code":
        return pickle.dumps(_RunsCode(marker))
    if name == "torch file that runs code":
        return _torch_bytes({"model": _RunsCode(marker)})
    if name == "truncated":
        data = _workbench_model_bytes()
        return data[: len(data) // 2]
    if name == "random bytes":
        return np.random.default_rng(7).bytes(4096)
    if name == "empty":
        return b""
    if name == "text":
        return b"weights: none\n"
    if name == "a list, not a model":
        return _torch_bytes([1, 2, 3])
    if name == "weights that do not fit":
        return _workbench_model_bytes(fits=False)
    raise AssertionError(name)


@pytest.fixture
def h8_labelled(tmp_path: Path) -> tuple[Path, str]:
    """A project with an annotated image in train and one in val (what train and evaluate need)."""
    from workbench.services.imports import import_coco
    from workbench.services.projects import create_project
    from workbench.services.workspace import open_workspace

    ws_dir = tmp_path / "ws"
    w = open_workspace(ws_dir)
    slug = create_project(w, "P").slug
    for split, seed in (("train", 1), ("val", 2)):
        data = tmp_path / split
        _png(data / "images" / f"{split}.png", seed=seed)
        import_coco(w, slug, _coco(data / "annotations.json", [(f"{split}.png", 32, 24)]), split=split)
    w.close()
    return ws_dir, slug


def _finished_run(ws_dir: Path, slug: str, run_dir: Path) -> int:
    from workbench.services.workspace import open_workspace
    from workbench.store import projects as project_repo
    from workbench.store import runs as run_repo

    run_dir.mkdir(parents=True)
    w = open_workspace(ws_dir)
    with w.store.transaction() as s:
        rid = run_repo.create_run(s, project_repo.project_id(s, slug), "done", {}, str(run_dir), device="cpu").id
        run_repo.claim_next_queued_run(s, "cpu")
        run_repo.finish_run(s, rid, "succeeded")
    w.close()
    return rid


MODEL_VARIANTS = ("pickle that runs code", "torch file that runs code", "truncated", "random bytes", "empty",
                  "text", "a list, not a model", "weights that do not fit")


@pytest.mark.parametrize("variant", MODEL_VARIANTS)
def test_every_model_loader_refuses_a_file_that_is_not_a_model_without_running_it(tmp_path: Path, variant: str) -> None:
    """The loaders behind predict/evaluate (model.pt), --weights and resuming (checkpoints), each variant."""
    from workbench.domain import ValidationError
    from workbench.train.checkpoint import load_checkpoint
    from workbench.train.model import check_weights_file, load_trained_model

    marker = tmp_path / MARKER_NAME
    path = tmp_path / "model.pt"
    path.write_bytes(data := _model_variant(variant, marker))
    loaders = [load_trained_model, load_checkpoint]
    if variant not in ("weights that do not fit",):  # a state dict of tensors is weights --weights can take
        loaders.append(check_weights_file)
    for load in loaders:
        with pytest.raises(ValidationError) as err:
            load(path)
        message = str(err.value)
        assert message.startswith(f"{path}: not a model this version can read (")
        assert "\n" not in message and "weights_only" not in message and len(message) < 300
    assert not marker.exists()
    assert path.read_bytes() == data
    if variant == "pickle that runs code":  # the marker does appear when the file is unpickled
        pickle.loads(data)  # noqa: S301 - on purpose: proves the test would see code that ran
        assert marker.read_text() == "ran"


@pytest.mark.parametrize(
    ("command", "variant"),
    [
        ("predict", "pickle that runs code"),
        ("predict", "truncated"),
        ("predict", "weights that do not fit"),
        ("evaluate", "torch file that runs code"),
        ("train", "pickle that runs code"),
        ("train", "random bytes"),
    ],
)
def test_a_model_file_that_is_not_a_workbench_model_is_refused_in_one_line_and_never_run(
    h8_labelled: tuple[Path, str], tmp_path: Path, command: str, variant: str
) -> None:
    ws_dir, slug = h8_labelled
    marker = tmp_path / MARKER_NAME
    data = _model_variant(variant, marker)
    assert not marker.exists()  # making the file ran nothing either
    if command == "train":
        model = tmp_path / "weights.pt"
        model.write_bytes(data)
        args = ["train", slug, "--backbone", "tiny", "--weights", str(model)]
    else:
        run_id = _finished_run(ws_dir, slug, tmp_path / "run")
        model = tmp_path / "run" / "model.pt"
        model.write_bytes(data)
        args = ["predict", str(run_id)] if command == "predict" else ["evaluate", str(run_id), "--split", "val"]
    stats, files = _stats(ws_dir, slug), _files(ws_dir / slug)
    proc = _cli(ws_dir, *args)
    _one_line_error(proc, str(model), "not a model this version can read")
    assert "weights_only" not in proc.stderr  # torch's advice to load it unsafely is not passed on
    assert not marker.exists()
    assert model.read_bytes() == data
    assert _stats(ws_dir, slug) == stats
    assert _files(ws_dir / slug) == files


# -------------------------------------------------- an import that imports nothing changes nothing


def _labelme(folder: Path, name: str, w: int, h: int, label: str) -> None:
    _png(folder / name, 32, 24, seed=len(name))
    shape = {"label": label, "points": [[2, 2], [12, 2], [12, 12]], "shape_type": "polygon", "flags": {}}
    doc = {"version": "5.4.1", "flags": {}, "shapes": [shape], "imagePath": name, "imageData": None,
           "imageHeight": h, "imageWidth": w}
    (folder / (Path(name).stem + ".json")).write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "variant",
    ["coco: every size wrong", "coco: every image unreadable", "coco folder: every split skipped",
     "labelme: every size wrong", "labelme file: size wrong"],
)
def test_an_import_whose_every_image_is_skipped_adds_no_classes(ws, project: str, tmp_path: Path, variant: str) -> None:  # noqa: ANN001
    from workbench.services import classes
    from workbench.services.dataset import project_stats

    data = tmp_path / "data"
    if variant == "coco: every size wrong":
        for i in range(3):
            _png(data / "images" / f"{i}.png", seed=i)
        target = _coco(data / "annotations.json", [(f"{i}.png", 64, 48) for i in range(3)], classes=("cat", "owl"))
    elif variant == "coco: every image unreadable":
        (data / "images").mkdir(parents=True)
        (data / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n then nothing")
        target = _coco(data / "annotations.json", [("broken.png", 32, 24)], classes=("cat", "owl"))
    elif variant == "coco folder: every split skipped":
        for split in ("train", "val"):
            _png(data / "images" / split / f"{split}.png", seed=3)
            _coco(data / "annotations" / f"instances_{split}.json", [(f"{split}.png", 99, 99)], classes=("cat", "owl"))
        target = data
    else:
        for i in range(2 if "every" in variant else 1):
            _labelme(data, f"{i}.png", 64, 48, "cat" if i == 0 else "owl")
        target = data if "every" in variant else data / "0.json"
    classes.add_category(ws, project, Category(name="dog"))
    before = project_stats(ws, project)
    proc = _cli(ws.root, "import", "coco" if variant.startswith("coco") else "labelme", project, str(target))
    # a COCO import of 0 of N images fails saying why (issue 14); LabelMe reports it and exits 0
    assert proc.returncode == (1 if variant.startswith("coco") else 0), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "0 images imported" in proc.stdout + proc.stderr
    if variant.startswith("coco"):
        assert " images imported (" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert [c.name for c in classes.list_categories(ws, project)] == ["dog"]
    assert project_stats(ws, project) == before


def test_classes_still_come_with_a_partly_skipped_import_and_with_a_file_of_classes_only(
    ws, project: str, tmp_path: Path  # noqa: ANN001
) -> None:
    from workbench.services import classes

    data = tmp_path / "data"
    _png(data / "images" / "ok.png", seed=1)
    _png(data / "images" / "bad.png", seed=2)
    coco = _coco(data / "annotations.json", [("ok.png", 32, 24), ("bad.png", 99, 99)], classes=("cat", "owl"))
    proc = _cli(ws.root, "import", "coco", project, str(coco))
    assert proc.returncode == 0, proc.stderr
    assert [c.name for c in classes.list_categories(ws, project)] == ["cat", "owl"]
    only = tmp_path / "classes.json"
    only.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "fox"}]}))
    assert _cli(ws.root, "import", "coco", project, str(only)).returncode == 0
    assert [c.name for c in classes.list_categories(ws, project)] == ["cat", "owl", "fox"]
