"""One address in front of a service's replicas, as a Service's virtual address is in a cluster.

The mesh's clients reach each service at one address (`<SERVICE>_ADDR`). Two replicas on one
machine cannot share a port (the services turn SO_REUSEPORT off so that a taken port fails
loudly), so the suite puts this in front of the order and payment services: each new
connection goes to the next replica that accepts it, and a replica that dies takes only its
own connections with it; their clients connect again and reach a survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

CONNECT_TIMEOUT_SECONDS = 2.0


class Balancer:
    def __init__(self, backend_ports: Sequence[int], host: str = "127.0.0.1") -> None:
        self.host = host
        self.backend_ports = tuple(backend_ports)
        self.port = 0
        self._next = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Balancer:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the first replica, from the next in turn, that accepts one."""
        count = len(self.backend_ports)
        start, self._next = self._next, (self._next + 1) % count
        for offset in range(count):
            port = self.backend_ports[(start + offset) % count]
            with contextlib.suppress(OSError, TimeoutError):
                return await asyncio.wait_for(
                    asyncio.open_connection(self.host, port), CONNECT_TIMEOUT_SECONDS
                )
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream = await self._connect()
            if upstream is None:
                return  # no replica up: the client sees its connection closed, and retries
            upstream_reader, upstream_writer = upstream
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            with contextlib.suppress(OSError):
                writer.close()
            self._tasks.discard(task)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side ends, then close the sink: one side gone closes the other."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()
