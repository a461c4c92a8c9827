"""The gateway's app as each serving process builds it: settings, logs and tracing first."""

from __future__ import annotations

import atexit
import multiprocessing

from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from meshkit.logging import configure_logging
from meshkit.process import die_with_parent, tune_malloc
from meshkit.settings import load_settings
from meshkit.telemetry import configure_tracing, shutdown_tracing


def configured_app() -> FastAPI:
    """The app, in a process whose logging and tracing are set up from the environment.

    uvicorn's workers (GATEWAY_WORKERS above 1) are fresh processes that import this by
    name: each reads the settings and starts its own exporter thread, as the single process
    does.
    """
    if (supervisor := multiprocessing.parent_process()) is not None and supervisor.pid:
        # A worker: it goes when its supervisor does, even one killed outright, rather than
        # keep the port.
        die_with_parent(supervisor.pid)
    tune_malloc()
    settings = load_settings(GatewaySettings)
    configure_logging(GatewaySettings.service_name, settings.log_level, settings.log_format)
    if configure_tracing(GatewaySettings.service_name):
        # What is buffered goes out when the process ends, a worker as the single process.
        atexit.register(shutdown_tracing)
    return create_app(settings)
