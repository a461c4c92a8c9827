"""Tracing is configured by the standard OTEL_* variables alone: off without an endpoint (no SDK
imported, no hooks added), and exporting over OTLP/gRPC or OTLP/HTTP to a real receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from meshkit.settings import PROJECT_ROOT
from tests.otlp import SpanStore, grpc_receiver, http_receiver

# A process that configures tracing as a service does, makes a span, and says what it has.
PROBE = """
import json, sys
from meshkit import telemetry
on = telemetry.configure_tracing("probe-process")
tracer = telemetry.tracer()
if tracer is not None:
    with tracer.start_as_current_span("probe span"):
        pass
from meshkit.rpc.server import default_interceptors
from meshkit.rpc.channels import create_channel
chain = default_interceptors(None, ())[0]
channel = create_channel("127.0.0.1:1")
method = channel.unary_unary("/probe.Probe/Call")
telemetry.shutdown_tracing()
print(json.dumps({
    "on": on,
    "sdk_imported": any(name.startswith("opentelemetry") for name in sys.modules),
    "layers": [type(layer).__name__ for layer in chain.layers],
    "client": type(method).__name__,
}))
"""


def run_probe(script: str, **env: str) -> dict[str, Any]:
    """What `script` prints last, as JSON, run in a process of its own with `env` for the
    shell's OTEL_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**clean, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def probe(**env: str) -> dict[str, Any]:
    return run_probe(PROBE, **env)


@pytest.fixture
def grpc_otlp() -> Iterator[tuple[str, SpanStore]]:
    with grpc_receiver() as receiver:
        yield receiver


@pytest.fixture
def http_otlp() -> Iterator[tuple[str, SpanStore]]:
    with http_receiver() as receiver:
        yield receiver


def test_without_an_endpoint_nothing_of_opentelemetry_is_loaded_or_hooked() -> None:
    result = probe()
    assert result == {
        "on": False,
        "sdk_imported": False,
        "layers": [
            "RequestContextInterceptor",
            "AccessLogInterceptor",
            "ErrorMappingInterceptor",
            "AuthInterceptor",
        ],
        "client": "_ContextUnaryUnary",
    }


