"""What an order costs besides CPU: database transactions and statements, AMQP publishes and
deliveries, gRPC calls, Redis commands, SMTP sessions and emails, counted between two
snapshots."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx
import redis.asyncio as redis
from prometheus_client.parser import text_string_to_metric_families

from bench.dbstats import statements, transactions
from bench.stack import REDIS_URL

# Counters read off each service's /metrics, summed over their labels: (sample name, row).
_METRIC_ROWS = (
    ("grpc_server_started_total", "gRPC calls served"),
    ("outbox_events_published_total", "AMQP publishes (outbox)"),
    ("events_consumed_total", "AMQP deliveries settled"),
)
STATEMENTS_UNAVAILABLE = (
    "statements: PostgreSQL runs without pg_stat_statements "
    "(shared_preload_libraries; deployments/local/ensure-services.sh sets it on install)"
)


async def _metric_counts(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    text = (await client.get(url)).text
    wanted = {name for name, _ in _METRIC_ROWS}
    counts = dict.fromkeys(wanted, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                counts[sample.name] += sample.value
    return counts


class MailCounts(Protocol):
    """What the mail sink has counted so far."""

    @property
    def sessions(self) -> int: ...

    @property
    def received(self) -> int: ...


@dataclass
class Snapshot:
    transactions: dict[str, int]
    statements: dict[str, int] | None
    # Service to sample name to its sum.
    metrics: dict[str, dict[str, float]]
    redis_commands: int
    smtp_sessions: int
    emails: int


@dataclass
class CostMeter:
    """Counts per service between `start()` and `stop()`, for a table per order.

    databases: service to the DSN of its database; metrics_urls: service to its /metrics URL;
    mail: the mail sink's counts.
    """

    databases: Mapping[str, str]
    metrics_urls: Mapping[str, str]
    mail: MailCounts
    redis_url: str = REDIS_URL
    _before: Snapshot | None = field(default=None, repr=False)

    async def _snapshot(self) -> Snapshot:
        async with httpx.AsyncClient(timeout=5) as client:
            scraped = await asyncio.gather(
                *(_metric_counts(client, url) for url in self.metrics_urls.values())
            )
        connection = redis.Redis.from_url(self.redis_url)
        try:
            # The server's own count, every database's; nothing else talks to Redis in a run.
            info = await connection.info("stats")
        finally:
            await connection.aclose()
        return Snapshot(
            await transactions(self.databases),
            await statements(self.databases),
            dict(zip(self.metrics_urls, scraped, strict=True)),
            int(info["total_commands_processed"]),
            self.mail.sessions,
            self.mail.received,
        )

    async def start(self) -> CostMeter:
        self._before = await self._snapshot()
        return self

    async def stop(self, orders: int) -> dict[str, object]:
        """Each count per order, by service where it has one: `rows` of [what, per service],
        and the notes that qualify them."""
        assert self._before is not None, "start() first"
        before, after = self._before, await self._snapshot()
        per = max(orders, 1)

        def ratio(value: float) -> float:
            # Four places: one SMTP session for a whole run is still seen.
            return round(value / per, 4)

        rows: dict[str, dict[str, float]] = {
            "PostgreSQL transactions": {
                service: ratio(after.transactions.get(service, 0) - count)
                for service, count in before.transactions.items()
            }
        }
        notes: list[str] = []
        if before.statements is not None and after.statements is not None:
            rows["PostgreSQL statements"] = {
                service: ratio(after.statements.get(service, 0) - count)
                for service, count in before.statements.items()
            }
        else:
            notes.append(STATEMENTS_UNAVAILABLE)
        for name, title in _METRIC_ROWS:
            rows[title] = {
                service: ratio(after.metrics[service][name] - counts[name])
                for service, counts in before.metrics.items()
            }
        # The meter's own INFO calls are two of these; noise at any number of orders.
        rows["Redis commands"] = {"all": ratio(after.redis_commands - before.redis_commands)}
        rows["SMTP sessions"] = {"all": ratio(after.smtp_sessions - before.smtp_sessions)}
        rows["Emails accepted"] = {"all": ratio(after.emails - before.emails)}
        return {"orders": orders, "rows": rows, "notes": notes}
