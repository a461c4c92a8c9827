"""Process-wide settings of a serving process: malloc arenas, the collector, and dying with
the launcher that started it."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
from contextlib import suppress

# Set by `localmesh.launcher` in the environment of the processes it starts.
LAUNCHER_PID_VARIABLE = "MESH_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1

# glibc's M_ARENA_MAX: without it, every thread that allocates (grpc's poller, the executor
# threads that hash passwords) gets a heap of its own whose pages stay resident.
_M_ARENA_MAX = -8
# glibc's M_MMAP_THRESHOLD. Set, it stops glibc from raising the threshold after each large
# free: by default, once a password hash's 19 MiB were freed, later ones came from the heap and
# stayed resident, and the user service grew with its sign-ups far more than with it set.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value


def tune_malloc(arenas: int = 2) -> None:
    """Two malloc arenas, and blocks over 128 KiB always mapped and returned when freed; set
    before any thread starts. A no-op off glibc."""
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_ARENA_MAX, arenas)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def follow_launcher() -> None:
    """When started by `localmesh.launcher`: get SIGTERM when the launcher dies, so that no
    process is left behind (and at once if it already has). Asked here, by the process
    itself, rather than between fork and exec in the launcher: code run there in a launcher
    with gRPC's threads (a test process) crashed the child before it could exec. A no-op off
    Linux."""
    # Not passed on: a process this one starts (its migrations) follows this one, not the
    # launcher.
    launcher = os.environ.pop(LAUNCHER_PID_VARIABLE, None)
    if launcher:
        die_with_parent(int(launcher))


def die_with_parent(parent: int) -> None:
    """Get SIGTERM when the parent process dies (at once if `parent` is already gone): for a
    worker whose supervisor may be killed without a chance to stop it. A no-op off Linux."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


# Container allocations, net of frees, that trigger a young collection in the gateway
# (CPython: 700).
GATEWAY_YOUNG_COLLECTION_THRESHOLD = 50_000


def prepare_collector_for_serving(young_threshold: int | None = None) -> None:
    """Hide what start-up allocated from the cyclic collector once a process serves, and
    collect young objects every `young_threshold` net allocations when given.

    Modules, schemas, mappers and settings live as long as the process, yet every full
    collection walked them all: on the gateway, a stall for every request in flight and most
    of its tail latency. Frozen, a full collection walks only what requests allocated.

    At CPython's threshold of 700, the gateway under load ran young and middle collections
    many times a second that found almost nothing to free (requests in flight are alive;
    what they drop, reference counting frees), a share of its CPU spent for nothing. The
    count restarts from zero at each collection and frees cannot take it below zero, so the
    frees of objects made before a collection are lost while the allocations after it count:
    a small threshold is reached however little is garbage. At 50,000 the gateway collected
    nothing during a load and its RSS after the load did not grow. The services keep
    CPython's threshold: they make cyclic garbage (AMQP and SMTP clients above all), and at
    50,000 it stayed resident long enough to grow their RSS after the benchmark's load.
    """
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        _, middle, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, oldest)
