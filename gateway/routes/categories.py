"""Categories of the catalog: anyone reads them, admins change them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from google.protobuf import field_mask_pb2

from ecommerce.product.v1 import product_pb2
from gateway.deps import Admin, upstreams
from gateway.routes.params import PathId
from gateway.schemas.common import problem_responses
from gateway.schemas.products import (
    Category,
    CategoryList,
    CreateCategoryRequest,
    UpdateCategoryRequest,
)

router = APIRouter(tags=["categories"])

PageSize = Annotated[int, Query(ge=0, le=100, description="At most 100; 0 means 20.")]
PageToken = Annotated[
    str, Query(max_length=1024, description="next_page_token of the previous page.")
]


@router.get("/v1/categories", summary="List categories by name", responses=problem_responses(400))
async def list_categories(
    request: Request, page_size: PageSize = 0, page_token: PageToken = ""
) -> CategoryList:
    stubs = upstreams(request)
    response = await stubs.products.ListCategories(
        product_pb2.ListCategoriesRequest(page_size=page_size, page_token=page_token)
    )
    return CategoryList(
        categories=[Category.from_proto(category) for category in response.categories],
        next_page_token=response.next_page_token,
    )


@router.get(
    "/v1/categories/{category_id}", summary="One category", responses=problem_responses(404)
)
async def get_category(category_id: PathId, request: Request) -> Category:
    stubs = upstreams(request)
    category = await stubs.products.GetCategory(product_pb2.GetCategoryRequest(id=category_id))
    return Category.from_proto(category)


@router.post(
    "/v1/categories",
    status_code=status.HTTP_201_CREATED,
    summary="Create a category (admin)",
    responses=problem_responses(400, 401, 403, 409, 422),
)
async def create_category(
    body: CreateCategoryRequest, request: Request, admin: Admin, response: Response
) -> Category:
    stubs = upstreams(request)
    category = await stubs.products.CreateCategory(
        product_pb2.CreateCategoryRequest(
            category=product_pb2.Category(name=body.name, description=body.description)
        )
    )
    response.headers["Location"] = f"/v1/categories/{category.id}"
    return Category.from_proto(category)


@router.patch(
    "/v1/categories/{category_id}",
    summary="Rename or describe a category (admin)",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def update_category(
    category_id: PathId, body: UpdateCategoryRequest, request: Request, admin: Admin
) -> Category:
    stubs = upstreams(request)
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    category = await stubs.products.UpdateCategory(
        product_pb2.UpdateCategoryRequest(
            category=product_pb2.Category(id=category_id, **fields),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
        )
    )
    return Category.from_proto(category)


@router.delete(
    "/v1/categories/{category_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a category (admin); refused (409) while products are in it",
    responses=problem_responses(401, 403, 404, 409),
)
async def delete_category(category_id: PathId, request: Request, admin: Admin) -> Response:
    stubs = upstreams(request)
    await stubs.products.DeleteCategory(product_pb2.DeleteCategoryRequest(id=category_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
