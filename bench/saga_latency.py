"""Saga latency: orders placed through the gateway at a fixed rate, timed from POST to PAID.

`python -m bench.saga_latency [--orders 100] [--rate 20]` starts the whole mesh on PostgreSQL,
RabbitMQ and Redis (fresh databases and an AMQP namespace of its own, removed afterwards),
places the orders at the given arrival rate, and takes each order's PAID moment from its
`order.confirmed` event, read off the bus by a queue of the benchmark's own: no polling load.
Prints p50, p99, max, orders/s completed and orders lost (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx

from meshkit.amqp import Topology
from meshkit.launcher import DEFAULT_GRPC_PORTS, Mesh, MeshPorts
from tests.smtp import SmtpServer
from tests.support import free_port

POSTGRES = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ADMIN = {"email": "admin@example.com", "password": "admin password 1"}
ADDRESS = {"recipient": "Ada", "line1": "1 Main St", "city": "London", "country_code": "GB"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def _signed_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    await client.post("/v1/auth/register", json={"email": email, "password": "a fine password"})
    login = await client.post(
        "/v1/auth/login", json={"email": email, "password": "a fine password"}
    )
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _product(client: httpx.AsyncClient) -> str:
    admin = await client.post("/v1/auth/login", json=ADMIN)
    admin_headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    seller = await _signed_in(client, "seller@example.com")
    me = (await client.get("/v1/users/me", headers=seller)).json()
    await client.patch(f"/v1/users/{me['id']}", json={"role": "seller"}, headers=admin_headers)
    seller = await _signed_in(client, "seller@example.com")
    product = await client.post(
        "/v1/products",
        json={
            "name": "Widget",
            "price": {"amount_minor": 100, "currency_code": "USD"},
            "stock": 10**8,
        },
        headers=seller,
    )
    product.raise_for_status()
    return str(product.json()["id"])


async def measure(mesh: Mesh, namespace: str, orders: int, rate: float) -> dict[str, Any]:
    connection = await aio_pika.connect(AMQP_URL)
    paid_at: dict[str, float] = {}
    posted: dict[str, float] = {}
    all_paid = asyncio.Event()
    placing_done = asyncio.Event()
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(await Topology(namespace).declare_exchange(channel), "order.confirmed")

        async def on_confirmed(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            paid_at[message.correlation_id or ""] = time.perf_counter()
            await message.ack()
            if placing_done.is_set() and posted.keys() <= paid_at.keys():
                all_paid.set()

        await queue.consume(on_confirmed)
        async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=30) as client:
            product = await _product(client)
            buyer = await _signed_in(client, "buyer@example.com")
            errors = 0

            async def place() -> None:
                nonlocal errors
                started = time.perf_counter()
                response = await client.post(
                    "/v1/orders",
                    json={
                        "items": [{"product_id": product, "quantity": 1}],
                        "payment_method": "pm_card_visa",
                        "shipping_address": ADDRESS,
                    },
                    headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
                )
                if response.status_code != 201:
                    errors += 1
                    return
                posted[response.json()["id"]] = started

            await asyncio.gather(*(place() for _ in range(5)))  # warm-up
            posted.clear()
            began = time.perf_counter()
            pending = []
            for _ in range(orders):  # open loop: arrivals do not wait for answers
                pending.append(asyncio.create_task(place()))
                await asyncio.sleep(1 / rate)
            await asyncio.gather(*pending)
            placing_done.set()
            if posted.keys() <= paid_at.keys():
                all_paid.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_paid.wait(), 30)  # what is not paid by then is lost
            finished = max((paid_at[o] for o in posted if o in paid_at), default=began)
    finally:
        await connection.close()
    latencies = [(paid_at[o] - t) * 1000 for o, t in posted.items() if o in paid_at]
    return {
        "orders": len(posted),
        "rate_per_s": rate,
        "post_errors": errors,
        "lost": len(posted) - len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "completed_per_s": round(len(latencies) / (finished - began), 1) if latencies else 0,
    }


async def run(orders: int, rate: float) -> dict[str, Any]:
    admin = await asyncpg.connect(POSTGRES)
    databases = {service: f"bench_{uuid.uuid4().hex[:10]}" for service in DEFAULT_GRPC_PORTS}
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    smtp = SmtpServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    env = {
        "AMQP_URL": AMQP_URL,
        "AMQP_NAMESPACE": namespace,
        "REDIS_URL": REDIS_URL,
        "JWT_KEYS_DIR": str(workdir / "keys"),
        "BOOTSTRAP_ADMIN_EMAIL": ADMIN["email"],
        "BOOTSTRAP_ADMIN_PASSWORD": ADMIN["password"],
        "LOGIN_LIMIT_PER_CLIENT": "1000000",
        "LOGIN_LIMIT_PER_ACCOUNT": "1000000",
        "WRITE_LIMIT_PER_CLIENT": "1000000",
        "LOG_LEVEL": "WARNING",
        "SMTP_PORT": str(smtp.port),
    }
    for service, name in databases.items():
        await admin.execute(f'CREATE DATABASE "{name}"')
        env[f"{service.upper()}_DATABASE_URL"] = f"{base}/{name}"
    ports = MeshPorts(grpc={s: free_port() for s in DEFAULT_GRPC_PORTS}, gateway=free_port())
    mesh = Mesh(ports=ports, extra_env=env, log_path=workdir / "mesh.log")
    try:
        await mesh.start(ready_timeout=90)
        return await measure(mesh, namespace, orders, rate)
    finally:
        await mesh.stop()
        smtp.stop()
        for name in databases.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        connection = await aio_pika.connect(AMQP_URL)
        await Topology(namespace).delete_all(connection)
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="orders placed per second")
    args = parser.parse_args()
    result = asyncio.run(run(args.orders, args.rate))
    print(" ".join(f"{key}={value}" for key, value in result.items()))


if __name__ == "__main__":
    main()
