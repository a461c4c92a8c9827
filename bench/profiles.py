"""How long and how big each mode runs: full (`make bench`), quick and smoke (tests)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # Closed-loop HTTP (wrk) and gRPC scenarios: after a warm-up, `rounds` pairs of slices of
    # `slice_seconds`, one of the scenario and one of its baseline (`bench.paired`).
    rounds: int
    slice_seconds: float
    http_warmup: float
    grpc_warmup: float
    # A floor has no cache to fill: its warm-up only opens connections.
    reference_warmup: float
    # The saga: a fixed rate first, then steps up while the mesh keeps up.
    saga_rate: float
    saga_seconds: float
    saga_steps: tuple[float, ...]
    saga_step_seconds: float
    saga_drain: float
    saga_final_drain: float
    # The mixed shopper load.
    shopper_users: int
    shopper_seconds: float
    shopper_warmup: float
    # Tracing's cost (scenario 8): the rounds of scenarios 1 and 3, and the seconds of the
    # saga's fixed rate, run once per setting. Two identical gateways' rounds differed by up
    # to a third on this machine: three rounds' median moved by a fifth between runs.
    tracing_rounds: int = 6
    tracing_saga_seconds: float = 20
    # The settings compared, by the names `bench.tracing_cost.SETTINGS` gives them.
    tracing_settings: tuple[str, ...] = ("off", "0%", "10%", "100%")
    # Whether each restarted mesh is measured only once the gateway's caches are live (a few
    # seconds after it hears their writers): else scenarios 1 and 3 measure a cold start.
    tracing_warm_caches: bool = True
    # Seed data.
    products: int = 10_000
    categories: int = 20
    shoppers: int = 200
    order_owners: int = 50
    orders_per_owner: int = 20
    # Products read by scenarios 1 and 4, cycled (all of them warm in the cache).
    hot_products: int = 1_000
    connections: int = 64


FULL = Profile(
    name="full",
    rounds=6,
    slice_seconds=5,
    http_warmup=5,
    grpc_warmup=3,
    reference_warmup=2,
    saga_rate=20,
    saga_seconds=60,
    saga_steps=(30, 50, 70, 100, 150, 220, 330),
    saga_step_seconds=15,
    saga_drain=15,
    saga_final_drain=30,
    shopper_users=200,
    shopper_seconds=120,
    shopper_warmup=10,
)

QUICK = Profile(
    name="quick",
    # One round: a look in under two minutes, without the full run's median of six.
    rounds=1,
    slice_seconds=3,
    # Long enough to read every hot product once (scenario 1 is "cache warm") at the slowest
    # rate measured here (727 req/s).
    http_warmup=2.5,
    # With the slice's own start (`scenarios.GRPC_CLIENT_START_SECONDS`), long enough to read
    # every hot product once when scenario 1 did not warm the caches.
    grpc_warmup=1.5,
    reference_warmup=1,
    saga_rate=20,
    saga_seconds=10,
    saga_steps=(50, 100, 150),
    saga_step_seconds=4,
    saga_drain=8,
    saga_final_drain=15,
    shopper_users=200,
    shopper_seconds=10,
    shopper_warmup=2,
    tracing_rounds=1,
    tracing_saga_seconds=8,
)

# Seconds per scenario and little data: proves every scenario runs and yields figures.
SMOKE = Profile(
    name="smoke",
    rounds=1,
    slice_seconds=1,
    http_warmup=1,
    grpc_warmup=0.5,
    reference_warmup=0.5,
    saga_rate=5,
    saga_seconds=2,
    saga_steps=(10,),
    saga_step_seconds=1,
    saga_drain=10,
    saga_final_drain=10,
    shopper_users=20,
    shopper_seconds=3,
    shopper_warmup=1,
    tracing_rounds=1,
    tracing_saga_seconds=2,
    # 100% runs the same code as 10%, sampling more: the quick and full runs measure it.
    tracing_settings=("off", "10%"),
    # The smoke test asks only that each setting runs and traces as it says.
    tracing_warm_caches=False,
    products=1_000,
    categories=5,
    shoppers=20,
    order_owners=5,
    orders_per_owner=4,
    hot_products=100,
)

PROFILES = {profile.name: profile for profile in (FULL, QUICK, SMOKE)}
