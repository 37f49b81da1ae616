"""`workbench project create|list|delete`."""

from __future__ import annotations

import argparse

from workbench.cli.common import workspace
from workbench.domain import WorkbenchError, plural


def cmd_project(args: argparse.Namespace) -> int:
    from workbench.services import projects

    ws = workspace(args)
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


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
