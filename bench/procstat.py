"""Resident memory and CPU time of processes, read from /proc (Linux)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of the process in MB of 10^6 bytes (0 when the process is gone):
    VmRSS, all resident memory; RssAnon, the process's own (heap, not shared libraries);
    Pss, resident memory with each shared page divided among the processes that map it."""
    source = f"/proc/{pid}/smaps_rollup" if field == "Pss" else f"/proc/{pid}/status"
    try:
        with open(source) as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Direct children of a process (uvicorn's workers, for instance)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return found
    for task in tasks:
        # A thread that ended meanwhile has no children left to list; the others still do.
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                found += [int(child) for child in listing.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def worker_processes(pid: int) -> list[int]:
    """The children a multiprocessing supervisor (uvicorn with workers) started to serve: not
    the resource tracker it also runs."""
    workers = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    workers.append(child)
        except FileNotFoundError:
            pass
    return workers


def family(pid: int) -> list[int]:
    """A process and all its descendants."""
    pids = [pid]
    for child in children(pid):
        pids += family(child)
    return pids


def _stat(pid: int) -> tuple[str, list[str]] | None:
    """A process's command name and the fields of /proc/<pid>/stat after it; None once the
    process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            head, tail = stat.read().rsplit(")", 1)
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: it runs to the last ')'.
    return head.split("(", 1)[1], tail.split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, its threads included."""
    stat = _stat(pid)
    return (int(stat[1][11]) + int(stat[1][12])) / _TICKS if stat else 0.0


def family_rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process and its descendants (a multi-worker uvicorn), in MB."""
    return sum(rss_mb(member, field) for member in family(pid))


def family_cpu_seconds(pid: int) -> float:
    """CPU time of a process, its live descendants, and the children it has reaped: a
    PostgreSQL backend that ended meanwhile still counts, in its postmaster's."""
    while True:
        reaped = reaped_cpu_seconds(pid)
        live = sum(cpu_seconds(member) for member in family(pid))
        # A child reaped while the family was read would count twice, live and reaped.
        if reaped_cpu_seconds(pid) == reaped:
            return live + reaped


def reaped_cpu_seconds(pid: int) -> float:
    """CPU time of the children a process has waited for (cutime and cstime)."""
    stat = _stat(pid)
    return (int(stat[1][13]) + int(stat[1][14])) / _TICKS if stat else 0.0


# The servers a run leans on, by the name their processes have, and their column.
INFRASTRUCTURE = {"postgres": "postgresql", "beam.smp": "rabbitmq", "redis-server": "redis"}


def infrastructure_pids() -> dict[str, int]:
    """The topmost process of PostgreSQL, RabbitMQ and Redis on this machine, by column name:
    each one's family is all of that server's CPU. Servers not found are left out; of two
    servers of a kind (two PostgreSQL clusters), the one started first is taken."""
    names: dict[int, str] = {}
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            names[int(entry)], parents[int(entry)] = stat[0], int(stat[1][1])
    found: dict[str, int] = {}
    for pid, name in sorted(names.items()):
        column = INFRASTRUCTURE.get(name)
        if column and names.get(parents[pid]) != name and column not in found:
            found[column] = pid
    return found


def machine_times(cpu_line: str) -> tuple[float, float]:
    """(busy, stolen) CPU seconds of all cores from the `cpu` line of /proc/stat.

    Busy is all but idling (idle, iowait) and stolen: the time the hypervisor ran another
    guest while one of ours was ready, which the machines this runs on are shared enough to
    show (up to a fifth of a core in 30 s samples)."""
    fields = [int(value) for value in cpu_line.split()[1:]]
    idle = fields[3] + fields[4]
    stolen = fields[7]
    return (sum(fields[:7]) - idle) / _TICKS, stolen / _TICKS


def machine_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of all cores since boot."""
    with open("/proc/stat") as stat:
        return machine_times(stat.readline())


@dataclass
class CpuMeter:
    """CPU used by named processes (and their children) between `start()` and `stop()`, in
    cores: 1.0 is one core busy all the time."""

    pids: Mapping[str, int]
    _cpu: dict[str, float] | None = None
    _machine: tuple[float, float] = (0.0, 0.0)
    _wall: float = 0.0

    def start(self) -> CpuMeter:
        self._cpu = {name: family_cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine = machine_seconds()
        self._wall = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        """Cores used by each process, by the whole machine under `machine` (the load
        generator, PostgreSQL, RabbitMQ and Redis included), and taken by the hypervisor
        under `stolen`."""
        elapsed = max(time.monotonic() - self._wall, 1e-9)
        used = {**self.seconds(), "stolen": machine_seconds()[1] - self._machine[1]}
        return {name: round(seconds / elapsed, 2) for name, seconds in used.items()}

    def seconds(self) -> dict[str, float]:
        """CPU seconds used by each process, and by the machine, since `start()`."""
        assert self._cpu is not None, "start() first"
        used = {name: family_cpu_seconds(pid) - self._cpu[name] for name, pid in self.pids.items()}
        used["machine"] = machine_seconds()[0] - self._machine[0]
        return used


@dataclass
class CpuTimeline:
    """CPU seconds used so far by named processes and by the machine, sampled every
    `interval` seconds, to tell what any stretch of a run cost once it is over (the saga's
    phases run in a child process that reports their times on time.monotonic's clock, which
    every process shares)."""

    pids: Mapping[str, int]
    interval: float = 0.25
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        used = {name: family_cpu_seconds(pid) for name, pid in self.pids.items()}
        used["machine"] = machine_seconds()[0]
        self.samples.append((time.monotonic(), used))

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)

    def start(self) -> CpuTimeline:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()

    def _at(self, moment: float) -> dict[str, float]:
        """Linear between the samples either side of `moment` (the nearest one outside)."""
        times = [sampled for sampled, _ in self.samples]
        index = bisect.bisect_left(times, moment)
        if index == 0:
            return self.samples[0][1]
        if index == len(times):
            return self.samples[-1][1]
        (t0, before), (t1, after) = self.samples[index - 1], self.samples[index]
        share = (moment - t0) / (t1 - t0) if t1 > t0 else 1.0
        return {name: before[name] + (after[name] - before[name]) * share for name in before}

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each process, and the machine, used from `start` to `end`."""
        first, last = self._at(start), self._at(end)
        return {name: last[name] - first[name] for name in first}
