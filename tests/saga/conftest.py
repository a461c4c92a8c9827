"""The saga's services in-process on real PostgreSQL and RabbitMQ: user, product, order, payment."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aio_pika
import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecommerce.common.v1 import money_pb2
from ecommerce.order.v1 import order_pb2, order_pb2_grpc
from ecommerce.payment.v1 import payment_pb2_grpc
from ecommerce.product.v1 import product_pb2, product_pb2_grpc
from ecommerce.user.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from localmesh.faultproxy import FaultyProxy
from meshkit.messaging import Topology
from meshkit.rpc import GrpcServer
from meshkit.service import running_service
from meshkit.settings import PROJECT_ROOT, load_settings
from order_service.app import DEFINITION as ORDER
from payment_service.app import DEFINITION as PAYMENT
from product_service.app import DEFINITION as PRODUCT
from tests.conftest import AMQP_URL, PostgresFactory
from tests.support import eventually, free_port
from user_service.app import DEFINITION as USER

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin password 1"
PASSWORD = "a fine password"
ADDRESS = order_pb2.Address(
    recipient="Ada", line1="1 Main St", city="London", postal_code="N1", country_code="GB"
)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Saga:
    """Running services, their databases, and stubs with tokens ready to use."""

    stack: AsyncExitStack
    namespace: str
    databases: dict[str, str]
    keys_dir: Path
    addresses: dict[str, str] = field(default_factory=dict)
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    customer: str = ""
    customer_id: str = ""
    seller: str = ""

    def settings(self, name: str, **overrides: Any) -> dict[str, Any]:
        common = {
            "grpc_host": "127.0.0.1",
            "grpc_port": 0,
            "database_url": self.databases.get(name, ""),
            "amqp_namespace": self.namespace,
            "user_service_addr": self.addresses.get("user_service", ""),
            "product_service_addr": self.addresses.get("product_service", ""),
            # Empty unless a test starts one: the timeline then shows no emails.
            "notification_service_addr": self.addresses.get("notification_service", ""),
            "consumer_retry_base_seconds": 0.05,
            "consumer_retry_max_seconds": 0.2,
            "db_pool_size": 4,
        }
        return {**common, **overrides}

    async def start(self, name: str, definition: Any, **overrides: Any) -> GrpcServer:
        settings = load_settings(
            definition.settings_cls, env_file=None, **self.settings(name, **overrides)
        )
        server = await self.stack.enter_async_context(running_service(definition, settings))
        self.addresses.setdefault(name, f"127.0.0.1:{server.port}")
        return server

    def channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.channels:
            self.channels[name] = grpc.aio.insecure_channel(self.addresses[name])
        return self.channels[name]

    @property
    def users(self) -> user_pb2_grpc.UserServiceAsyncStub:
        return user_pb2_grpc.UserServiceStub(self.channel("user_service"))

    @property
    def auth(self) -> auth_pb2_grpc.AuthServiceAsyncStub:
        return auth_pb2_grpc.AuthServiceStub(self.channel("user_service"))

    @property
    def products(self) -> product_pb2_grpc.ProductServiceAsyncStub:
        return product_pb2_grpc.ProductServiceStub(self.channel("product_service"))

    @property
    def orders(self) -> order_pb2_grpc.OrderServiceAsyncStub:
        return order_pb2_grpc.OrderServiceStub(self.channel("order_service"))

    @property
    def payments(self) -> payment_pb2_grpc.PaymentServiceAsyncStub:
        return payment_pb2_grpc.PaymentServiceStub(self.channel("payment_service"))

    async def login(self, email: str, password: str = PASSWORD) -> str:
        pair = await self.auth.Login(auth_pb2.LoginRequest(email=email, password=password))
        return pair.access_token

    async def new_user(
        self, email: str, role: user_pb2.Role.ValueType = user_pb2.ROLE_CUSTOMER
    ) -> tuple[str, str]:
        user = await self.users.Register(
            user_pb2.RegisterRequest(email=email, password=PASSWORD, full_name=email.split("@")[0])
        )
        if role != user_pb2.ROLE_CUSTOMER:
            admin = await self.login(ADMIN_EMAIL, ADMIN_PASSWORD)
            await self.users.UpdateUser(
                user_pb2.UpdateUserRequest(
                    user=user_pb2.User(id=user.id, role=role),
                    update_mask=field_mask_pb2.FieldMask(paths=["role"]),
                ),
                metadata=bearer(admin),
            )
        return user.id, await self.login(email)

    async def new_product(self, stock: int, price_minor: int = 1_999, name: str = "Widget") -> str:
        product = await self.products.CreateProduct(
            product_pb2.CreateProductRequest(
                product=product_pb2.Product(
                    name=name,
                    description="A thing",
                    price=money_pb2.Money(amount_minor=price_minor, currency_code="USD"),
                    stock=stock,
                )
            ),
            metadata=bearer(self.seller),
        )
        return product.id

    async def stock_of(self, product_id: str) -> int:
        product = await self.products.GetProduct(product_pb2.GetProductRequest(id=product_id))
        return product.stock

    async def place(
        self, product_id: str, quantity: int = 1, *, key: str, method: str = "pm_card_visa"
    ) -> order_pb2.Order:
        return await self.orders.CreateOrder(
            order_pb2.CreateOrderRequest(
                idempotency_key=key,
                items=[order_pb2.LineItem(product_id=product_id, quantity=quantity)],
                payment_method=method,
                shipping_address=ADDRESS,
            ),
            metadata=bearer(self.customer),
        )

    async def order_status(self, order_id: str) -> order_pb2.OrderStatus.ValueType:
        order = await self.orders.GetOrder(
            order_pb2.GetOrderRequest(id=order_id), metadata=bearer(self.customer)
        )
        return order.status

    async def wait_status(
        self, order_id: str, status: order_pb2.OrderStatus.ValueType, timeout: float = 20
    ) -> None:
        async def reached() -> bool:
            now = await self.order_status(order_id)
            # Raised, not returned: a wait that runs out says where the order was instead.
            assert now == status, f"the order is {order_pb2.OrderStatus.Name(now)}"
            return True

        await eventually(
            reached,
            timeout=timeout,
            message=f"order {order_id} reaches {order_pb2.OrderStatus.Name(status)}",
        )

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)
        await self.stack.aclose()


@pytest.fixture
async def saga_base(
    postgres_databases: PostgresFactory, amqp_namespace: str, tmp_path: Path
) -> AsyncIterator[Saga]:
    """User and product services running, a customer and a seller signed in; no order or
    payment service yet (tests start those as they need)."""
    databases = {
        name: await postgres_databases()
        for name in ("user_service", "product_service", "order_service", "payment_service")
    }
    saga = Saga(AsyncExitStack(), amqp_namespace, databases, tmp_path / "keys")
    await saga.start(
        "user_service",
        USER,
        jwt_keys_dir=saga.keys_dir,
        bootstrap_admin_email=ADMIN_EMAIL,
        bootstrap_admin_password=ADMIN_PASSWORD,
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    )
    await saga.start("product_service", PRODUCT)
    saga.customer_id, saga.customer = await saga.new_user("customer@example.com")
    _, saga.seller = await saga.new_user("seller@example.com", user_pb2.ROLE_SELLER)
    try:
        yield saga
    finally:
        await saga.close()


@pytest.fixture
async def saga(saga_base: Saga) -> Saga:
    """The whole saga in-process: order and payment services too."""
    await saga_base.start("order_service", ORDER)
    await saga_base.start("payment_service", PAYMENT)
    return saga_base


@pytest.fixture
async def broker_proxy() -> AsyncIterator[FaultyProxy]:
    host, port = AMQP_URL.split("@", 1)[1].rstrip("/").split(":")
    proxy = await FaultyProxy(host, int(port)).start()
    yield proxy
    await proxy.close()


class OrderProcess:
    """order_service as a real process, so a test can SIGKILL it."""

    def __init__(self, saga: Saga, amqp_url: str) -> None:
        self.saga = saga
        self.amqp_url = amqp_url
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "ORDER_SERVICE_GRPC_PORT": str(self.port),
            "GRPC_HOST": "127.0.0.1",
            "ORDER_SERVICE_DATABASE_URL": self.saga.databases["order_service"],
            "AMQP_URL": self.amqp_url,
            "AMQP_NAMESPACE": self.saga.namespace,
            "USER_SERVICE_ADDR": self.saga.addresses["user_service"],
            "PRODUCT_SERVICE_ADDR": self.saga.addresses["product_service"],
            "LOG_LEVEL": "WARNING",
        }
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "order_service", cwd=PROJECT_ROOT, env=env
        )
        address = f"127.0.0.1:{self.port}"

        async def serving() -> bool:
            assert self.process is not None and self.process.returncode is None, (
                "order_service exited"
            )
            try:
                async with grpc.aio.insecure_channel(address) as channel:
                    response = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                # grpc_health's stubs leave health_pb2 and health_pb2_grpc untyped (Any).
                return cast(bool, response.status == health_pb2.HealthCheckResponse.SERVING)
            except grpc.aio.AioRpcError:
                return False

        await eventually(serving, timeout=30, message="order_service serving")
        old = self.saga.channels.pop("order_service", None)
        if old is not None:
            await old.close(None)
        self.saga.addresses["order_service"] = address

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                # The service's own shutdown deadline (15 s) ends it before this one.
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                await self.kill()  # not left running into the next tests
                raise


async def publish_event(
    saga: Saga, event_type: str, body: bytes, message_id: str, correlation_id: str
) -> None:
    """An event published to the saga's exchange as a service's relay would."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await Topology(saga.namespace).declare_exchange(channel)
        await exchange.publish(
            aio_pika.Message(
                body=body,
                message_id=message_id,
                type=event_type,
                correlation_id=correlation_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                app_id="tests",
            ),
            routing_key=event_type,
        )
    finally:
        await connection.close()


async def dead_letters(saga: Saga, consumer: str) -> int:
    """Messages in `consumer`'s dead-letter queue."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            Topology(saga.namespace).dead_letter_queue(consumer),
            durable=True,
            arguments={"x-queue-type": "quorum"},
        )
        return queue.declaration_result.message_count or 0
    finally:
        await connection.close()
