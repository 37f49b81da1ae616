"""`workbench ...`: the command line over services/. Errors end with one line and a non-zero exit."""

from __future__ import annotations

import argparse
import logging

from workbench.cli import (
    admin,
    augment,
    classes,
    dataset,
    evaluate,
    exports,
    imports,
    projects,
    review,
    train,
)
from workbench.cli.common import Registrar, run_command

COMMANDS: tuple[Registrar, ...] = (
    projects.register,  # project
    classes.register,  # classes
    imports.register,  # import
    exports.register,  # export
    dataset.register,  # split, stats
    admin.register,  # demo, db, ui
    train.register,  # train, runs
    evaluate.register,  # evaluate
    review.register,  # predict
    augment.register,  # augment
)
"""Every command module, in the order `workbench --help` lists their commands."""


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
    for register in COMMANDS:
        register(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    # services warn through logging (an import waiting for another one): one line on stderr
    logging.basicConfig(format="workbench: %(message)s", level=logging.WARNING)
    args = build_parser().parse_args(argv)
    args.workspace = getattr(args, "workspace", None)
    args.database_url = getattr(args, "database_url", None)
    return run_command(args)
