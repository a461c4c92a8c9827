"""Build step: bytecode for how each process runs, so nothing is compiled or written at start.

`python compile_bytecode.py APP_DIR` with APP_DIR importable (PYTHONPATH). The services run as
`python -OO`, so every module gets its optimized bytecode. The gateway runs plain Python
(FastAPI publishes its docstrings), so only the modules it imports get plain bytecode too:
compiling everything at both levels would add tens of megabytes that no process reads.
"""

from __future__ import annotations

import compileall
import importlib
import py_compile
import sys
from pathlib import Path

# What the gateway imports to serve: its app, and the parts uvicorn picks only when it runs.
GATEWAY_ENTRY_POINTS = (
    "gateway.__main__",
    "gateway.app",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
)


def gateway_sources() -> list[Path]:
    for name in GATEWAY_ENTRY_POINTS:
        importlib.import_module(name)
    origins = (getattr(module, "__file__", None) for module in list(sys.modules.values()))
    return [Path(origin) for origin in origins if origin and origin.endswith(".py")]


def main() -> None:
    app_dir = Path(sys.argv[1])
    site_packages = [Path(entry) for entry in sys.path if entry.endswith("site-packages")]
    for root in (app_dir, *site_packages):
        # A package's stray file that does not compile (a Python 2 test fixture) stays source.
        compileall.compile_dir(root, quiet=2, optimize=2, workers=0)
    for source in gateway_sources():
        py_compile.compile(str(source), doraise=True, optimize=0)


if __name__ == "__main__":
    main()