def test_spans_go_over_otlp_grpc_named_by_the_process(
    grpc_otlp: tuple[str, SpanStore],
) -> None:
    endpoint, store = grpc_otlp
    result = probe(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    assert result["on"] is True
    assert result["layers"] == [
        "TracingInterceptor",
        "RequestContextInterceptor",
        "AccessLogInterceptor",
        "ErrorMappingInterceptor",
        "AuthInterceptor",
    ]
    assert result["client"] == "_TracedUnaryUnary"
    # shutdown_tracing() flushed before the process ended.
    assert [(s.service, s.name) for s in store.spans()] == [("probe-process", "probe span")]


def test_spans_go_over_otlp_http_with_the_names_the_environment_gives(
    http_otlp: tuple[str, SpanStore],
) -> None:
    endpoint, store = http_otlp
    probe(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="renamed",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test",
    )
    assert [(s.service, s.name) for s in store.spans()] == [("renamed", "probe span")]


def test_a_sampler_from_the_environment_is_honoured(grpc_otlp: tuple[str, SpanStore]) -> None:
    endpoint, store = grpc_otlp
    probe(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_TRACES_SAMPLER="always_off")
    assert store.spans() == []


def test_an_unknown_protocol_is_refused_by_name() -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1", OTEL_EXPORTER_OTLP_PROTOCOL="x")
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='x'" in failed.value.stderr


# Traces begun, continued and followed as the hooks do, and what each one's context was.
SAMPLING_PROBE = """
import json
from meshkit import telemetry
telemetry.configure_tracing("probe-process")
from opentelemetry.trace import SpanKind

def traceparent():
    carrier = {}
    telemetry.inject(carrier)
    return carrier.get("traceparent", "")

roots = []
for _ in range(2000):
    with telemetry.span("root") as made:
        roots.append({"recorded": made is not None, "traceparent": traceparent()})
with telemetry.span("root") as root:
    with telemetry.span("child", kind=SpanKind.CLIENT) as child:
        nested = {"root": root is not None, "child": child is not None, "traceparent": traceparent()}
remote = {}
for flags in ("00", "01"):
    incoming = {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-{flags}"}
    with telemetry.span("server", telemetry.extract(incoming), SpanKind.SERVER) as made:
        remote[flags] = {"recorded": made is not None, "traceparent": traceparent()}
# The same, read from the headers themselves, as the gateway, the servers and consumers do.
carried = {}
for flags in ("00", "01"):
    incoming = {"traceparent": f"00-{'ef' * 16}-{'12' * 8}-{flags}", "tracestate": "vendor=1"}
    with telemetry.span("server", kind=SpanKind.SERVER, carrier=incoming) as made:
        with telemetry.span("client", kind=SpanKind.CLIENT) as child:
            carrier = {}
            telemetry.inject(carrier)
            carried[flags] = {
                "recorded": made is not None,
                "child": child is not None,
                "headers": carrier,
                "ids": telemetry.trace_ids(),
                "stored": telemetry.trace_headers(),
            }
            # Work resumed, or continued, for a sampled trace inside an unsampled one.
            with telemetry.continuing("later", {"traceparent": f"00-{'34' * 16}-{'56' * 8}-01"}):
                carried[flags]["inner"] = traceparent()
            carried[flags]["after"] = traceparent()
    carried[flags]["outside"] = traceparent()
malformed = {"traceparent": f"00-{'bc' * 16}-{'de' * 8}-00", "tracestate": "ve\u00e9ndor=1"}
with telemetry.span("server", kind=SpanKind.SERVER, carrier=malformed):
    passed_on = {}
    telemetry.inject(passed_on)
telemetry.shutdown_tracing()
print(json.dumps({
    "roots": roots, "nested": nested, "remote": remote, "carried": carried,
    "passed_on": passed_on,
}))
"""


def sampling_probe(**env: str) -> dict[str, Any]:
    return run_probe(SAMPLING_PROBE, **env)


def _sampled(traceparent: str) -> bool:
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 1)


def test_a_trace_is_sampled_once_where_it_begins_at_the_configured_ratio(
    grpc_otlp: tuple[str, SpanStore],
) -> None:
    endpoint, store = grpc_otlp
    result = sampling_probe(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.5",
    )
    roots = result["roots"]
    recorded = [root for root in roots if root["recorded"]]
    # Decided once on the trace id drawn first: asked again on another id, half of a half.
    assert 0.44 < len(recorded) / len(roots) < 0.56
    # A dropped root still has a context, flagged unsampled, for the hops after it.
    for root in roots:
        assert root["traceparent"] and _sampled(root["traceparent"]) is root["recorded"]
    # Every sampled root was exported, under the trace id its context carried on.
    exported = {span.trace_id for span in store.spans() if span.name == "root"}
    assert {root["traceparent"].split("-")[1] for root in recorded} <= exported


def test_an_unsampled_trace_is_followed_without_a_span_and_its_context_goes_on(
    grpc_otlp: tuple[str, SpanStore],
) -> None:
    endpoint, store = grpc_otlp
    result = sampling_probe(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
    )
    assert not any(root["recorded"] for root in result["roots"])
    nested = result["nested"]
    assert (nested["root"], nested["child"]) == (False, False)
    assert not _sampled(nested["traceparent"])
    # A caller's unsampled context is passed on as it came: its trace id, its span id.
    unsampled = result["remote"]["00"]
    assert not unsampled["recorded"]
    assert unsampled["traceparent"] == f"00-{'ab' * 16}-{'cd' * 8}-00"
    # A caller's sampled trace is continued whatever the ratio says of roots.
    sampled = result["remote"]["01"]
    assert sampled["recorded"] and _sampled(sampled["traceparent"])
    (server,) = store.spans("ab" * 16)
    assert (server.name, server.parent_id) == ("server", "cd" * 8)


