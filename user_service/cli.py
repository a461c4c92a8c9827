"""Operator commands: `create-admin` and `rotate-key`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from meshkit.db import Database
from meshkit.errors import DomainError
from user_service.keys import generate_key_file
from user_service.settings import UserSettings


def create_admin(settings: UserSettings, argv: list[str]) -> None:
    """Create an admin account, or promote an existing one. The password is read from stdin."""
    from user_service.app import build_accounts  # the composition root imports this module

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
