"""py-spy profiles of the mesh's processes while a scenario runs, and their top functions.

`python -m bench --py-spy DIR` records every process of the mesh during each scenario (in
py-spy's raw, collapsed-stack format: `DIR/<scenario>-<process>.txt`, which flamegraph tools
read) and writes `DIR/summary.md`: per process, the functions holding the most samples by
their own time and including what they call. Sampling slows the processes a little: compare
the figures of a profiled run with each other, not with an unprofiled run.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

RATE = 250  # samples per second


# What a sample is spent in, by the files on its stack (a sample may count in several).
AREAS: dict[str, tuple[str, ...]] = {
    "SQLAlchemy": ("sqlalchemy/",),
    "asyncpg": ("asyncpg/",),
    "pool pre-ping": ("_async_ping",),
    "new database connections": ("connect_utils.py",),
    "gRPC client calls": ("grpc/aio/_call.py", "grpc/aio/_interceptor.py"),
    "meshkit interceptors": ("meshkit/rpc/interceptors.py",),
    "JWT": ("jwt/",),
    "Redis": ("redis/",),
    "AMQP": ("aio_pika/", "aiormq/", "pamqp/"),
    "SMTP and email": ("aiosmtplib/", "email/"),
    "FastAPI and Starlette": ("fastapi/", "starlette/"),
    "pydantic": ("pydantic/",),
    "protobuf": ("protobuf/",),
    "logging": ("logging/", "meshkit/logging.py"),
    "Prometheus metrics": ("prometheus_client/",),
}
# Frames every sample has: they say nothing about where the time goes.
_SCAFFOLD = (
    "(<frozen runpy>)",
    "__main__.py)",
    "run (meshkit/service.py)",
    "Runner.run (",
    "run (uvicorn/",
)


@dataclass(frozen=True)
class Profile:
    process: str
    samples: int
    # (name, share of the samples) pairs, largest first.
    areas: list[tuple[str, float]]
    own: list[tuple[str, float]]
    inclusive: list[tuple[str, float]]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    return found


async def _spy(pid: int, output: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        py_spy(), "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
        "--nolineno", "--subprocesses", "--nonblocking", "--output", str(output),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def recording(
    pids: Mapping[str, int], directory: Path, label: str
) -> AsyncIterator[dict[str, Path]]:
    """Sample each process until the block ends; yields where each profile is written.
    `directory` must exist."""
    outputs = {name: directory / f"{label}-{name}.txt" for name in pids}
    spies = [await _spy(pid, outputs[name]) for name, pid in pids.items()]
    try:
        yield outputs
    finally:
        for spy in spies:
            if spy.returncode is None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        await asyncio.gather(*(spy.wait() for spy in spies))


def summarize(process: str, raw: Path, limit: int = 12) -> Profile:
    """Shares of samples by area, by function's own time, and including callees.

    A sample whose innermost Python frame is the event loop's `Runner.run` was in C below it
    (uvloop, gRPC core, or waiting): it counts as "event loop and C extensions"."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    lines = raw.read_text(errors="replace").splitlines() if raw.exists() else []
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # The first element names the process, not a function.
        frames = stack.split(";")[1:] or [stack]
        total += count
        leaf = frames[-1]
        own["event loop and C extensions" if leaf.startswith("Runner.run (") else leaf] += count
        for frame in set(frames):
            if not any(mark in frame for mark in _SCAFFOLD):
                inclusive[frame] += count
        for area, marks in AREAS.items():
            if any(mark in frame for frame in frames for mark in marks):
                areas[area] += count

    def shares(counter: Counter[str], n: int = limit) -> list[tuple[str, float]]:
        return [(name, k / total) for name, k in counter.most_common(n)] if total else []

    return Profile(process, total, shares(areas, len(AREAS)), shares(own), shares(inclusive))


def summary_markdown(profiles: Mapping[str, list[Profile]]) -> str:
    lines = [
        "# Where the time goes, per scenario and process (py-spy samples)",
        "",
        "Shares are of the samples of one process; a process's CPU is in the benchmark's table.",
        "",
    ]
    for label, per_process in profiles.items():
        lines += [f"## scenario {label}", ""]
        for profile in sorted(per_process, key=lambda p: -p.samples):
            if profile.samples < 20:
                continue
            areas = ", ".join(
                f"{name} {share:.0%}" for name, share in profile.areas if share >= 0.01
            )
            lines += [
                f"### {profile.process} ({profile.samples} samples)",
                "",
                f"By area: {areas}.",
                "",
                "| own time | function | including callees | function |",
                "|---|---|---|---|",
            ]
            for (own, own_share), (inc, inc_share) in zip(
                profile.own, profile.inclusive, strict=False
            ):
                lines.append(f"| {own_share:.1%} | `{own}` | {inc_share:.1%} | `{inc}` |")
            lines.append("")
    return "\n".join(lines) + "\n"
