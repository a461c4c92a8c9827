"""The real thing: build the images, bring up the compose stack, and shop through it.

Run by `make deploy-test` (DEPLOY_TEST=1); skipped otherwise, and skipped with the reason when
no container engine is reachable. It prints what an operator would ask first: build time,
image size, time to healthy.
"""

from __future__ import annotations

import ast
import datetime
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.deployments.engine import (
    CommandFailed,
    Engine,
    find_compose,
    find_container_cli,
    wait_for,
)
from tests.deployments.manifests import DOCKERFILE, PROJECT_ROOT, project_version
from tests.e2e.shop import ADDRESS, PASSWORD
from tests.support import free_port

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("DEPLOY_TEST") != "1",
        reason="builds and runs containers: `make deploy-test`",
    ),
    # The first test also waits for the images to build.
    pytest.mark.timeout(1800),
]

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "a deploy-test password"
TAG = project_version()
BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
# Under 250 MB on the official python:3.11-slim base (about 130 MB): what the mesh adds to
# whichever base it is built on stays under the difference.
ADDED_BYTES_BUDGET = 120 * 1000**2
IMAGE_BYTES_LIMIT = 250 * 1000**2
MB = 1000**2


def report(line: str) -> None:
    print(f"[deploy] {line}", flush=True)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    cli, compose = find_container_cli(), find_compose()
    if cli is None or compose is None:
        pytest.skip(
            "no container engine: needs docker or podman reaching an engine, and compose v2 "
            f"(found cli={cli}, compose={compose}); set CONTAINER_CLI / COMPOSE to choose"
        )
    project = f"mesh-deploy-{uuid.uuid4().hex[:6]}"
    gateway_port = free_port()
    built = Engine(
        cli=cli,
        compose_command=compose,
        project=project,
        env={
            "GATEWAY_PORT": str(gateway_port),
            "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "IMAGE_TAG": TAG,
        },
    )
    built.compose("down", "-v", "--remove-orphans", "-t", "5", check=False)
    try:
        yield built
    finally:
        built.compose("down", "-v", "--remove-orphans", "-t", "10", check=False)


def base_image_size(engine: Engine) -> int:
    try:
        return engine.image_size(BASE_IMAGE)
    except CommandFailed:
        # BuildKit keeps the base it built on out of the image store: ask for it.
        engine.container("pull", BASE_IMAGE, timeout=600, check=False)
        return engine.image_size(BASE_IMAGE)


@pytest.fixture(scope="module")
def stack(engine: Engine) -> Iterator[httpx.Client]:
    """The stack built and up (healthy), and a client of its published gateway."""
    started = time.monotonic()
    engine.compose("build", timeout=1800)
    report(f"build: {time.monotonic() - started:.1f} s (all images)")

    image = f"ecommerce-mesh/order-service:{TAG}"
    size = engine.image_size(image)
    try:
        base = base_image_size(engine)
    except CommandFailed:
        report(f"image {image}: {size / MB:.0f} MB (limit {IMAGE_BYTES_LIMIT / MB:.0f} MB)")
        assert size <= IMAGE_BYTES_LIMIT
    else:
        report(
            f"image {image}: {size / MB:.0f} MB; {BASE_IMAGE} {base / MB:.0f} MB; the mesh "
            f"adds {(size - base) / MB:.0f} MB (budget {ADDED_BYTES_BUDGET / MB:.0f} MB)"
        )
        assert size - base <= ADDED_BYTES_BUDGET

    started = time.monotonic()
    up = engine.compose("up", "-d", "--wait", "--wait-timeout", "240", timeout=300, check=False)
    if up.returncode != 0:
        pytest.fail(f"compose up --wait failed:\n{up.stderr[-2000:]}\n{engine.logs()}")
    report(f"time to healthy: {time.monotonic() - started:.1f} s")

    with httpx.Client(base_url=f"http://127.0.0.1:{engine.env['GATEWAY_PORT']}", timeout=30) as c:
        yield c


# ---- the shop, through the published gateway ----------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: httpx.Client, email: str, password: str) -> str:
    answer = client.post("/v1/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def customer(client: httpx.Client) -> tuple[str, str]:
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    registered = client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Ada"}
    )
    assert registered.status_code == 201, registered.text
    return email, login(client, email, PASSWORD)


def product(client: httpx.Client, admin: str) -> str:
    made = client.post(
        "/v1/products",
        json={
            "name": "Deploy widget",
            "description": "Sold through containers",
            "price": {"amount_minor": 1_999, "currency_code": "USD"},
            "stock": 100,
        },
        headers=bearer(admin),
    )
    assert made.status_code == 201, made.text
    product_id: str = made.json()["id"]
    return product_id


