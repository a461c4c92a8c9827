"""Domain errors as rich gRPC statuses, and what a caller reads back from one."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from meshkit.errors import DomainError, InvalidArgument


def status_for(error: DomainError) -> grpc.Status:
    """The rich gRPC status for a domain error: code, message, and field violations."""
    status = status_pb2.Status(code=_CODE_NUMBERS[error.code], message=error.message)
    # Marks the message as written for the caller (not transport noise), so an edge may
    # show it to clients even for server-side codes such as UNAVAILABLE.
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN))
    status.details.append(info)
    if isinstance(error, InvalidArgument) and error.violations:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.message
                    )
                    for v in error.violations
                ]
            )
        )
        status.details.append(detail)
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


# The ErrorInfo domain of the errors our services write.
ERROR_DOMAIN = "ecommerce-mesh"

_CODE_NUMBERS: dict[grpc.StatusCode, int] = {
    code: code_pb2.Code.Value(code.name) for code in grpc.StatusCode
}


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The `google.rpc.Status` a failed call carried in its trailers, if any."""
    entries: list[tuple[str, str | bytes]] = list(error.trailing_metadata() or ())  # type: ignore[arg-type]
    for key, value in entries:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def domain_reason(status: status_pb2.Status | None) -> str | None:
    """The reason a service of ours gave for the failure (`DomainError.reason`), if it wrote one.

    None means the status came from elsewhere (gRPC itself, a proxy): its message was not
    written for the caller and names internal hosts and limits.
    """
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            return info.reason
    return None
