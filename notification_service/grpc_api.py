"""gRPC servicer of the notification service: messages in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

from ecommerce.notification.v1 import notification_pb2, notification_pb2_grpc
from meshkit.identity import require_principal
from meshkit.rpc import timestamp
from notification_service.notifications import Notifications
from notification_service.records import NotificationRecord

_STATUS = {
    "PENDING": notification_pb2.NOTIFICATION_STATUS_PENDING,
    "SENT": notification_pb2.NOTIFICATION_STATUS_SENT,
    "FAILED": notification_pb2.NOTIFICATION_STATUS_FAILED,
}


def notification_message(notification: NotificationRecord) -> notification_pb2.Notification:
    return notification_pb2.Notification(
        id=notification.id,
        user_id=notification.user_id,
        order_id=notification.order_id,
        event_type=notification.event_type,
        channel=notification_pb2.CHANNEL_EMAIL,
        recipient=notification.recipient,
        subject=notification.subject,
        status=_STATUS[notification.status],
        failure_reason=notification.failure_reason,
        attempts=notification.attempts,
        create_time=timestamp(notification.created_at),
        sent_time=timestamp(notification.sent_at),
    )


class NotificationService(notification_pb2_grpc.NotificationServiceServicer):
    def __init__(self, notifications: Notifications) -> None:
        self.notifications = notifications

    async def ListNotifications(
        self, request: notification_pb2.ListNotificationsRequest, context: Any
    ) -> notification_pb2.ListNotificationsResponse:
        rows, next_token = await self.notifications.list_own(
            require_principal(), request.page_size, request.page_token
        )
        return notification_pb2.ListNotificationsResponse(
            notifications=[notification_message(row) for row in rows], next_page_token=next_token
        )

    async def GetOrderNotifications(
        self, request: notification_pb2.GetOrderNotificationsRequest, context: Any
    ) -> notification_pb2.OrderNotifications:
        rows = await self.notifications.of_order(require_principal(), request.order_id)
        return notification_pb2.OrderNotifications(
            order_id=request.order_id, notifications=[notification_message(row) for row in rows]
        )
