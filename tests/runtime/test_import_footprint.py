"""What each process imports to serve stays lean: every package loaded costs every process its
resident memory for good (pydantic and its settings were ~10 MB of each service's 100 MB
budget). Checked in a fresh interpreter, as a service starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from meshkit.settings import PROJECT_ROOT

SERVICES = (
    "user_service",
    "product_service",
    "order_service",
    "payment_service",
    "notification_service",
)


def loaded_modules(*modules: str) -> set[str]:
    """The modules a fresh interpreter holds after importing `modules`."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(output))


def packages(modules: set[str]) -> set[str]:
    return {name.split(".", 1)[0] for name in modules}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_serves_without_pydantic(service: str) -> None:
    loaded = packages(loaded_modules(f"{service}.app", f"{service}.__main__"))
    assert service in loaded  # the import did happen
    assert not loaded & {"pydantic", "pydantic_core", "pydantic_settings"}


def test_the_gateway_loads_no_pydantic_v1() -> None:
    loaded = loaded_modules("gateway.app", "gateway.__main__")
    assert "fastapi" in loaded and "pydantic" in loaded
    assert not {name for name in loaded if name.startswith("pydantic.v1")}
    assert "pydantic_settings" not in packages(loaded)


def test_a_service_leaves_its_migration_tools_to_the_migrating_process() -> None:
    loaded = packages(loaded_modules("order_service.app", "order_service.__main__"))
    assert not loaded & {"alembic", "mako"}
