"""`python -m gateway`: serve the gateway with uvicorn."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from meshkit.logging import configure_logging
from meshkit.process import follow_launcher, tune_malloc
from meshkit.settings import load_settings
from meshkit.telemetry import configure_tracing, shutdown_tracing


def main() -> None:
    follow_launcher()
    tune_malloc()
    settings = load_settings(GatewaySettings)
    configure_logging(GatewaySettings.service_name, settings.log_level, settings.log_format)
    configure_tracing(GatewaySettings.service_name)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # The default of 5 s lets a keep-alive client hold a worker past shutdown.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )
    shutdown_tracing()


if __name__ == "__main__":
    main()
