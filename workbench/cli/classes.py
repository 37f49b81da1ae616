"""`workbench classes add|list|delete|rename|edit PROJECT ...`: a project's classes, keypoint schemas and
attribute definitions."""

from __future__ import annotations

import argparse

from workbench.cli.common import workspace
from workbench.domain import AttributeDef, Category, KeypointSchema, NotFoundError, ValidationError, plural


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


def _attributes(given: list[str] | None) -> tuple[AttributeDef, ...]:
    """``--attribute`` values (one definition each, as the Classes page's lines)."""
    from workbench.services.classes import parse_attributes

    for line in given or ():
        if "\n" in line:
            raise ValidationError(f"one attribute per --attribute, got {line!r}")
    return parse_attributes("\n".join(given or ()))


def _category(cats: list[Category], name: str) -> Category:
    for c in cats:
        if c.name == name:
            return c
    raise NotFoundError(f"no class {name!r}; classes: {', '.join(c.name for c in cats) or '(none)'}")


def cmd_classes(args: argparse.Namespace) -> int:
    from workbench.services import classes
    from workbench.services.classes import parse_pairs

    ws = workspace(args)
    if args.action == "add":
        kwargs = {"color": args.color} if args.color else {}
        cat = classes.add_category(
            ws,
            args.project,
            Category(
                name=args.name,
                supercategory=args.supercategory,
                keypoints=_schema(args),
                attributes=_attributes(args.attribute),
                **kwargs,
            ),
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
            attrs = "; ".join(classes.attributes_text(c.attributes).splitlines())
            attrs = f" attributes={attrs}" if attrs else ""
            print(
                f"{c.id:5} {c.name:20} {c.color} {plural(counts.get(c.id or 0, 0), 'annotation'):>16}{kp}{flip}{attrs}"
            )
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
        attributes = None
        if args.no_attributes:
            if args.attribute:
                raise ValidationError("--no-attributes removes the definitions; it takes no --attribute")
            attributes = ()
        elif args.attribute:
            attributes = _attributes(args.attribute)
        if keypoints is False and not args.color and attributes is None:
            raise ValidationError(
                "nothing to change: give --color, --keypoints, --skeleton, --flip, --no-keypoints, "
                "--attribute or --no-attributes"
            )
        new = classes.update_category(
            ws, args.project, cat.id, color=args.color, keypoints=keypoints, attributes=attributes
        )
        kp = f", keypoints {','.join(new.keypoints.names)}" if new.keypoints else ", no keypoints"
        print(f"updated class {new.name} ({new.color}{kp})")
    return 0


ATTRIBUTE_HELP = (
    "an attribute of the class's shapes, repeatable: 'name: kind', kind checkbox (default), text, number "
    "or select(a, b, ...), e.g. 'colour: select(red, green)'; occluded and truncated need none"
)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
    a.add_argument("--attribute", action="append", help=ATTRIBUTE_HELP)
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
    ed.add_argument("--attribute", action="append", help=ATTRIBUTE_HELP + "; replaces the class's definitions")
    ed.add_argument("--no-attributes", action="store_true", help="remove the class's attribute definitions")
    cl.set_defaults(func=cmd_classes)
