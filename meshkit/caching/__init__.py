"""In-process caches kept exact by changes announced on Redis, and the Redis clients they use."""

from __future__ import annotations

from meshkit.caching.announcer import ChangeAnnouncer, Heartbeat, open_announcer
from meshkit.caching.invalidated_cache import InvalidatedCache
from meshkit.caching.redis_clients import connect_redis, connect_subscriber

__all__ = [
    "ChangeAnnouncer",
    "Heartbeat",
    "InvalidatedCache",
    "connect_redis",
    "connect_subscriber",
    "open_announcer",
]