def test_headers_of_an_unsampled_trace_travel_as_they_came(
    grpc_otlp: tuple[str, SpanStore],
) -> None:
    endpoint, store = grpc_otlp
    result = sampling_probe(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
    )
    unsampled = result["carried"]["00"]
    incoming = {"traceparent": f"00-{'ef' * 16}-{'12' * 8}-00", "tracestate": "vendor=1"}
    assert (unsampled["recorded"], unsampled["child"]) == (False, False)
    # Passed on to every call and stored with every event as it came, tracestate too; and
    # the logs name it.
    assert unsampled["headers"] == incoming
    assert unsampled["stored"] == incoming
    assert unsampled["ids"] == ["ef" * 16, "12" * 8]
    # A sampled trace continued inside it has its own context, and gives it back after.
    assert unsampled["inner"].startswith(f"00-{'34' * 16}-")
    assert _sampled(unsampled["inner"])
    assert unsampled["after"] == incoming["traceparent"]
    assert unsampled["outside"] == ""
    # A malformed tracestate is dropped, not passed on into metadata and events.
    assert result["passed_on"] == {"traceparent": f"00-{'bc' * 16}-{'de' * 8}-00"}
    # The sampled one is recorded from the headers as from a parsed context.
    sampled = result["carried"]["01"]
    assert (sampled["recorded"], sampled["child"]) == (True, True)
    assert sampled["headers"]["tracestate"] == "vendor=1"
    names = {span.name for span in store.spans("ef" * 16)}
    assert names == {"server", "client"}
    assert {span.name for span in store.spans("34" * 16)} == {"later"}


# Spans made on the mesh's own path (`meshkit.recorded_span`), as the exporter sends them.
RECORDED_PROBE = """
import json
from meshkit import telemetry
telemetry.configure_tracing("probe-process")
from opentelemetry.trace import SpanKind

made = {}
with telemetry.span("root", kind=SpanKind.SERVER, carrier={}) as root:
    made["root"] = type(root).__name__
    root.update_name("GET /things/{id}")
    root.set_attribute("http.response.status_code", 404)
    root.set_attributes({"http.route": "/things/{id}"})
    with telemetry.span("child", kind=SpanKind.CLIENT) as child:
        made["child"] = type(child).__name__
        flags = {"child": telemetry.trace_headers()["traceparent"][-2:]}
try:
    incoming = {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01", "tracestate": "vendor=1"}
    with telemetry.span("failing", kind=SpanKind.SERVER, carrier=incoming) as failing:
        made["failing"] = type(failing).__name__
        flags["failing"] = telemetry.trace_headers()["traceparent"][-2:]
        raise ValueError("no such thing")
except ValueError:
    pass
stored = {"traceparent": f"00-{'ef' * 16}-{'12' * 8}-01"}
publish = telemetry.start_span("publish", telemetry.extract(stored), SpanKind.PRODUCER)
made["publish"] = type(publish).__name__
publish.end()
publish.set_attribute("after", "its end")
telemetry.shutdown_tracing()
print(json.dumps({"made": made, "flags": flags}))
"""


def test_sampled_spans_are_recorded_without_the_sdk_and_exported_whole(
    grpc_otlp: tuple[str, SpanStore],
) -> None:
    endpoint, store = grpc_otlp
    result = run_probe(
        RECORDED_PROBE,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="1",
    )
    made = result["made"]
    assert set(made.values()) == {"RecordedSpan"}, made
    spans = {span.name: span for span in store.spans()}
    assert set(spans) == {"GET /things/{id}", "child", "failing", "publish"}

    root, child = spans["GET /things/{id}"], spans["child"]
    assert (root.kind, root.parent_id, root.status) == ("server", "", "unset")
    assert root.attributes == {"http.response.status_code": 404, "http.route": "/things/{id}"}
    assert (child.trace_id, child.parent_id, child.kind) == (root.trace_id, root.span_id, "client")
    # Sampled, and its trace id random, as W3C level 2 says of ids the mesh draws.
    assert result["flags"]["child"] == "03"

    failing = spans["failing"]
    assert (failing.trace_id, failing.parent_id) == ("ab" * 16, "cd" * 8)
    assert failing.trace_state == "vendor=1"
    assert (failing.status, failing.events) == ("error", ("exception",))
    # A caller's flags say nothing of how its ids were drawn: the child says no more.
    assert result["flags"]["failing"] == "01"

    publish = spans["publish"]
    assert (publish.trace_id, publish.parent_id, publish.kind) == ("ef" * 16, "12" * 8, "producer")
    assert "after" not in publish.attributes


