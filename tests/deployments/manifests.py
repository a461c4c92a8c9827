"""The Kubernetes manifests as rendered objects, and what the code says they must agree with."""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import importlib
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import yaml  # type: ignore[import-untyped]

from meshkit.settings import CommonSettings, Settings, env_names

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = PROJECT_ROOT / "deployments" / "kubernetes"
DOCKERFILE = PROJECT_ROOT / "deployments" / "docker" / "Dockerfile"
SCHEMAS_DIR = KUBERNETES_DIR / "schemas"
# The kubectl these manifests are rendered and validated for.
KUBERNETES_VERSION = "1.32.0"

Manifest = dict[str, Any]

# Each workload's settings class; the migrate Job runs every service's migrations in turn.
SETTINGS_MODULES = {
    "gateway": ("gateway.settings", "GatewaySettings"),
    "user-service": ("user_service.settings", "UserSettings"),
    "product-service": ("product_service.settings", "ProductSettings"),
    "order-service": ("order_service.settings", "OrderSettings"),
    "payment-service": ("payment_service.settings", "PaymentSettings"),
    "notification-service": ("notification_service.settings", "NotificationSettings"),
}
GRPC_SERVICES = tuple(name for name in SETTINGS_MODULES if name != "gateway")
MIGRATE = "migrate"
WORKLOADS = (*SETTINGS_MODULES, MIGRATE)
# Packages whose Settings subclasses count as "the code" (tests define classes of their own).
CODE_PACKAGES = ("meshkit", "gateway", *(name.replace("-", "_") for name in GRPC_SERVICES))


def package_of(workload: str) -> str:
    """`order-service` -> `order_service`: the Python package, and the AMQP consumer name."""
    return workload.replace("-", "_")


def settings_class(workload: str) -> type[CommonSettings]:
    module, name = SETTINGS_MODULES[workload]
    found: type[CommonSettings] = getattr(importlib.import_module(module), name)
    return found


