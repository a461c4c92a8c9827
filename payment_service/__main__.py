"""`python -m payment_service`: serve (default) or `migrate`."""

from __future__ import annotations

from meshkit.service import run
from payment_service.app import DEFINITION


def main() -> None:
    run(DEFINITION)


if __name__ == "__main__":
    main()
