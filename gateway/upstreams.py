"""The gateway's gRPC channels and stubs, one channel per upstream, opened at start-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecommerce.notification.v1 import notification_pb2_grpc
from ecommerce.order.v1 import analytics_pb2_grpc, cart_pb2_grpc, order_pb2_grpc
from ecommerce.payment.v1 import payment_pb2_grpc
from ecommerce.product.v1 import product_pb2_grpc
from ecommerce.user.v1 import auth_pb2_grpc, user_pb2_grpc
from gateway.settings import GatewaySettings
from meshkit.rpc import Channels, create_channel

UPSTREAMS = (
    "user_service",
    "product_service",
    "order_service",
    "payment_service",
    "notification_service",
)


@dataclass
class Upstreams:
    """Typed stubs over long-lived channels; the request's context rides on every call."""

    channels: Channels
    settings: GatewaySettings
    users: user_pb2_grpc.UserServiceAsyncStub
    auth: auth_pb2_grpc.AuthServiceAsyncStub
    products: product_pb2_grpc.ProductServiceAsyncStub
    orders: order_pb2_grpc.OrderServiceAsyncStub
    carts: cart_pb2_grpc.CartServiceAsyncStub
    analytics: analytics_pb2_grpc.AnalyticsServiceAsyncStub
    payments: payment_pb2_grpc.PaymentServiceAsyncStub
    notifications: notification_pb2_grpc.NotificationServiceAsyncStub

    @classmethod
    def open(cls, settings: GatewaySettings) -> Upstreams:
        channels = Channels()
        for name in UPSTREAMS:
            address = getattr(settings, f"{name}_addr")
            channels.add(
                name, create_channel(address, timeout_seconds=settings.rpc_timeout_seconds)
            )
        return cls(
            channels=channels,
            settings=settings,
            users=user_pb2_grpc.UserServiceStub(channels["user_service"]),
            auth=auth_pb2_grpc.AuthServiceStub(channels["user_service"]),
            products=product_pb2_grpc.ProductServiceStub(channels["product_service"]),
            orders=order_pb2_grpc.OrderServiceStub(channels["order_service"]),
            carts=cart_pb2_grpc.CartServiceStub(channels["order_service"]),
            analytics=analytics_pb2_grpc.AnalyticsServiceStub(channels["order_service"]),
            payments=payment_pb2_grpc.PaymentServiceStub(channels["payment_service"]),
            notifications=notification_pb2_grpc.NotificationServiceStub(
                channels["notification_service"]
            ),
        )

    async def close(self) -> None:
        await self.channels.close()

    async def health(self) -> dict[str, str]:
        """Each upstream's gRPC health status name, checked concurrently with a short deadline."""
        names = [name for name, _ in self.channels.items()]
        results = await asyncio.gather(*(self._check(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _check(self, name: str) -> str:
        stub = health_pb2_grpc.HealthStub(self.channels[name])
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=""),
                timeout=self.settings.readiness_timeout_seconds,
            )
        except grpc.aio.AioRpcError as error:
            return error.code().name
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
