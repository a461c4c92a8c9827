"""HTTP GET load with wrk: a Lua script cycles through requests and prints figures as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen.child import run_child
from bench.stats import QUANTILE_POINTS

THREADS = 2  # one per core of the machines this runs on
MARKER = "BENCH_JSON "
# How long a run takes to open all its connections (see `delay` in the script).
RAMP_SECONDS = 0.25

_SCRIPT = """
local targets = {%(targets)s}
local points = {%(points)s}
local requests = {}
local position = 0
local ramp_ms, per_thread, started = %(ramp_ms)d, %(per_thread)d, 0

function init(args)
  for i, target in ipairs(targets) do
    requests[i] = wrk.format("GET", target[1], target[2])
  end
  position = math.random(#requests)
end

-- Each thread's connections send their first requests spread over the ramp: opened all at
-- once, some wait hundreds of milliseconds behind the rest, and a short run would measure
-- its own start rather than the server.
function delay()
  if started < per_thread then
    started = started + 1
    return started * ramp_ms / per_thread
  end
  return 0
end

function request()
  position = position %% #requests + 1
  return requests[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  local quantiles = {}
  for i, point in ipairs(points) do
    quantiles[i] = point < 100 and latency:percentile(point) or latency.max
  end
  io.write(string.format(
    '%(marker)s{"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,'
    .. '"status":%%d,"timeout":%%d,"max_us":%%d,"quantiles_us":[%%s]}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.max, table.concat(quantiles, ",")))
end
"""


@dataclass(frozen=True)
class Target:
    """One request wrk sends: a path and its headers."""

    path: str
    headers: Mapping[str, str]


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when absent (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string for these characters


def _lua_target(target: Target) -> str:
    headers = ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in target.headers.items())
    return f"{{{_lua(target.path)}, {{{headers}}}}}"


def write_script(
    targets: Sequence[Target], directory: Path, *, connections: int, threads: int
) -> Path:
    rows = ",\n".join(_lua_target(target) for target in targets)
    with tempfile.NamedTemporaryFile(
        "w", suffix=".lua", dir=directory, delete=False, prefix="wrk-"
    ) as script:
        points = ", ".join(f"{point:g}" for point in QUANTILE_POINTS)
        script.write(
            _SCRIPT
            % {
                "targets": rows,
                "points": points,
                "marker": MARKER,
                "ramp_ms": RAMP_SECONDS * 1000,
                "per_thread": -(-connections // threads),
            }
        )
    return Path(script.name)


async def run_wrk(
    base_url: str,
    targets: Sequence[Target],
    *,
    duration: float,
    connections: int = 64,
    workdir: Path,
) -> dict[str, Any]:
    """Run wrk for `duration` seconds with `connections` keep-alive connections."""
    threads = min(THREADS, connections)
    script = write_script(targets, workdir, connections=connections, threads=threads)
    seconds = max(1, round(duration))
    result = (
        await run_child(
            [
                ensure_wrk(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(script),
                base_url,
            ],
            timeout=seconds + 30,
        )
    ).check("wrk")
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith(MARKER))
    raw = json.loads(line[len(MARKER) :])
    elapsed = raw["duration_us"] / 1e6
    errors = {key: raw[key] for key in ("connect", "read", "write", "status", "timeout")}
    quantiles = [us / 1000 for us in raw["quantiles_us"]]
    at = dict(zip(QUANTILE_POINTS, quantiles, strict=True))
    return {
        "requests": raw["requests"],
        "seconds": elapsed,
        "rps": round(raw["requests"] / elapsed, 1),
        "p50_ms": at[50.0],
        "p95_ms": at[95.0],
        "p99_ms": at[99.0],
        "max_ms": raw["max_us"] / 1000,
        "quantiles_ms": quantiles,
        "errors": sum(errors.values()),
        "errors_by_kind": {key: value for key, value in errors.items() if value},
        "concurrency": connections,
        "loadgen": f"wrk, {threads} threads",
        "loadgen_cpu_cores": round(result.cpu_s / result.wall_s, 2),
        "loadgen_capacity_cores": threads,
    }