def test_a_sampler_that_does_not_follow_parents_is_asked_for_every_child(
    grpc_otlp: tuple[str, SpanStore],
) -> None:
    endpoint, store = grpc_otlp
    made = run_probe(RECORDED_PROBE, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)["made"]
    made_by_sampler = run_probe(
        RECORDED_PROBE, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_TRACES_SAMPLER="always_on"
    )["made"]
    # The default sampler follows parents; always_on decides every span on its own.
    assert made["child"] == "RecordedSpan"
    assert made_by_sampler["root"] == "RecordedSpan"
    assert made_by_sampler["child"] == made_by_sampler["failing"] == "_Span"
    assert len(store.spans()) == 8


# The same span made on both paths, the mesh's and the SDK's, and changed in the same ways.
SIDE_BY_SIDE_PROBE = """
import json
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from meshkit import telemetry
telemetry.configure_tracing("probe-process")

ended = []
class Keep:
    def on_start(self, span, parent_context=None): pass
    def _on_ending(self, span): pass
    def on_end(self, span): ended.append(span)
    def shutdown(self): pass
    def force_flush(self, timeout_millis=30000): return True
telemetry._provider.add_span_processor(Keep())

parent = telemetry.extract({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01", "tracestate": "v=1"})
def exercise(span):
    span.update_name("renamed")
    span.set_attribute("a", 1)
    span.set_attributes({"b": "x", "gone": None, "many": ("p", "q")})
    span.add_event("checkpoint", {"step": 2})
    span.add_link(SpanContext(int("12" * 16, 16), int("34" * 8, 16), True, TraceFlags(1)), {"k": "v"})
    span.set_status(Status(StatusCode.ERROR, "broken"))
    span.set_status(Status(StatusCode.UNSET))
    span.record_exception(ValueError("no such thing"))
    span.end()
    span.set_attribute("late", 1)
    span.end()
made = [
    telemetry.start_span("op", parent, SpanKind.PRODUCER, {"first": "yes"}),
    telemetry.tracer().start_span("op", parent, SpanKind.PRODUCER, {"first": "yes"}),
]
for span in made:
    exercise(span)
request = encode_spans(ended)
(resource,) = request.resource_spans
spans = [MessageToDict(span) for scope in resource.scope_spans for span in scope.spans]
for span in spans:
    for key in ("spanId", "startTimeUnixNano", "endTimeUnixNano"):
        span.pop(key)
    for event in span.get("events", []):
        event.pop("timeUnixNano")
left_open = telemetry.start_span("left open", parent, SpanKind.INTERNAL)
telemetry.shutdown_tracing()
left_open.end()
print(json.dumps({
    "made": [type(span).__name__ for span in made],
    "scopes": len(resource.scope_spans),
    "spans": spans,
}))
"""


def test_a_recorded_span_is_exported_as_the_sdks_own_would_be() -> None:
    result = run_probe(SIDE_BY_SIDE_PROBE, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1")
    assert result["made"] == ["RecordedSpan", "_Span"]
    # One resource, one scope: the exporter batches both kinds of span together.
    assert result["scopes"] == 1
    recorded, sdk = result["spans"]
    assert recorded == sdk
    assert recorded["name"] == "renamed" and recorded["traceState"] == "v=1"
    assert recorded["status"] == {"code": "STATUS_CODE_ERROR", "message": "broken"}
    assert [event["name"] for event in recorded["events"]] == ["checkpoint", "exception"]
    assert {a["key"] for a in recorded["attributes"]} == {"first", "a", "b", "gone", "many"}
    assert recorded["links"][0]["attributes"] == [{"key": "k", "value": {"stringValue": "v"}}]
