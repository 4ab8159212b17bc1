"""Operator command line: ``python -m personium_dav box create CELL BOX --data DIR``.

Cells and boxes are provisioned here, never over HTTP (docs/behaviour.md §2). Each
subcommand group (box; later account, token) adds its own sub-parser in
``build_parser`` and a handler set with ``set_defaults(handler=...)``.
"""
import argparse
import os
import sys

DEFAULT_DATA = "./personium-data"


def box_create(args):
    """Create a box (and its cell and the data root when missing)."""
    from personium_dav.store import provision

    data_root = os.path.abspath(args.data)
    try:
        created = provision.create_box(data_root, args.cell, args.box)
    except ValueError as error:
        print(f"personium-dav: {error}", file=sys.stderr)
        return 2
    if created:
        print(f"created box {args.cell}/{args.box} in {data_root}")
    else:
        print(f"box {args.cell}/{args.box} already exists in {data_root}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m personium_dav",
        description="Provision personium-dav data roots.",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")

    box = groups.add_parser("box", help="manage boxes")
    box_actions = box.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = box_actions.add_parser(
        "create", help="create a box, and its cell if missing")
    create.add_argument("cell", metavar="CELL", help="cell name")
    create.add_argument("box", metavar="BOX", help="box name")
    create.add_argument("--data", default=DEFAULT_DATA,
                        help=f"data root directory (default {DEFAULT_DATA})")
    create.set_defaults(handler=box_create)

    from personium_dav.auth import cli as auth_cli

    auth_cli.add_parsers(groups)  # account, role, token
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
