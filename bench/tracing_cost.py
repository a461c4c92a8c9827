"""8: what tracing costs. Scenarios 1 and 3 against hello world, and the saga at a fixed
rate, with tracing off, on with no trace sampled, sampling a tenth of the traces and sampling
them all; the mesh is restarted for each, every process exporting over OTLP/gRPC to a
receiver that discards.

Scenarios 1 and 3 are measured beside an untraced twin: a second gateway, started beside the
restarted mesh without tracing, loaded in the same rounds as the mesh's own and hello world
(`bench.paired`). A setting's cost is the median of its rounds' ratios of the traced
gateway's throughput to the twin's: two slices a few seconds apart, not two spells minutes
apart, which on a shared machine differed by more than the cost measured. The saga's p99 and
CPU per order are compared with the untraced setting's, across the restart.

A request is sampled or not, and costs what its kind costs whatever the share of each, so a
share in between follows from the two ends (`from_the_ends`). That splits a tenth's cost in
two: what tracing costs a request nobody samples (the 0% setting, measured as noisily as any
setting), and what the sampled tenth adds (a tenth of what sampling all adds to sampling
none, its noise a tenth as large).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import httpx

from bench import paired
from bench.coldstart import http_ready
from bench.scenarios import BASELINES, SCENARIOS, Bench, Definition, saga
from bench.stack import start_process, stop_process
from localmesh.launcher import free_port

# How long the untraced twin may take to say it is ready.
TWIN_READY_SECONDS = 60.0

# The settings compared, by the name the table gives them: OpenTelemetry's own variables.
SETTINGS: dict[str, dict[str, str]] = {
    "off": {},
    # On, with the hooks and the exporter in place, and no trace ever sampled.
    "0%": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
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
            warmed &= {"hello"}
            async with untraced_twin(bench) as twin:
                if bench.profile.tracing_warm_caches:
                    await caches_live(bench, bench.stack.gateway_url)
                    await caches_live(bench, twin.gateway)
                settings[name] = await _setting(bench, twin, warmed)
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


@contextlib.asynccontextmanager
async def untraced_twin(bench: Bench) -> AsyncIterator[Bench]:
    """A second gateway beside the mesh, on a port of its own, with tracing off whatever the
    mesh runs with: `bench` with the HTTP scenarios loading it, and its process's CPU
    counted as the gateway's."""
    port = free_port()
    process = await bench.stack.mesh.spawn_replica("gateway", port, setting_env("off", 0))
    try:
        url = f"http://127.0.0.1:{port}"
        await _ready(url, process)
        pids = {**bench.extra_pids, "gateway": process.pid}
        yield replace(bench, gateway_url=url, extra_pids=pids)
    finally:
        await stop_process(process)


async def _ready(url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + TWIN_READY_SECONDS
    while not await http_ready(f"{url}/readyz"):
        if process.returncode is not None:
            raise RuntimeError(f"the untraced gateway exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the untraced gateway was not ready in {TWIN_READY_SECONDS:.0f}s")
        await asyncio.sleep(0.1)


async def caches_live(bench: Bench, gateway_url: str, timeout: float = 30.0) -> None:
    """Wait until the gateway at `gateway_url` answers a product and an order from its own
    caches, which it does once it hears their writers (`gateway.answer_cache`): measured
    before then, scenarios 1 and 3 would measure a cold start."""
    product = f"/v1/products/{bench.seeded.product_ids[0]}"
    order_id, token = bench.seeded.orders[0]
    order = (f"/v1/orders/{order_id}", {"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=gateway_url, timeout=5) as client:
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


async def _setting(bench: Bench, twin: Bench, warmed: set[str]) -> dict[str, Any]:
    profile = bench.profile
    rounds = replace(bench, profile=replace(profile, rounds=profile.tracing_rounds))
    figures: dict[str, Any] = {}
    for key in CLOSED_LOOP:
        scenario = SCENARIOS[key]
        measured = await paired.measure(
            rounds, scenario, BASELINES["hello"], warmed, reference=_on(twin, scenario)
        )
        # The twin's figures against hello world, and the scenario's against the twin's.
        figures[key] = {**measured.figures, "untraced_twin": measured.reference}
    fixed_rate = replace(
        profile, saga_seconds=profile.tracing_saga_seconds, saga_steps=(), saga_drain=5.0
    )
    figures["5"] = await saga(replace(bench, profile=fixed_rate), costs=False)
    return figures


def _on(twin: Bench, scenario: Definition) -> Definition:
    """`scenario` as loaded on the untraced twin."""
    assert scenario.slice is not None
    load = scenario.slice

    async def slice_on_twin(bench: Bench, seconds: float) -> dict[str, Any]:
        return await load(twin, seconds)

    return Definition(
        f"{scenario.key}-untraced",
        f"{scenario.title}, untraced twin",
        slice=slice_on_twin,
        baseline="hello",
    )


def versus_off(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each traced setting's figures as a ratio to the untraced ones: throughput against the
    untraced twin in the same rounds (and, for the record, as the ratio of the two settings'
    ratios to hello world, across the restart), the saga's p99, and its CPU per order across
    the machine."""
    off = settings.get("off")
    if off is None:
        return {}
    compared: dict[str, dict[str, float | None]] = {}
    for name, figures in settings.items():
        if name == "off":
            continue
        entry: dict[str, float | None] = {}
        for key in CLOSED_LOOP:
            entry[key] = (figures[key].get("reference") or {}).get("ratio")
            entry[f"{key}_across_restart"] = _ratio(
                figures[key].get("ratio"), off[key].get("ratio")
            )
        entry["5_p99"] = _ratio(_saga_p99(figures["5"]), _saga_p99(off["5"]))
        entry["5_cpu"] = _ratio(machine_ms_per_order(figures["5"]), machine_ms_per_order(off["5"]))
        compared[name] = entry
    none, every, tenth = compared.get("0%"), compared.get("100%"), compared.get("10%")
    if none and every and tenth:
        for key in CLOSED_LOOP:
            tenth[f"{key}_from_the_ends"] = from_the_ends(none.get(key), every.get(key), 0.1)
    return compared


def from_the_ends(none: float | None, every: float | None, share: float) -> float | None:
    """The throughput ratio (to the untraced twin) at `share` sampled, from the ratios with no
    request sampled and with every one: a request's time is its kind's, so time per request,
    the inverse of throughput, is linear in the share sampled."""
    if not none or not every:
        return None
    return round(1 / ((1 - share) / none + share / every), 3)


def _ratio(value: float | None, reference: float | None) -> float | None:
    return round(value / reference, 3) if value and reference else None


def _saga_p99(result: Mapping[str, Any]) -> float | None:
    phases = result.get("phases") or []
    return phases[0].get("p99_ms") if phases else None


def machine_ms_per_order(result: Mapping[str, Any]) -> float | None:
    """CPU per order across the machine: every process's, the databases' and broker's too."""
    value: float | None = (result.get("cpu_ms_per_order") or {}).get("machine")
    return value


TRACING = Definition(
    "8", "8 tracing's cost: 1, 3 and 5 off, on sampling none, 10% and all", run=measure
)
