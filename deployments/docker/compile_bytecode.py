"""Build step: bytecode for how each process runs, so nothing is compiled at start.

    python compile_bytecode.py APP_DIR    the code and its dependencies (build stage)
    python compile_bytecode.py --stdlib   what the processes import of the standard library
                                          (runtime stage: the base image may ship none)

APP_DIR must be importable (PYTHONPATH). The services run as `python -OO`, so what they import
gets optimized bytecode; the gateway and the health probe run plain Python (FastAPI publishes
the docstrings), so what they import gets plain bytecode. Compiling every module at both
levels would add tens of megabytes that no process reads.
"""

from __future__ import annotations

import compileall
import importlib
import py_compile
import sys
import sysconfig
from pathlib import Path

# What the gateway and the health probe import: their modules, and the parts uvicorn picks
# only when it runs.
PLAIN_ENTRY_POINTS = (
    "gateway.__main__",
    "gateway.app",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
    "meshkit.healthcheck",
    "grpc_health.v1.health_pb2_grpc",
)
# What the services import, run optimized, with what they import only once running (the
# event loop, the PostgreSQL driver, Alembic for a migration).
OPTIMIZED_ENTRY_POINTS = (
    "meshkit.service",
    "user_service.app",
    "product_service.app",
    "order_service.app",
    "payment_service.app",
    "notification_service.app",
    "notification_service.sink",
    "uvloop",
    "asyncpg",
    "aiosqlite",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "alembic.command",
    "alembic.config",
    "alembic.runtime.migration",
    "alembic.script",
)


def imported_sources(entry_points: tuple[str, ...]) -> set[Path]:
    for name in entry_points:
        importlib.import_module(name)
    origins = (getattr(module, "__file__", None) for module in list(sys.modules.values()))
    return {Path(origin) for origin in origins if origin and origin.endswith(".py")}


def compile_sources(sources: set[Path], optimize: int) -> None:
    for source in sorted(sources):
        py_compile.compile(str(source), doraise=True, optimize=optimize)


def under(roots: list[Path], sources: set[Path]) -> set[Path]:
    resolved = [root.resolve() for root in roots]
    return {path for path in sources if any(path.resolve().is_relative_to(r) for r in resolved)}


def compile_code(app_dir: Path) -> None:
    """All of the mesh's own code; of its dependencies, what the processes import (a module
    imported by none, such as a database dialect the mesh does not use, stays source)."""
    site_packages = [Path(entry) for entry in sys.path if entry.endswith("site-packages")]
    if not compileall.compile_dir(app_dir, quiet=2, optimize=2, workers=0):
        raise SystemExit(f"cannot compile {app_dir}")
    plain = under([app_dir, *site_packages], imported_sources(PLAIN_ENTRY_POINTS))
    compile_sources(plain, optimize=0)
    optimized = under(site_packages, imported_sources(OPTIMIZED_ENTRY_POINTS))
    compile_sources(plain | optimized, optimize=2)


def compile_stdlib() -> None:
    stdlib = [Path(sysconfig.get_paths()["stdlib"])]

    def of_stdlib(sources: set[Path]) -> set[Path]:
        return under(stdlib, sources)

    plain = of_stdlib(imported_sources(PLAIN_ENTRY_POINTS))
    compile_sources(plain, optimize=0)
    compile_sources(plain | of_stdlib(imported_sources(OPTIMIZED_ENTRY_POINTS)), optimize=2)


def main() -> None:
    if sys.argv[1:] == ["--stdlib"]:
        compile_stdlib()
    else:
        compile_code(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
