"""The Dockerfile and compose files, checked without an engine: linted, valid, and in
agreement with the settings the code reads and with the Kubernetes manifests."""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deployments.engine import COMPOSE_DIR
from tests.deployments.manifests import (
    DOCKERFILE,
    GRPC_SERVICES,
    KUBERNETES_DIR,
    PROJECT_ROOT,
    env_names_read,
    field_default,
    kustomization_roots,
    project_version,
    render,
    settings_class,
)

COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
PRODUCTION_FILE = COMPOSE_DIR / "compose.production.yaml"
PRODUCTION_SECRETS = (
    "POSTGRES_PASSWORD",
    "RABBITMQ_PASSWORD",
    "REDIS_PASSWORD",
    "SERVICE_CLIENT_SECRET",
    "PAGE_TOKEN_SECRET",
    "SMTP_HOST",
    "JWT_SIGNING_KEY_FILE",
)
# Variables read by what the images run besides our settings: the interpreter and gRPC's core.
LIBRARY_VARIABLES = frozenset(
    {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "GRPC_DNS_RESOLVER"}
)
# The stage that only builds: its settings are pip's, and never reach an image that runs.
BUILD_STAGE = "build"


def compose_binary() -> str:
    # The Go binary itself: the package's Python wrapper exits 0 whatever the binary said.
    return str(importlib.resources.files("compose") / "docker-compose")


def compose_config(*files: Path, env: dict[str, str] | None = None, quiet: bool = False) -> Any:
    # --env-file: neither a developer's `.env` (which this directory's links to) nor the
    # shell's settings; only what the test gives.
    args = [compose_binary(), "--env-file", os.devnull]
    args += [*(part for f in files for part in ("-f", str(f))), "config"]
    args += ["-q"] if quiet else ["--format", "json"]
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=clean,
        cwd=COMPOSE_DIR,
        timeout=60,
        check=False,
    )
    if quiet:
        return done
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@functools.cache
def development_stack() -> dict[str, Any]:
    config: dict[str, Any] = compose_config(COMPOSE_FILE, env={"COMPOSE_PROJECT_NAME": "check"})
    return config


def own_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the mesh's own images."""
    services: dict[str, dict[str, Any]] = development_stack()["services"]
    return {
        name: service
        for name, service in services.items()
        if service.get("image", "").startswith("ecommerce-mesh/")
    }


@functools.cache
def dockerfile_targets() -> dict[str, dict[str, Any]]:
    """Each build target: its ENV settings, EXPOSEd ports and HEALTHCHECK command."""
    targets: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if match := re.match(r"FROM \S+ AS (\S+)", line):
            current = targets[match.group(1)] = {"env": {}, "expose": set(), "healthcheck": ""}
        elif current is None:
            continue
        elif line.startswith("ENV "):
            current["env"].update(re.findall(r"(\w+)=(\S+)", line))
        elif line.startswith("EXPOSE "):
            current["expose"].update(int(port) for port in line.split()[1:])
        elif line.startswith("HEALTHCHECK "):
            current["healthcheck"] = line
    return targets


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_development_stack_needs_no_settings() -> None:
    done = compose_config(COMPOSE_FILE, quiet=True)
    assert done.returncode == 0, done.stderr


def test_production_requires_every_secret() -> None:
    given = {name: f"{name.lower()}-value" for name in PRODUCTION_SECRETS}
    given["JWT_SIGNING_KEY_FILE"] = str(DOCKERFILE)  # any file will do for `config`
    done = compose_config(COMPOSE_FILE, PRODUCTION_FILE, env=given, quiet=True)
    assert done.returncode == 0, done.stderr
    for missing in PRODUCTION_SECRETS:
        partial = {name: value for name, value in given.items() if name != missing}
        done = compose_config(COMPOSE_FILE, PRODUCTION_FILE, env=partial, quiet=True)
        assert done.returncode != 0, f"production starts without {missing}"
        assert f"{missing} is required" in done.stderr


def test_production_settings_reach_the_services() -> None:
    given = {name: f"{name.lower()}-value" for name in PRODUCTION_SECRETS}
    given["JWT_SIGNING_KEY_FILE"] = str(DOCKERFILE)
    services = compose_config(COMPOSE_FILE, PRODUCTION_FILE, env=given)["services"]
    for name in (*GRPC_SERVICES, "gateway"):
        environment = services[name]["environment"]
        assert environment["APP_ENV"] == "production", name
        assert "rabbitmq_password-value" in environment["AMQP_URL"], name
    assert (
        services["order-service"]["environment"]["PAGE_TOKEN_SECRET"] == "page_token_secret-value"
    )
    assert (
        "postgres_password-value"
        in services["migrate"]["environment"]["ORDER_SERVICE_DATABASE_URL"]
    )


