"""The life of a gRPC service process: settings, logging, migrations, serve, shut down."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from meshkit.data.db import is_sqlite
from meshkit.data.migrations import is_at_head, upgrade_to_head, upgrade_to_head_async
from meshkit.logging import command_log_level, configure_logging
from meshkit.messaging.amqp import CONSUMERS
from meshkit.metrics import serve_metrics
from meshkit.process import follow_launcher, prepare_collector_for_serving, tune_malloc
from meshkit.readiness import Dependency, ReadinessWatcher
from meshkit.rpc.interceptors import TokenVerifier
from meshkit.rpc.server import GrpcServer, ServiceRegistration, start_grpc_server
from meshkit.settings import ServiceSettings, load_migration_settings, load_settings
from meshkit.telemetry import configure_tracing, shutdown_tracing

logger = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)

BackgroundJob = Callable[[], Awaitable[None]]


@dataclass
class ServiceApp:
    """What a service's composition root builds: servicers, auth and background jobs."""

    services: Sequence[ServiceRegistration]
    public_methods: Collection[str] = frozenset()
    verifier: TokenVerifier | None = None
    # Long-running coroutines (outbox relay, consumers), started once the server serves.
    background: Sequence[BackgroundJob] = field(default_factory=tuple)
    # What the service cannot serve without (its database, its broker): while one does not
    # answer, health reports NOT_SERVING (`meshkit.readiness`).
    dependencies: Sequence[Dependency] = field(default_factory=tuple)


# The composition root: builds everything from settings; resources it opens go on the stack.
BuildApp = Callable[[SettingsT, AsyncExitStack], Awaitable[ServiceApp]]


# An extra command-line command: gets the settings and the arguments after its name.
Command = Callable[[SettingsT, list[str]], None]


@dataclass(frozen=True)
class ServiceDefinition(Generic[SettingsT]):
    """Everything `python -m <service>` needs to know about a service."""

    settings_cls: type[SettingsT]
    build: BuildApp[SettingsT]
    migrations: Path | None = None
    commands: Mapping[str, Command[SettingsT]] = field(default_factory=dict)


@asynccontextmanager
async def running_service(
    definition: ServiceDefinition[SettingsT], settings: SettingsT
) -> AsyncIterator[GrpcServer]:
    """Build, migrate and start a service; on exit drain it and close what it opened."""
    if definition.migrations is not None and settings.migrate_on_start:
        await upgrade_to_head_async(definition.migrations, settings.database_url)
    async with AsyncExitStack() as stack:
        app = await definition.build(settings, stack)
        readiness = ReadinessWatcher(
            app.dependencies,
            interval=settings.readiness_interval_seconds,
            timeout=settings.readiness_check_timeout_seconds,
        )
        # Checked before the port opens: the first answer to a health check is already true.
        ready = await readiness.check()
        server = await start_grpc_server(
            app.services,
            host=settings.grpc_host,
            port=settings.grpc_port,
            verifier=app.verifier,
            public_methods=app.public_methods,
            ready=ready,
            max_connection_age_seconds=settings.grpc_max_connection_age_seconds,
        )

        async def watch_readiness() -> None:
            await readiness.watch(server.set_ready)

        jobs = [asyncio.create_task(supervise(job)) for job in app.background]
        watcher = asyncio.create_task(supervise(watch_readiness)) if app.dependencies else None
        try:
            yield server
        finally:
            # The watcher stops first: nothing may say SERVING once shutdown has begun.
            if watcher is not None:
                await stop_tasks([watcher])
            await server.stop(settings.shutdown_grace_seconds)
            await stop_tasks(jobs)


# How long a cancelled task gets to end before it is cancelled again.
RECANCEL_AFTER_SECONDS = 1.0


