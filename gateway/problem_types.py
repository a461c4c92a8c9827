"""The problem types of the REST API: one stable `type` URI per reason a request can fail.

A problem+json body's `type` tells clients one failure from another (out of stock, order not
pending) without parsing `detail`. Each reason a service gives (`DomainError.reason`, carried
in the gRPC status's ErrorInfo) and each the gateway gives itself has an entry here; a test
fails when a service raises a reason this catalog does not document. A reason no entry names
(a newer service) falls back to its status's generic type.
"""

from __future__ import annotations

from dataclasses import dataclass

# Relative to the API's own address, where each is documented (`GET /problems/{name}`).
TYPE_PREFIX = "/problems/"


@dataclass(frozen=True, slots=True)
class ProblemType:
    reason: str
    # The HTTP statuses it comes with: most have one, a few more (a deactivated account is
    # 401 at sign-in and 403 on any other call).
    statuses: tuple[int, ...]
    summary: str

    @property
    def name(self) -> str:
        return self.reason.lower().replace("_", "-")

    @property
    def uri(self) -> str:
        return TYPE_PREFIX + self.name


_TYPES = (
    # Generic: a failure no reason names more closely, by its status.
    ProblemType("INVALID_ARGUMENT", (400,), "The request has invalid fields; `errors` names them."),
    ProblemType("MALFORMED_BODY", (400,), "The body is not JSON, or not sent as JSON."),
    ProblemType("VALIDATION_FAILED", (422,), "The JSON body does not match the schema."),
    ProblemType("UNAUTHENTICATED", (401,), "The request has no valid credentials."),
    ProblemType("PERMISSION_DENIED", (403,), "The caller may not do this."),
    ProblemType("NOT_FOUND", (404,), "No such resource, or not one the caller may see."),
    ProblemType("METHOD_NOT_ALLOWED", (405,), "The resource does not take this method."),
    ProblemType("ALREADY_EXISTS", (409,), "What the request would create exists already."),
    ProblemType("FAILED_PRECONDITION", (409,), "The request conflicts with the current state."),
    ProblemType("ABORTED", (409,), "A concurrent change conflicted with this one; retry."),
    ProblemType("PAYLOAD_TOO_LARGE", (413,), "The request body is larger than allowed."),
    ProblemType("RESOURCE_EXHAUSTED", (429,), "A limit was reached; see Retry-After."),
    ProblemType("RATE_LIMITED", (429,), "Too many requests from this client; see Retry-After."),
    ProblemType("CANCELLED", (499,), "The client went away before the answer."),
    ProblemType("INTERNAL", (500,), "The server failed; quote the request id when reporting it."),
    ProblemType("UNIMPLEMENTED", (501,), "This operation is not available yet."),
    ProblemType("UNAVAILABLE", (503,), "A service the request needs is unavailable; retry later."),
    ProblemType("DEADLINE_EXCEEDED", (504,), "A service did not answer in time; retry later."),
    # Identity, in every service.
    ProblemType("TOKEN_MISSING", (401,), "The call needs a bearer token."),
    ProblemType("TOKEN_INVALID", (401,), "The token is malformed, or not one of ours."),
    ProblemType("TOKEN_EXPIRED", (401,), "The access token has expired; refresh it."),
    ProblemType(
        "TOKEN_REVOKED",
        (401,),
        "The account was deactivated, or its role or password changed: sign in again.",
    ),
    ProblemType("ROLE_NOT_ALLOWED", (403,), "The caller's role may not do this."),
    ProblemType(
        "ACCOUNT_DEACTIVATED", (401, 403), "The account is deactivated: it can no longer sign in."
    ),
    ProblemType(
        "ACCOUNT_CHANGED",
        (403,),
        "The account was deactivated or its role changed since the token was issued.",
    ),
    # Accounts.
    ProblemType("USER_NOT_FOUND", (404,), "No user has this id."),
    ProblemType("EMAIL_TAKEN", (409,), "An account with this email exists already."),
    ProblemType("WRONG_CREDENTIALS", (401,), "The email and password do not match an account."),
    ProblemType("REFRESH_TOKEN_INVALID", (401,), "The refresh token is not one we issued."),
    ProblemType("REFRESH_TOKEN_EXPIRED", (401,), "The refresh token has expired; sign in again."),
    ProblemType(
        "REFRESH_TOKEN_REUSED",
        (401,),
        "The refresh token was used already, so its session was revoked; sign in again.",
    ),
    ProblemType("SESSION_SIGNED_OUT", (401,), "The session was signed out; sign in again."),
    # Catalog.
    ProblemType("PRODUCT_NOT_FOUND", (404,), "No product has this id."),
    ProblemType("CATEGORY_NOT_FOUND", (404,), "No category has this id."),
    ProblemType("CATEGORY_NAME_TAKEN", (409,), "Another category has this name."),
    ProblemType("CATEGORY_NOT_EMPTY", (409,), "The category still has products."),
    ProblemType("PRODUCT_ARCHIVED", (409,), "The product was archived: it is no longer sold."),
    ProblemType("NOT_PRODUCT_SELLER", (403,), "Only the product's seller or an admin may."),
    ProblemType("OUT_OF_STOCK", (409,), "Not enough stock of a product; nothing was reserved."),
    ProblemType("RESERVATION_RELEASED", (409,), "The order's stock was released already."),
    # Carts and orders.
    ProblemType("CART_EMPTY", (409,), "The cart has nothing to check out."),
    ProblemType("CART_FULL", (409,), "The cart holds as many products as a cart may."),
    ProblemType(
        "CURRENCY_MISMATCH", (409,), "Amounts in different currencies would be added together."
    ),
    ProblemType("ORDER_NOT_FOUND", (404,), "No order has this id, or it is not the caller's."),
    ProblemType("ORDER_NOT_PENDING", (409,), "Only a PENDING order can be cancelled."),
    ProblemType("ORDER_NOT_PAID", (409,), "Only a PAID order can be shipped."),
    ProblemType("NOT_ORDER_SELLER", (403,), "Only a seller of an item in the order may ship it."),
    ProblemType(
        "IDEMPOTENCY_KEY_REUSED",
        (409,),
        "The Idempotency-Key placed another order with other items; use a new key.",
    ),
    # Payments.
    ProblemType("PAYMENT_NOT_FOUND", (404,), "The order has no payment yet."),
)

PROBLEM_TYPES: dict[str, ProblemType] = {problem.reason: problem for problem in _TYPES}
BY_NAME: dict[str, ProblemType] = {problem.name: problem for problem in _TYPES}

# The generic type of each HTTP status, for a failure that names no reason of its own.
_GENERIC_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "FAILED_PRECONDITION",
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_FAILED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def types_of_status(status: int) -> list[ProblemType]:
    """The problem types a problem with this status may have, the generic one first."""
    generic = _GENERIC_BY_STATUS.get(status)
    return sorted(
        (problem for problem in _TYPES if status in problem.statuses),
        key=lambda problem: problem.reason != generic,
    )


def type_uri(status: int, reason: str | None = None) -> str:
    """The `type` of a problem with this status and reason: the reason's own when it is
    documented for this status, else the status's generic one (`about:blank` for a status
    the API never answers with)."""
    known = PROBLEM_TYPES.get(reason or "")
    if known is not None and status in known.statuses:
        return known.uri
    generic = _GENERIC_BY_STATUS.get(status)
    return PROBLEM_TYPES[generic].uri if generic else "about:blank"
