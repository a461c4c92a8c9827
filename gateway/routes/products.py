"""Products: a public, filtered listing and reads; sellers and admins change them."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from google.protobuf import field_mask_pb2

from ecommerce.product.v1 import product_pb2
from gateway.deps import Caller, answers, upstreams
from gateway.responses import Document, EncodedDocument, encode
from gateway.routes.params import PathId, QueryId
from gateway.schemas.common import INT64_MAX, problem_responses
from gateway.schemas.products import (
    CreateProductRequest,
    OrderBy,
    Product,
    ProductList,
    UpdateProductRequest,
    product_document,
    product_list_document,
)

router = APIRouter(tags=["products"])

Price = Annotated[
    int | None, Query(ge=0, le=INT64_MAX, description="In minor units (cents), inclusive.")
]


@router.get(
    "/v1/products",
    response_model=ProductList,
    summary="Find products: filtered, sorted, paginated",
    description=(
        "Archived products never appear. Every filter given must match. Pages are keyset "
        "based: a `next_page_token` stays valid while products are added, and only with the "
        "same filters and order."
    ),
    responses=problem_responses(400),
)
async def list_products(
    request: Request,
    query: Annotated[
        str,
        Query(max_length=200, description="Words to find in name or description, any case."),
    ] = "",
    category_id: QueryId = "",
    min_price: Price = None,
    max_price: Price = None,
    seller_id: QueryId = "",
    in_stock: Annotated[
        bool | None, Query(description="true: only in stock; false: only sold out.")
    ] = None,
    order_by: Annotated[OrderBy | None, Query(description="Default -created_at.")] = None,
    page_size: Annotated[int, Query(ge=0, le=100, description="At most 100; 0 means 20.")] = 0,
    page_token: Annotated[
        str, Query(max_length=1024, description="next_page_token of the previous page.")
    ] = "",
) -> EncodedDocument:
    asked = product_pb2.ListProductsRequest(
        query=query,
        category_id=category_id,
        min_price=min_price,
        max_price=max_price,
        seller_id=seller_id,
        in_stock=in_stock,
        order_by=order_by or "",
        page_size=page_size,
        page_token=page_token,
    )

    async def fetch() -> bytes:
        return encode(product_list_document(await upstreams(request).products.ListProducts(asked)))

    # The request message names the page: fields at their defaults are left out, so one page
    # asked for in different ways is one entry; digested, so that long queries and page
    # tokens cost the cache no more than short ones.
    key = hashlib.blake2b(asked.SerializeToString(deterministic=True), digest_size=16).hexdigest()
    return EncodedDocument(await answers(request).listing(key, fetch))


@router.get(
    "/v1/products/{product_id}",
    response_model=Product,
    summary="One product (archived ones too, flagged)",
    responses=problem_responses(404),
)
async def get_product(product_id: PathId, request: Request) -> EncodedDocument:
    async def fetch() -> bytes:
        product = await upstreams(request).products.GetProduct(
            product_pb2.GetProductRequest(id=product_id)
        )
        return encode(product_document(product))

    return EncodedDocument(await answers(request).product(product_id, fetch))


@router.post(
    "/v1/products",
    status_code=status.HTTP_201_CREATED,
    response_model=Product,
    summary="Create a product (seller or admin)",
    responses=problem_responses(400, 401, 403, 422),
)
async def create_product(body: CreateProductRequest, request: Request, caller: Caller) -> Document:
    stubs = upstreams(request)
    product = await stubs.products.CreateProduct(
        product_pb2.CreateProductRequest(product=body.to_proto())
    )
    return Document(
        product_document(product),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/v1/products/{product.id}"},
    )


@router.patch(
    "/v1/products/{product_id}",
    response_model=Product,
    summary="Change a product (its seller or an admin)",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def update_product(
    product_id: PathId, body: UpdateProductRequest, request: Request, caller: Caller
) -> Document:
    stubs = upstreams(request)
    message, paths = body.to_proto(product_id)
    product = await stubs.products.UpdateProduct(
        product_pb2.UpdateProductRequest(
            product=message, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
    )
    return Document(product_document(product))


@router.delete(
    "/v1/products/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete (archive) a product (its seller or an admin)",
    description="The product leaves listings and can no longer be ordered; GET still shows "
    "it, flagged `archived`, for the orders that refer to it.",
    responses=problem_responses(401, 403, 404),
)
async def delete_product(product_id: PathId, request: Request, caller: Caller) -> Response:
    stubs = upstreams(request)
    await stubs.products.DeleteProduct(product_pb2.DeleteProductRequest(id=product_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
