"""What a product refers to must exist: its currency in ISO 4217, its seller in the user
service (as a seller or an admin)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import field_mask_pb2

from ecommerce.common.v1 import money_pb2
from ecommerce.product.v1 import product_pb2
from ecommerce.user.v1 import auth_pb2_grpc, user_pb2, user_pb2_grpc
from tests.product_service.conftest import (
    CatalogApi,
    Person,
    _person,
    bearer,
    expect,
    violations,
)

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
CURRENCY_FIELD = "product.price.currency_code"


def _new_product(seller_id: str) -> product_pb2.CreateProductRequest:
    return product_pb2.CreateProductRequest(
        product=product_pb2.Product(
            name="Lamp",
            price=money_pb2.Money(amount_minor=500, currency_code="EUR"),
            seller_id=seller_id,
        )
    )


@pytest.mark.parametrize("currency", ["XYZ", "HRK", "ZWL", "XXX", "XTS", "XAU"])
async def test_a_price_in_no_active_iso_4217_currency_is_refused(
    catalog: CatalogApi, currency: str
) -> None:
    # XYZ was never a code; HRK and ZWL were withdrawn (Croatia's euro, Zimbabwe's ZWG); XXX
    # is "no currency", XTS the testing code, XAU an ounce of gold.
    error = await expect(Code.INVALID_ARGUMENT, catalog.create_product(currency=currency))
    assert set(violations(error)) == {CURRENCY_FIELD}
    assert "ISO 4217" in violations(error)[CURRENCY_FIELD]

    product = await catalog.create_product()
    error = await expect(
        Code.INVALID_ARGUMENT,
        catalog.update_product(
            product.id, price=money_pb2.Money(amount_minor=900, currency_code=currency)
        ),
    )
    assert set(violations(error)) == {CURRENCY_FIELD}
    assert (await catalog.get_product(product.id)).price.currency_code == "USD"


@pytest.mark.parametrize("currency", ["USD", "JPY", "ZWG", "XCG"])
async def test_a_price_in_an_active_currency_is_accepted(
    catalog: CatalogApi, currency: str
) -> None:
    product = await catalog.create_product(currency=currency)
    assert product.price.currency_code == currency


async def test_an_admin_cannot_name_a_seller_who_does_not_exist(catalog: CatalogApi) -> None:
    error = await expect(
        Code.INVALID_ARGUMENT,
        catalog.stub.CreateProduct(_new_product("ghost"), metadata=catalog.identity.admin.auth),
    )
    assert violations(error) == {"product.seller_id": "no such user"}
    assert await catalog.list_all() == []


async def test_an_admin_cannot_name_a_customer_as_the_seller(catalog: CatalogApi) -> None:
    identity = catalog.identity
    error = await expect(
        Code.INVALID_ARGUMENT,
        catalog.stub.CreateProduct(
            _new_product(identity.customer.id), metadata=identity.admin.auth
        ),
    )
    assert violations(error) == {"product.seller_id": "is not a seller"}
    assert await catalog.list_all() == []


async def test_an_admin_may_name_a_seller_or_sell_themself(catalog: CatalogApi) -> None:
    identity = catalog.identity
    for seller_id in (identity.other_seller.id, identity.admin.id, ""):
        product = await catalog.stub.CreateProduct(
            _new_product(seller_id), metadata=identity.admin.auth
        )
        assert product.seller_id == (seller_id or identity.admin.id)


class Accounts:
    """The session's user service, as its admin: people to make, then demote or deactivate."""

    def __init__(self, catalog: CatalogApi, channel: grpc.aio.Channel) -> None:
        self.catalog = catalog
        self.users = user_pb2_grpc.UserServiceStub(channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        self.admin = bearer(catalog.identity.admin.token)

    async def person(self, email: str, role: user_pb2.Role.ValueType) -> Person:
        admin_token = self.catalog.identity.admin.token
        return await _person(self.users, self.auth, email, role, admin_token)

    async def deactivate(self, person: Person) -> None:
        await self.users.DeactivateUser(
            user_pb2.DeactivateUserRequest(id=person.id), metadata=self.admin
        )

    async def set_role(self, person: Person, role: user_pb2.Role.ValueType) -> None:
        await self.users.UpdateUser(
            user_pb2.UpdateUserRequest(
                user=user_pb2.User(id=person.id, role=role),
                update_mask=field_mask_pb2.FieldMask(paths=["role"]),
            ),
            metadata=self.admin,
        )


@pytest.fixture
async def accounts(catalog: CatalogApi) -> AsyncIterator[Accounts]:
    async with grpc.aio.insecure_channel(catalog.identity.address) as channel:
        yield Accounts(catalog, channel)


@pytest.mark.parametrize("change", ["deactivated", "demoted"])
async def test_a_sellers_unexpired_token_changes_nothing_once_the_account_may_not_sell(
    catalog: CatalogApi, accounts: Accounts, change: str
) -> None:
    # A token outlives a deactivation or a demotion; a change to the catalog must not.
    seller = await accounts.person(f"{change}@example.com", user_pb2.ROLE_SELLER)
    product = await catalog.stub.CreateProduct(_new_product(""), metadata=seller.auth)
    if change == "deactivated":
        await accounts.deactivate(seller)
    else:
        await accounts.set_role(seller, user_pb2.ROLE_CUSTOMER)
    await expect(
        Code.PERMISSION_DENIED, catalog.stub.CreateProduct(_new_product(""), metadata=seller.auth)
    )
    rename = product_pb2.UpdateProductRequest(
        product=product_pb2.Product(id=product.id, name="Renamed"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]),
    )
    await expect(Code.PERMISSION_DENIED, catalog.stub.UpdateProduct(rename, metadata=seller.auth))
    await expect(
        Code.PERMISSION_DENIED,
        catalog.stub.DeleteProduct(
            product_pb2.DeleteProductRequest(id=product.id), metadata=seller.auth
        ),
    )
    assert (await catalog.get_product(product.id)).name == "Lamp"


async def test_a_demoted_admins_unexpired_token_changes_no_category(
    catalog: CatalogApi, accounts: Accounts
) -> None:
    former = await accounts.person("former-admin@example.com", user_pb2.ROLE_ADMIN)
    await accounts.set_role(former, user_pb2.ROLE_SELLER)
    await expect(
        Code.PERMISSION_DENIED,
        catalog.stub.CreateCategory(
            product_pb2.CreateCategoryRequest(category=product_pb2.Category(name="Lamps")),
            metadata=former.auth,
        ),
    )
