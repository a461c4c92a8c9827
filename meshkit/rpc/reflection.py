"""Server reflection under both names tools ask for: grpc.reflection.v1 and v1alpha."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
# The file name the v1 contract has upstream (grpc/grpc-proto), so a tool that asks for the
# file by name finds it where it expects.
V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"
SERVICE_NAMES = (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)

_METHOD = "ServerReflectionInfo"


def _renamed(type_name: str, old_package: str) -> str:
    """A fully qualified type name of the v1alpha package, moved to the v1 package."""
    prefix = f".{old_package}."
    if type_name.startswith(prefix):
        return f".{V1_PACKAGE}.{type_name.removeprefix(prefix)}"
    return type_name


def _rename_fields(message: descriptor_pb2.DescriptorProto, old_package: str) -> None:
    for field in message.field:
        # Only where set: assigning even "" would mark a scalar field as having a type name.
        if field.HasField("type_name"):
            field.type_name = _renamed(field.type_name, old_package)
    for nested in message.nested_type:
        _rename_fields(nested, old_package)


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The v1 contract, built from the v1alpha one that grpcio-reflection ships.

    v1 is v1alpha renamed: the same messages with the same field numbers, only the package
    differs. grpcio-reflection ships no v1 (grpc/grpc#38576), and generating the upstream
    file here would put a module at `grpc/reflection/v1/`, inside grpcio's own package.
    """
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old_package = proto.package
    proto.name = V1_FILE_NAME
    proto.package = V1_PACKAGE
    for message in proto.message_type:
        _rename_fields(message, old_package)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type, old_package)
            method.output_type = _renamed(method.output_type, old_package)
    # v1alpha is marked deprecated in favour of this file; the options are upstream v1's.
    proto.options.ClearField("deprecated")
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    return proto


def register_v1_descriptor() -> None:
    """Put the v1 contract in the default pool, where reflection finds what it describes.

    Does nothing when the pool has it already: a second server in the process, or a
    grpcio-reflection that ships v1 and registered its own copy.
    """
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1_SERVICE_NAME)
    except KeyError:
        pool.AddSerializedFile(v1_file_descriptor().SerializeToString())


def _v1_handler(servicer: Any) -> grpc.GenericRpcHandler[Any, Any]:
    # The v1alpha servicer answers v1 calls unchanged: the messages are the same on the wire,
    # so v1alpha's classes read v1 requests and write v1 responses.
    method: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {_METHOD: method})


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection of `service_names` on `server`, under v1 and v1alpha both.

    grpcurl 1.9+, grpcui, Postman and Evans ask for v1 first; older tools know only v1alpha.
    Both services list themselves with the rest.
    """
    register_v1_descriptor()
    # grpcio-reflection's stubs do not declare its asyncio servicer.
    servicer = reflection.aio.ReflectionServicer(  # type: ignore[attr-defined]
        [*service_names, *SERVICE_NAMES]
    )
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((_v1_handler(servicer),))