def order_until_paid(client: httpx.Client, token: str, product_id: str) -> dict[str, Any]:
    key = uuid.uuid4().hex

    def place() -> httpx.Response | None:
        placed = client.post(
            "/v1/orders",
            json={
                "items": [{"product_id": product_id, "quantity": 1}],
                "payment_method": "pm_card_visa",
                "shipping_address": ADDRESS,
            },
            headers={**bearer(token), "Idempotency-Key": key},
        )
        # As a client does: a 503 or 504 is retried, with the same key (one order at most).
        if placed.status_code in (503, 504):
            return None
        assert placed.status_code in (200, 201), placed.text
        return placed

    placed = wait_for(place, timeout=30, interval=1, message="an order placed")
    order_id = placed.json()["id"]

    def paid() -> dict[str, Any] | None:
        order: dict[str, Any] = client.get(f"/v1/orders/{order_id}", headers=bearer(token)).json()
        return order if order.get("status") == "PAID" else None

    result: dict[str, Any] = wait_for(paid, timeout=60, message=f"order {order_id} PAID")
    return result


@pytest.fixture(scope="module")
def shop(stack: httpx.Client) -> dict[str, str]:
    """An admin's token (BOOTSTRAP_ADMIN_* from the shell reached the user service), a
    product, and a customer."""
    # The first calls open the services' connections; a client retries a 503 or 504. On a
    # stack just started, a first connection (a name looked up on a network just made) has
    # been seen to hang for a minute.
    started = time.monotonic()
    admin = wait_for(
        lambda: login(stack, ADMIN_EMAIL, ADMIN_PASSWORD),
        timeout=180,
        interval=1,
        message="the admin signed in",
    )
    email, token = customer(stack)
    made = wait_for(lambda: product(stack, admin), timeout=180, interval=1, message="a product")
    report(f"first write answered {time.monotonic() - started:.1f} s after healthy")
    return {"admin": admin, "product": made, "email": email, "token": token}


def test_an_order_is_paid_and_its_email_delivered(
    engine: Engine, stack: httpx.Client, shop: dict[str, str]
) -> None:
    order_until_paid(stack, shop["token"], shop["product"])

    (sink,) = engine.containers("mail-sink")
    find_mail = (
        "import pathlib; print(sum(1 for f in pathlib.Path('/var/lib/ecommerce-mesh/mail')"
        f".glob('*.eml') if {shop['email']!r} in f.read_text(errors='replace')))"
    )
    wait_for(
        lambda: int(engine.exec_python(sink, find_mail).strip() or 0) > 0,
        timeout=60,
        message=f"an email to {shop['email']} in the mail sink",
    )


# Run inside an image: the modules imported that have no bytecode for this interpreter's -O.
UNCOMPILED = """
import importlib, importlib.util, os, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
level = sys.flags.optimize or ""
print(sorted(
    m.__name__ for m in list(sys.modules.values())
    if (getattr(m, "__file__", None) or "").endswith(".py")
    and not os.path.exists(importlib.util.cache_from_source(m.__file__, optimization=level))
))
"""


@pytest.mark.parametrize(
    ("image", "flags", "modules"),
    [
        ("order-service", ["-OO"], ["order_service.app", "uvloop", "asyncpg", "alembic.command"]),
        ("gateway", [], ["gateway.app", "meshkit.healthcheck"]),
    ],
)
def test_processes_start_from_bytecode(
    engine: Engine, stack: httpx.Client, image: str, flags: list[str], modules: list[str]
) -> None:
    # Nothing is compiled at start (nor written: the root is read-only), for each -O level.
    found = engine.container(
        "run",
        "--rm",
        "--entrypoint",
        "python",
        f"ecommerce-mesh/{image}:{TAG}",
        *flags,
        "-c",
        UNCOMPILED,
        *modules,
    )
    assert set(ast.literal_eval(found)) <= {"sitecustomize"}, found  # a distribution hook


