"""Readiness follows the database and the broker; liveness stays SERVING until shutdown."""

from __future__ import annotations

import logging

import pytest
from grpc_health.v1 import health_pb2

from localmesh.faultproxy import Mode
from meshkit.readiness import Dependency, ReadinessWatcher
from meshkit.rpc import LIVENESS, OVERALL_HEALTH, start_grpc_server
from tests.runtime.dependent_service import dependent_service, health
from tests.runtime.probe import SERVICE, Probe, registration
from tests.support import eventually

SERVING = {OVERALL_HEALTH: "SERVING", SERVICE: "SERVING", LIVENESS: "SERVING"}
# Ready no more, but alive: an orchestrator stops routing here and does not restart it.
NOT_READY = {OVERALL_HEALTH: "NOT_SERVING", SERVICE: "NOT_SERVING", LIVENESS: "SERVING"}


async def wait_for_health(address: str, expected: dict[str, str], what: str) -> None:
    async def reached() -> bool:
        return await health(address) == expected

    await eventually(reached, timeout=8, message=what)


# RESET: the database went down (connections refused); STALL: it hangs, connections open.
@pytest.mark.parametrize("fault", [Mode.RESET, Mode.STALL])
async def test_readiness_follows_the_database(postgres_url: str, fault: Mode) -> None:
    async with dependent_service(postgres_url) as service:
        assert await health(service.address) == SERVING
        service.database.set_mode(fault)
        await wait_for_health(service.address, NOT_READY, "not ready without the database")
        service.database.set_mode(Mode.FORWARD)
        await wait_for_health(service.address, SERVING, "ready again with the database")


async def test_readiness_follows_the_broker(postgres_url: str) -> None:
    async with dependent_service(postgres_url) as service:
        assert service.broker is not None
        assert await health(service.address) == SERVING
        service.broker.set_mode(Mode.RESET)
        await wait_for_health(service.address, NOT_READY, "not ready without the broker")
        service.broker.set_mode(Mode.FORWARD)
        await wait_for_health(service.address, SERVING, "ready again with the broker")


async def test_a_service_started_without_its_database_is_not_ready_from_its_first_answer(
    postgres_url: str,
) -> None:
    # Checks a minute apart: only the check made before the port opened can have said so.
    async with dependent_service(
        postgres_url, with_broker=False, database_fault=Mode.RESET, readiness_interval_seconds=60
    ) as service:
        assert await health(service.address) == NOT_READY
    async with dependent_service(
        postgres_url, with_broker=False, database_fault=Mode.RESET
    ) as service:
        service.database.set_mode(Mode.FORWARD)
        await wait_for_health(service.address, SERVING, "ready once the database is back")


async def test_shutdown_says_not_serving_everywhere_and_a_late_check_cannot_undo_it() -> None:
    server = await start_grpc_server([registration(Probe())], host="127.0.0.1", port=0)
    await server.set_ready(False)
    await server.health.enter_graceful_shutdown()
    # A check that found the dependencies back just as shutdown began.
    await server.set_ready(True)
    for name in (OVERALL_HEALTH, SERVICE, LIVENESS):
        response = await server.health.Check(health_pb2.HealthCheckRequest(service=name), None)
        assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING, name
    await server.stop(0)


async def test_each_dependency_going_away_and_coming_back_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = {"database": True, "broker": True}

    def dependency(name: str) -> Dependency:
        async def check() -> None:
            if not answers[name]:
                raise ConnectionRefusedError("connection refused")

        return Dependency(name, check)

    watcher = ReadinessWatcher(
        [dependency("database"), dependency("broker")], interval=1, timeout=1
    )
    caplog.set_level(logging.INFO, logger="meshkit.readiness")
    outcomes = [await watcher.check()]
    answers["database"] = False
    outcomes += [await watcher.check(), await watcher.check()]
    answers["broker"] = False
    outcomes.append(await watcher.check())
    answers["database"] = True
    outcomes.append(await watcher.check())
    answers["broker"] = True
    outcomes += [await watcher.check(), await watcher.check()]

    assert outcomes == [True, False, False, False, False, True, True]
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        (
            "WARNING",
            "database is out of reach (ConnectionRefusedError: connection refused): "
            "health reports NOT_SERVING until it is back",
        ),
        (
            "WARNING",
            "broker is out of reach (ConnectionRefusedError: connection refused): "
            "health reports NOT_SERVING until it is back",
        ),
        ("INFO", "database is reachable again"),
        ("INFO", "broker is reachable again: health reports SERVING"),
    ]
