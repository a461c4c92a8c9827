"""The metrics the dashboards and alert rules query (deployments/observability/metrics.yaml),
scraped from the real processes: each name is exported by the processes the contract names,
with the labels it names; and the names marked `after_order: true` have samples once one order
has been placed, paid and its emails sent (the others may wait for a failure, a dead letter or
a cache hit).

The mesh runs as `make run` starts it: each service on its own SQLite file and serving
/metrics on its own port (the package's mesh, on PostgreSQL, serves no metrics port).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from localmesh.launcher import DEFAULT_GRPC_PORTS
from meshkit.settings import PROJECT_ROOT
from tests.e2e.conftest import RunningMesh, running_mesh
from tests.e2e.shop import Shop
from tests.support import eventually, free_port

pytestmark = pytest.mark.e2e

CONTRACT = PROJECT_ROOT / "deployments" / "observability" / "metrics.yaml"
# A database of its own: the package's mesh uses 13.
REDIS_URL = "redis://127.0.0.1:6379/11"
SERVICES = tuple(DEFAULT_GRPC_PORTS)
PROCESSES = ("gateway", *SERVICES)
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """One process's /metrics: the names it declares (HELP lines) and its samples."""

    exported: frozenset[str]
    samples: tuple[Sample, ...]

    def of(self, metric: str, kind: str) -> list[Sample]:
        """The samples of a contract metric (a histogram's three series; no `_created`)."""
        names = {metric + s for s in HISTOGRAM_SUFFIXES} if kind == "histogram" else {metric}
        return [sample for sample in self.samples if sample.name in names]

    def value(self, metric: str, **labels: str) -> float:
        """The sum of a series' samples whose labels include `labels`."""
        return sum(
            s.value
            for s in self.samples
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())
        )


def parse(text: str) -> Scrape:
    exported = {
        line.split()[2] for line in text.splitlines() if line.startswith(("# HELP ", "# TYPE "))
    }
    samples = tuple(
        Sample(sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    )
    return Scrape(frozenset(exported), samples)


def contract() -> dict[str, dict[str, Any]]:
    metrics: dict[str, dict[str, Any]] = yaml.safe_load(CONTRACT.read_text())["metrics"]
    return metrics


def exporters(spec: dict[str, Any]) -> tuple[str, ...]:
    found = spec["exported_by"]
    return SERVICES if found == "services" else tuple(found)


@pytest.fixture(scope="module")
async def metered(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningMesh]:
    """The six processes with a metrics port each, on SQLite as `make run` runs them."""
    workdir = tmp_path_factory.mktemp("metered")
    async with running_mesh(None, workdir, metrics=True, redis_url=REDIS_URL) as mesh:
        yield mesh


async def scrape_all(running: RunningMesh) -> dict[str, Scrape]:
    urls = {"gateway": f"{running.url}/metrics"}
    urls |= {
        name: f"http://127.0.0.1:{port}/metrics"
        for name, port in running.mesh.ports.metrics.items()
    }
    scrapes = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for name, url in urls.items():
            response = await client.get(url)
            assert response.status_code == 200, f"{name}: {url} answered {response.status_code}"
            scrapes[name] = parse(response.text)
    return scrapes


def contract_problems(scrapes: dict[str, Scrape]) -> list[str]:
    """Where the scrapes break the contract, after one order went through."""
    problems = []
    for metric, spec in contract().items():
        for process in exporters(spec):
            scrape = scrapes[process]
            if metric not in scrape.exported:
                problems.append(f"{process} does not export {metric}")
                continue
            samples = scrape.of(metric, spec["type"])
            if spec["after_order"] and not samples:
                problems.append(f"{process}: no sample of {metric} after an order")
            for sample in samples:
                expected = set(spec["labels"]) | (
                    {"le"} if sample.name.endswith("_bucket") else set()
                )
                if set(sample.labels) != expected:
                    problems.append(
                        f"{process}: {sample.name} labelled {sorted(sample.labels)}, "
                        f"not {sorted(expected)}"
                    )
                    break
    return problems


def saga_problems(scrapes: dict[str, Scrape]) -> list[str]:
    """What one paid order, with its emails sent, must have counted."""
    orders, payments = scrapes["order_service"], scrapes["payment_service"]
    expected = [
        (
            orders,
            "orders_status_transitions_total",
            {"from_status": "NONE", "to_status": "PENDING"},
        ),
        (
            orders,
            "orders_status_transitions_total",
            {"from_status": "PENDING", "to_status": "PAID"},
        ),
        (orders, "order_time_to_paid_seconds_count", {}),
        (payments, "payments_total", {"outcome": "succeeded"}),
        (scrapes["notification_service"], "emails_total", {"outcome": "sent"}),
        (
            scrapes["gateway"],
            "http_requests_total",
            {"method": "POST", "route": "/v1/orders", "status": "201"},
        ),
    ]
    for process in ("order_service", "payment_service", "notification_service"):
        expected.append((scrapes[process], "events_consumed_total", {"outcome": "handled"}))
    # The notification service publishes nothing: an order's emails are asked of it.
    for process in ("order_service", "payment_service"):
        expected.append((scrapes[process], "outbox_events_published_total", {}))
    for process in SERVICES:
        expected.append((scrapes[process], "grpc_server_handled_total", {"grpc_code": "OK"}))
    names = {id(scrape): name for name, scrape in scrapes.items()}
    return [
        f"{names[id(scrape)]}: {metric}{labels or ''} did not count the order"
        for scrape, metric, labels in expected
        if scrape.value(metric, **labels) < 1
    ]


async def test_every_metric_of_the_contract_is_exported_and_counts_an_order(
    metered: RunningMesh,
) -> None:
    shop = Shop(metered)
    client = metered.client
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=5)
    for _ in range(2):  # the second read may come from the caches
        assert (await client.get(f"/v1/products/{product['id']}")).status_code == 200
        assert (await client.get("/v1/products")).status_code == 200
    placed = await shop.place(buyer, product["id"])
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    await shop.wait_status(buyer, order_id, "PAID")

    async def mailed() -> bool:
        return bool(metered.smtp.received(buyer.email))

    await eventually(mailed, timeout=30, message="an email to the buyer")
    # Calls to the payment and notification services' own gRPC methods.
    payment = await client.get(f"/v1/orders/{order_id}/payment", headers=buyer.headers)
    assert payment.status_code == 200, payment.text
    notifications = await client.get("/v1/notifications", headers=buyer.headers)
    assert notifications.status_code == 200, notifications.text

    async def kept() -> bool:
        # The relays measure their outboxes every few seconds, and the email goes after the
        # order is paid.
        scrapes = await scrape_all(metered)
        return not contract_problems(scrapes) and not saga_problems(scrapes)

    try:
        await eventually(kept, timeout=30, interval=0.5, message="the metrics contract")
    except AssertionError:
        scrapes = await scrape_all(metered)
        problems = contract_problems(scrapes) + saga_problems(scrapes)
        assert not problems, "the metrics contract is broken:\n" + "\n".join(problems)


