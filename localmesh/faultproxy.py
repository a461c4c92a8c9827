"""A TCP proxy that can forward, refuse, or swallow traffic: a server going down, or hanging.

toxiproxy and netem are not available here; this is the part of them that the tests and the
chaos suite (`make chaos`) need.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import Enum


class Mode(Enum):
    FORWARD = "forward"
    # Connections are accepted and closed at once, as by a crashed server behind a balancer.
    RESET = "reset"
    # Connections are accepted and bytes read, but nothing ever comes back: a hung server.
    BLACK_HOLE = "black_hole"
    # Open connections stay open and new ones are accepted, but nothing gets through either
    # way: a server (or the link to it) hung mid-conversation.
    STALL = "stall"


class FaultyProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = Mode.FORWARD
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> FaultyProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def endpoint(self) -> str:
        """host:port to point a client at instead of the real server."""
        return f"127.0.0.1:{self.port}"

    def set_mode(self, mode: Mode) -> None:
        """Switch; connections opened under the old mode are cut, except by STALL."""
        self.mode = mode
        if mode is Mode.STALL:
            return
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def close(self) -> None:
        self.set_mode(Mode.RESET)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultyProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.mode is Mode.RESET:
                return
            if self.mode in (Mode.BLACK_HOLE, Mode.STALL):
                while await reader.read(65536):
                    pass
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if self.mode is Mode.STALL:
                    continue  # swallowed, as by a peer that stopped reading
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.close()