def test_bootstrap_admin_from_the_shell_reaches_the_user_service() -> None:
    env = {"BOOTSTRAP_ADMIN_EMAIL": "boss@example.com", "BOOTSTRAP_ADMIN_PASSWORD": "pw pw pw pw"}
    user = compose_config(COMPOSE_FILE, env=env)["services"]["user-service"]["environment"]
    assert user["BOOTSTRAP_ADMIN_EMAIL"] == "boss@example.com"
    assert user["BOOTSTRAP_ADMIN_PASSWORD"] == "pw pw pw pw"


def test_a_laptops_env_does_not_reach_into_the_stack() -> None:
    # `cp .env.example .env` for `make run` puts 127.0.0.1 addresses in the `.env` compose
    # reads: inside a container that is the container itself.
    laptop = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    services = compose_config(COMPOSE_FILE, env=laptop)["services"]
    for name in own_services():
        for variable, value in services[name].get("environment", {}).items():
            assert "127.0.0.1" not in value, f"{name}: {variable}={value}"
    assert services["notification-service"]["environment"]["SMTP_HOST"] == "mail-sink"


def test_every_variable_compose_sets_is_read_by_the_code() -> None:
    read = env_names_read() | LIBRARY_VARIABLES
    for name, service in own_services().items():
        unknown = sorted(set(service.get("environment", {})) - read)
        assert not unknown, f"{name} sets variables no code reads: {unknown}"
    for target, spec in dockerfile_targets().items():
        if target == BUILD_STAGE:
            continue
        unknown = sorted(set(spec["env"]) - read)
        assert not unknown, f"Dockerfile target {target} sets variables no code reads: {unknown}"


def test_each_service_image_listens_where_its_settings_say() -> None:
    targets = dockerfile_targets()
    services = own_services()
    for name in GRPC_SERVICES:
        port = field_default(settings_class(name), "grpc_port")
        spec = targets[name]
        # The image's health check asks GRPC_PORT: it must be the port the service serves on.
        assert spec["env"]["GRPC_PORT"] == str(port), name
        assert port in spec["expose"], name
        assert "meshkit.healthcheck" in spec["healthcheck"] and "grpc" in spec["healthcheck"]
        assert "meshkit.healthcheck" in services[name]["healthcheck"]["test"]
        published = [p["target"] for p in services[name].get("ports", [])]
        assert published == [port], f"{name} publishes {published}"
        # Published on an address of the engine's choosing, so a second replica fits.
        assert all(not p.get("published") for p in services[name]["ports"]), name
        assert services[name]["environment"]["METRICS_PORT"] in {str(p) for p in spec["expose"]}, (
            name
        )
    gateway_port = field_default(settings_class("gateway"), "port")
    assert targets["gateway"]["env"]["GATEWAY_PORT"] == str(gateway_port)
    assert [p["target"] for p in services["gateway"]["ports"]] == [gateway_port]


def test_every_grpc_address_names_a_compose_service_and_its_port() -> None:
    services = own_services()
    for name, service in services.items():
        for variable, value in service.get("environment", {}).items():
            if not variable.endswith("_SERVICE_ADDR"):
                continue
            match = re.fullmatch(r"dns:///([\w-]+):(\d+)", value)
            assert match, f"{name}: {variable}={value}"
            target, port = match.group(1), int(match.group(2))
            assert target in services, f"{name}: {variable} names {target}"
            assert port == field_default(settings_class(target), "grpc_port"), variable


def test_images_are_built_from_their_own_target_and_tagged_with_the_version() -> None:
    version = project_version()
    for name, service in own_services().items():
        image, tag = service["image"].rsplit(":", 1)
        assert tag == version, f"{name}: {service['image']}"
        assert image == f"ecommerce-mesh/{service['build']['target']}", name
        assert service["build"]["target"] in dockerfile_targets(), name


@pytest.mark.parametrize(
    "root", kustomization_roots(), ids=lambda p: str(p.relative_to(KUBERNETES_DIR))
)
def test_kubernetes_runs_the_images_compose_builds(root: Path) -> None:
    built = {service["image"] for service in own_services().values()}
    for manifest in render(root):
        spec = manifest.get("spec", {})
        pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get(
            "spec", {}
        ).get("template", {}).get("spec")
        for container in (pod or {}).get("containers", []):
            image: str = container["image"]
            if "ecommerce-mesh/" not in image:
                continue
            # An overlay may move the images to a registry; the name and tag stay the same.
            assert "ecommerce-mesh/" + image.split("ecommerce-mesh/", 1)[1] in built, (
                f"{root.name}: {manifest['kind']}/{manifest['metadata']['name']} runs {image}"
            )
