"""Bodies of the category and product endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ecommerce.common.v1 import money_pb2
from ecommerce.product.v1 import product_pb2
from gateway.schemas.common import (
    EXAMPLE_IDS,
    EXAMPLE_TIME,
    INT64_MAX,
    INT64_MIN,
    MONEY_EXAMPLE,
    JsonInt,
    Money,
    Schema,
    example,
    money_document,
    rfc3339,
)

OrderBy = Literal["price", "-price", "name", "-created_at"]

CATEGORY_EXAMPLE = {
    "id": EXAMPLE_IDS["category"],
    "name": "Books",
    "description": "Printed and bound.",
    "create_time": EXAMPLE_TIME,
    "update_time": EXAMPLE_TIME,
}
PRODUCT_EXAMPLE = {
    "id": EXAMPLE_IDS["product"],
    "name": "Analytical Engine",
    "description": "A general-purpose mechanical computer, steam optional.",
    "price": MONEY_EXAMPLE,
    "stock": 10,
    "category_id": EXAMPLE_IDS["category"],
    "seller_id": EXAMPLE_IDS["seller"],
    "archived": False,
    "create_time": EXAMPLE_TIME,
    "update_time": EXAMPLE_TIME,
}


class Category(BaseModel):
    model_config = example(CATEGORY_EXAMPLE)

    id: str
    name: str
    description: str
    create_time: datetime | None
    update_time: datetime | None

    @classmethod
    def from_proto(cls, message: product_pb2.Category) -> Category:
        return cls(
            id=message.id,
            name=message.name,
            description=message.description,
            create_time=rfc3339(message.create_time),
            update_time=rfc3339(message.update_time),
        )


class CategoryList(BaseModel):
    model_config = example({"categories": [CATEGORY_EXAMPLE], "next_page_token": ""})

    categories: list[Category]
    next_page_token: str = Field(
        description="Pass as page_token for the next page; empty at the end."
    )


class CreateCategoryRequest(Schema):
    model_config = example({"name": "Books", "description": "Printed and bound."})

    name: str = Field(
        description="Unique, ignoring case; at most 100 characters.", examples=["Books"]
    )
    description: str = Field("", description="At most 2000 characters.")


class UpdateCategoryRequest(Schema):
    """Only the fields present change."""

    model_config = example({"description": "Printed, bound, and second-hand."})

    name: str | None = None
    description: str | None = None


class PriceInput(Schema):
    """A price as sent: the product service checks it (400 with the field when invalid)."""

    amount_minor: JsonInt = Field(
        ge=INT64_MIN,
        le=INT64_MAX,
        description="Amount in the currency's minor unit (cents); 0 to 10^12.",
        examples=[1999],
    )
    currency_code: str = Field(
        max_length=16, description="ISO 4217 code in upper case.", examples=["USD"]
    )

    def to_proto(self) -> money_pb2.Money:
        return money_pb2.Money(amount_minor=self.amount_minor, currency_code=self.currency_code)


class Product(BaseModel):
    model_config = example(PRODUCT_EXAMPLE)

    id: str
    name: str
    description: str
    price: Money
    stock: int = Field(description="Units available to order now.")
    category_id: str = Field(description="Empty when the product has no category.")
    seller_id: str
    archived: bool = Field(description="Deleted: hidden from listings, cannot be ordered.")
    create_time: datetime | None
    update_time: datetime | None


def product_document(message: product_pb2.Product) -> dict[str, Any]:
    """A product's body (`Product`, field for field) for `gateway.responses.Document`."""
    return {
        "id": message.id,
        "name": message.name,
        "description": message.description,
        "price": money_document(message.price),
        "stock": message.stock,
        "category_id": message.category_id,
        "seller_id": message.seller_id,
        "archived": message.archived,
        "create_time": rfc3339(message.create_time),
        "update_time": rfc3339(message.update_time),
    }


class ProductList(BaseModel):
    model_config = example({"products": [PRODUCT_EXAMPLE], "next_page_token": ""})

    products: list[Product]
    next_page_token: str = Field(
        description="Pass as page_token (with the same filters) for the next page; empty at "
        "the end."
    )


def product_list_document(message: product_pb2.ListProductsResponse) -> dict[str, Any]:
    """A page of products (`ProductList`) for `gateway.responses.Document`."""
    return {
        "products": [product_document(product) for product in message.products],
        "next_page_token": message.next_page_token,
    }


class CreateProductRequest(Schema):
    # No category: one that exists is not known in advance, and the product needs none.
    model_config = example(
        {
            "name": PRODUCT_EXAMPLE["name"],
            "description": PRODUCT_EXAMPLE["description"],
            "price": MONEY_EXAMPLE,
            "stock": 10,
        }
    )

    name: str = Field(description="At most 200 characters.", examples=["Analytical Engine"])
    description: str = Field("", description="At most 5000 characters.")
    price: PriceInput
    stock: JsonInt = Field(0, ge=INT64_MIN, le=INT64_MAX, description="0 to 10^9.", examples=[10])
    category_id: str = Field("", max_length=64, description="An existing category, or empty.")
    seller_id: str = Field(
        "",
        max_length=64,
        description="Admins only: the seller the product belongs to. A seller's own products "
        "are always theirs.",
    )

    def to_proto(self) -> product_pb2.Product:
        return product_pb2.Product(
            name=self.name,
            description=self.description,
            price=self.price.to_proto(),
            stock=self.stock,
            category_id=self.category_id,
            seller_id=self.seller_id,
        )


class UpdateProductRequest(Schema):
    """Only the fields present change; `category_id: ""` removes the category."""

    model_config = example({"price": {"amount_minor": 2499, "currency_code": "USD"}, "stock": 25})

    name: str | None = None
    description: str | None = None
    price: PriceInput | None = None
    stock: JsonInt | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    category_id: str | None = Field(None, max_length=64)

    def to_proto(self, product_id: str) -> tuple[product_pb2.Product, list[str]]:
        """The product message and the update mask of the fields sent."""
        fields = {name for name in self.model_fields_set if getattr(self, name) is not None}
        message = product_pb2.Product(id=product_id)
        if self.name is not None:
            message.name = self.name
        if self.description is not None:
            message.description = self.description
        if self.price is not None:
            message.price.CopyFrom(self.price.to_proto())
        if self.stock is not None:
            message.stock = self.stock
        if self.category_id is not None:
            message.category_id = self.category_id
        return message, sorted(fields)
