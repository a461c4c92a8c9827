"""Each service starts in-process on port 0 and serves health and reflection (v1, v1alpha)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.reflection import SERVICE_NAME as REFLECTION_V1ALPHA

from meshkit.service import ServiceDefinition, running_service
from meshkit.settings import load_settings
from notification_service.app import DEFINITION as NOTIFICATION
from order_service.app import DEFINITION as ORDER
from payment_service.app import DEFINITION as PAYMENT
from product_service.app import DEFINITION as PRODUCT
from tests.support import free_port
from user_service.app import DEFINITION as USER

EXPECTED_SERVICES: dict[str, tuple[ServiceDefinition[Any], set[str]]] = {
    "user_service": (USER, {"ecommerce.user.v1.UserService", "ecommerce.user.v1.AuthService"}),
    "product_service": (PRODUCT, {"ecommerce.product.v1.ProductService"}),
    "order_service": (
        ORDER,
        {
            "ecommerce.order.v1.OrderService",
            "ecommerce.order.v1.CartService",
            "ecommerce.order.v1.AnalyticsService",
        },
    ),
    "payment_service": (PAYMENT, {"ecommerce.payment.v1.PaymentService"}),
    "notification_service": (NOTIFICATION, {"ecommerce.notification.v1.NotificationService"}),
}


def in_process_settings(definition: ServiceDefinition[Any], tmp_path: Path, namespace: str) -> Any:
    return load_settings(
        definition.settings_cls,
        env_file=None,
        grpc_host="127.0.0.1",
        grpc_port=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
        amqp_namespace=namespace,
    )


REFLECTION_SERVICES = ("grpc.reflection.v1.ServerReflection", REFLECTION_V1ALPHA)


async def reflected_services(
    channel: grpc.aio.Channel, reflection_service: str, described: set[str]
) -> set[str]:
    """The services listed by one version of reflection, after it described `described`."""
    # v1's messages are v1alpha's on the wire: v1alpha's classes make a v1 call.
    info = channel.stream_stream(
        f"/{reflection_service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    names = sorted(described)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        *(reflection_pb2.ServerReflectionRequest(file_containing_symbol=n) for n in names),
    ]
    listed, *files = [r async for r in info(iter(requests))]
    for name, file in zip(names, files, strict=True):
        assert file.WhichOneof("message_response") == "file_descriptor_response", name
    return {service.name for service in listed.list_services_response.service}


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
async def test_service_serves_health_and_reflection(
    name: str, tmp_path: Path, amqp_namespace: str
) -> None:
    definition, expected = EXPECTED_SERVICES[name]
    settings = in_process_settings(definition, tmp_path, amqp_namespace)
    async with (
        running_service(definition, settings) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", *expected):
            response = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING, service
        for reflection_service in REFLECTION_SERVICES:
            listed = await reflected_services(channel, reflection_service, expected)
            assert expected | {"grpc.health.v1.Health", *REFLECTION_SERVICES} <= listed


def test_a_service_whose_database_is_down_exits_with_one_clear_line(tmp_path: Path) -> None:
    # Migrations run in a child process before serving; its failure stops the service.
    env = {
        **os.environ,
        "PAYMENT_SERVICE_DATABASE_URL": "postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/x",
        "PAYMENT_SERVICE_GRPC_PORT": str(free_port()),
        "METRICS_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "payment_service"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "payment_service cannot migrate its database" in errors[0]
    assert "make services" in errors[0]
    assert "hunter2" not in done.stderr  # the password is never printed
    assert "Traceback" not in done.stderr


def _migrate(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYMENT_SERVICE_DATABASE_URL": database_url, "METRICS_PORT": "0"}
    return subprocess.run(
        [sys.executable, "-m", "payment_service", "migrate"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrating_onto_sqlite_creates_the_missing_directory(tmp_path: Path) -> None:
    # A fresh clone has no var/: `make run` migrates every service before starting it.
    database = tmp_path / "var" / "nested" / "payment_service.db"
    done = _migrate(f"sqlite+aiosqlite:///{database}", tmp_path)
    assert done.returncode == 0, done.stderr
    assert database.is_file()


def test_an_sqlite_file_that_cannot_be_made_gets_a_hint_about_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    done = _migrate(f"sqlite+aiosqlite:///{blocker / 'payment_service.db'}", tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "cannot migrate its database" in errors[0]
    assert "write that file" in errors[0]
    assert "make services" not in errors[0]  # PostgreSQL is not what is wrong
    assert "Traceback" not in done.stderr
