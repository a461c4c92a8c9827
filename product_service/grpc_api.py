"""gRPC servicer of the product service: messages in, domain calls, messages out.

The caller of a request is read here, at the edge, and handed to the domain, which checks it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC
from typing import Any

from google.protobuf import empty_pb2, field_mask_pb2
from google.protobuf.message import Message

from ecommerce.product.v1 import product_pb2, product_pb2_grpc
from meshkit.errors import InvalidArgument
from meshkit.identity import require_principal
from meshkit.rpc import mask_paths
from product_service.categories import Categories, CategoryChanges
from product_service.listing import normalize_filter
from product_service.messages import category_message, product_message
from product_service.products import Price, ProductChanges, ProductDraft, Products
from product_service.stock import ReservationResult, Stock, StockLine

Context = Any  # grpc.aio.ServicerContext; unused by these thin adapters

_SERVICE = "/ecommerce.product.v1.ProductService/"
# The public catalog: readable without a token.
PUBLIC_METHODS = frozenset(
    _SERVICE + method for method in ("GetProduct", "ListProducts", "GetCategory", "ListCategories")
)

PRODUCT_UPDATABLE = frozenset({"name", "description", "price", "stock", "category_id"})
CATEGORY_UPDATABLE = frozenset({"name", "description"})


def update_paths(
    mask: field_mask_pb2.FieldMask, message: Message, allowed: Collection[str]
) -> set[str]:
    """The fields an update changes: the mask's paths or, with an empty mask, every
    updatable field set in the message (AIP-134)."""
    if mask.paths:
        return mask_paths(mask, allowed)
    present = {descriptor.name for descriptor, _ in message.ListFields()} & set(allowed)
    if not present:
        raise InvalidArgument.for_field("update_mask", "must name at least one field")
    return present


def _price(product: product_pb2.Product) -> Price | None:
    if not product.HasField("price"):
        return None
    return Price(product.price.amount_minor, product.price.currency_code)


def _required_price(product: product_pb2.Product) -> Price:
    price = _price(product)
    if price is None:
        raise InvalidArgument.for_field("product.price", "is required when the mask names it")
    return price


def _product_changes(product: product_pb2.Product, paths: set[str]) -> ProductChanges:
    return ProductChanges(
        name=product.name if "name" in paths else None,
        description=product.description if "description" in paths else None,
        price=_required_price(product) if "price" in paths else None,
        stock=product.stock if "stock" in paths else None,
        category_id=product.category_id if "category_id" in paths else None,
    )


def _reservation(result: ReservationResult) -> product_pb2.ReserveStockResponse:
    return product_pb2.ReserveStockResponse(
        order_id=result.order_id,
        items=[
            product_pb2.StockItem(product_id=line.product_id, quantity=line.quantity)
            for line in result.items
        ],
        already_reserved=result.already_reserved,
        products=[product_message(product) for product in result.products],
    )


class ProductService(product_pb2_grpc.ProductServiceServicer):
    def __init__(self, categories: Categories, products: Products, stock: Stock) -> None:
        self.categories = categories
        self.products = products
        self.stock = stock

    # --- categories ----------------------------------------------------------------------

    async def CreateCategory(
        self, request: product_pb2.CreateCategoryRequest, context: Context
    ) -> product_pb2.Category:
        category = await self.categories.create_category(
            require_principal(), request.category.name, request.category.description
        )
        return category_message(category)

    async def GetCategory(
        self, request: product_pb2.GetCategoryRequest, context: Context
    ) -> product_pb2.Category:
        return category_message(await self.categories.get_category(request.id))

    async def ListCategories(
        self, request: product_pb2.ListCategoriesRequest, context: Context
    ) -> product_pb2.ListCategoriesResponse:
        categories, next_token = await self.categories.list_categories(
            request.page_size, request.page_token
        )
        return product_pb2.ListCategoriesResponse(
            categories=[category_message(category) for category in categories],
            next_page_token=next_token,
        )

    async def UpdateCategory(
        self, request: product_pb2.UpdateCategoryRequest, context: Context
    ) -> product_pb2.Category:
        paths = update_paths(request.update_mask, request.category, CATEGORY_UPDATABLE)
        changes = CategoryChanges(
            name=request.category.name if "name" in paths else None,
            description=request.category.description if "description" in paths else None,
        )
        category = await self.categories.update_category(
            require_principal(), request.category.id, changes
        )
        return category_message(category)

    async def DeleteCategory(
        self, request: product_pb2.DeleteCategoryRequest, context: Context
    ) -> empty_pb2.Empty:
        await self.categories.delete_category(require_principal(), request.id)
        return empty_pb2.Empty()

    # --- products ------------------------------------------------------------------------

    async def CreateProduct(
        self, request: product_pb2.CreateProductRequest, context: Context
    ) -> product_pb2.Product:
        product = request.product
        draft = ProductDraft(
            name=product.name,
            description=product.description,
            price=_price(product),
            stock=product.stock,
            category_id=product.category_id,
            seller_id=product.seller_id,
        )
        return product_message(await self.products.create_product(require_principal(), draft))

    async def GetProduct(
        self, request: product_pb2.GetProductRequest, context: Context
    ) -> product_pb2.Product:
        return await self.products.get_product(request.id)

    async def ListProducts(
        self, request: product_pb2.ListProductsRequest, context: Context
    ) -> product_pb2.ListProductsResponse:
        listing = normalize_filter(
            query=request.query,
            category_id=request.category_id,
            seller_id=request.seller_id,
            min_price=request.min_price if request.HasField("min_price") else None,
            max_price=request.max_price if request.HasField("max_price") else None,
            in_stock=request.in_stock if request.HasField("in_stock") else None,
            order_by=request.order_by,
        )
        return await self.products.list_products(listing, request.page_size, request.page_token)

    async def UpdateProduct(
        self, request: product_pb2.UpdateProductRequest, context: Context
    ) -> product_pb2.Product:
        paths = update_paths(request.update_mask, request.product, PRODUCT_UPDATABLE)
        changes = _product_changes(request.product, paths)
        product = await self.products.update_product(
            require_principal(), request.product.id, changes
        )
        return product_message(product)

    async def DeleteProduct(
        self, request: product_pb2.DeleteProductRequest, context: Context
    ) -> product_pb2.Product:
        return product_message(await self.products.archive_product(require_principal(), request.id))

    # --- stock -----------------------------------------------------------------------------

    async def CheckStock(
        self, request: product_pb2.CheckStockRequest, context: Context
    ) -> product_pb2.CheckStockResponse:
        availability = await self.stock.check(
            require_principal(), request.product_id, request.quantity
        )
        return product_pb2.CheckStockResponse(
            available=availability.available, stock=availability.stock
        )

    async def ReserveStock(
        self, request: product_pb2.ReserveStockRequest, context: Context
    ) -> product_pb2.ReserveStockResponse:
        result = await self.stock.reserve(
            require_principal(),
            request.order_id,
            [StockLine(item.product_id, item.quantity) for item in request.items],
        )
        return _reservation(result)

    async def ReleaseStock(
        self, request: product_pb2.ReleaseStockRequest, context: Context
    ) -> product_pb2.ReleaseStockResponse:
        released = await self.stock.release(require_principal(), request.order_id)
        return product_pb2.ReleaseStockResponse(released=released)

    async def ListHeldReservations(
        self, request: product_pb2.ListHeldReservationsRequest, context: Context
    ) -> product_pb2.ListHeldReservationsResponse:
        for name in ("reserve_time_start", "reserve_time_end"):
            if not request.HasField(name):
                raise InvalidArgument.for_field(name, "is required")
        order_ids, next_token = await self.stock.held(
            require_principal(),
            request.reserve_time_start.ToDatetime(tzinfo=UTC),
            request.reserve_time_end.ToDatetime(tzinfo=UTC),
            request.page_size,
            request.page_token,
        )
        return product_pb2.ListHeldReservationsResponse(
            order_ids=order_ids, next_page_token=next_token
        )
