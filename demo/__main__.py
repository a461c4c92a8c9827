"""`python -m demo` (`make demo`): seed the demo shop into the mesh `make run` started."""

from __future__ import annotations

import argparse
import asyncio
import os

from demo.seed import Report, SeedError, seed
from meshkit.settings import CommonSettings, load_migration_settings


def _print_report(report: Report, gateway_url: str) -> None:
    if not report.changed:
        print(f"The demo shop at {gateway_url} is already seeded: nothing changed.")
    else:
        print(f"Demo shop seeded at {gateway_url}.")
    for account in report.created_accounts:
        print(f"  created {account.role:<8} {account.email}  password: {account.password}")
    for account in report.existing_accounts:
        print(f"  exists  {account.role:<8} {account.email}  (password in README.md)")
    rows = (
        ("categories", report.categories, "created", "existed"),
        ("products", report.products, "created", "existed"),
        ("past orders", report.orders, "written", "existed"),
    )
    for name, (made, found), made_word, found_word in rows:
        print(f"  {name}: {made} {made_word}, {found} {found_word}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    default_url = f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8000')}"
    parser.add_argument(
        "--gateway-url", default=default_url, help=f"the running mesh (default {default_url})"
    )
    args = parser.parse_args()
    # Only APP_ENV matters here. Read without checking secrets, so that a production
    # environment hears why seeding is refused rather than what its secrets lack.
    settings = load_migration_settings(CommonSettings)  # a bad variable: a clear exit
    if not settings.is_development:
        raise SystemExit(
            f"error: the demo shop is seeded in development only (APP_ENV is "
            f"{settings.app_env.value}); it writes fixed passwords and invented orders"
        )
    try:
        report = asyncio.run(seed(args.gateway_url, os.environ))
    except SeedError as error:
        raise SystemExit(f"error: demo shop not seeded: {error}") from None
    except KeyboardInterrupt:
        # Ctrl-C in `make run DEMO=1` reaches this process too: the launcher says the rest.
        raise SystemExit(130) from None
    _print_report(report, args.gateway_url)
    if report.created_accounts:
        print("  (passwords are printed when an account is created; later runs say it exists)")


if __name__ == "__main__":
    main()
