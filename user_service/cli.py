"""Operator commands: `create-admin` and `rotate-key`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable

from meshkit.data import Database
from meshkit.errors import DomainError
from user_service.accounts import Accounts
from user_service.keys import KeyRing, generate_key_file
from user_service.settings import UserSettings

# What builds the accounts from settings: the composition root passes in its own, since it
# imports this module and this module does not import it back.
BuildAccounts = Callable[[UserSettings, Database], tuple[Accounts, KeyRing]]


def create_admin(settings: UserSettings, argv: list[str], *, build_accounts: BuildAccounts) -> None:
    """Create an admin account, or promote an existing one. The password is read from stdin."""
    parser = argparse.ArgumentParser(prog="python -m user_service create-admin")
    parser.add_argument("--email", required=True)
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    args = parser.parse_args(argv)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password for the admin: ")

    async def create() -> str:
        async with Database(settings.database_url) as database:
            accounts, _ = build_accounts(settings, database)
            return (await accounts.ensure_admin(args.email, password)).id

    try:
        user_id = asyncio.run(create())
    except DomainError as error:
        violations = getattr(error, "violations", ())
        details = "; ".join(f"{v.field}: {v.message}" for v in violations) or error.message
        raise SystemExit(f"error: {details}") from None
    print(f"admin {args.email} is ready (id {user_id})")


def rotate_key(settings: UserSettings, argv: list[str]) -> None:
    """Add a signing key; it signs from the next start while older keys still verify."""
    path = generate_key_file(settings.keys_dir)
    print(f"new signing key {path.stem} written to {path}")
