"""`python -m localmesh.migrate`: every service's database brought to head, in one process.

`make run` migrates before it starts the mesh. One interpreter imports SQLAlchemy, Alembic and
what the services share once for all five, where `python -m <service> migrate` each imported
them again: a fifth of the time. Each service says what it did in the same line, and the first
that cannot migrate stops the rest with its one line of why.
"""

from __future__ import annotations

import importlib
from typing import Any

from localmesh.launcher import MIGRATION_INTERRUPTED, SERVICES
from meshkit.logging import command_log_level, configure_logging
from meshkit.process import follow_launcher
from meshkit.service import ServiceDefinition, migrate_and_say
from meshkit.settings import load_migration_settings


def main() -> None:
    # Started by the launcher: it goes when the launcher does.
    follow_launcher()
    try:
        for name in SERVICES:
            # By name: the same five the launcher starts, each its own package of the mesh.
            definition: ServiceDefinition[Any] = importlib.import_module(f"{name}.app").DEFINITION
            settings = load_migration_settings(definition.settings_cls)
            # As `python -m <service> migrate` has it: what the libraries say only at DEBUG.
            configure_logging(name, command_log_level(settings.log_level), settings.log_format)
            migrate_and_say(definition, settings)
    except KeyboardInterrupt:
        # Ctrl-C in `make run` reaches the whole group: no traceback for it.
        raise SystemExit(MIGRATION_INTERRUPTED) from None


if __name__ == "__main__":
    main()
