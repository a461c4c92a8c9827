"""8: what tracing costs. Scenarios 1 and 3 against hello world, and the saga at a fixed
rate, with tracing off, sampling a tenth of the traces and sampling them all; the mesh is
restarted for each, every process exporting over OTLP/gRPC to a receiver that discards.

Each setting's figures are compared with the same run's untraced ones: the throughput ratio
of 1 and 3 to hello world (paired slices, `bench.paired`), the saga's p99 and CPU per order.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from bench import paired
from bench.scenarios import BASELINES, SCENARIOS, Bench, Definition, saga
from bench.stack import start_process, stop_process
from localmesh.launcher import free_port

# The settings compared, by the name the table gives them: OpenTelemetry's own variables.
SETTINGS: dict[str, dict[str, str]] = {
    "off": {},
    "10%": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    "100%": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}
CLOSED_LOOP = ("1", "3")
# Whatever the shell running the benchmark says of tracing, each setting says its own.
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def setting_env(name: str, sink_port: int) -> dict[str, str]:
    """The variables the mesh runs with under setting `name`, exporting to the sink."""
    if not SETTINGS[name]:
        return {**dict.fromkeys(_ENDPOINTS, ""), "OTEL_SDK_DISABLED": ""}
    return {
        **dict.fromkeys(_ENDPOINTS, f"http://127.0.0.1:{sink_port}"),
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_SDK_DISABLED": "",
        **SETTINGS[name],
    }


async def measure(bench: Bench) -> dict[str, Any]:
    """Every setting's figures, and each traced setting's against the untraced one.

    Each setting has a sink of its own, read once the next restart has made the mesh send
    what it still held: the exports it counted show the setting did (or did not) trace.
    """
    settings: dict[str, dict[str, Any]] = {}
    # The baseline is warmed up once; the mesh after every restart.
    warmed: set[str] = set()
    sink: tuple[str, asyncio.subprocess.Process] | None = None
    try:
        for name in bench.profile.tracing_settings:
            print(f"  tracing {name}: restarting the mesh", file=sys.stderr, flush=True)
            port = free_port()
            started = await start_process(
                "bench.baselines.trace_sink", "--port", str(port), output=True
            )
            await bench.stack.restart_mesh(setting_env(name, port))
            if sink is not None:
                settings[sink[0]]["exported"] = await _exported(sink[1])
            sink = (name, started)
            if bench.profile.tracing_warm_caches:
                await caches_live(bench)
            warmed &= {"hello"}
            settings[name] = await _setting(bench, warmed)
    finally:
        # The mesh as the run began (untraced, whatever shell variables it inherits) for the
        # scenarios after this one; stopped when none follows. Either way its processes send
        # what they still held of the last setting's spans.
        if bench.more_to_run:
            await bench.stack.restart_mesh(setting_env("off", 0))
        else:
            await bench.stack.mesh.stop()
        if sink is not None:
            exported = await _exported(sink[1])
            if sink[0] in settings:
                settings[sink[0]]["exported"] = exported
    return {"settings": settings, "versus_off": versus_off(settings)}


async def _exported(sink: asyncio.subprocess.Process) -> dict[str, int]:
    """What the sink took, as it says when it stops."""
    await stop_process(sink)
    assert sink.stdout is not None
    said = (await sink.stdout.read()).decode().strip()
    counted: dict[str, int] = json.loads(said) if said else {"requests": 0, "bytes": 0}
    return counted


async def caches_live(bench: Bench, timeout: float = 30.0) -> None:
    """Wait until the restarted gateway answers a product and an order from its own caches,
    which it does once it hears their writers (`gateway.answer_cache`): measured before
    then, scenarios 1 and 3 would measure a cold start."""
    product = f"/v1/products/{bench.seeded.product_ids[0]}"
    order_id, token = bench.seeded.orders[0]
    order = (f"/v1/orders/{order_id}", {"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=bench.stack.gateway_url, timeout=5) as client:
        while True:
            for _ in range(2):
                await client.get(product)
                await client.get(order[0], headers=order[1])
            hits = _answer_cache_hits((await client.get("/metrics")).text)
            if hits.get("product") and hits.get("order"):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gateway's caches were not live within {timeout:.0f}s")
            await asyncio.sleep(0.2)


def _answer_cache_hits(exposition: str) -> dict[str, float]:
    hits: dict[str, float] = {}
    for line in exposition.splitlines():
        if line.startswith("gateway_answer_cache_hits_total{"):
            labels, _, value = line.rpartition(" ")
            kind = labels.split('kind="', 1)[1].split('"', 1)[0]
            hits[kind] = float(value)
    return hits


async def _setting(bench: Bench, warmed: set[str]) -> dict[str, Any]:
    profile = bench.profile
    rounds = replace(bench, profile=replace(profile, rounds=profile.tracing_rounds))
    figures: dict[str, Any] = {}
    for key in CLOSED_LOOP:
        measured = await paired.measure(rounds, SCENARIOS[key], BASELINES["hello"], warmed)
        figures[key] = measured.figures
    fixed_rate = replace(
        profile, saga_seconds=profile.tracing_saga_seconds, saga_steps=(), saga_drain=5.0
    )
    figures["5"] = await saga(replace(bench, profile=fixed_rate), costs=False)
    return figures


def versus_off(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each traced setting's figures as a ratio to the untraced ones: throughput (of hello
    world's, so a spell the machine was slower in counts for less), the saga's p99, and its
    CPU per order across the machine."""
    off = settings.get("off")
    if off is None:
        return {}
    compared: dict[str, dict[str, float | None]] = {}
    for name, figures in settings.items():
        if name == "off":
            continue
        entry: dict[str, float | None] = {}
        for key in CLOSED_LOOP:
            entry[key] = _ratio(figures[key].get("ratio"), off[key].get("ratio"))
        entry["5_p99"] = _ratio(_saga_p99(figures["5"]), _saga_p99(off["5"]))
        entry["5_cpu"] = _ratio(machine_ms_per_order(figures["5"]), machine_ms_per_order(off["5"]))
        compared[name] = entry
    return compared


def _ratio(value: float | None, reference: float | None) -> float | None:
    return round(value / reference, 3) if value and reference else None


def _saga_p99(result: Mapping[str, Any]) -> float | None:
    phases = result.get("phases") or []
    return phases[0].get("p99_ms") if phases else None


def machine_ms_per_order(result: Mapping[str, Any]) -> float | None:
    """CPU per order across the machine: every process's, the databases' and broker's too."""
    value: float | None = (result.get("cpu_ms_per_order") or {}).get("machine")
    return value


TRACING = Definition("8", "8 tracing's cost: 1, 3 and 5 off, at 10% and at 100%", run=measure)
