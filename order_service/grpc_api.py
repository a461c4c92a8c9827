"""gRPC servicers of the order service: thin adapters from messages to the domain."""

from __future__ import annotations

from ecommerce.order.v1 import (
    analytics_pb2_grpc,
    cart_pb2_grpc,
    order_pb2_grpc,
)


class OrderService(order_pb2_grpc.OrderServiceServicer):
    """`ecommerce.order.v1.OrderService`: methods not overridden here answer UNIMPLEMENTED."""


class CartService(cart_pb2_grpc.CartServiceServicer):
    """`ecommerce.order.v1.CartService`: methods not overridden here answer UNIMPLEMENTED."""


class AnalyticsService(analytics_pb2_grpc.AnalyticsServiceServicer):
    """`ecommerce.order.v1.AnalyticsService`: methods not overridden here answer UNIMPLEMENTED."""
