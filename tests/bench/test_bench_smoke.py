"""The benchmark runs every scenario for seconds and produces figures with zero errors.

No timing is asserted: the figures depend on the machine. The run must also leave nothing
behind: no process, no database.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bench.procstat import children
from bench.profiles import SMOKE
from bench.report import checks_text, costs_table, markdown, text_table, write
from bench.runner import run_bench
from bench.stack import PROCESSES
from tests.conftest import POSTGRES_ADMIN_DSN

pytestmark = pytest.mark.e2e

THROUGHPUT = ("hello", "1", "floor1", "2", "3", "floor3", "echo", "4")


async def _bench_databases() -> set[str]:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench_%'"
        )
    finally:
        await connection.close()
    return {row["datname"] for row in rows}


# The mesh is started several times: once, for the replicas, and once for each setting of
# tracing's cost.
@pytest.mark.timeout(480)
async def test_every_scenario_produces_figures_and_no_errors(tmp_path: Path) -> None:
    databases_before = await _bench_databases()

    report = await run_bench(SMOKE)

    results = report.results
    assert set(results) == {*THROUGHPUT, "5", "6", "7", "8", "9", "10"}, results
    for key in THROUGHPUT:
        figures = results[key]
        assert "failed" not in figures, figures
        assert figures["requests"] > 0, (key, figures)
        assert figures["errors"] == 0, (key, figures)
        assert figures["p50_ms"] is not None and figures["p99_ms"] is not None
        assert figures["loadgen_cpu_cores"] >= 0
    for key in ("1", "2", "3", "4"):
        assert results[key]["ratio"] > 0
        assert len(results[key]["rounds"]) == SMOKE.rounds
    # Scenarios 1 and 3 beside their floors, compared with hello world in the same rounds.
    for key in ("1", "3"):
        assert results[key]["reference"]["ratio"] > 0
        floor = results[f"floor{key}"]
        assert floor["ratio"] > 0 and len(floor["rounds"]) == SMOKE.rounds
    # A slice of the baseline beside each slice of each of its scenarios.
    assert len(results["hello"]["slices_rps"]) == 3 * SMOKE.rounds
    assert len(results["echo"]["slices_rps"]) == SMOKE.rounds
    assert all(results["hello"]["slices_rps"]) and all(results["echo"]["slices_rps"])

    phases = results["5"]["phases"]
    assert len(phases) == 1 + len(SMOKE.saga_steps)
    for phase in phases:
        assert phase["placed"] > 0, phase
        assert phase["post_errors"] == 0, phase
        assert phase["lost"] == 0 and phase["cancelled"] == 0, phase
        assert phase["p99_ms"] is not None
    # Every order went through the order service: it cannot have cost it nothing.
    per_order = results["5"]["cpu_ms_per_order"]
    assert per_order["order_service"] > 0 and per_order["machine"] >= per_order["order_service"]
    # And the servers it leans on, beside the services: every order is written and queued.
    assert per_order["postgresql"] > 0 and per_order["rabbitmq"] > 0
    assert "| CPU, ms |" in costs_table(report) and "postgresql | rabbitmq | redis |" in (
        costs_table(report)
    )
    for phase in phases:
        assert phase["cpu_ms_per_order"]["machine"] > 0, phase

    # Where an order's work goes: every kind of call the saga makes was counted.
    costs = results["5"]["costs_per_order"]
    assert costs["orders"] == sum(phase["placed"] for phase in phases)
    rows = costs["rows"]
    assert rows["PostgreSQL transactions"]["order_service"] > 0
    assert rows["gRPC calls served"]["product_service"] > 0  # stock reserved per order
    assert rows["AMQP publishes (outbox)"]["order_service"] > 0
    assert rows["AMQP deliveries settled"]["payment_service"] > 0
    # The emails were sent and the sink took them: a sink that refused every one once hid
    # the whole email path from these figures.
    assert rows["Emails accepted"]["all"] > 0
    assert rows["AMQP deliveries settled"]["notification_service"] > 0
    assert rows["Redis commands"]["all"] > 0
    # The mailer closes its connection after 10 s idle: the scenarios before the saga take
    # longer, so the saga opens at least one session.
    assert rows["SMTP sessions"]["all"] > 0
    if "PostgreSQL statements" in rows:
        statements, transactions = rows["PostgreSQL statements"], rows["PostgreSQL transactions"]
        assert statements["order_service"] >= transactions["order_service"]
    else:
        assert any("pg_stat_statements" in note for note in costs["notes"])
    assert "| PostgreSQL transactions |" in costs_table(report)

    # The saga again with second replicas of the order, payment and notification services,
    # whose CPU counts with the mesh's.
    replicated = results["10"]
    assert "failed" not in replicated, replicated
    for phase in replicated["phases"]:
        assert phase["placed"] > 0 and phase["lost"] == 0 and phase["post_errors"] == 0, phase
    assert replicated["cpu_ms_per_order"]["order_service (2)"] > 0
    assert "costs_per_order" not in replicated  # the replicas have no metrics to count

    # Cold start: each of the six processes served, started alone beside the mesh.
    started = results["9"]["seconds"]
    assert set(started) == set(PROCESSES)
    assert all(seconds is not None and seconds > 0 for seconds in started.values()), started

    shoppers = results["6"]
    assert shoppers["requests"] > 0
    assert shoppers["errors"] == 0, shoppers["kinds"]
    for kind, figures in shoppers["kinds"].items():
        assert figures["requests"] > 0, kind
        assert figures["p95_ms"] is not None, kind

    memory = results["7"]
    assert set(memory["idle"]) == set(memory["after"]) and len(memory["idle"]) == 6
    assert all(mb > 0 for mb in [*memory["idle"].values(), *memory["after"].values()])
    # Shared pages divided among the processes that map them: never more than the RSS.
    for name, pss in memory["idle_proportional"].items():
        assert 0 < pss <= memory["idle"][name], (name, pss)

    # Tracing's cost: 1, 3 and the saga's fixed rate under each setting, against off.
    tracing = results["8"]
    assert "failed" not in tracing, tracing
    assert list(tracing["settings"]) == list(SMOKE.tracing_settings) == ["off", "10%"]
    for setting, figures in tracing["settings"].items():
        for key in ("1", "3"):
            assert figures[key]["requests"] > 0 and figures[key]["errors"] == 0, (setting, key)
            assert figures[key]["ratio"] > 0, (setting, key)
            # Beside a gateway that does not trace, loaded in the same rounds.
            twin = figures[key]["untraced_twin"]
            assert twin["requests"] > 0 and twin["errors"] == 0, (setting, key)
            assert figures[key]["reference"]["ratio"] > 0, (setting, key)
        (phase,) = figures["5"]["phases"]
        assert phase["placed"] > 0 and phase["lost"] == 0, (setting, phase)
        # Traced as it says: the sink heard from the mesh, or, off, heard nothing.
        assert (figures["exported"]["requests"] > 0) is (setting != "off"), setting
    for setting in ("10%",):
        assert tracing["versus_off"][setting]["1"] > 0
        assert tracing["versus_off"][setting]["1_across_restart"] > 0
        assert tracing["versus_off"][setting]["5_cpu"] > 0

    # Every target is judged, and the report renders and is written.
    assert {check.row for check in report.checks} >= {
        "1", "3", "4", "5@0", "5", "6", "8:10%:1", "9:gateway", "9:order_service"
    }  # fmt: skip
    assert "PASS" in checks_text(report) or "MISS" in checks_text(report)
    assert "1 GET /v1/products/{id}" in text_table(report)
    assert "8 tracing 10%: 1 GET /v1/products/{id}" in text_table(report)
    assert markdown(report).startswith("# Benchmark, smoke run")
    assert "## Where an order's work goes" in markdown(report)
    json_path, md_path = write(report, tmp_path)
    assert json_path.stat().st_size > 0 and md_path.stat().st_size > 0

    assert children(os.getpid()) == [], "a process of the benchmark is still running"
    assert await _bench_databases() == databases_before