def _subclasses(cls: type[Settings]) -> Iterator[type[Settings]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@functools.cache
def env_names_read() -> frozenset[str]:
    """Every environment variable some settings class of the code reads."""
    for workload in SETTINGS_MODULES:
        settings_class(workload)
    return frozenset(
        name
        for cls in _subclasses(Settings)
        if cls.__module__.split(".")[0] in CODE_PACKAGES
        for field in dataclasses.fields(cls)  # type: ignore[arg-type]
        for name in env_names(cls, field.name)
    )


def field_default(cls: type[Settings], field: str) -> Any:
    """A settings field's default, as the class declares it."""
    found = {f.name: f for f in dataclasses.fields(cls)}[field]  # type: ignore[arg-type]
    return found.default


def project_version() -> str:
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


# ---- rendering --------------------------------------------------------------------------------


def kustomization_roots() -> list[Path]:
    """Every directory `kubectl kustomize` can build on its own: the base, the overlays, and the
    test combinations of an overlay with components (components cannot build alone)."""
    roots = [KUBERNETES_DIR / "base"]
    for parent in ("overlays", "tests"):
        roots += sorted(p.parent for p in (KUBERNETES_DIR / parent).glob("*/kustomization.yaml"))
    return roots


def components() -> list[Path]:
    return sorted(p.parent for p in (KUBERNETES_DIR / "components").glob("*/kustomization.yaml"))


def root_id(root: Path) -> str:
    return str(root.relative_to(KUBERNETES_DIR))


@functools.cache
def render(root: Path) -> tuple[Manifest, ...]:
    """The objects `kubectl kustomize root` prints; fails with kubectl's own message."""
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    if not Path(kubectl).is_file():
        raise AssertionError("kubectl is needed to render the manifests (`kubectl kustomize`)")
    done = subprocess.run(
        [kubectl, "kustomize", str(root)], capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {root_id(root)} failed:\n{done.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(objects: tuple[Manifest, ...], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def find(objects: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} named {name!r} in the rendering")


def find_optional(objects: tuple[Manifest, ...], kind: str, name: str) -> Manifest | None:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return matches[0] if matches else None


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def pod_templates(objects: tuple[Manifest, ...]) -> list[Manifest]:
    """The objects that carry a pod template."""
    return [obj for obj in objects if obj["kind"] in WORKLOAD_KINDS]


def mesh_workloads(objects: tuple[Manifest, ...]) -> dict[str, Manifest]:
    """The mesh's own Deployments and Job, by name: those running an ecommerce-mesh image."""
    return {
        obj["metadata"]["name"]: obj
        for obj in pod_templates(objects)
        if any(
            "ecommerce-mesh/" in c["image"] for c in obj["spec"]["template"]["spec"]["containers"]
        )
    }


def main_container(workload: Manifest) -> Manifest:
    """The container named after its workload."""
    name = workload["metadata"]["name"]
    containers = workload["spec"]["template"]["spec"]["containers"]
    matches = [c for c in containers if c["name"] == name]
    assert len(matches) == 1, f"{name}: one container named {name} expected"
    container: Manifest = matches[0]
    return container


def labels_match(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels only: the only kind these manifests use) selects."""
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


# ---- a container's environment ----------------------------------------------------------------


@dataclass(frozen=True)
class EnvValue:
    """A variable's value as a manifest gives it: literal, or a key of a Secret."""

    value: str | None = None
    secret: tuple[str, str] | None = None
    optional: bool = False


def container_env(container: Manifest, objects: tuple[Manifest, ...]) -> dict[str, EnvValue]:
    """Every variable the manifest sets: ConfigMaps by envFrom first, then `env`, which wins."""
    env: dict[str, EnvValue] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"unsupported envFrom {source}"
        config_map = find(objects, "ConfigMap", source["configMapRef"]["name"])
        env.update({key: EnvValue(value=v) for key, v in config_map.get("data", {}).items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = EnvValue(value=item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        env[item["name"]] = EnvValue(
            secret=(ref["name"], ref["key"]), optional=bool(ref.get("optional", False))
        )
    return env


def secret_data(objects: tuple[Manifest, ...], name: str) -> dict[str, str]:
    """A rendered Secret's values, decoded."""
    secret = find(objects, "Secret", name)
    decoded = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    return {**decoded, **secret.get("stringData", {})}


def literal_env(container: Manifest, objects: tuple[Manifest, ...]) -> dict[str, str]:
    """The variables with literal values (ConfigMap or `env`), the image's beneath them."""
    values = dict(image_env(container["image"]))
    values.update(
        {k: v.value for k, v in container_env(container, objects).items() if v.value is not None}
    )
    return values


# ---- what the image sets -----------------------------------------------------------------------


def _dockerfile_stages() -> dict[str, dict[str, str]]:
    """ENV of each build stage of the Dockerfile, by stage name."""
    if not DOCKERFILE.is_file():
        return {}
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stages: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "FROM":
            base = words[1]
            current = dict(stages.get(base, {}))
            if len(words) >= 4 and words[2].upper() == "AS":
                stages[words[3]] = current
        elif words[0] == "ENV" and current is not None:
            for word in words[1:]:
                key, equals, value = word.partition("=")
                if equals:
                    current[key] = value
    return stages


def image_env(image: str) -> dict[str, str]:
    """The variables the Dockerfile's stage for `image` sets (its name is the build target)."""
    target = image.rsplit("/", 1)[-1].split(":", 1)[0]
    return _dockerfile_stages().get(target, {})


# ---- validation ---------------------------------------------------------------------------------


def _closed(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation
    (kubectl's default) does: objects with declared properties allow no others."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


@functools.cache
def crd_schema(api_version: str, kind: str) -> Manifest | None:
    """The vendored openAPIV3Schema of a custom resource (schemas/README.md), or None."""
    if "/" not in api_version:
        return None
    group, version = api_version.split("/", 1)
    path = SCHEMAS_DIR / f"{group}_{kind.lower()}_{version}.json"
    if not path.is_file():
        return None
    schema: Manifest = _closed(json.loads(path.read_text()))
    return schema


def is_custom_resource(obj: Manifest) -> bool:
    group = obj["apiVersion"].split("/", 1)[0] if "/" in obj["apiVersion"] else ""
    return "." in group and not group.endswith(".k8s.io")


def validation_errors(obj: Manifest) -> list[str]:
    """Why the API server would refuse `obj`: strict schema validation of the Kubernetes
    version above for built-in kinds, the vendored CRD schemas for custom resources."""
    where = f"{obj['kind']}/{obj['metadata'].get('name')}"
    if is_custom_resource(obj):
        schema = crd_schema(obj["apiVersion"], obj["kind"])
        if schema is None:
            return [f"{where}: no schema for {obj['apiVersion']} {obj['kind']} in schemas/"]
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{where}: {'.'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(copy.deepcopy(obj))
        ]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{where}: {'.'.join(map(str, error.path))}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{where}: {error.message}"]
    return []


# ---- who calls whom, by the code ----------------------------------------------------------------


def grpc_calls_in_code() -> dict[str, frozenset[str]]:
    """Each workload's gRPC callees, read from the code: the gateway's UPSTREAMS, and in each
    service's package every `settings.<x>_service_addr` it dials and `link_user_service`."""
    from gateway.upstreams import UPSTREAMS

    calls = {"gateway": frozenset(name.replace("_", "-") for name in UPSTREAMS)}
    for workload in GRPC_SERVICES:
        package = PROJECT_ROOT / package_of(workload)
        source = "\n".join(path.read_text() for path in sorted(package.glob("*.py")))
        callees = set(re.findall(r"settings\.(\w+_service)_addr\b", source))
        if "link_user_service(" in source:
            callees.add("user_service")
        calls[workload] = frozenset(name.replace("_", "-") for name in callees)
    return calls
