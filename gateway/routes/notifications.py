"""The caller's notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ecommerce.notification.v1 import notification_pb2
from gateway.deps import Caller, upstreams
from gateway.schemas.carts import Notification, NotificationList
from gateway.schemas.common import problem_responses

router = APIRouter(tags=["notifications"])


@router.get(
    "/v1/notifications",
    summary="Your notifications, newest first",
    responses=problem_responses(400, 401),
)
async def list_notifications(
    request: Request,
    caller: Caller,
    page_size: Annotated[int, Query(ge=0, le=100)] = 0,
    page_token: Annotated[str, Query(max_length=1024)] = "",
) -> NotificationList:
    stubs = upstreams(request)
    response = await stubs.notifications.ListNotifications(
        notification_pb2.ListNotificationsRequest(page_size=page_size, page_token=page_token)
    )
    return NotificationList(
        notifications=[Notification.from_proto(n) for n in response.notifications],
        next_page_token=response.next_page_token,
    )
