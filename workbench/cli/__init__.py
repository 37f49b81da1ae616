"""`workbench ...`: the command line over services/. Errors end with one line and a non-zero exit."""

from __future__ import annotations

import argparse
import codecs
import io
import logging
import sys

from workbench.cli import (
    admin,
    anchors,
    assist,
    augment,
    classes,
    dataset,
    evaluate,
    exports,
    imports,
    projects,
    review,
    team,
    train,
    users,
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
    anchors.register,  # anchors
    evaluate.register,  # evaluate
    review.register,  # predict
    augment.register,  # augment
    assist.register,  # assist, next
    users.register,  # users, members
    team.register,  # jobs, history, audit
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
    common.add_argument(
        "--as",
        dest="as_user",
        default=argparse.SUPPRESS,
        metavar="USER",
        help="team mode: act as this user (default: the account named as the OS user)",
    )
    p = argparse.ArgumentParser(prog="workbench", description=__doc__, parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    for register in COMMANDS:
        register(sub, common)
    return p


def _escape_unencodable(exc: UnicodeError) -> tuple[str, int]:
    """``\\xNN`` for the bytes of a non-UTF-8 file name (read as lone surrogates), ``\\uNNNN`` else."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = []
    for ch in exc.object[exc.start : exc.end]:
        code = ord(ch)
        out.append(f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}")
    return "".join(out), exc.end


_ESCAPE_ERRORS = "workbench-escape"
codecs.register_error(_ESCAPE_ERRORS, _escape_unencodable)


def main(argv: list[str] | None = None) -> int:
    # services warn through logging (an import waiting for another one): one line on stderr
    logging.basicConfig(format="workbench: %(message)s", level=logging.WARNING)
    # file names that are not UTF-8 are reported with their bytes escaped, never a codec error
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=_ESCAPE_ERRORS)
    args = build_parser().parse_args(argv)
    args.workspace = getattr(args, "workspace", None)
    args.database_url = getattr(args, "database_url", None)
    args.as_user = getattr(args, "as_user", None)
    return run_command(args)