def test_ready_and_reachable_with_grpcurl(engine: Engine, stack: httpx.Client) -> None:
    ready = stack.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["upstreams"].values()) == {"SERVING"}

    grpcurl = PROJECT_ROOT / ".venv" / "bin" / "grpcurl"
    address = engine.published("product-service", 50051)
    listed = subprocess.run(
        [str(grpcurl), "-plaintext", address, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "ecommerce.product.v1.ProductService" in listed
    assert "grpc.health.v1.Health" in listed


def kill_as_a_crash(pid: int) -> None:
    """SIGKILL from outside, as the kernel's OOM killer would: `docker kill` instead would
    count as stopping it by hand, and a restart policy leaves such a container stopped."""
    if not Path(f"/proc/{pid}").exists():
        pytest.skip("the engine's processes are not on this host (an engine in a VM)")
    try:
        os.kill(pid, signal.SIGKILL)
    except PermissionError:  # the container's user is not ours
        subprocess.run(["sudo", "-n", "kill", "-KILL", str(pid)], check=True, timeout=30)


def test_a_killed_service_is_restarted_and_the_flow_works_again(
    engine: Engine, stack: httpx.Client, shop: dict[str, str]
) -> None:
    (victim,) = engine.containers("order-service")
    before = engine.inspect(victim)["State"]
    kill_as_a_crash(int(before["Pid"]))

    def restarted() -> bool:
        state = engine.inspect(victim)["State"]
        health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status")
        return bool(
            state["Running"] and state["StartedAt"] != before["StartedAt"] and health == "healthy"
        )

    started = time.monotonic()
    wait_for(restarted, timeout=120, message="order-service restarted and healthy")
    report(f"order-service back and healthy {time.monotonic() - started:.1f} s after kill -9")

    # Clients retry a 503. The gateway finds the restarted replica (perhaps at a new address)
    # within seconds, not after gRPC's default 30 s between DNS lookups.
    order_until_paid(stack, shop["token"], shop["product"])
    back = time.monotonic() - started
    report(f"orders work again {back:.1f} s after kill -9")
    assert back < 15


def served_calls(engine: Engine, container: str) -> float:
    """Calls other than health checks this replica has answered, from its own /metrics."""
    metrics = engine.exec_python(
        container,
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:9090/metrics', timeout=5).read().decode())",
    )
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("grpc_server_handled_total{") and "grpc.health" not in line
    )


def test_replicas_share_the_calls(
    engine: Engine, stack: httpx.Client, shop: dict[str, str]
) -> None:
    engine.compose(
        "up",
        "-d",
        "--wait",
        "--no-recreate",
        "--scale",
        "product-service=2",
        "--scale",
        "order-service=2",
        timeout=300,
    )
    replicas = {name: engine.containers(name) for name in ("product-service", "order-service")}
    assert all(len(ids) == 2 for ids in replicas.values()), replicas

    def every_replica_served() -> bool:
        # Uncached reads: a cart (order service) and a listing no one asked for before
        # (product service).
        for _ in range(10):
            cart = stack.get("/v1/cart", headers=bearer(shop["token"]))
            assert cart.status_code == 200, cart.text
            listing = stack.get("/v1/products", params={"query": uuid.uuid4().hex[:8]})
            assert listing.status_code == 200, listing.text
        served = {c[:12]: served_calls(engine, c) for ids in replicas.values() for c in ids}
        report(f"calls answered per replica: {served}")
        return all(calls > 0 for calls in served.values())

    # A client learns of a new replica when its connection ages out and it resolves again.
    wait_for(every_replica_served, timeout=150, interval=2, message="calls on every replica")


def test_sigterm_ends_in_a_graceful_shutdown(engine: Engine, stack: httpx.Client) -> None:
    for service in ("payment-service", "gateway"):
        (container,) = engine.containers(service)
        engine.compose("stop", "-t", "30", service, timeout=60)
        state = engine.inspect(container)["State"]
        assert state["ExitCode"] == 0, f"{service}: {state}\n{engine.logs(service)}"
    assert "payment_service shutting down" in engine.logs("payment-service")


def test_down_leaves_nothing_behind(engine: Engine, stack: httpx.Client) -> None:
    engine.compose("down", "-v", "--remove-orphans", "-t", "10", timeout=180)
    label = f"label=com.docker.compose.project={engine.project}"
    assert engine.container("ps", "-a", "-q", "--filter", label).split() == []
    assert engine.container("volume", "ls", "-q", "--filter", label).split() == []
    assert engine.container("network", "ls", "-q", "--filter", label).split() == []


# ---- building behind a TLS-intercepting proxy -----------------------------------------------


def a_ca_certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"proxy-ca-{uuid.uuid4().hex}")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_a_ca_bundle_is_used_in_the_build_and_never_kept(engine: Engine, tmp_path: Path) -> None:
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_bytes(a_ca_certificate())
    marker = bundle.read_text().splitlines()[2]  # a line of the certificate's body
    image = f"ecommerce-mesh/ca-check:{uuid.uuid4().hex[:8]}"
    # --no-cache: the layer that reads the secret must run with it, not come from a cache.
    build = [engine.cli, "build", "--no-cache", "-f", str(DOCKERFILE), "--target", "migrate"]
    build += ["-t", image]
    if engine.cli == "podman":
        build += ["--pull=never", "--format", "docker"]
    env = {} if engine.cli == "podman" else {"DOCKER_BUILDKIT": "1"}
    engine.env.update(env)
    try:
        engine.run(
            *build, "--secret", f"id=ca_bundle,src={bundle}", str(PROJECT_ROOT), timeout=1800
        )
        history = engine.container("history", "--no-trunc", image)
        assert marker not in history
        search = (
            "import os, sys\n"
            f"marker = {marker!r}.encode()\n"
            "for top in ('/etc', '/opt', '/app', '/tmp', '/usr/local', '/root', '/var', '/run'):\n"
            "    for root, _, names in os.walk(top):\n"
            "        for name in names:\n"
            "            path = os.path.join(root, name)\n"
            "            try:\n"
            "                if os.path.getsize(path) < 5_000_000 and marker in open(path, 'rb').read():\n"
            "                    print(path)\n"
            "            except OSError:\n"
            "                pass\n"
        )
        found = engine.container("run", "--rm", "--entrypoint", "python", image, "-c", search)
        assert found.strip() == "", f"the CA bundle is in the image: {found}"
    finally:
        engine.container("rmi", "-f", image, check=False)
        for key in env:
            engine.env.pop(key, None)
