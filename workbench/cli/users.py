"""`workbench users add|list|passwd|disable|enable|role|delete` and `workbench members add|remove|list`.

Passwords are asked twice on a terminal (never echoed), or read as one line from stdin
(`--password-stdin`, for scripts); never taken as an argument, where `ps` and shell history see them.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from workbench.cli.common import workspace
from workbench.domain import ROLES, ValidationError


def _password(args: argparse.Namespace, prompt: str = "password") -> str:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValidationError("--password-stdin: stdin held no password line")
        return line
    if not sys.stdin.isatty():
        raise ValidationError("no terminal to ask the password on: pipe it with --password-stdin")
    first = getpass.getpass(f"{prompt} for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValidationError("the two passwords differ; nothing was changed")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from workbench.services import accounts

    ws = workspace(args)
    if args.action == "add":
        user = accounts.add_user(ws, args.name, _password(args), args.role)
        print(f"added user {user.name} ({user.role})")
    elif args.action == "list":
        users = accounts.list_users(ws)
        if not users:
            print("no users: the workspace is in solo mode (add the first admin with `workbench users add NAME --role admin`)")
        for u in users:
            state = "disabled" if u.disabled else "locked" if u.locked_until else "active"
            last = f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"
            print(f"{u.name:24} {u.role:10} {state:9} last login {last}")
    elif args.action == "passwd":
        accounts.set_password(ws, args.name, _password(args, "new password"))
        print(f"password of {args.name} changed")
    elif args.action in ("disable", "enable"):
        accounts.set_disabled(ws, args.name, args.action == "disable")
        print(f"{args.action}d user {args.name}")
    elif args.action == "role":
        user = accounts.set_role(ws, args.name, args.role)
        print(f"user {user.name} is now {user.role}")
    elif args.action == "delete":
        if not args.yes:
            raise ValidationError(f"deleting user {args.name} cannot be undone; add --yes to confirm")
        accounts.delete_user(ws, args.name)
        print(f"deleted user {args.name}")
    return 0


def cmd_members(args: argparse.Namespace) -> int:
    from workbench.services import accounts

    ws = workspace(args)
    if args.action == "add":
        added = accounts.add_member(ws, args.project, args.name)
        print(f"{args.name} {'is now' if added else 'was already'} a member of {args.project}")
    elif args.action == "remove":
        removed = accounts.remove_member(ws, args.project, args.name)
        print(f"{args.name} {'removed from' if removed else 'was not a member of'} {args.project}")
    else:
        for u in accounts.members(ws, args.project):
            print(f"{u.name:24} {u.role}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    us = sub.add_parser("users", help="team mode: user accounts and roles", parents=[common])
    us_sub = us.add_subparsers(dest="action", required=True)
    add = us_sub.add_parser("add", parents=[common], help="add a user (the first must be an admin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    us_sub.add_parser("list", parents=[common], help="users with role, state and last login")
    pw = us_sub.add_parser("passwd", parents=[common], help="set a user's password (also ends a lockout)")
    for p in (add, pw):
        p.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    pw.add_argument("name")
    for action in ("disable", "enable"):
        us_sub.add_parser(action, parents=[common], help=f"{action} a user's login").add_argument("name")
    rl = us_sub.add_parser("role", parents=[common], help="change a user's role")
    rl.add_argument("name")
    rl.add_argument("role", choices=ROLES)
    dl = us_sub.add_parser("delete", parents=[common], help="delete a user (--yes); their history keeps the name")
    dl.add_argument("name")
    dl.add_argument("--yes", action="store_true")
    us.set_defaults(func=cmd_users)

    mb = sub.add_parser("members", help="team mode: who belongs to a project", parents=[common])
    mb_sub = mb.add_subparsers(dest="action", required=True)
    for action in ("add", "remove"):
        p = mb_sub.add_parser(action, parents=[common], help=f"{action} a project member")
        p.add_argument("project")
        p.add_argument("name")
    mb_sub.add_parser("list", parents=[common], help="a project's members").add_argument("project")
    mb.set_defaults(func=cmd_members)
