"""The operator's commands for accounts, roles and tokens.

    python -m personium_dav account add CELL NAME [--role ROLE ...] --data DIR
    python -m personium_dav account list CELL --data DIR
    python -m personium_dav account remove CELL NAME --data DIR
    python -m personium_dav role add|remove CELL ROLE --data DIR
    python -m personium_dav token --data DIR --owner [--ttl SECONDS]
    python -m personium_dav token --data DIR --cell CELL --account NAME [--ttl SECONDS]
    python -m personium_dav token revoke CELL ACCOUNT --data DIR
    python -m personium_dav token revoke CELL --all --data DIR
    python -m personium_dav token revoke --owner --data DIR

A password is read from standard input when it is not a terminal (the first
line), else prompted for twice; never taken from the command line, where
``ps`` and shell histories would show it.
"""
import argparse
import getpass
import os
import sys

from .accounts import AccountError, AccountStore
from .tokens import OwnerGeneration, TokenInvalid, TokenService, load_secret

DEFAULT_DATA = "./personium-data"


def _fail(message):
    print("personium-dav: %s" % message, file=sys.stderr)
    return 2


def _store(args):
    root = os.path.abspath(args.data)
    if not os.path.isdir(root):
        raise AccountError("no data root at %s" % root)
    return AccountStore(root)


def read_password(stdin=None, prompt=getpass.getpass):
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        line = stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    first = prompt("Password: ")
    if first != prompt("Password again: "):
        raise AccountError("the passwords differ")
    return first


def account_add(args):
    try:
        store = _store(args)
        password = read_password()
        created = store.add_account(args.cell, args.name, password, args.role or ())
    except AccountError as error:
        return _fail(error)
    print("%s account %s in cell %s" % ("created" if created else "updated", args.name, args.cell))
    return 0


def account_list(args):
    try:
        accounts = _store(args).accounts(args.cell)
    except AccountError as error:
        return _fail(error)
    for name, roles in accounts.items():
        print("%s\t%s" % (name, ",".join(roles)))
    return 0


def account_remove(args):
    try:
        _store(args).remove_account(args.cell, args.name)
    except AccountError as error:
        return _fail(error)
    print("removed account %s from cell %s" % (args.name, args.cell))
    return 0


def role_add(args):
    try:
        created = _store(args).add_role(args.cell, args.role)
    except AccountError as error:
        return _fail(error)
    print("%s role %s in cell %s" % ("created" if created else "kept", args.role, args.cell))
    return 0


def role_remove(args):
    try:
        _store(args).remove_role(args.cell, args.role)
    except AccountError as error:
        return _fail(error)
    print("removed role %s from cell %s" % (args.role, args.cell))
    return 0


def token(args):
    try:
        store = _store(args)
    except AccountError as error:
        return _fail(error)
    if args.ttl is not None and args.ttl < 1:
        return _fail("--ttl must be a positive number of seconds")
    tokens = TokenService(load_secret(store.root),
                          owner_generation=OwnerGeneration(store.root))
    if args.owner:
        if args.cell or args.account:
            return _fail("--owner takes no --cell or --account")
        try:
            print(tokens.owner_token(ttl=args.ttl))
        except TokenInvalid:
            return _fail("%s is unreadable (token revoke --owner writes it anew)"
                         % tokens.owner_generation.path)
        return 0
    if not args.cell or not args.account:
        return _fail("give --owner, or --cell and --account")
    account = store.get(args.cell, args.account)
    if account is None:
        return _fail("no account %r in cell %r" % (args.account, args.cell))
    print(tokens.issue(args.cell, args.account, account["roles"], ttl=args.ttl,
                       generation=account.get("generation", 0)))
    return 0


def token_revoke(args):
    """End tokens: of one account, of every account of a cell (--all), or
    the owner's (--owner), by raising their generation."""
    try:
        store = _store(args)
    except AccountError as error:
        return _fail(error)
    if args.owner:
        if args.cell or args.account or args.all:
            return _fail("token revoke --owner takes no CELL, ACCOUNT or --all")
        OwnerGeneration(store.root).raise_()
        print("revoked every owner token of %s" % store.root)
        return 0
    if not args.cell or bool(args.account) == bool(args.all):
        return _fail("give CELL ACCOUNT, CELL --all, or --owner")
    try:
        names = store.revoke(args.cell, args.account)
    except AccountError as error:
        return _fail(error)
    if args.account:
        print("revoked the tokens of account %s in cell %s" % (args.account, args.cell))
    else:
        print("revoked the tokens of %d account(s) in cell %s" % (len(names), args.cell))
    return 0


def add_parsers(groups):
    """Add the account, role and token groups to the command line's sub-parsers."""
    def data(parser):
        parser.add_argument("--data", default=DEFAULT_DATA,
                            help="data root directory (default %s)" % DEFAULT_DATA)

    account = groups.add_parser("account", help="manage the accounts of a cell")
    actions = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an account (or reset its password and roles); "
                                         "the password is read from stdin or prompted for")
    add.add_argument("cell", metavar="CELL")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", nargs="+", action="extend", metavar="ROLE",
                     help="roles the account holds (made with: role add)")
    data(add)
    add.set_defaults(handler=account_add)
    listing = actions.add_parser("list", help="list the accounts of a cell and their roles")
    listing.add_argument("cell", metavar="CELL")
    data(listing)
    listing.set_defaults(handler=account_list)
    remove = actions.add_parser("remove", help="remove an account")
    remove.add_argument("cell", metavar="CELL")
    remove.add_argument("name", metavar="NAME")
    data(remove)
    remove.set_defaults(handler=account_remove)

    role = groups.add_parser("role", help="manage the roles of a cell")
    actions = role.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler in (("add", role_add), ("remove", role_remove)):
        parser = actions.add_parser(name, help="%s a role" % name)
        parser.add_argument("cell", metavar="CELL")
        parser.add_argument("role", metavar="ROLE")
        data(parser)
        parser.set_defaults(handler=handler)

    tok = groups.add_parser("token", help="print a signed access token, or revoke tokens "
                                          "(token revoke --help)")
    tok.add_argument("--owner", action="store_true",
                     help="a token of the data root's owner (all rights on every cell)")
    tok.add_argument("--cell", metavar="CELL")
    tok.add_argument("--account", metavar="NAME")
    tok.add_argument("--ttl", type=int, metavar="SECONDS",
                     help="lifetime in seconds (default 3600)")
    data(tok)
    tok.set_defaults(handler=token)
    actions = tok.add_subparsers(dest="action", metavar="[revoke]")
    revoke = actions.add_parser(
        "revoke", help="end tokens already issued: of an account, of every account "
                       "of a cell (--all), or the owner's (--owner)")
    revoke.add_argument("cell", metavar="CELL", nargs="?")
    revoke.add_argument("account", metavar="ACCOUNT", nargs="?")
    revoke.add_argument("--all", action="store_true",
                        help="every account of CELL")
    revoke.add_argument("--owner", action="store_true", default=argparse.SUPPRESS,
                        help="every owner token of the data root")
    # --data and --owner may come before or after "revoke": SUPPRESS keeps
    # what "token" parsed when "revoke" is not given them
    revoke.add_argument("--data", default=argparse.SUPPRESS,
                        help="data root directory (default %s)" % DEFAULT_DATA)
    revoke.set_defaults(handler=token_revoke)
