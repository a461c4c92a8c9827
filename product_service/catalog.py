"""The catalog: categories and products, who may change them, and cached public reads."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy.exc import IntegrityError

from ecommerce.product.v1 import product_pb2
from meshkit.access import require_role
from meshkit.context import Principal, Role
from meshkit.db import Database
from meshkit.errors import (
    NUL,
    NUL_MESSAGE,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    require_id,
)
from meshkit.pagination import PageTokenCodec, page_size
from product_service.cache import CatalogCache
from product_service.currencies import ISO_4217_CODES
from product_service.listing import Cursor, ListingTokens, ProductFilter
from product_service.messages import product_message
from product_service.models import Category, Product
from product_service.reads import load_product
from product_service.repository import CategoryRepository, ProductRepository
from product_service.sellers import SELLER_FIELD, Sellers

logger = logging.getLogger(__name__)

MAX_CATEGORY_NAME = 100
MAX_CATEGORY_DESCRIPTION = 2000
MAX_PRODUCT_NAME = 200
MAX_PRODUCT_DESCRIPTION = 5000
# The gateway's JSON schema of money allows up to this; larger prices are refused here too.
MAX_PRICE_MINOR = 10**12
MAX_STOCK = 10**9
MAX_ID_LENGTH = 64
_CATEGORY_TOKENS = "categories"


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


@dataclass(frozen=True)
class CategoryChanges:
    name: str | None = None
    description: str | None = None


# --- validation ---------------------------------------------------------------------------


def _text(
    violations: list[FieldViolation], field: str, value: str, maximum: int, *, required: bool
) -> str:
    cleaned = value.strip()
    if required and not cleaned:
        violations.append(FieldViolation(field, "must not be empty"))
    elif len(cleaned) > maximum:
        violations.append(FieldViolation(field, f"must be at most {maximum} characters"))
    elif NUL in cleaned:
        violations.append(FieldViolation(field, NUL_MESSAGE))
    return cleaned


def _new_text(
    violations: list[FieldViolation],
    field: str,
    value: str | None,
    maximum: int,
    *,
    required: bool,
) -> str | None:
    """A changed text field, checked like a new one; None when it does not change."""
    if value is None:
        return None
    return _text(violations, field, value, maximum, required=required)


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


def _raise_if(violations: list[FieldViolation], what: str) -> None:
    if violations:
        raise InvalidArgument(f"The {what} has invalid fields.", violations)


def _no_category(category_id: str) -> InvalidArgument:
    return InvalidArgument.for_field("product.category_id", f"no category has id {category_id!r}")


def check_id(value: str, field: str = "id") -> str:
    """An id from a request: required; one longer than any we issue names nothing."""
    require_id(value, field)
    if len(value) > MAX_ID_LENGTH:
        raise NotFound(f"No resource has id {value[:MAX_ID_LENGTH]!r}...")
    if NUL in value:
        # No id we issue holds one, and PostgreSQL could not even look it up.
        raise NotFound(f"No resource has id {value!r}.")
    return value


def _check_owner(principal: Principal, product: Product) -> None:
    if principal.role is Role.ADMIN:
        return
    if principal.role is not Role.SELLER or product.seller_id != principal.subject:
        raise PermissionDenied("Only the product's seller or an admin may change it.")


class Catalog:
    def __init__(
        self,
        database: Database,
        cache: CatalogCache,
        page_tokens: PageTokenCodec,
        sellers: Sellers,
    ) -> None:
        self.db = database
        self.cache = cache
        self.sellers = sellers
        self.page_tokens = page_tokens
        self.listing_tokens = ListingTokens(page_tokens)

    # --- categories ----------------------------------------------------------------------

    async def create_category(self, name: str, description: str) -> Category:
        await self.sellers.confirm_caller(require_role(Role.ADMIN))
        violations: list[FieldViolation] = []
        name = _text(violations, "category.name", name, MAX_CATEGORY_NAME, required=True)
        description = _text(
            violations,
            "category.description",
            description,
            MAX_CATEGORY_DESCRIPTION,
            required=False,
        )
        _raise_if(violations, "category")
        try:
            async with self.db.transaction() as session:
                categories = CategoryRepository(session)
                if await categories.by_name(name) is not None:
                    raise AlreadyExists(f"A category named {name!r} exists already.")
                category = await categories.add(Category(name=name, description=description))
        except IntegrityError:
            # Two creations raced past the check; the unique index kept one.
            raise AlreadyExists(f"A category named {name!r} exists already.") from None
        await self.cache.listings_changed()
        return category

    async def get_category(self, category_id: str) -> Category:
        check_id(category_id)
        async with self.db.session() as session:
            category = await CategoryRepository(session).get(category_id)
        if category is None:
            raise NotFound(f"No category has id {category_id!r}.")
        return category

    async def list_categories(
        self, requested_size: int, page_token: str
    ) -> tuple[Sequence[Category], str]:
        limit = page_size(requested_size)
        after = None
        if page_token:
            cursor = self.page_tokens.decode(page_token, _CATEGORY_TOKENS)
            if len(cursor) != 1 or not isinstance(cursor[0], str):
                raise InvalidArgument.for_field("page_token", "is not a page token of categories")
            after = cursor[0]
        async with self.db.session() as session:
            rows = await CategoryRepository(session).page(after, limit + 1)
        next_token = (
            self.page_tokens.encode([rows[limit - 1][1]], _CATEGORY_TOKENS)
            if len(rows) > limit
            else ""
        )
        return [category for category, _ in rows[:limit]], next_token

    async def update_category(self, category_id: str, changes: CategoryChanges) -> Category:
        await self.sellers.confirm_caller(require_role(Role.ADMIN))
        check_id(category_id, "category.id")
        violations: list[FieldViolation] = []
        name = _new_text(
            violations, "category.name", changes.name, MAX_CATEGORY_NAME, required=True
        )
        description = _new_text(
            violations,
            "category.description",
            changes.description,
            MAX_CATEGORY_DESCRIPTION,
            required=False,
        )
        _raise_if(violations, "category")
        try:
            async with self.db.transaction() as session:
                categories = CategoryRepository(session)
                category = await categories.get(category_id)
                if category is None:
                    raise NotFound(f"No category has id {category_id!r}.")
                if name is not None and name != category.name:
                    other = await categories.by_name(name)
                    if other is not None and other.id != category.id:
                        raise AlreadyExists(f"A category named {name!r} exists already.")
                    category.name = name
                if description is not None:
                    category.description = description
                await session.flush()
        except IntegrityError:
            raise AlreadyExists(f"A category named {name!r} exists already.") from None
        await self.cache.listings_changed()
        return category

    async def delete_category(self, category_id: str) -> None:
        await self.sellers.confirm_caller(require_role(Role.ADMIN))
        check_id(category_id)
        try:
            async with self.db.transaction() as session:
                categories = CategoryRepository(session)
                category = await categories.get(category_id)
                if category is None:
                    raise NotFound(f"No category has id {category_id!r}.")
                count = await ProductRepository(session).count_in_category(category_id)
                if count:
                    raise FailedPrecondition(
                        f"Category {category.name!r} still has {count} product(s), archived "
                        "ones included; move them to another category before deleting it."
                    )
                await categories.delete(category)
        except IntegrityError:
            # A product was added to it meanwhile; the foreign key refused the delete.
            raise FailedPrecondition(
                "This category has products now; move them to another category before deleting it."
            ) from None
        await self.cache.listings_changed()

    # --- products: writes ------------------------------------------------------------------

    async def create_product(self, draft: ProductDraft) -> Product:
        principal = require_role(Role.SELLER, Role.ADMIN)
        seller_id = draft.seller_id.strip()
        if principal.role is Role.SELLER:
            if seller_id and seller_id != principal.subject:
                raise PermissionDenied("Sellers create products for themselves only.")
            seller_id = principal.subject
        seller_id = seller_id or principal.subject
        violations: list[FieldViolation] = []
        name = _text(violations, "product.name", draft.name, MAX_PRODUCT_NAME, required=True)
        description = _text(
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
        _raise_if(violations, "product")
        await self.sellers.confirm_caller(principal)
        if seller_id != principal.subject:
            # An admin names someone else: the token vouches only for the caller.
            await self.sellers.check(seller_id)
        price = cast(Price, draft.price)  # _check_price refused None
        try:
            async with self.db.transaction() as session:
                if category_id and await CategoryRepository(session).get(category_id) is None:
                    raise _no_category(category_id)
                product = await ProductRepository(session).add(
                    Product(
                        name=name,
                        description=description,
                        price_minor=price.amount_minor,
                        currency_code=price.currency_code,
                        stock=draft.stock,
                        category_id=category_id or None,
                        seller_id=seller_id,
                        archived=False,
                    )
                )
        except IntegrityError:
            # The category was deleted between the check and the insert.
            raise _no_category(category_id) from None
        await self.cache.listings_changed()
        return product

    async def update_product(self, product_id: str, changes: ProductChanges) -> Product:
        principal = require_role(Role.SELLER, Role.ADMIN)
        check_id(product_id, "product.id")
        violations: list[FieldViolation] = []
        name = _new_text(violations, "product.name", changes.name, MAX_PRODUCT_NAME, required=True)
        description = _new_text(
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
        _raise_if(violations, "product")
        await self.sellers.confirm_caller(principal)
        try:
            async with self.db.transaction() as session:
                products = ProductRepository(session)
                # Locked: a concurrent reservation waits rather than interleaving.
                product = await products.get(product_id, for_update=True)
                if product is None:
                    raise NotFound(f"No product has id {product_id!r}.")
                _check_owner(principal, product)
                if product.archived:
                    raise FailedPrecondition(
                        f"Product {product_id!r} is archived; archived products do not change."
                    )
                if category_id and await CategoryRepository(session).get(category_id) is None:
                    raise _no_category(category_id)
                if name is not None:
                    product.name = name
                if description is not None:
                    product.description = description
                if changes.price is not None:
                    product.price_minor = changes.price.amount_minor
                    product.currency_code = changes.price.currency_code
                if changes.stock is not None:
                    product.stock = changes.stock
                if category_id is not None:
                    product.category_id = category_id or None
                await session.flush()
        except IntegrityError:
            raise _no_category(category_id or "") from None
        await self.cache.product_changed(product.id)
        return product

    async def archive_product(self, product_id: str) -> Product:
        """Soft delete: gone from listings and orders, still readable for past orders."""
        principal = require_role(Role.SELLER, Role.ADMIN)
        check_id(product_id)
        await self.sellers.confirm_caller(principal)
        async with self.db.transaction() as session:
            product = await ProductRepository(session).get(product_id, for_update=True)
            if product is None:
                raise NotFound(f"No product has id {product_id!r}.")
            _check_owner(principal, product)
            if product.archived:
                return product
            product.archived = True
            await session.flush()
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
            raise NotFound(f"No product has id {product_id!r}.")
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
        async with self.db.session() as session:
            rows = await ProductRepository(session).page(listing, after, limit + 1)
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
