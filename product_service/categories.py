"""The catalog's categories: anyone reads them, admins change them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from meshkit.context import Principal, Role
from meshkit.data import Database, IntegrityViolation
from meshkit.errors import (
    FieldViolation,
    InvalidArgument,
)
from meshkit.identity import authorize
from meshkit.rpc import PageTokenCodec, page_size
from product_service.cache import CatalogCache
from product_service.errors import CategoryNameTaken, CategoryNotEmpty, CategoryNotFound
from product_service.reads import category_page, load_category
from product_service.records import CategoryRecord
from product_service.sellers import Sellers
from product_service.unit_of_work import CatalogUnitOfWorkFactory
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

    async def create_category(
        self, caller: Principal, name: str, description: str
    ) -> CategoryRecord:
        await self.sellers.confirm_caller(authorize(caller, Role.ADMIN))
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
            async with self.unit_of_work() as uow:
                if await uow.categories.by_name(name) is not None:
                    raise CategoryNameTaken(f"A category named {name!r} exists already.")
                category = await uow.categories.add(name, description)
                await uow.commit()
        except IntegrityViolation:
            # Two creations raced past the check; the unique index kept one.
            raise CategoryNameTaken(f"A category named {name!r} exists already.") from None
        await self.cache.listings_changed()
        return category

    async def get_category(self, category_id: str) -> CategoryRecord:
        check_id(category_id)
        category = await load_category(self.db, category_id)
        if category is None:
            raise CategoryNotFound(f"No category has id {category_id!r}.")
        return category

    async def list_categories(
        self, requested_size: int, page_token: str
    ) -> tuple[Sequence[CategoryRecord], str]:
        limit = page_size(requested_size)
        after = None
        if page_token:
            cursor = self.page_tokens.decode(page_token, _CATEGORY_TOKENS)
            if len(cursor) != 1 or not isinstance(cursor[0], str):
                raise InvalidArgument.for_field("page_token", "is not a page token of categories")
            after = cursor[0]
        rows = await category_page(self.db, after, limit + 1)
        next_token = (
            self.page_tokens.encode([rows[limit - 1][1]], _CATEGORY_TOKENS)
            if len(rows) > limit
            else ""
        )
        return [category for category, _ in rows[:limit]], next_token

    async def update_category(
        self, caller: Principal, category_id: str, changes: CategoryChanges
    ) -> CategoryRecord:
        await self.sellers.confirm_caller(authorize(caller, Role.ADMIN))
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
            async with self.unit_of_work() as uow:
                category = await uow.categories.get(category_id)
                if category is None:
                    raise CategoryNotFound(f"No category has id {category_id!r}.")
                changed = category
                if name is not None and name != category.name:
                    other = await uow.categories.by_name(name)
                    if other is not None and other.id != category.id:
                        raise CategoryNameTaken(f"A category named {name!r} exists already.")
                    changed = replace(changed, name=name)
                if description is not None:
                    changed = replace(changed, description=description)
                # A change to nothing writes nothing, and the category keeps its update time.
                if changed != category:
                    saved = await uow.categories.save(category, changed)
                    if saved is None:
                        # Deleted since it was read.
                        raise CategoryNotFound(f"No category has id {category_id!r}.")
                    category = saved
                await uow.commit()
        except IntegrityViolation:
            raise CategoryNameTaken(f"A category named {name!r} exists already.") from None
        await self.cache.listings_changed()
        return category

    async def delete_category(self, caller: Principal, category_id: str) -> None:
        await self.sellers.confirm_caller(authorize(caller, Role.ADMIN))
        check_id(category_id)
        try:
            async with self.unit_of_work() as uow:
                category = await uow.categories.get(category_id)
                if category is None:
                    raise CategoryNotFound(f"No category has id {category_id!r}.")
                count = await uow.products.count_in_category(category_id)
                if count:
                    raise CategoryNotEmpty(
                        f"Category {category.name!r} still has {count} product(s), archived "
                        "ones included; move them to another category before deleting it."
                    )
                await uow.categories.delete(category_id)
                await uow.commit()
        except IntegrityViolation:
            # A product was added to it meanwhile; the foreign key refused the delete.
            raise CategoryNotEmpty(
                "This category has products now; move them to another category before deleting it."
            ) from None
        await self.cache.listings_changed()
