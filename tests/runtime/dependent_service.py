"""A small service that needs PostgreSQL (and RabbitMQ, when given one), each behind a proxy
that can cut it off: what readiness is tested against."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.data import Database
from meshkit.messaging import amqp
from meshkit.readiness import Dependency
from meshkit.rpc import LIVENESS, OVERALL_HEALTH, GrpcServer
from meshkit.service import ServiceApp, ServiceDefinition, running_service
from meshkit.settings import ServiceSettings, load_settings
from tests.conftest import AMQP_URL
from tests.runtime.probe import PUBLIC_METHODS, SERVICE, Probe, registration

# Short enough that each test sees a change within a second or two.
CHECK_INTERVAL_SECONDS = 0.1
CHECK_TIMEOUT_SECONDS = 0.5
# aio-pika waits 5 s between attempts to reconnect by default.
BROKER_RECONNECT_SECONDS = 0.2

HEALTH_NAMES = (OVERALL_HEALTH, SERVICE, LIVENESS)


class DependentSettings(ServiceSettings):
    service_name: ClassVar[str] = "dependent_service"


async def build(settings: DependentSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database.from_settings(settings))
    dependencies: list[Dependency] = [database.readiness]
    if settings.amqp_url:  # empty: this one does without a broker
        connection = await amqp.connect(settings.amqp_url, name=settings.service_name)
        stack.push_async_callback(connection.close)
        dependencies.append(amqp.readiness(connection))
    return ServiceApp(
        services=[registration(Probe())],
        public_methods=PUBLIC_METHODS,
        dependencies=dependencies,
    )


DEFINITION = ServiceDefinition(settings_cls=DependentSettings, build=build)


def through(proxy: FaultyProxy, url: str) -> str:
    """`url` (a database's or the broker's) with the proxy in the place of the server."""
    if url.startswith("amqp"):
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        return parts._replace(
            netloc=f"{credentials}@{proxy.endpoint}" if credentials else proxy.endpoint,
            query=f"reconnect_interval={BROKER_RECONNECT_SECONDS}",
        ).geturl()
    proxied = make_url(url).set(host="127.0.0.1", port=proxy.port)
    return proxied.render_as_string(hide_password=False)


@dataclass
class DependentService:
    server: GrpcServer
    database: FaultyProxy
    broker: FaultyProxy | None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@asynccontextmanager
async def dependent_service(
    postgres_url: str,
    *,
    with_broker: bool = True,
    database_fault: Mode = Mode.FORWARD,
    **settings: Any,
) -> AsyncIterator[DependentService]:
    """The service running in-process, its database (and broker) reached through proxies;
    `database_fault` is the database proxy's mode as the service starts."""
    async with AsyncExitStack() as stack:
        postgres = make_url(postgres_url)
        database = await stack.enter_async_context(
            FaultyProxy(postgres.host or "127.0.0.1", postgres.port or 5432)
        )
        database.set_mode(database_fault)
        broker = None
        if with_broker:
            rabbitmq = urlsplit(AMQP_URL)
            broker = await stack.enter_async_context(
                FaultyProxy(rabbitmq.hostname or "127.0.0.1", rabbitmq.port or 5672)
            )
        values: dict[str, Any] = {
            "grpc_host": "127.0.0.1",
            "grpc_port": 0,
            "database_url": through(database, postgres_url),
            "amqp_url": through(broker, AMQP_URL) if broker is not None else "",
            "migrate_on_start": False,
            "readiness_interval_seconds": CHECK_INTERVAL_SECONDS,
            "readiness_check_timeout_seconds": CHECK_TIMEOUT_SECONDS,
            **settings,
        }
        server = await stack.enter_async_context(
            running_service(DEFINITION, load_settings(DependentSettings, env_file=None, **values))
        )
        yield DependentService(server, database, broker)


async def health(address: str) -> dict[str, str]:
    """Each health name of HEALTH_NAMES with the status the server gives it."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        statuses = {}
        for name in HEALTH_NAMES:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
            statuses[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return statuses
