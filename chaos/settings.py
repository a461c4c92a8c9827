"""Where the suite finds PostgreSQL, RabbitMQ and Redis, and what the mesh runs with under it."""

from __future__ import annotations

import os
from pathlib import Path

POSTGRES_DSN = os.environ.get("CHAOS_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("CHAOS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
# A database of its own (the tests use 11 and 13 to 15, the benchmark 12): the suite empties
# it before and after a run, and the caches' change channels are named after it.
REDIS_URL = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/10")
ADMIN_EMAIL, ADMIN_PASSWORD = "chaos-admin@example.com", "chaos admin password"

# The reconciler looks at a PENDING order after 5 s, every 2 s: an order whose events were
# held up by a fault is finished within the 30 s the checks allow. The payment deadline stays
# far above the longest outage, so that no order is cancelled for want of a payment that was
# only delayed.
RECONCILE_AFTER_SECONDS = 5
RECONCILE_INTERVAL_SECONDS = 2
PAYMENT_DEADLINE_SECONDS = 300
SMTP_TIMEOUT_SECONDS = 1.5


def mesh_env(
    *, amqp_url: str, namespace: str, redis_url: str, smtp_port: int, workdir: Path
) -> dict[str, str]:
    """The settings of every process: the defaults (consumer retries included), except what a
    run on one machine with a handful of simulated clients must change."""
    return {
        "AMQP_URL": amqp_url,
        "AMQP_NAMESPACE": namespace,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(workdir),
        "JWT_KEYS_DIR": str(workdir / "jwt-keys"),
        "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # Sign-ups are set-up, not what is tested: cheap hashing.
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        # Every simulated client comes from 127.0.0.1, where real ones come from many places.
        "LOGIN_LIMIT_PER_CLIENT": "1000000",
        "LOGIN_LIMIT_PER_ACCOUNT": "1000000",
        "WRITE_LIMIT_PER_CLIENT": "1000000",
        # Tokens taken at set-up must outlive a run, a long soak included.
        "ACCESS_TOKEN_TTL_SECONDS": "86400",
        "ORDER_RECONCILE_AFTER_SECONDS": str(RECONCILE_AFTER_SECONDS),
        "ORDER_RECONCILE_INTERVAL_SECONDS": str(RECONCILE_INTERVAL_SECONDS),
        "ORDER_PAYMENT_DEADLINE_SECONDS": str(PAYMENT_DEADLINE_SECONDS),
        "LOG_LEVEL": "WARNING",
        "SMTP_PORT": str(smtp_port),
        # The mailer leases a batch for twice what its emails may take (batch x this), and at
        # least a minute, before sending what a killed sender left unrecorded: the sink here
        # answers at once, so a short timeout brings the lease to that minute, where the
        # default (10 s, for a remote relay) makes it almost seven.
        "SMTP_TIMEOUT_SECONDS": str(SMTP_TIMEOUT_SECONDS),
    }
