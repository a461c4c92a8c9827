"""gRPC servicers of the product service: thin adapters from messages to the domain."""

from __future__ import annotations

from ecommerce.product.v1 import product_pb2_grpc


class ProductService(product_pb2_grpc.ProductServiceServicer):
    """`ecommerce.product.v1.ProductService`: methods not overridden here answer UNIMPLEMENTED."""
