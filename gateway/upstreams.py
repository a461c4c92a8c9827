"""The gateway's gRPC channels and stubs, one channel per upstream, opened at start-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.settings import GatewaySettings
from meshkit.channels import Channels, create_channel

UPSTREAMS = (
    "user_service",
    "product_service",
    "order_service",
    "payment_service",
    "notification_service",
)


@dataclass
class Upstreams:
    channels: Channels
    settings: GatewaySettings

    @classmethod
    def open(cls, settings: GatewaySettings) -> Upstreams:
        channels = Channels()
        for name in UPSTREAMS:
            address = getattr(settings, f"{name}_addr")
            channels.add(
                name, create_channel(address, timeout_seconds=settings.rpc_timeout_seconds)
            )
        return cls(channels=channels, settings=settings)

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
