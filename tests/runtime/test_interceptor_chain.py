"""The interceptor chain wraps each method once and runs its layers in order on every call."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from meshkit.rpc import InterceptorChain, UnaryInterceptor


class Recording(UnaryInterceptor):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def around(self, method: str, request: Any, context: Any, call_next: Any) -> Any:
        self.log.append(f"{self.name}>")
        try:
            return await call_next(request, context)
        finally:
            self.log.append(f"<{self.name}")


class Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def test_each_method_is_wrapped_once_and_layers_run_outermost_first() -> None:
    log: list[str] = []
    lookups: list[str] = []

    async def handler(request: str, context: Any) -> str:
        log.append(f"handler {request}")
        return request.upper()

    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        lookups.append(details.method)
        if details.method == "/known/Method":
            return grpc.unary_unary_rpc_method_handler(handler)
        return None

    chain = InterceptorChain([Recording("outer", log), Recording("inner", log)])
    first = await chain.intercept_service(continuation, Details("/known/Method"))
    second = await chain.intercept_service(continuation, Details("/known/Method"))
    assert first is second is not None
    # For mypy: `first is second` does not narrow `first`, and a handler's behaviours are
    # optional in grpc's stubs.
    assert first is not None and first.unary_unary is not None
    assert second.unary_unary is not None
    no_context: Any = None  # a stand-in: neither the layers nor the handler look at it
    assert await first.unary_unary("a", no_context) == "A"
    assert await second.unary_unary("b", no_context) == "B"
    calls = [["outer>", "inner>", f"handler {x}", "<inner", "<outer"] for x in "ab"]
    assert log == calls[0] + calls[1]

    # Unknown methods answer None each time and are not remembered: names are unbounded.
    for _ in range(2):
        assert await chain.intercept_service(continuation, Details("/no/Such")) is None
    assert lookups == ["/known/Method", "/no/Such", "/no/Such"]


@pytest.mark.parametrize("method", ["/grpc.health.v1.Health/Watch"])
async def test_streaming_handlers_pass_through_each_layer(method: str) -> None:
    async def stream(request: Any, context: Any) -> Any:
        yield request

    streaming = grpc.unary_stream_rpc_method_handler(stream)

    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        return streaming

    class Refusing(UnaryInterceptor):
        def intercept_streaming(self, handler: Any, method: str) -> Any:
            return None

    assert (
        await InterceptorChain([Recording("a", [])]).intercept_service(
            continuation, Details(method)
        )
        is streaming
    )
    assert (
        await InterceptorChain([Recording("a", []), Refusing()]).intercept_service(
            continuation, Details(method)
        )
        is None
    )
