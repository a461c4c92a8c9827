"""`make demo` and `make run DEMO=1` against the real mesh: seeded twice the shop changes
nothing, sells, shows past sales, and is refused outside development."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from demo.accounts import ADDRESS, ADMIN, CUSTOMER
from demo.history import plan
from localmesh.launcher import DEFAULT_GRPC_PORTS, MeshPorts
from meshkit.messaging import Topology
from meshkit.settings import PROJECT_ROOT
from tests.conftest import AMQP_URL
from tests.e2e.conftest import run_demo, running_mesh, sign_in
from tests.support import eventually, free_port

# Not the package mesh's (tests.e2e.conftest), nor any other test's.
REDIS_URL = "redis://127.0.0.1:6379/9"

pytestmark = pytest.mark.e2e


async def every(
    client: httpx.AsyncClient, path: str, key: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params = {"page_size": "100"}
    while True:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        found.extend(response.json()[key])
        if not (token := response.json().get("next_page_token")):
            return found
        params["page_token"] = token


async def counts(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, int]:
    return {
        "users": len(await every(client, "/v1/users", "users", admin)),
        "categories": len(await every(client, "/v1/categories", "categories")),
        "products": len(await every(client, "/v1/products", "products")),
        "orders": len(await every(client, "/v1/orders", "orders", admin)),
    }


# On SQLite, what `make run` gives each service. Seeding on PostgreSQL, what deployments use,
# is the package mesh's `demo_shop` (tests.e2e.conftest), which the dashboard's test runs; the
# past orders' writing is tested on both in tests/order_service/test_history.py.
async def test_the_demo_shop_is_seeded_once_and_sells(tmp_path: Path) -> None:
    async with running_mesh(None, tmp_path, redis_url=REDIS_URL) as mesh:
        client = mesh.client

        status, _, err = await run_demo(mesh, APP_ENV="production")
        assert status != 0
        assert "development only" in err, err
        assert await every(client, "/v1/categories", "categories") == []

        status, first, err = await run_demo(mesh)
        assert status == 0, err[-3000:]
        assert f"password: {CUSTOMER.password}" in first, first
        admin = await sign_in(client, ADMIN)
        seeded = await counts(client, admin)
        # The bootstrap admin of the test mesh, and the demo's three.
        assert seeded == {"users": 4, "categories": 8, "products": 60, "orders": len(plan())}

        status, second, err = await run_demo(mesh)
        assert status == 0, err[-3000:]
        assert "already seeded: nothing changed" in second, second
        assert "password:" not in second
        assert await counts(client, admin) == seeded

        customer = await sign_in(client, CUSTOMER)
        skillet = (await every(client, "/v1/products?query=Skillet", "products"))[0]
        assert skillet["price"]["currency_code"] == "USD"
        placed = await client.post(
            "/v1/orders",
            json={
                "items": [{"product_id": skillet["id"], "quantity": 1}],
                "payment_method": "pm_card_visa",
                "shipping_address": ADDRESS,
            },
            headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]

        async def paid() -> bool:
            response = await client.get(f"/v1/orders/{order_id}", headers=customer)
            return bool(response.json()["status"] == "PAID")

        await eventually(paid, timeout=30, message="the demo customer's order PAID")

        now = datetime.now(UTC)
        sales = await client.get(
            "/v1/analytics/sales",
            params={
                "granularity": "day",
                "start": (now - timedelta(days=60)).isoformat(),
                "end": (now + timedelta(minutes=1)).isoformat(),
            },
            headers=admin,
        )
        assert sales.status_code == 200, sales.text
        days_with_sales = [p for p in sales.json()["periods"] if p["order_count"] > 0]
        assert len(days_with_sales) > 10, sales.json()


# Its own waits below end well within it: past them the launcher's whole group is killed.
@pytest.mark.timeout(300)
async def test_the_launcher_seeds_the_demo_shop_once_ready_with_demo(tmp_path: Path) -> None:
    """`make run DEMO=1` runs the launcher with --demo: the mesh, then the demo shop."""
    ports = MeshPorts(grpc={name: free_port() for name in DEFAULT_GRPC_PORTS}, gateway=free_port())
    namespace = f"e2e-demo-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **ports.env(),
        **{
            f"{service.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / service}.db"
            for service in DEFAULT_GRPC_PORTS
        },
        "SMTP_PORT": str(free_port()),
        "AMQP_URL": AMQP_URL,
        "AMQP_NAMESPACE": namespace,
        "JWT_KEYS_DIR": str(tmp_path / "jwt-keys"),
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        # Set here, not left to a developer's shell or .env: no Redis, development, and
        # metrics on free ports (the launcher's defaults may be taken by a `make run`).
        "REDIS_URL": "",
        "APP_ENV": "development",
        "LOG_FORMAT": "json",
        **{f"{service.upper()}_METRICS_PORT": str(free_port()) for service in DEFAULT_GRPC_PORTS},
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "localmesh.launcher",
        "--demo",
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=(tmp_path / "launcher.log").open("wb"),
        start_new_session=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:

        async def seeded() -> bool:
            line = await asyncio.wait_for(process.stdout.readline(), 90)  # type: ignore[union-attr]
            output.append(line.decode())
            return b"past orders:" in line or not line

        await eventually(seeded, timeout=120, interval=0, message="the demo shop seeded")
        text = "".join(output)
        assert "Gateway ready at" in text, text
        assert text.index("Gateway ready at") < text.index("Demo shop seeded"), text
        assert "past orders: 49 written" in text, text
        os.killpg(process.pid, signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        connection = await aio_pika.connect(AMQP_URL)
        await Topology(namespace).delete_all(connection)
        await connection.close()
