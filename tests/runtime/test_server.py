"""The gRPC bootstrap in-process on port 0: health, reflection, interceptors, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import wrappers_pb2
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status

from meshkit.rpc.channels import KEEPALIVE_TIME_MS
from meshkit.rpc.reflection import v1_file_descriptor
from meshkit.rpc.server import SERVER_OPTIONS, GrpcServer, start_grpc_server
from tests.runtime.probe import PUBLIC_METHODS, SERVICE, Probe, StaticVerifier, registration
from tests.support import eventually


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    started = await start_grpc_server(
        [registration(Probe())],
        host="127.0.0.1",
        port=0,
        verifier=StaticVerifier(),
        public_methods=PUBLIC_METHODS,
    )
    yield started
    await started.stop(0)


@pytest.fixture
async def channel(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


async def test_health_reports_each_service_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"


def described(response: reflection_pb2.ServerReflectionResponse) -> dict[str, FileDescriptorProto]:
    """The files of a file_descriptor_response, by package."""
    assert response.WhichOneof("message_response") == "file_descriptor_response", response
    files = [
        FileDescriptorProto.FromString(serialized)
        for serialized in response.file_descriptor_response.file_descriptor_proto
    ]
    return {file.package: file for file in files}


@pytest.mark.parametrize("reflection_service", [REFLECTION_V1, REFLECTION_V1ALPHA])
async def test_reflection_lists_and_describes_under_each_version(
    channel: grpc.aio.Channel, reflection_service: str
) -> None:
    # A raw call by method path, as grpcurl 1.9+ makes one: v1alpha's message classes write
    # and read it, since v1's messages are the same on the wire.
    info = channel.stream_stream(
        f"/{reflection_service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=reflection_service),
    ]
    listed, health, itself = [response async for response in info(iter(requests))]

    names = {service.name for service in listed.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health", REFLECTION_V1, REFLECTION_V1ALPHA} <= names
    health_file = described(health)["grpc.health.v1"]
    assert {"Check", "Watch"} <= {method.name for method in health_file.service[0].method}
    # A tool that describes every listed service must find each reflection service too.
    package, _, name = reflection_service.rpartition(".")
    (method,) = described(itself)[package].service[0].method
    assert described(itself)[package].service[0].name == name
    assert method.input_type == f".{package}.ServerReflectionRequest"
    assert method.client_streaming and method.server_streaming


def test_reflection_v1_messages_are_v1alpha_s_field_for_field() -> None:
    v1 = v1_file_descriptor()
    v1alpha = FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(v1alpha)

    def fields(file: FileDescriptorProto) -> dict[str, list[tuple[str, int, int, int, str]]]:
        return {
            message.name: [
                (f.name, f.number, f.type, f.label, f.type_name.rpartition(".")[2])
                for f in message.field
            ]
            for message in file.message_type
        }

    assert v1.package == "grpc.reflection.v1"
    assert fields(v1) == fields(v1alpha)
    assert "v1alpha" not in str(v1)


async def test_stop_turns_health_not_serving_before_draining(server: GrpcServer) -> None:
    await server.health.enter_graceful_shutdown()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_invalid_argument_carries_field_violations(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary(f"/{SERVICE}/Fail", None, None)(b"invalid")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    # grpc_status's stubs do not declare its `aio` module.
    status = await rpc_status.aio.from_call(call)  # type: ignore[attr-defined]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("email", "must be an email address")
    ]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"missing", grpc.StatusCode.NOT_FOUND),
        (b"unimplemented", grpc.StatusCode.UNIMPLEMENTED),
        (b"crash", grpc.StatusCode.INTERNAL),
        # A lost or refused database connection is a dependency down: retryable.
        (b"database lost", grpc.StatusCode.UNAVAILABLE),
        (b"database refused", grpc.StatusCode.UNAVAILABLE),
        # After COMMIT was sent, the outcome is unknown: not UNAVAILABLE, which is retried.
        (b"lost after commit", grpc.StatusCode.INTERNAL),
    ],
)
async def test_errors_map_to_status(
    channel: grpc.aio.Channel, payload: bytes, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.unary_unary(f"/{SERVICE}/Fail", None, None)(payload)
    assert raised.value.code() is code


async def test_unexpected_error_leaks_nothing(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.unary_unary(f"/{SERVICE}/Fail", None, None)(b"crash")
    assert raised.value.details() == "internal error"
    assert "secret" not in (raised.value.debug_error_string() or "")


async def test_private_method_needs_a_token(channel: grpc.aio.Channel) -> None:
    whoami = channel.unary_unary(f"/{SERVICE}/Whoami", None, None)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await whoami(b"")
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await whoami(b"", metadata=(("authorization", "Bearer forged"),))
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert await whoami(b"", metadata=(("authorization", "Bearer good-token"),)) == b"user-1"


async def test_public_method_needs_no_token(channel: grpc.aio.Channel) -> None:
    assert await channel.unary_unary(f"/{SERVICE}/Echo", None, None)(b"hello") == b"hello"


async def test_a_given_request_id_is_adopted(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary(f"/{SERVICE}/RequestId", None, None)(
        b"", metadata=(("x-request-id", "req-42"), ("authorization", "Bearer good-token"))
    )
    assert await call == b"req-42"
    # The caller knows it: not sent back.
    assert "x-request-id" not in dict(await call.trailing_metadata() or ())


async def test_a_made_up_request_id_is_sent_back(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary(f"/{SERVICE}/RequestId", None, None)(
        b"", metadata=(("authorization", "Bearer good-token"),)
    )
    used = (await call).decode()
    assert used
    assert ("x-request-id", used) in list(await call.trailing_metadata() or ())


async def test_taken_port_fails_loudly(server: GrpcServer) -> None:
    with pytest.raises((OSError, RuntimeError)):
        await start_grpc_server([registration(Probe())], host="127.0.0.1", port=server.port)


async def test_every_call_is_measured_with_its_status(channel: grpc.aio.Channel) -> None:
    from prometheus_client import REGISTRY

    def count(code: str) -> float:
        service, _, method = f"{SERVICE}/Fail".rpartition("/")
        value = REGISTRY.get_sample_value(
            "grpc_server_handled_total",
            {
                "grpc_type": "unary",
                "grpc_service": service,
                "grpc_method": method,
                "grpc_code": code,
            },
        )
        return value or 0.0

    before = count("NOT_FOUND")
    with pytest.raises(grpc.aio.AioRpcError):
        await channel.unary_unary(f"/{SERVICE}/Fail", None, None)(b"missing")

    # An abort sends the status before the server's handler has unwound, so the caller
    # can see the error a moment before the observation is recorded.
    async def observed() -> bool:
        return count("NOT_FOUND") == before + 1

    await eventually(observed, timeout=5, message="the failed call counted once")
    assert count("NOT_FOUND") == before + 1


async def test_graceful_stop_lets_in_flight_calls_finish() -> None:
    probe = Probe()
    server = await start_grpc_server(
        [registration(probe)], host="127.0.0.1", port=0, public_methods=PUBLIC_METHODS
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        in_flight = asyncio.ensure_future(
            channel.unary_unary(f"/{SERVICE}/Slow", None, None)(b"0.3")
        )
        await probe.slow_started.wait()
        await server.stop(grace=5)
        assert await in_flight == b"done"
        status = await server.health.Check(health_pb2.HealthCheckRequest(service=""), None)
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_a_request_that_does_not_parse_is_invalid_argument_naming_its_message(
    channel: grpc.aio.Channel,
) -> None:
    greet = channel.unary_unary(f"/{SERVICE}/Greet", None, None)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await greet(b"\xff\xff\xff")  # not a protobuf message
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "The request is not a valid google.protobuf.StringValue."
    answer = await greet(wrappers_pb2.StringValue(value="you").SerializeToString())
    assert wrappers_pb2.StringValue.FromString(answer).value == "hello you"


def test_servers_accept_the_keepalive_pings_of_the_mesh_s_clients() -> None:
    # gRPC's default server refuses a ping without calls more often than every 5 minutes
    # with a GOAWAY (too_many_pings): the mesh's idle channels ping every 30 s.
    options = dict(SERVER_OPTIONS)
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_ping_interval_without_data_ms"] < KEEPALIVE_TIME_MS
