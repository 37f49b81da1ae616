"""`workbench jobs assign|list|accept|reject|comment`, `workbench history` and `workbench audit`: team work.

workbench jobs assign birds ann --split train --status unlabeled --count 50
workbench jobs assign birds ann --next 20 --run 3        # the 20 most uncertain unlabelled images
workbench jobs reject birds 17 --comment "the beak is off"
workbench history birds 17 [--restore 4]
"""

from __future__ import annotations

import argparse

from workbench.cli.common import workspace
from workbench.domain import ValidationError, plural


def cmd_jobs(args: argparse.Namespace) -> int:
    from workbench.services import team

    ws = workspace(args)
    if args.action == "assign":
        if args.next is not None:
            from workbench.services.assist import rank_next

            if args.run is None:
                raise ValidationError("--next N ranks by a run's uncertainty: name it with --run RUN")
            ids = [r.image_id for r in rank_next(ws, args.project, args.run, count=args.next)]
            n = team.assign_ids(ws, args.project, args.user, ids)
        else:
            n = team.assign_images(
                ws, args.project, None if args.user == "-" else args.user, image_ids=args.ids or None,
                split=args.split, status=args.status, count=args.count, only_unassigned=not args.reassign,
            )  # fmt: skip
        print(f"{plural(n, 'image')} {'taken back' if args.user == '-' else 'assigned to ' + args.user}")
    elif args.action == "list":
        summary = team.work_summary(ws, args.project)
        if not summary:
            print("no jobs yet: `workbench jobs assign PROJECT USER ...`")
        for user, counts in sorted(summary.items()):
            print(f"{user:24} " + " ".join(f"{k} {v}" for k, v in counts.items()))
    elif args.action in ("accept", "reject"):
        stage = team.review_image(ws, args.project, args.image, args.action, args.comment or "")
        print(f"image {args.image} {stage}")
    elif args.action == "comment":
        team.comment(ws, args.project, args.image, args.comment or "")
        print(f"comment added to image {args.image}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from workbench.services import team

    ws = workspace(args)
    if args.restore is not None:
        version = team.restore(ws, args.project, args.image, args.restore)
        print(f"image {args.image} restored to its version {args.restore} (saved as version {version})")
        return 0
    rows = team.history(ws, args.project, args.image)
    if not rows:
        print(f"image {args.image} has no history yet (versions are kept for saves in team mode)")
    for r in rows:
        what = "as found" if r["baseline"] else f"{r['saved']} saved, {r['deleted']} deleted"
        print(f"v{r['version']:<5} {r['at']:%Y-%m-%d %H:%M:%S}  {r['user'] or '-':20} {what}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from workbench.services import team

    for e in team.audit_log(workspace(args), args.project, limit=args.limit):
        print(f"{e['at']:%Y-%m-%d %H:%M:%S}  {e['user'] or '(solo)':16} {e['project'] or '-':16} {e['action']:14} {e['detail']}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    jb = sub.add_parser("jobs", help="team mode: hand out images, review them", parents=[common])
    jb_sub = jb.add_subparsers(dest="action", required=True)
    a = jb_sub.add_parser("assign", parents=[common], help="hand images to an annotator ('-' takes them back)")
    a.add_argument("project")
    a.add_argument("user")
    a.add_argument("--split", choices=["train", "val", "test", "unassigned"])
    a.add_argument("--status", choices=["unlabeled", "in_progress", "done", "needs_review"])
    a.add_argument("--count", type=int)
    a.add_argument("--ids", type=int, nargs="+", help="these image ids")
    a.add_argument("--next", type=int, metavar="N", help="the N most uncertain unlabelled images of --run")
    a.add_argument("--run", type=int)
    a.add_argument("--reassign", action="store_true", help="also take images that are someone else's job")
    jb_sub.add_parser("list", parents=[common], help="jobs per user and review stage").add_argument("project")
    for action, helptext in (("accept", "accept a job in review"), ("reject", "reject a job in review (--comment)"),
                             ("comment", "comment on an image")):  # fmt: skip
        p = jb_sub.add_parser(action, parents=[common], help=helptext)
        p.add_argument("project")
        p.add_argument("image", type=int)
        p.add_argument("--comment")
    jb.set_defaults(func=cmd_jobs)

    hi = sub.add_parser("history", help="team mode: an image's saved versions; --restore V", parents=[common])
    hi.add_argument("project")
    hi.add_argument("image", type=int)
    hi.add_argument("--restore", type=int, metavar="VERSION")
    hi.set_defaults(func=cmd_history)

    au = sub.add_parser("audit", help="team mode: the audit log of project actions (admins)", parents=[common])
    au.add_argument("project", nargs="?")
    au.add_argument("--limit", type=int, default=50)
    au.set_defaults(func=cmd_audit)