async def test_a_real_prometheus_scrapes_every_process_and_answers_a_red_query(
    metered: RunningMesh, tmp_path: Path
) -> None:
    ports = metered.mesh.ports
    targets = {
        "gateway": [f"127.0.0.1:{ports.gateway}"],
        "services": [f"127.0.0.1:{port}" for port in ports.metrics.values()],
    }
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": job, "static_configs": [{"targets": addresses}]}
                    for job, addresses in targets.items()
                ],
            }
        )
    )
    api = f"127.0.0.1:{free_port()}"
    with (tmp_path / "prometheus.log").open("wb") as log:
        prometheus = await asyncio.create_subprocess_exec(
            shutil.which("prometheus") or "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={api}",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://{api}", timeout=5) as client:

            async def query(promql: str) -> list[dict[str, Any]] | None:
                # Calls keep coming while Prometheus takes its first scrapes: calls the gateway
                # does not answer from its cache, as it does a listing page read before.
                await metered.client.get("/v1/categories", params={"page_size": 1})
                try:
                    answer = await client.get("/api/v1/query", params={"query": promql})
                except httpx.TransportError:
                    return None  # not listening yet
                if answer.status_code == 503:
                    return None  # listening, its storage not open yet ("Service Unavailable")
                answer.raise_for_status()
                result: list[dict[str, Any]] = answer.json()["data"]["result"]
                return result or None

            await eventually(
                lambda: query("count(up == 1) == 6"), timeout=60, message="all six scraped"
            )
            up = await query("up == 1") or []
            red = await eventually(
                lambda: query(
                    "sum by (grpc_service, grpc_code) "
                    "(rate(grpc_server_handled_total{grpc_service!~'grpc.health.*'}[30s])) > 0"
                ),
                timeout=60,
                message="a RED query answered with data",
            )
    finally:
        prometheus.terminate()
        await asyncio.wait_for(prometheus.wait(), 30)
    assert {series["metric"]["job"] for series in up} == {"gateway", "services"}
    assert "ecommerce.product.v1.ProductService" in {
        series["metric"]["grpc_service"] for series in red
    }
