"""Why the order service refuses a request, by name: each maps to a gRPC status by its base."""

from __future__ import annotations

from meshkit.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied


class OrderNotFound(NotFound):
    """No order has this id, or the caller may not see it."""

    reason = "ORDER_NOT_FOUND"


class ProductNotFound(NotFound):
    """The cart names a product the catalog does not have."""

    reason = "PRODUCT_NOT_FOUND"


class ProductNotSold(FailedPrecondition):
    """A product was archived by its seller: it stays visible, and is no longer sold."""

    reason = "PRODUCT_ARCHIVED"


class OutOfStock(FailedPrecondition):
    """The catalog has not enough stock of a product for the order."""

    reason = "OUT_OF_STOCK"


class CurrencyMismatch(FailedPrecondition):
    """Amounts in different currencies would have to be added together."""

    reason = "CURRENCY_MISMATCH"


class CartFull(FailedPrecondition):
    """The cart holds as many products as a cart may."""

    reason = "CART_FULL"


class CartEmpty(FailedPrecondition):
    """Checkout of a cart with nothing in it."""

    reason = "CART_EMPTY"


class OrderNotPending(FailedPrecondition):
    """Only a PENDING order can be cancelled."""

    reason = "ORDER_NOT_PENDING"


class OrderNotPaid(FailedPrecondition):
    """Only a PAID order can be shipped."""

    reason = "ORDER_NOT_PAID"


class IdempotencyKeyReused(AlreadyExists):
    """The Idempotency-Key placed another order, with other items: use a new key."""

    reason = "IDEMPOTENCY_KEY_REUSED"


class NotOrderSeller(PermissionDenied):
    """Only a seller of an item in the order may ship it (or an admin)."""

    reason = "NOT_ORDER_SELLER"
