"""`workbench ...`: the command line over services/. Errors end with one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench.domain import Category, KeypointSchema, NotFoundError, ValidationError, WorkbenchError


@contextmanager
def progress_bar(desc: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar driven by the services' ``progress(done, total)`` callbacks."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="img", disable=None, file=sys.stderr)
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _ws(args: argparse.Namespace):  # noqa: ANN202
    from workbench.services.workspace import open_workspace

    return open_workspace(args.workspace, database_url=args.database_url)


def _print_report(report) -> None:  # noqa: ANN001
    print(report.summary())
    for sk in report.skipped:
        print(f"  skipped {sk.name}: {sk.reason}")
    for d in report.duplicates:
        print(f"  duplicate {d}")
    for w in report.warnings:
        print(f"  note: {w}")


# ------------------------------------------------------------------------------------------- commands


def cmd_project(args: argparse.Namespace) -> int:
    from workbench.services import projects
    from workbench.util import plural

    ws = _ws(args)
    if args.action == "create":
        info = projects.create_project(ws, args.name, slug=args.slug, description=args.description)
        print(f"created project {info.slug} ({info.name})")
    elif args.action == "list":
        rows = projects.list_projects(ws)
        if not rows:
            print("no projects; create one with `workbench project create NAME` or `workbench demo`")
        for p in rows:
            print(
                f"{p.slug:24} {p.num_images:6} images {p.num_annotations:7} annotations {p.num_categories:3} classes"
            )
    elif args.action == "delete":
        if not args.yes:
            info = projects.get_project(ws, args.slug)  # a wrong name is told as such, not asked to confirm
            raise WorkbenchError(
                f"deleting {args.slug} removes its {plural(info.num_images, 'image')} and "
                f"{plural(info.num_annotations, 'annotation')}; add --yes to confirm"
            )
        projects.delete_project(ws, args.slug)
        print(f"deleted project {args.slug}")
    return 0


def _schema(args: argparse.Namespace) -> KeypointSchema | None:
    from workbench.services.classes import parse_pairs

    if not args.keypoints:
        given = [flag for flag, value in (("--skeleton", args.skeleton), ("--flip", args.flip)) if value]
        if given:  # they were silently dropped: a class without keypoints was added
            raise ValidationError(f"{' and '.join(given)} name keypoints; give the names with --keypoints too")
        return None
    names = [n.strip() for n in args.keypoints.split(",") if n.strip()]
    return KeypointSchema(
        names=tuple(names),
        skeleton=parse_pairs(args.skeleton or "", names),
        flip_pairs=parse_pairs(args.flip or "", names),
    )


def cmd_classes(args: argparse.Namespace) -> int:
    from workbench.services import classes
    from workbench.services.classes import parse_pairs
    from workbench.util import plural

    ws = _ws(args)
    if args.action == "add":
        kwargs = {"color": args.color} if args.color else {}
        cat = classes.add_category(
            ws,
            args.project,
            Category(name=args.name, supercategory=args.supercategory, keypoints=_schema(args), **kwargs),
        )
        print(f"added class {cat.name} (id {cat.id}, {cat.color})")
    elif args.action == "list":
        counts = classes.category_annotation_counts(ws, args.project)
        for c in classes.list_categories(ws, args.project):
            kp = f" keypoints={','.join(c.keypoints.names)}" if c.keypoints else ""
            flip = ""
            if c.keypoints and c.keypoints.flip_pairs:
                names = c.keypoints.names
                flip = " flip=" + ",".join(f"{names[a]}-{names[b]}" for a, b in c.keypoints.flip_pairs)
            print(f"{c.id:5} {c.name:20} {c.color} {plural(counts.get(c.id or 0, 0), 'annotation'):>16}{kp}{flip}")
    elif args.action == "delete":
        cat = _category(classes.list_categories(ws, args.project), args.name)
        n = classes.delete_category(ws, args.project, cat.id, delete_annotations=args.delete_annotations)
        print(f"deleted class {args.name}" + (f" and its {plural(n, 'annotation')}" if n else ""))
    elif args.action == "rename":
        cat = _category(classes.list_categories(ws, args.project), args.name)
        new = classes.update_category(ws, args.project, cat.id, name=args.new_name)
        print(f"renamed class {cat.name} to {new.name}; its annotations follow")
    elif args.action == "edit":
        cat = _category(classes.list_categories(ws, args.project), args.name)
        keypoints: KeypointSchema | None | bool = False
        if args.no_keypoints:
            if args.keypoints or args.skeleton or args.flip:
                raise ValidationError("--no-keypoints removes the schema; it takes no --keypoints, --skeleton or --flip")
            keypoints = None
        elif args.keypoints:
            keypoints = _schema(args)
        elif args.skeleton is not None or args.flip is not None:
            if cat.keypoints is None:
                raise ValidationError(f"class {cat.name!r} has no keypoints; give them with --keypoints")
            names = list(cat.keypoints.names)
            keypoints = KeypointSchema(
                names=cat.keypoints.names,
                skeleton=cat.keypoints.skeleton if args.skeleton is None else parse_pairs(args.skeleton, names),
                flip_pairs=cat.keypoints.flip_pairs if args.flip is None else parse_pairs(args.flip, names),
            )
        if keypoints is False and not args.color:
            raise ValidationError("nothing to change: give --color, --keypoints, --skeleton, --flip or --no-keypoints")
        new = classes.update_category(ws, args.project, cat.id, color=args.color, keypoints=keypoints)
        kp = f", keypoints {','.join(new.keypoints.names)}" if new.keypoints else ", no keypoints"
        print(f"updated class {new.name} ({new.color}{kp})")
    return 0


def _category(cats: list[Category], name: str) -> Category:
    for c in cats:
        if c.name == name:
            return c
    raise NotFoundError(f"no class {name!r}; classes: {', '.join(c.name for c in cats) or '(none)'}")


def cmd_import(args: argparse.Namespace) -> int:
    from workbench.services import imports

    # options and paths that would be ignored, or a path that is not there, are refused before
    # anything is read (a typo used to end in '0 images imported' and exit status 0)
    if args.kind != "images" and len(args.paths) > 1:
        raise ValidationError(
            f"import {args.kind} takes one file or folder, got {len(args.paths)}: {', '.join(args.paths)}"
        )
    if args.images_dir and args.kind != "coco":
        raise ValidationError(f"--images-dir is for import coco; import {args.kind} finds the images itself")
    if args.kind == "coco" and args.split and Path(args.paths[0]).is_dir():
        raise ValidationError(
            f"{args.paths[0]}: a COCO folder's files name their splits; --split is for a single COCO file"
        )
    missing = [p for p in args.paths if not os.path.lexists(p)]
    if missing:
        raise ValidationError(f"no such file or folder: {', '.join(missing)}; nothing was imported")
    ws = _ws(args)
    with progress_bar(f"import {args.kind}") as bar:
        if args.kind == "images":
            report = imports.import_images(
                ws,
                args.project,
                [Path(p) for p in args.paths],
                split=args.split,
                progress=bar,
                max_pixels=args.max_pixels,
            )
            if not (report.imported or report.duplicates or report.skipped):
                report.warnings.append(
                    f"no image files (JPEG, PNG, BMP, TIFF, WebP) found in {', '.join(args.paths)}"
                )
        elif args.kind == "coco":
            images_dir = Path(args.images_dir) if args.images_dir else None
            report = imports.import_coco(
                ws, args.project, Path(args.paths[0]), images_dir=images_dir, split=args.split, progress=bar
            )
        else:
            report = imports.import_labelme(ws, args.project, Path(args.paths[0]), split=args.split, progress=bar)
    _print_report(report)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.services import export

    ws = _ws(args)
    splits = args.split or None
    with progress_bar(f"export {args.kind}") as bar:
        if args.kind == "coco":
            paths = export.export_coco(
                ws, args.project, Path(args.out), splits=splits, copy_images=args.copy_images, progress=bar
            )
            for p in paths:
                print(p)
        else:
            if args.sigma < 0:
                raise ValidationError(f"--sigma is a number of pixels, or 0 for one pixel; got {args.sigma}")
            sigma = None if args.sigma == 0 else args.sigma
            print(
                export.export_labelmaps(
                    ws,
                    args.project,
                    Path(args.out),
                    layout=args.layout,
                    splits=splits,
                    heatmap_sigma=sigma,
                    progress=bar,
                )
            )
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from workbench.services.dataset import split_project

    counts = split_project(
        _ws(args),
        args.project,
        ratios=tuple(args.ratios),
        seed=args.seed,
        only_unassigned=args.only_unassigned,
    )
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no images to split")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from workbench.services.dataset import project_stats

    st = project_stats(_ws(args), args.project)
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"{st['project']}: {st['images']} images, {st['annotations']} annotations")
    print("status: " + (", ".join(f"{k} {v}" for k, v in sorted(st["status"].items())) or "(no images)"))
    print("splits: " + (", ".join(f"{k} {v}" for k, v in sorted(st["splits"].items())) or "(no images)"))
    print(f"{'class':20} {'instances':>9} {'images':>7} {'w/ kps':>7} {'crowd':>6}")
    for name, row in st["classes"].items():
        print(f"{name:20} {row['instances']:9} {row['images']:7} {row['with_keypoints']:7} {row['crowd']:6}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.services.demo import create_demo_project

    with progress_bar("demo") as bar:
        info = create_demo_project(
            _ws(args), name=args.name, num_images=args.images, seed=args.seed, progress=bar
        )
    print(f"created demo project {info.slug}: {info.num_images} images, {info.num_annotations} annotations")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from workbench.store import engine

    ws_root = Path(args.workspace or os.environ.get("WORKBENCH_HOME") or "projects")
    url = (
        args.database_url
        or os.environ.get("WORKBENCH_DATABASE_URL")
        or engine.sqlite_url(ws_root / "workbench.db")
    )
    if args.action == "current":
        print(f"current: {engine.current_revision(url) or '(empty)'}; head: {engine.head_revision()}")
    elif args.action == "upgrade":
        ws_root.mkdir(parents=True, exist_ok=True)
        engine.upgrade(url, args.revision or "head")
        print(f"upgraded to {engine.current_revision(url)}")
    else:
        engine.downgrade(url, args.revision or "-1")
        print(f"downgraded to {engine.current_revision(url) or '(empty)'}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from workbench.services import projects

    ws = _ws(args)
    if args.demo_if_empty and not projects.list_projects(ws):
        from workbench.services.demo import create_demo_project

        info = create_demo_project(ws)
        print(f"created demo project {info.slug}")
    app = Path(__file__).resolve().parent / "ui" / "streamlit_app.py"
    env = dict(os.environ, WORKBENCH_HOME=str(ws.root))
    if args.database_url:
        env["WORKBENCH_DATABASE_URL"] = args.database_url
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--workspace",
        str(ws.root),
    ]
    print(f"workbench UI on http://{args.host}:{args.port} (workspace {ws.root})", flush=True)
    return subprocess.call(cmd, env=env)


# --------------------------------------------------------------------------------------------- parser


EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction, argparse.ArgumentParser], None]] = []
"""Registrars for commands that live beside their feature (train, runs, evaluate, predict)."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace",
        default=argparse.SUPPRESS,
        help="workspace folder (default ./projects or $WORKBENCH_HOME)",
    )
    common.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="SQLAlchemy URL (default $WORKBENCH_DATABASE_URL or the workspace's SQLite file)",
    )
    p = argparse.ArgumentParser(prog="workbench", description=__doc__, parents=[common])
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("project", help="create, list or delete projects", parents=[common])
    pr_sub = pr.add_subparsers(dest="action", required=True)
    c = pr_sub.add_parser("create", parents=[common], help="create a project (its slug comes from the name)")
    c.add_argument("name")
    c.add_argument("--slug")
    c.add_argument("--description", default="")
    pr_sub.add_parser("list", parents=[common], help="projects with their image, annotation, class counts")
    d = pr_sub.add_parser("delete", parents=[common], help="delete a project, its images and runs (--yes)")
    d.add_argument("slug")
    d.add_argument("--yes", action="store_true")
    pr.set_defaults(func=cmd_project)

    cl = sub.add_parser("classes", help="add, list, rename, edit or delete classes", parents=[common])
    cl_sub = cl.add_subparsers(dest="action", required=True)
    a = cl_sub.add_parser("add", parents=[common], help="add a class, optionally with keypoints")
    a.add_argument("project")
    a.add_argument("name")
    a.add_argument("--color")
    a.add_argument("--supercategory", default="")
    a.add_argument("--keypoints", help="comma-separated keypoint names, e.g. nose,left_eye,right_eye")
    a.add_argument("--skeleton", help="pairs by name or 1-based number, e.g. nose-left_eye,nose-right_eye")
    a.add_argument("--flip", help="left/right pairs swapped by a horizontal flip, e.g. left_eye-right_eye")
    li = cl_sub.add_parser("list", parents=[common], help="classes with annotation counts and keypoints")
    li.add_argument("project")
    de = cl_sub.add_parser("delete", parents=[common], help="delete a class (--delete-annotations if used)")
    de.add_argument("project")
    de.add_argument("name")
    de.add_argument("--delete-annotations", action="store_true")
    rn = cl_sub.add_parser("rename", parents=[common], help="rename a class; its annotations follow")
    rn.add_argument("project")
    rn.add_argument("name")
    rn.add_argument("new_name")
    ed = cl_sub.add_parser(
        "edit",
        parents=[common],
        help="change a class's colour or keypoint schema (--skeleton/--flip alone keep its keypoint names)",
    )
    ed.add_argument("project")
    ed.add_argument("name")
    ed.add_argument("--color", help="#rrggbb")
    ed.add_argument("--keypoints", help="new comma-separated keypoint names (same count if annotated)")
    ed.add_argument("--skeleton", help="pairs by name or 1-based number; '' removes the skeleton")
    ed.add_argument("--flip", help="left/right pairs swapped by a horizontal flip; '' removes them")
    ed.add_argument("--no-keypoints", action="store_true", help="remove the keypoint schema")
    cl.set_defaults(func=cmd_classes)

    im = sub.add_parser("import", help="import images, COCO or LabelMe", parents=[common])
    im.add_argument("kind", choices=["images", "coco", "labelme"])
    im.add_argument("project")
    im.add_argument(
        "paths", nargs="+", help="files, folders or zip archives (one file or folder for coco/labelme)"
    )
    im.add_argument("--split", choices=["train", "val", "test"])
    im.add_argument("--images-dir", help="coco: folder holding the images named by file_name")
    im.add_argument(
        "--max-pixels", type=int, default=178_956_970, help="refuse larger images (decompression bombs)"
    )
    im.set_defaults(func=cmd_import)

    ex = sub.add_parser("export", help="export COCO or label maps", parents=[common])
    ex.add_argument("kind", choices=["coco", "labelmaps"])
    ex.add_argument("project")
    ex.add_argument("out")
    ex.add_argument("--split", action="append", help="only these splits (repeatable; 'unassigned' too)")
    ex.add_argument(
        "--copy-images", action="store_true", help="coco: copy images for a self-contained folder"
    )
    ex.add_argument(
        "--layout", choices=["png", "npz"], default="png", help="labelmaps: one PNG per class or one .npz"
    )
    ex.add_argument(
        "--sigma", type=float, default=2.0, help="labelmaps: keypoint heatmap Gaussian sigma (0: one pixel)"
    )
    ex.set_defaults(func=cmd_export)

    sp = sub.add_parser("split", help="deterministic stratified train/val/test split", parents=[common])
    sp.add_argument("project")
    sp.add_argument(
        "--ratios", nargs=3, type=float, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST")
    )
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--only-unassigned", action="store_true")
    sp.set_defaults(func=cmd_split)

    st = sub.add_parser("stats", help="per-class and per-split counts", parents=[common])
    st.add_argument("project")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_stats)

    dm = sub.add_parser("demo", help="create a synthetic demo project", parents=[common])
    dm.add_argument("--name", default="Demo shapes")
    dm.add_argument("--images", type=int, default=40)
    dm.add_argument("--seed", type=int, default=0)
    dm.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database migrations", parents=[common])
    db.add_argument("action", choices=["current", "upgrade", "downgrade"])
    db.add_argument("revision", nargs="?")
    db.set_defaults(func=cmd_db)

    ui = sub.add_parser(
        "ui", help="start the browser UI (binds 127.0.0.1 unless told otherwise)", parents=[common]
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=8501)
    ui.add_argument(
        "--demo-if-empty", action="store_true", help="create the demo project when the workspace is empty"
    )
    ui.set_defaults(func=cmd_ui)

    for register in EXTRA_COMMANDS:
        register(sub, common)
    return p


def _load_extras() -> None:
    """Feature packages add their commands here when present (training, evaluation)."""
    import importlib

    for mod in ("workbench.train.cli", "workbench.evaluate.cli", "workbench.review_cli", "workbench.augment_cli"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        if m.register not in EXTRA_COMMANDS:
            EXTRA_COMMANDS.append(m.register)


def main(argv: list[str] | None = None) -> int:
    import logging

    # services warn through logging (an import waiting for another one): one line on stderr
    logging.basicConfig(format="workbench: %(message)s", level=logging.WARNING)
    _load_extras()
    args = build_parser().parse_args(argv)
    args.workspace = getattr(args, "workspace", None)
    args.database_url = getattr(args, "database_url", None)
    try:
        return args.func(args)
    except (WorkbenchError, ValueError, FileNotFoundError) as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a path the system refuses (not a folder, exists, no permission, disk full)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"workbench: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
