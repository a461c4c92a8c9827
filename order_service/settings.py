"""Order service configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import ServiceSettings, service_setting, setting


class OrderSettings(ServiceSettings):
    service_name: ClassVar[str] = "order_service"

    grpc_port: int = service_setting(50053, "ORDER_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_setting("", "ORDER_SERVICE_DATABASE_URL")
    # Orders PENDING for this long are looked at by the reconciler (`order_service.reconciler`)
    # every interval; without a payment this long after they were placed, they are cancelled.
    # The deadline outlasts the consumers' outage window (`CONSUMER_OUTAGE_WINDOW_SECONDS`), so
    # that an order is not given up on while its payment may still be on its way.
    reconcile_after_seconds: float = setting(120.0, "ORDER_RECONCILE_AFTER_SECONDS", gt=0)
    reconcile_interval_seconds: float = setting(30.0, "ORDER_RECONCILE_INTERVAL_SECONDS", gt=0)
    payment_deadline_seconds: float = setting(3900.0, "ORDER_PAYMENT_DEADLINE_SECONDS", gt=0)

    def problems(self) -> list[str]:
        found = super().problems()
        if self.payment_deadline_seconds < self.reconcile_after_seconds:
            found.append(
                "ORDER_PAYMENT_DEADLINE_SECONDS must be at least ORDER_RECONCILE_AFTER_SECONDS"
            )
        return found
