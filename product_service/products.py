"""The catalog's products: who may change them, and their cached public reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import cast

from ecommerce.product.v1 import product_pb2
from meshkit.context import Principal, Role
from meshkit.data import Database, IntegrityViolation
from meshkit.errors import (
    NUL,
    FieldViolation,
    InvalidArgument,
)
from meshkit.identity import authorize
from meshkit.rpc import PageTokenCodec, page_size
from product_service.cache import CatalogCache
from product_service.currencies import ISO_4217_CODES
from product_service.errors import NotProductSeller, ProductArchived, ProductNotFound
from product_service.listing import Cursor, ListingTokens, ProductFilter
from product_service.messages import product_message
from product_service.reads import load_product, product_page
from product_service.records import ProductRecord
from product_service.sellers import SELLER_FIELD, Sellers
from product_service.unit_of_work import CatalogUnitOfWork, CatalogUnitOfWorkFactory
from product_service.validation import (
    MAX_ID_LENGTH,
    changed_text,
    check_id,
    checked_text,
    raise_if_invalid,
)

logger = logging.getLogger(__name__)

MAX_PRODUCT_NAME = 200
MAX_PRODUCT_DESCRIPTION = 5000
# The gateway's JSON schema of money allows up to this; larger prices are refused here too.
MAX_PRICE_MINOR = 10**12
MAX_STOCK = 10**9


@dataclass(frozen=True)
class Price:
    amount_minor: int
    currency_code: str


@dataclass(frozen=True)
class ProductDraft:
    """A product to create, as the caller sent it; validated by the catalog."""

    name: str
    price: Price | None
    description: str = ""
    stock: int = 0
    category_id: str = ""
    # Only admins name a seller; a seller's product is always their own.
    seller_id: str = ""


@dataclass(frozen=True)
class ProductChanges:
    """What an update changes; None leaves a field as it is, "" clears the category."""

    name: str | None = None
    description: str | None = None
    price: Price | None = None
    stock: int | None = None
    category_id: str | None = None


# --- validation ---------------------------------------------------------------------------


def _check_price(violations: list[FieldViolation], price: Price | None) -> None:
    if price is None:
        violations.append(FieldViolation("product.price", "is required"))
        return
    if price.amount_minor < 0:
        violations.append(FieldViolation("product.price.amount_minor", "must not be negative"))
    elif price.amount_minor > MAX_PRICE_MINOR:
        violations.append(
            FieldViolation("product.price.amount_minor", f"must be at most {MAX_PRICE_MINOR}")
        )
    # Well-formed is not enough: "XYZ" names no currency, and no payment could be made in it.
    if price.currency_code not in ISO_4217_CODES:
        violations.append(
            FieldViolation(
                "product.price.currency_code",
                "must be an active ISO 4217 currency code in upper case, such as USD",
            )
        )


def _check_stock(violations: list[FieldViolation], stock: int) -> None:
    if stock < 0:
        violations.append(FieldViolation("product.stock", "must not be negative"))
    elif stock > MAX_STOCK:
        violations.append(FieldViolation("product.stock", f"must be at most {MAX_STOCK}"))


def _no_category(category_id: str) -> InvalidArgument:
    return InvalidArgument.for_field("product.category_id", f"no category has id {category_id!r}")


def _check_owner(principal: Principal, product: ProductRecord) -> None:
    if principal.role is Role.ADMIN:
        return
    if principal.role is not Role.SELLER or product.seller_id != principal.subject:
        raise NotProductSeller("Only the product's seller or an admin may change it.")


def _changed(
    product: ProductRecord,
    name: str | None,
    description: str | None,
    changes: ProductChanges,
    category_id: str | None,
) -> ProductRecord:
    """The product with the checked changes of an update applied; None leaves a field be."""
    if name is not None:
        product = replace(product, name=name)
    if description is not None:
        product = replace(product, description=description)
    if changes.price is not None:
        product = replace(
            product,
            price_minor=changes.price.amount_minor,
            currency_code=changes.price.currency_code,
        )
    if changes.stock is not None:
        product = replace(product, stock=changes.stock)
    if category_id is not None:
        product = replace(product, category_id=category_id or None)
    return product


async def _save(
    uow: CatalogUnitOfWork, stored: ProductRecord, product: ProductRecord
) -> ProductRecord:
    """Write what `product` changes of `stored`, as read in this unit of work: the product as
    stored."""
    saved = await uow.products.save(stored, product)
    if saved is None:
        # Products are archived, never deleted, and its row is locked: this does not happen.
        raise ProductNotFound(f"No product has id {product.id!r}.")
    return saved


class Products:
    def __init__(
        self,
        database: Database,
        unit_of_work: CatalogUnitOfWorkFactory,
        cache: CatalogCache,
        page_tokens: PageTokenCodec,
        sellers: Sellers,
    ) -> None:
        self.db = database
        self.unit_of_work = unit_of_work
        self.cache = cache
        self.sellers = sellers
        self.page_tokens = page_tokens
        self.listing_tokens = ListingTokens(page_tokens)

    # --- products: writes ------------------------------------------------------------------

    async def create_product(self, caller: Principal, draft: ProductDraft) -> ProductRecord:
        principal = authorize(caller, Role.SELLER, Role.ADMIN)
        seller_id = draft.seller_id.strip()
        if principal.role is Role.SELLER:
            if seller_id and seller_id != principal.subject:
                raise NotProductSeller("Sellers create products for themselves only.")
            seller_id = principal.subject
        seller_id = seller_id or principal.subject
        violations: list[FieldViolation] = []
        name = checked_text(violations, "product.name", draft.name, MAX_PRODUCT_NAME, required=True)
        description = checked_text(
            violations,
            "product.description",
            draft.description,
            MAX_PRODUCT_DESCRIPTION,
            required=False,
        )
        _check_price(violations, draft.price)
        _check_stock(violations, draft.stock)
        category_id = draft.category_id.strip()
        if len(category_id) > MAX_ID_LENGTH:
            violations.append(FieldViolation("product.category_id", "is not an id"))
        if len(seller_id) > MAX_ID_LENGTH or NUL in seller_id:
            violations.append(FieldViolation(SELLER_FIELD, "is not an id"))
        raise_if_invalid(violations, "product")
        await self.sellers.confirm_caller(principal)
        if seller_id != principal.subject:
            # An admin names someone else: the token vouches only for the caller.
            await self.sellers.check(seller_id)
        price = cast(Price, draft.price)  # _check_price refused None
        try:
            async with self.unit_of_work() as uow:
                if category_id and await uow.categories.get(category_id) is None:
                    raise _no_category(category_id)
                product = await uow.products.add(
                    name=name,
                    description=description,
                    price_minor=price.amount_minor,
                    currency_code=price.currency_code,
                    stock=draft.stock,
                    category_id=category_id or None,
                    seller_id=seller_id,
                )
                await uow.commit()
        except IntegrityViolation:
            # The category was deleted between the check and the insert.
            raise _no_category(category_id) from None
        await self.cache.listings_changed()
        return product

    async def update_product(
        self, caller: Principal, product_id: str, changes: ProductChanges
    ) -> ProductRecord:
        principal = authorize(caller, Role.SELLER, Role.ADMIN)
        check_id(product_id, "product.id")
        violations: list[FieldViolation] = []
        name = changed_text(
            violations, "product.name", changes.name, MAX_PRODUCT_NAME, required=True
        )
        description = changed_text(
            violations,
            "product.description",
            changes.description,
            MAX_PRODUCT_DESCRIPTION,
            required=False,
        )
        if changes.price is not None:
            _check_price(violations, changes.price)
        if changes.stock is not None:
            _check_stock(violations, changes.stock)
        category_id = changes.category_id.strip() if changes.category_id is not None else None
        if category_id is not None and len(category_id) > MAX_ID_LENGTH:
            violations.append(FieldViolation("product.category_id", "is not an id"))
        raise_if_invalid(violations, "product")
        await self.sellers.confirm_caller(principal)
        try:
            async with self.unit_of_work() as uow:
                # Locked: a concurrent reservation waits rather than interleaving.
                product = await uow.products.get(product_id, for_update=True)
                if product is None:
                    raise ProductNotFound(f"No product has id {product_id!r}.")
                _check_owner(principal, product)
                if product.archived:
                    raise ProductArchived(
                        f"Product {product_id!r} is archived; archived products do not change."
                    )
                if category_id and await uow.categories.get(category_id) is None:
                    raise _no_category(category_id)
                changed = _changed(product, name, description, changes, category_id)
                # A change to nothing writes nothing, and the product keeps its update time.
                if changed != product:
                    product = await _save(uow, product, changed)
                await uow.commit()
        except IntegrityViolation:
            raise _no_category(category_id or "") from None
        await self.cache.product_changed(product.id)
        return product

    async def archive_product(self, caller: Principal, product_id: str) -> ProductRecord:
        """Soft delete: gone from listings and orders, still readable for past orders."""
        principal = authorize(caller, Role.SELLER, Role.ADMIN)
        check_id(product_id)
        await self.sellers.confirm_caller(principal)
        async with self.unit_of_work() as uow:
            product = await uow.products.get(product_id, for_update=True)
            if product is None:
                raise ProductNotFound(f"No product has id {product_id!r}.")
            _check_owner(principal, product)
            if product.archived:
                # Archived already: nothing to write, and nothing cached changes.
                return product
            product = await _save(uow, product, replace(product, archived=True))
            await uow.commit()
        await self.cache.product_changed(product.id)
        return product

    # --- products: public reads, cached ----------------------------------------------------

    async def get_product(self, product_id: str) -> product_pb2.Product:
        """A product, archived or not, as its message (the form the cache keeps)."""
        check_id(product_id)
        entry = await self.cache.product(product_id)
        if entry.value is not None:
            return product_pb2.Product.FromString(entry.value)
        product = await load_product(self.db, product_id)
        if product is None:
            raise ProductNotFound(f"No product has id {product_id!r}.")
        message = product_message(product)
        await entry.store(message.SerializeToString())
        return message

    async def list_products(
        self, listing: ProductFilter, requested_size: int, page_token: str
    ) -> product_pb2.ListProductsResponse:
        limit = page_size(requested_size)
        # Checked before the cache, so a forged token fails even if the page were cached.
        after = self.listing_tokens.decode(listing, page_token)
        entry = await self.cache.listing(f"{listing.canonical}|{limit}|{page_token}")
        if entry.value is not None:
            return product_pb2.ListProductsResponse.FromString(entry.value)
        rows = await product_page(self.db, listing, after, limit + 1)
        next_token = ""
        if len(rows) > limit:
            last, key = rows[limit - 1]
            next_token = self.listing_tokens.encode(listing, Cursor(key, last.id))
        response = product_pb2.ListProductsResponse(
            products=[product_message(product) for product, _ in rows[:limit]],
            next_page_token=next_token,
        )
        await entry.store(response.SerializeToString())
        return response
