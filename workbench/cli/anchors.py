"""`workbench anchors PROJECT [--fit] [--json]`: how well the anchors reach the project's training boxes."""

from __future__ import annotations

import argparse
import json

from workbench.cli.common import workspace


def cmd_anchors(args: argparse.Namespace) -> int:
    from workbench.services import anchors

    ws = workspace(args)
    config = anchors.config_from_file(ws, args.project, args.config) if args.config else None
    report = anchors.anchor_report(ws, args.project, config, fit=args.fit)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    print("\n".join(anchors.summary_lines(report)))
    if report.fitted is not None:
        print('use them: put {"detector": ' + json.dumps(report.fitted_detector()) + "} in the --config file of "
              "`workbench train`, or press \"Use fitted anchors\" on the Train page")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "anchors", parents=[common],
        help="anchor coverage of the training boxes (IoU >= 0.5 / 0.7 per class and size); --fit fits anchors",
    )
    p.add_argument("project")
    p.add_argument("--fit", action="store_true", help="also fit anchor sizes and aspect ratios to the boxes")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--config", help="a training config JSON (as `workbench train --config`): its backbone, "
                   "image sizes and detector anchors are the ones reported")
    p.set_defaults(func=cmd_anchors)
