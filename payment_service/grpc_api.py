"""gRPC servicers of the payment service: thin adapters from messages to the domain."""

from __future__ import annotations

from ecommerce.payment.v1 import payment_pb2_grpc


class PaymentService(payment_pb2_grpc.PaymentServiceServicer):
    """`ecommerce.payment.v1.PaymentService`: methods not overridden here answer UNIMPLEMENTED."""
