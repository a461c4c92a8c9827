"""A service whose background job will not stop: `python -m tests.runtime.stuck_service`.

It serves health like any service, then, once signalled, its job swallows every cancellation,
so only the shutdown watchdog can end the process.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AsyncExitStack
from typing import ClassVar

from meshkit.service import ServiceApp, ServiceDefinition, run
from meshkit.settings import ServiceSettings


class StuckSettings(ServiceSettings):
    service_name: ClassVar[str] = "stuck_service"


async def refuse_to_stop() -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            print("cancelled, carrying on", file=sys.stderr, flush=True)


async def build(settings: StuckSettings, stack: AsyncExitStack) -> ServiceApp:
    return ServiceApp(services=(), background=(refuse_to_stop,))


DEFINITION = ServiceDefinition(settings_cls=StuckSettings, build=build)

if __name__ == "__main__":
    run(DEFINITION)
