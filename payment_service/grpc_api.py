"""gRPC servicer of the payment service: messages in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

from ecommerce.payment.v1 import payment_pb2, payment_pb2_grpc
from meshkit.identity import require_principal
from meshkit.rpc import money, timestamp
from payment_service.payments import Payments
from payment_service.records import PaymentRecord

_STATUS = {
    "SUCCEEDED": payment_pb2.PAYMENT_STATUS_SUCCEEDED,
    "FAILED": payment_pb2.PAYMENT_STATUS_FAILED,
    "REFUNDED": payment_pb2.PAYMENT_STATUS_REFUNDED,
}


def payment_message(payment: PaymentRecord) -> payment_pb2.Payment:
    return payment_pb2.Payment(
        id=payment.id,
        order_id=payment.order_id,
        user_id=payment.user_id,
        amount=money(payment.amount_minor, payment.currency_code),
        status=_STATUS[payment.status],
        payment_method=payment.payment_method,
        failure_code=payment.failure_code,
        failure_reason=payment.failure_reason,
        create_time=timestamp(payment.created_at),
        refund_time=timestamp(payment.refunded_at) if payment.refunded_at else None,
    )


class PaymentService(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, payments: Payments) -> None:
        self.payments = payments

    async def GetPayment(
        self, request: payment_pb2.GetPaymentRequest, context: Any
    ) -> payment_pb2.Payment:
        return payment_message(await self.payments.for_order(require_principal(), request.order_id))
