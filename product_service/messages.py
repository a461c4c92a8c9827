"""Catalog records as protobuf messages: the shape the API returns and the cache keeps."""

from __future__ import annotations

from ecommerce.common.v1 import money_pb2
from ecommerce.product.v1 import product_pb2
from meshkit.rpc import timestamp
from product_service.records import CategoryRecord, ProductRecord


def category_message(category: CategoryRecord) -> product_pb2.Category:
    return product_pb2.Category(
        id=category.id,
        name=category.name,
        description=category.description,
        create_time=timestamp(category.created_at),
        update_time=timestamp(category.updated_at),
    )


def product_message(product: ProductRecord) -> product_pb2.Product:
    return product_pb2.Product(
        id=product.id,
        name=product.name,
        description=product.description,
        price=money_pb2.Money(
            amount_minor=product.price_minor, currency_code=product.currency_code
        ),
        stock=product.stock,
        category_id=product.category_id or "",
        seller_id=product.seller_id,
        archived=product.archived,
        create_time=timestamp(product.created_at),
        update_time=timestamp(product.updated_at),
    )
