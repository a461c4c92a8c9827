"""`python -m gateway`: serve the gateway with uvicorn, in one process or GATEWAY_WORKERS."""

from __future__ import annotations

import uvicorn

from gateway.serving import configured_app
from gateway.settings import GatewaySettings
from meshkit.logging import configure_logging
from meshkit.process import follow_launcher
from meshkit.settings import load_settings

# What uvicorn's worker processes import and call to build their app.
APP_FACTORY = "gateway.serving:configured_app"


def main() -> None:
    follow_launcher()
    settings = load_settings(GatewaySettings)
    many = settings.workers > 1
    if many:
        # This process only starts, watches and stops the workers, which share the port.
        configure_logging(GatewaySettings.service_name, settings.log_level, settings.log_format)
    uvicorn.run(
        APP_FACTORY if many else configured_app(),
        factory=many,
        workers=settings.workers if many else None,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # The default of 5 s lets a keep-alive client hold a worker past shutdown.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )


if __name__ == "__main__":
    main()
