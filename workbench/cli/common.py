"""What every command shares: the workspace named on the command line, progress bars, and one
line on stderr with exit status 1 for an error (a traceback is for bugs, not for a wrong name)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from workbench.domain import WorkbenchError
from workbench.services.workspace import Workspace, open_workspace

Registrar = Callable[[argparse._SubParsersAction, argparse.ArgumentParser], None]
"""A command module's ``register(sub, common)``: adds its commands to the ``workbench`` parser."""


def workspace(args: argparse.Namespace) -> Workspace:
    """The workspace of ``--workspace``/``--database-url`` (or their environment defaults), acted on by
    ``--as USER`` (or the OS user's account) when the store has accounts."""
    from workbench.services.accounts import cli_workspace

    ws = open_workspace(args.workspace, database_url=args.database_url)
    return cli_workspace(ws, getattr(args, "as_user", None))


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


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; an expected error ends in one line on stderr and exit status 1."""
    try:
        return args.func(args)
    except (WorkbenchError, ValueError, FileNotFoundError) as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`workbench stats --json | head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 1
    except OSError as exc:  # a path the system refuses (not a folder, exists, no permission, disk full)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"workbench: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