async def stop_tasks(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait until every one has ended, cancelling again one that has not.

    On Python 3.11 a cancellation that meets a timeout expiring at the same moment (in
    `asyncio.timeout` or `wait_for`) can be lost: the job then sees a timeout, handles it as a
    failure and runs on, and a single cancel would leave its shutdown waiting for good.
    """
    running = {task for task in tasks if not task.done()}
    while running:
        for task in running:
            task.cancel()
        _, running = await asyncio.wait(running, timeout=RECANCEL_AFTER_SECONDS)


async def supervise(
    job: BackgroundJob,
    *,
    initial_backoff: float = 0.1,
    max_backoff: float = 5.0,
    healthy_after: float = 60.0,
) -> None:
    """Run a background job for the life of the process: one that fails restarts after a
    backoff, so a broker that drops the connection while a consumer opens its channel does not
    leave the service up but deaf. A job that ran `healthy_after` seconds starts its backoff
    over; one that returns is done."""
    loop = asyncio.get_running_loop()
    failures = 0
    while True:
        started = loop.time()
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            failures = 1 if loop.time() - started >= healthy_after else failures + 1
            delay = min(max_backoff, initial_backoff * 2 ** (failures - 1))
            delay *= random.uniform(0.5, 1)  # replicas that failed together retry apart
            logger.exception(
                "background job %s failed; restarting in %.2fs",
                getattr(job, "__qualname__", job),
                delay,
                extra={"attempt": failures},
            )
            await asyncio.sleep(delay)


def _arm_shutdown_watchdog(deadline: float) -> asyncio.TimerHandle:
    """End the process if shutting down takes longer than `deadline` seconds.

    A process that hangs on SIGTERM holds its port and its broker connection until something
    kills it. Past the deadline, the stacks of the tasks still running are logged (what is
    stuck) and the process exits with status 1. If the event loop itself is blocked, that
    callback never runs: faulthandler then dumps every thread's stack and exits a little later.
    """
    faulthandler.dump_traceback_later(deadline + 2, exit=True)
    return asyncio.get_running_loop().call_later(deadline, _abandon_shutdown, deadline)


def _abandon_shutdown(deadline: float) -> None:
    stuck = [task for task in asyncio.all_tasks() if not task.done()]
    logger.error(
        "shutdown did not finish in %.0fs; exiting with %d task(s) still running",
        deadline,
        len(stuck),
        extra={"tasks": [_describe(task) for task in stuck]},
    )
    logging.shutdown()
    os._exit(1)


def _describe(task: asyncio.Task[object]) -> str:
    """The task's name and its chain of awaits, outermost first, down to where it waits."""
    where: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(where) < 12:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        where.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return f"{task.get_name()}: {' -> '.join(where) or 'finished'}"


async def serve_until_signalled(
    definition: ServiceDefinition[SettingsT], settings: SettingsT
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if settings.metrics_port:
        serve_metrics(settings.metrics_port, settings.grpc_host)
    async with running_service(definition, settings) as server:
        logger.info("%s serving on port %d", settings.service_name, server.port)
        prepare_collector_for_serving()
        await stop.wait()
        logger.info("%s shutting down", settings.service_name)
        watchdog = _arm_shutdown_watchdog(settings.shutdown_deadline_seconds)
    watchdog.cancel()  # faulthandler's stays armed until the event loop is closed too


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it comes with uvicorn[standard]): cheaper wake-ups between tasks."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(definition: ServiceDefinition[SettingsT], argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m <service>`: `serve` (the default), `migrate`, or its own."""
    settings_cls = definition.settings_cls
    parser = argparse.ArgumentParser(prog=f"python -m {settings_cls.service_name}")
    operations = _operations(settings_cls.service_name)
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", *definition.commands, *operations],
    )
    # Whatever follows the command is the command's own, its --help included.
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rest = args.rest
    follow_launcher()
    tune_malloc()
    # Migrating uses only the database: a migration Job is not handed the serving secrets.
    load = load_migration_settings if args.command == "migrate" else load_settings
    settings = load(settings_cls)
    # A command's result is printed; what its libraries say on the way is for LOG_LEVEL=DEBUG.
    level = settings.log_level if args.command == "serve" else command_log_level(settings.log_level)
    configure_logging(settings_cls.service_name, level, settings.log_format)
    if args.command in operations:
        operations[args.command](settings, rest)
        return
    if args.command in definition.commands:
        _migrate(definition, settings)
        definition.commands[args.command](settings, rest)
        return
    if args.command == "migrate":
        migrate_and_say(definition, settings)
        return
    if definition.migrations is not None and settings.migrate_on_start:
        migrate_before_serving(definition.migrations, settings)
        settings = replace(settings, migrate_on_start=False)
    configure_tracing(settings_cls.service_name)
    try:
        with suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve_until_signalled(definition, settings))
    finally:
        shutdown_tracing()
    faulthandler.cancel_dump_traceback_later()


def _operations(service_name: str) -> dict[str, Command[Any]]:
    """The commands the runtime gives a service besides its own: `dead-letters` to every
    consumer of events."""
    if service_name not in CONSUMERS:
        return {}
    from meshkit.messaging.dead_letters import dead_letters_command

    return {"dead-letters": dead_letters_command}


def migrate_and_say(definition: ServiceDefinition[SettingsT], settings: SettingsT) -> None:
    """`migrate`: apply the pending migrations and print one line of what was done; on failure,
    one line of why, and exit 1."""
    applied = _migrate(definition, settings)
    if applied:
        print(f"{settings.service_name}: database migrated: {', '.join(applied)}")
    else:
        print(f"{settings.service_name}: database up to date")


def _migrate(definition: ServiceDefinition[SettingsT], settings: SettingsT) -> list[str]:
    """Apply the pending migrations; the revisions applied."""
    if definition.migrations is None:
        return []
    try:
        applied = upgrade_to_head(definition.migrations, settings.database_url)
    except (OSError, SQLAlchemyError) as error:
        url = make_url(settings.database_url)
        where = url.render_as_string(hide_password=True)
        hint = (
            "can this user write that file and its directory?"
            if is_sqlite(url)
            else "is the database running? `make services` starts PostgreSQL here"
        )
        # One line that says what to fix, not a driver's traceback.
        print(
            f"error: {settings.service_name} cannot migrate its database {where}: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
            f"({hint})",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    return applied


def migrate_before_serving(migrations: Path, settings: ServiceSettings) -> None:
    """Bring the database to head before serving, in a child process unless it is there.

    A replica that starts beside running ones, or a service restarted, finds its database
    migrated: one query tells, where the migrating process would cost an interpreter's start
    and every import of the service again, most of the time to serving.
    """
    if asyncio.run(is_at_head(migrations, settings.database_url)):
        logger.info("database at head: nothing to migrate")
        return
    _migrate_in_child(settings.service_name)


def _migrate_in_child(service_name: str) -> None:
    """`python -m <service> migrate` in a process of its own, waited for.

    Migrating in the serving process would keep Alembic, Mako and Pygments in its memory for
    good, a noticeable part of what a service holds idle.
    """
    # With the interpreter's own -O flags: an image holds only the bytecode its processes read.
    optimize = ["-" + "O" * sys.flags.optimize] if sys.flags.optimize else []
    done = subprocess.run(
        [sys.executable, *optimize, "-m", service_name, "migrate"],
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        # The child logged why.
        raise SystemExit(done.returncode)
    # What the child printed for a person is a log record here, in this process's format.
    for line in done.stdout.splitlines():
        logger.info(line.removeprefix(f"{service_name}: "))
