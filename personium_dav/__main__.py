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


def box_quota(args):
    """Show, set or remove a box's quota; recount its usage on demand."""
    from personium_dav.store import provision
    from personium_dav.store.tree import Tree
    from personium_dav.store.usage import Usage, parse_size

    data_root = os.path.abspath(args.data)
    if not (provision.CELL_NAME.match(args.cell) and provision.BOX_NAME.match(args.box)):
        print(f"personium-dav: invalid cell or box name {args.cell}/{args.box}", file=sys.stderr)
        return 2
    tree = Tree(data_root)
    if not tree.box_exists(args.cell, args.box):
        print(f"personium-dav: no box {args.cell}/{args.box} in {data_root}", file=sys.stderr)
        return 2
    usage = Usage(tree.box_dir(args.cell, args.box))
    if args.size is not None:
        try:
            usage.set_quota(parse_size(args.size))
        except ValueError as error:
            print(f"personium-dav: {error}", file=sys.stderr)
            return 2
    used = usage.recount() if args.recount else usage.used()
    quota = usage.quota()
    print(f"box {args.cell}/{args.box}: used {used} bytes, quota "
          + ("none" if quota is None else f"{quota} bytes"))
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
    quota = box_actions.add_parser(
        "quota", help="show, set (SIZE: 10G, 500M, 1.5T, bytes) or remove (0, none) "
        "a box's quota")
    quota.add_argument("cell", metavar="CELL", help="cell name")
    quota.add_argument("box", metavar="BOX", help="box name")
    quota.add_argument("size", metavar="SIZE", nargs="?",
                       help="the new quota (binary multiples: 1K = 1024); 0 or none removes it")
    quota.add_argument("--recount", action="store_true",
                       help="count the box's bytes again instead of trusting the running total")
    quota.add_argument("--data", default=DEFAULT_DATA,
                       help=f"data root directory (default {DEFAULT_DATA})")
    quota.set_defaults(handler=box_quota)

    from personium_dav.auth import cli as auth_cli

    auth_cli.add_parsers(groups)  # account, role, token
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
