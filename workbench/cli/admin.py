"""`workbench demo`, `workbench db current|upgrade|downgrade` and `workbench ui`: the workspace itself."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from workbench.cli.common import progress_bar, workspace

STREAMLIT_APP = Path(__file__).resolve().parents[1] / "ui" / "streamlit_app.py"
"""The Streamlit script of the browser UI, run by `streamlit run` in its own process."""


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.services.demo import create_demo_project

    with progress_bar("demo") as bar:
        info = create_demo_project(
            workspace(args), name=args.name, num_images=args.images, seed=args.seed, progress=bar
        )
    print(f"created demo project {info.slug}: {info.num_images} images, {info.num_annotations} annotations")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from workbench.services import database

    if args.action == "current":
        current, head = database.revisions(args.workspace, args.database_url)
        print(f"current: {current or '(empty)'}; head: {head}")
    elif args.action == "upgrade":
        print(f"upgraded to {database.upgrade(args.workspace, args.database_url, args.revision or 'head')}")
    else:
        reached = database.downgrade(args.workspace, args.database_url, args.revision or "-1")
        print(f"downgraded to {reached or '(empty)'}")
    return 0


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_ui(args: argparse.Namespace) -> int:
    from workbench.services import accounts, projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(args.workspace, database_url=args.database_url)  # sessions sign in; no --as here
    team = accounts.has_accounts(ws)
    if args.host not in LOOPBACK and not team and not args.no_auth:
        raise ValueError(
            f"--host {args.host} opens the UI beyond this machine, and the workspace has no accounts: add an admin "
            "(`workbench users add NAME --role admin`), or pass --no-auth if a proxy of yours does the login"
        )
    if args.demo_if_empty and not team and not projects.list_projects(ws):
        from workbench.services.demo import create_demo_project

        info = create_demo_project(ws)
        print(f"created demo project {info.slug}")
    env = dict(os.environ, WORKBENCH_HOME=str(ws.root))
    env["WORKBENCH_UI_HOST"] = args.host  # beyond loopback, every page needs a login (issue 15)
    if args.no_auth:
        env["WORKBENCH_NO_AUTH"] = "1"
    if args.database_url:
        env["WORKBENCH_DATABASE_URL"] = args.database_url
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(STREAMLIT_APP),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.enableXsrfProtection",
        "true",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--workspace",
        str(ws.root),
    ]
    print(f"workbench UI on http://{args.host}:{args.port} (workspace {ws.root})", flush=True)
    return subprocess.call(cmd, env=env)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
    ui.add_argument(
        "--no-auth",
        action="store_true",
        help="no login even beyond loopback (your own proxy does it); every page says so",
    )
    ui.set_defaults(func=cmd_ui)
