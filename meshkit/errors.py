"""Domain errors shared by every service, and their gRPC status codes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import grpc


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid input field and why it is invalid."""

    field: str
    message: str


# Ids a message quotes are cut here: an id of any length, quoted whole, could grow an error
# past gRPC's 8 KiB metadata limit, and the caller got RESOURCE_EXHAUSTED, not the error.
QUOTED_ID_LENGTH = 64


def quoted(value: str) -> str:
    """`value` as an error message quotes it: repr'd, cut after QUOTED_ID_LENGTH characters."""
    if len(value) <= QUOTED_ID_LENGTH:
        return repr(value)
    return f"{value[:QUOTED_ID_LENGTH]!r}..."


# PostgreSQL's text cannot hold NUL: text with one is refused as a field error where it comes
# in, before the database's own error reaches the caller as INTERNAL.
NUL = "\x00"
NUL_MESSAGE = "must not contain NUL characters"


class DomainError(Exception):
    """A failure the caller can act on; the transport maps it to a status code.

    Anything that is not a DomainError is a bug, reported as INTERNAL with no detail. Each
    service subclasses the classes below with errors named for its domain (`OutOfStock`,
    `OrderNotPending`), whose `reason` travels in the status's ErrorInfo: a caller tells one
    failure from another by it, never by parsing the message. The gateway's problem types
    (`gateway/problem_types.py`) document every reason.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN
    # UPPER_SNAKE_CASE, stable once published. The classes here carry their status's name, the
    # reason of a failure no domain error names more closely.
    reason: ClassVar[str] = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str = "The request has invalid fields.",
        violations: Iterable[FieldViolation] | Mapping[str, str] = (),
    ) -> None:
        super().__init__(message)
        if isinstance(violations, Mapping):
            violations = [FieldViolation(f, m) for f, m in violations.items()]
        self.violations: tuple[FieldViolation, ...] = tuple(violations)

    @classmethod
    def for_field(cls, field: str, message: str) -> InvalidArgument:
        return cls(f"{field}: {message}", [FieldViolation(field, message)])


def require_id(value: str, field: str = "id") -> None:
    """Refuse an empty id from a request, naming the field that should have held it."""
    # An empty id is a malformed request, not an unknown resource: INVALID_ARGUMENT naming the
    # field, rather than NOT_FOUND.
    if not value:
        raise InvalidArgument.for_field(field, "is required")


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The request conflicts with the current state (out of stock, order already paid)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrency conflict, such as an idempotency key reused with another request."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency this call needs is down; the caller may retry later."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class DeadlineExceeded(DomainError):
    """A dependency this call needs did not answer in time; the caller may retry later."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"
