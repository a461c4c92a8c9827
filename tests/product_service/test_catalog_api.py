"""Categories and products over real gRPC on PostgreSQL: rules, ownership and errors."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from ecommerce.common.v1 import money_pb2
from ecommerce.product.v1 import product_pb2
from tests.product_service.conftest import CatalogApi, expect, violations

pytestmark = pytest.mark.integration

Code = grpc.StatusCode


async def test_admin_manages_categories_anyone_reads_them(catalog: CatalogApi) -> None:
    books = await catalog.create_category("Books", "Paper and ink")
    await catalog.create_category("apparel")
    await catalog.create_category("Cameras")
    assert books.id and books.name == "Books" and books.create_time.seconds

    # Public reads: no token.
    fetched = await catalog.stub.GetCategory(product_pb2.GetCategoryRequest(id=books.id))
    assert fetched == books
    first = await catalog.stub.ListCategories(product_pb2.ListCategoriesRequest(page_size=2))
    assert [c.name for c in first.categories] == ["apparel", "Books"]
    second = await catalog.stub.ListCategories(
        product_pb2.ListCategoriesRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [c.name for c in second.categories] == ["Cameras"]
    assert second.next_page_token == ""

    renamed = await catalog.stub.UpdateCategory(
        product_pb2.UpdateCategoryRequest(
            category=product_pb2.Category(id=books.id, name="Old books", description="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=catalog.identity.admin.auth,
    )
    assert (renamed.name, renamed.description) == ("Old books", "Paper and ink")

    await catalog.stub.DeleteCategory(
        product_pb2.DeleteCategoryRequest(id=books.id), metadata=catalog.identity.admin.auth
    )
    await expect(
        Code.NOT_FOUND, catalog.stub.GetCategory(product_pb2.GetCategoryRequest(id=books.id))
    )


async def test_category_names_are_unique_ignoring_case(catalog: CatalogApi) -> None:
    await catalog.create_category("Books")
    await expect(Code.ALREADY_EXISTS, catalog.create_category("BOOKS"))
    error = await expect(Code.INVALID_ARGUMENT, catalog.create_category("   "))
    assert "category.name" in violations(error)


async def test_only_admins_write_categories(catalog: CatalogApi) -> None:
    request = product_pb2.CreateCategoryRequest(category=product_pb2.Category(name="Toys"))
    await expect(Code.UNAUTHENTICATED, catalog.stub.CreateCategory(request))
    await expect(
        Code.PERMISSION_DENIED,
        catalog.stub.CreateCategory(request, metadata=catalog.identity.seller.auth),
    )


async def test_a_category_with_products_cannot_be_deleted(catalog: CatalogApi) -> None:
    category = await catalog.create_category("Toys")
    product = await catalog.create_product("Kite", category_id=category.id)
    # Archived products still refer to it (old orders show them), so they count too.
    await catalog.stub.DeleteProduct(
        product_pb2.DeleteProductRequest(id=product.id), metadata=catalog.identity.seller.auth
    )
    error = await expect(
        Code.FAILED_PRECONDITION,
        catalog.stub.DeleteCategory(
            product_pb2.DeleteCategoryRequest(id=category.id),
            metadata=catalog.identity.admin.auth,
        ),
    )
    assert "still has 1 product" in (error.details() or "")


async def test_seller_creates_own_product_and_anyone_reads_it(catalog: CatalogApi) -> None:
    category = await catalog.create_category("Engines")
    product = await catalog.create_product(
        "Analytical Engine", price=199_999, stock=3, description="Steam", category_id=category.id
    )
    assert product.seller_id == catalog.identity.seller.id
    assert product.price == money_pb2.Money(amount_minor=199_999, currency_code="USD")
    assert (product.stock, product.category_id, product.archived) == (3, category.id, False)
    assert await catalog.get_product(product.id) == product


async def test_admin_may_name_the_seller_a_seller_may_not(catalog: CatalogApi) -> None:
    identity = catalog.identity
    on_behalf = await catalog.stub.CreateProduct(
        product_pb2.CreateProductRequest(
            product=product_pb2.Product(
                name="Lamp",
                price=money_pb2.Money(amount_minor=500, currency_code="EUR"),
                seller_id=identity.seller.id,
            )
        ),
        metadata=identity.admin.auth,
    )
    assert on_behalf.seller_id == identity.seller.id
    await expect(
        Code.PERMISSION_DENIED,
        catalog.stub.CreateProduct(
            product_pb2.CreateProductRequest(
                product=product_pb2.Product(
                    name="Lamp",
                    price=money_pb2.Money(amount_minor=500, currency_code="EUR"),
                    seller_id=identity.other_seller.id,
                )
            ),
            metadata=identity.seller.auth,
        ),
    )


async def test_customers_and_anonymous_callers_cannot_create(catalog: CatalogApi) -> None:
    await expect(
        Code.PERMISSION_DENIED, catalog.create_product("Nope", by=catalog.identity.customer)
    )
    await expect(
        Code.UNAUTHENTICATED,
        catalog.stub.CreateProduct(product_pb2.CreateProductRequest(product=product_pb2.Product())),
    )


async def test_invalid_products_name_every_bad_field(catalog: CatalogApi) -> None:
    error = await expect(
        Code.INVALID_ARGUMENT,
        catalog.create_product("", price=-1, stock=-5, currency="usd"),
    )
    assert set(violations(error)) == {
        "product.name",
        "product.price.amount_minor",
        "product.price.currency_code",
        "product.stock",
    }
    missing_price = await expect(
        Code.INVALID_ARGUMENT,
        catalog.stub.CreateProduct(
            product_pb2.CreateProductRequest(product=product_pb2.Product(name="Free?")),
            metadata=catalog.identity.seller.auth,
        ),
    )
    assert "product.price" in violations(missing_price)
    unknown_category = await expect(
        Code.INVALID_ARGUMENT, catalog.create_product("Kite", category_id="nope")
    )
    assert "product.category_id" in violations(unknown_category)


async def test_seller_updates_own_product_with_a_mask(catalog: CatalogApi) -> None:
    product = await catalog.create_product("Kite", price=1500, stock=2, description="Red")
    updated = await catalog.update_product(
        product.id,
        name="Big kite",
        price=money_pb2.Money(amount_minor=1800, currency_code="USD"),
        stock=7,
    )
    assert (updated.name, updated.price.amount_minor, updated.stock) == ("Big kite", 1800, 7)
    assert updated.description == "Red"  # not in the mask

    # An empty mask means the fields set in the message (AIP-134).
    only_description = await catalog.stub.UpdateProduct(
        product_pb2.UpdateProductRequest(
            product=product_pb2.Product(id=product.id, description="Blue")
        ),
        metadata=catalog.identity.seller.auth,
    )
    assert (only_description.name, only_description.description) == ("Big kite", "Blue")

    error = await expect(
        Code.INVALID_ARGUMENT,
        catalog.update_product(
            product.id, price=money_pb2.Money(amount_minor=-1, currency_code="USD")
        ),
    )
    assert "product.price.amount_minor" in violations(error)
    await expect(
        Code.INVALID_ARGUMENT,
        catalog.stub.UpdateProduct(
            product_pb2.UpdateProductRequest(
                product=product_pb2.Product(id=product.id, name="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["seller_id"]),
            ),
            metadata=catalog.identity.seller.auth,
        ),
    )


async def test_other_sellers_and_customers_cannot_change_a_product(catalog: CatalogApi) -> None:
    identity = catalog.identity
    product = await catalog.create_product("Kite")
    for caller in (identity.other_seller, identity.customer, identity.service):
        await expect(Code.PERMISSION_DENIED, catalog.update_product(product.id, by=caller, stock=1))
        await expect(
            Code.PERMISSION_DENIED,
            catalog.stub.DeleteProduct(
                product_pb2.DeleteProductRequest(id=product.id), metadata=caller.auth
            ),
        )
    # Admins may.
    assert (await catalog.update_product(product.id, by=identity.admin, stock=1)).stock == 1
    await expect(Code.NOT_FOUND, catalog.update_product("no-such-product", stock=1))


async def test_delete_archives_the_product(catalog: CatalogApi) -> None:
    product = await catalog.create_product("Kite", stock=4)
    request = product_pb2.DeleteProductRequest(id=product.id)
    archived = await catalog.stub.DeleteProduct(request, metadata=catalog.identity.seller.auth)
    assert archived.archived
    # Idempotent, still readable for old orders, gone from the listing, not orderable.
    again = await catalog.stub.DeleteProduct(request, metadata=catalog.identity.seller.auth)
    assert again.archived
    assert (await catalog.get_product(product.id)).archived
    assert [p.id for p in await catalog.list_all()] == []
    await expect(Code.FAILED_PRECONDITION, catalog.reserve("order-1", (product.id, 1)))
    await expect(Code.FAILED_PRECONDITION, catalog.update_product(product.id, stock=9))


async def test_unknown_product_is_not_found(catalog: CatalogApi) -> None:
    await expect(Code.NOT_FOUND, catalog.get_product("0" * 32))
    await expect(Code.NOT_FOUND, catalog.get_product("x" * 500))
    await expect(Code.INVALID_ARGUMENT, catalog.get_product(""))


async def test_stock_methods_are_for_services_and_admins(catalog: CatalogApi) -> None:
    identity = catalog.identity
    product = await catalog.create_product("Kite", stock=3)
    check = product_pb2.CheckStockRequest(product_id=product.id, quantity=3)
    for caller in (identity.seller, identity.customer):
        await expect(Code.PERMISSION_DENIED, catalog.stub.CheckStock(check, metadata=caller.auth))
        await expect(Code.PERMISSION_DENIED, catalog.reserve("order-1", (product.id, 1), by=caller))
    await expect(Code.UNAUTHENTICATED, catalog.stub.CheckStock(check))

    answer = await catalog.stub.CheckStock(check, metadata=identity.service.auth)
    assert (answer.available, answer.stock) == (True, 3)
    too_many = product_pb2.CheckStockRequest(product_id=product.id, quantity=4)
    answer = await catalog.stub.CheckStock(too_many, metadata=identity.admin.auth)
    assert (answer.available, answer.stock) == (False, 3)
    bad = product_pb2.CheckStockRequest(product_id=product.id, quantity=0)
    error = await expect(
        Code.INVALID_ARGUMENT, catalog.stub.CheckStock(bad, metadata=identity.service.auth)
    )
    assert "quantity" in violations(error)
