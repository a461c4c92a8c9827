"""The catalog's categories: anyone reads them, admins change them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from meshkit.context import Role
from meshkit.data import Database
from meshkit.errors import (
    FieldViolation,
    InvalidArgument,
)
from meshkit.identity import require_role
from meshkit.rpc import PageTokenCodec, page_size
from product_service.cache import CatalogCache
from product_service.errors import CategoryNameTaken, CategoryNotEmpty, CategoryNotFound
from product_service.models import Category
from product_service.repository import CategoryRepository, ProductRepository
from product_service.sellers import Sellers
from product_service.validation import changed_text, check_id, checked_text, raise_if_invalid

logger = logging.getLogger(__name__)

MAX_CATEGORY_NAME = 100
MAX_CATEGORY_DESCRIPTION = 2000
_CATEGORY_TOKENS = "categories"


@dataclass(frozen=True)
class CategoryChanges:
    name: str | None = None
    description: str | None = None


class Categories:
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

    async def create_category(self, name: str, description: str) -> Category:
        await self.sellers.confirm_caller(require_role(Role.ADMIN))
        violations: list[FieldViolation] = []
        name = checked_text(violations, "category.name", name, MAX_CATEGORY_NAME, required=True)
        description = checked_text(
            violations,
            "category.description",
            description,
            MAX_CATEGORY_DESCRIPTION,
            required=False,
        )
        raise_if_invalid(violations, "category")
        try:
            async with self.db.transaction() as session:
                categories = CategoryRepository(session)
                if await categories.by_name(name) is not None:
                    raise CategoryNameTaken(f"A category named {name!r} exists already.")
                category = await categories.add(Category(name=name, description=description))
        except IntegrityError:
            # Two creations raced past the check; the unique index kept one.
            raise CategoryNameTaken(f"A category named {name!r} exists already.") from None
        await self.cache.listings_changed()
        return category

    async def get_category(self, category_id: str) -> Category:
        check_id(category_id)
        async with self.db.session() as session:
            category = await CategoryRepository(session).get(category_id)
        if category is None:
            raise CategoryNotFound(f"No category has id {category_id!r}.")
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
        name = changed_text(
            violations, "category.name", changes.name, MAX_CATEGORY_NAME, required=True
        )
        description = changed_text(
            violations,
            "category.description",
            changes.description,
            MAX_CATEGORY_DESCRIPTION,
            required=False,
        )
        raise_if_invalid(violations, "category")
        try:
            async with self.db.transaction() as session:
                categories = CategoryRepository(session)
                category = await categories.get(category_id)
                if category is None:
                    raise CategoryNotFound(f"No category has id {category_id!r}.")
                if name is not None and name != category.name:
                    other = await categories.by_name(name)
                    if other is not None and other.id != category.id:
                        raise CategoryNameTaken(f"A category named {name!r} exists already.")
                    category.name = name
                if description is not None:
                    category.description = description
                await session.flush()
        except IntegrityError:
            raise CategoryNameTaken(f"A category named {name!r} exists already.") from None
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
                    raise CategoryNotFound(f"No category has id {category_id!r}.")
                count = await ProductRepository(session).count_in_category(category_id)
                if count:
                    raise CategoryNotEmpty(
                        f"Category {category.name!r} still has {count} product(s), archived "
                        "ones included; move them to another category before deleting it."
                    )
                await categories.delete(category)
        except IntegrityError:
            # A product was added to it meanwhile; the foreign key refused the delete.
            raise CategoryNotEmpty(
                "This category has products now; move them to another category before deleting it."
            ) from None
        await self.cache.listings_changed()
