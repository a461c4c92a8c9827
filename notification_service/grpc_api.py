"""gRPC servicers of the notification service: thin adapters from messages to the domain."""

from __future__ import annotations

from ecommerce.notification.v1 import notification_pb2_grpc


class NotificationService(notification_pb2_grpc.NotificationServiceServicer):
    """`ecommerce.notification.v1.NotificationService`: methods not overridden here answer UNIMPLEMENTED."""
