"""The container engine a deployment test drives: any Docker or podman with compose v2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.deployments.manifests import PROJECT_ROOT

COMPOSE_DIR = PROJECT_ROOT / "deployments" / "compose"


def _works(command: Sequence[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_container_cli() -> str | None:
    """CONTAINER_CLI, else the CLI of the engine compose talks to: podman when DOCKER_HOST is
    podman's socket (its own CLI builds with secrets; docker's needs BuildKit), else docker,
    else podman."""
    if chosen := os.environ.get("CONTAINER_CLI"):
        return chosen
    order = (
        ("podman", "docker")
        if "podman" in os.environ.get("DOCKER_HOST", "")
        else ("docker", "podman")
    )
    for cli in order:
        if shutil.which(cli) and _works([cli, "info"]):
            return cli
    return None


def find_compose() -> list[str] | None:
    """COMPOSE (a command line), else `docker compose` or `docker-compose`, whichever is v2."""
    if chosen := os.environ.get("COMPOSE"):
        return chosen.split()
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and _works([*command, "version"]):
            return command
    return None


class CommandFailed(AssertionError):
    pass


@dataclass
class Engine:
    """A container CLI and a compose command for one compose project."""

    cli: str
    compose_command: list[str]
    project: str
    files: list[Path] = field(default_factory=lambda: [COMPOSE_DIR / "compose.yaml"])
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandFailed(
                f"{' '.join(args)} exited {done.returncode}\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-3000:]}"
            )
        return done

    def compose(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        files = [part for path in self.files for part in ("-f", str(path))]
        return self.run(
            *self.compose_command, "-p", self.project, *files, *args, timeout=timeout, check=check
        )

    def container(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return self.run(self.cli, *args, timeout=timeout, check=check).stdout

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers."""
        output = self.compose("ps", "-q", service, timeout=60).stdout
        return [line for line in output.split() if line]

    def inspect(self, container: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self.container("inspect", container))
        return found[0]

    def exec_python(self, container: str, code: str, timeout: float = 60) -> str:
        return self.container("exec", container, "python", "-c", code, timeout=timeout)

    def published(self, service: str, port: int) -> str:
        """host:port where the engine published the service's container port."""
        return self.compose("port", service, str(port), timeout=60).stdout.strip()

    def logs(self, *services: str) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", *services, check=False).stdout

    def image_size(self, image: str) -> int:
        return int(self.container("image", "inspect", "--format", "{{.Size}}", image).strip())


def wait_for(probe: Any, *, timeout: float, message: str, interval: float = 0.5) -> Any:
    """Call `probe` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = probe()
            if last:
                return last
        except (AssertionError, OSError, CommandFailed) as error:
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout}s; last: {last!r}")
        time.sleep(interval)
