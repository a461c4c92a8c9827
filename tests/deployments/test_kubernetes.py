"""Kubernetes manifests: every combination renders, validates, and agrees with the code."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from gateway.settings import GatewaySettings
from meshkit.messaging import CONSUMERS, Topology
from meshkit.rpc import LIVENESS
from meshkit.settings import (
    INSECURE_DEFAULT_PREFIX,
    CommonSettings,
    Environment,
    ServiceSettings,
    env_names,
    load_migration_settings,
    load_settings,
)
from tests.deployments.manifests import (
    GRPC_SERVICES,
    KUBERNETES_DIR,
    MIGRATE,
    WORKLOADS,
    EnvValue,
    Manifest,
    components,
    container_env,
    env_names_read,
    field_default,
    find,
    find_optional,
    grpc_calls_in_code,
    image_env,
    kustomization_roots,
    labels_match,
    literal_env,
    main_container,
    mesh_workloads,
    of_kind,
    package_of,
    pod_templates,
    project_version,
    render,
    root_id,
    secret_data,
    settings_class,
    validation_errors,
)
from user_service.keys import KeyRing
from user_service.settings import CALLING_SERVICES

ROOTS = kustomization_roots()
BASE = KUBERNETES_DIR / "base"
DEV = KUBERNETES_DIR / "overlays" / "dev"
PRODUCTION = KUBERNETES_DIR / "overlays" / "production"
# Every root built on an overlay (the overlay itself, or a test combination of it).
DEPLOYABLE = [root for root in ROOTS if root != BASE]
DEV_ROOTS = [root for root in DEPLOYABLE if "dev" in root.name]
PRODUCTION_ROOTS = [root for root in DEPLOYABLE if "production" in root.name]
HPA_WORKLOADS = {"gateway", "product-service", "user-service", "order-service"}
KEDA_WORKLOADS = {"payment-service", "notification-service"}
# The admin may come from a command instead (README): the only Secret keys a pod starts without.
OPTIONAL_SECRET_VARIABLES = {"BOOTSTRAP_ADMIN_EMAIL", "BOOTSTRAP_ADMIN_PASSWORD"}
# What each replica may open: DB_POOL_SIZE, as many again in bursts, half again for hot reads.
CONNECTIONS_PER_POOL_SLOT = 2.5
# Left for superusers, replication and the operator.
RESERVED_CONNECTIONS = 10
# Read from the environment by OpenTelemetry (meshkit.telemetry and the SDK) under their
# standard names, not by a settings class; the observability component sets them.
OPENTELEMETRY_VARIABLES = frozenset({"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"})


def ids(roots: list[Path]) -> list[str]:
    return [root_id(root) for root in roots]


def with_component(name: str) -> list[Path]:
    """The roots that add a component, read from their kustomization.yaml (rendering at
    collection time would turn one broken root into an error of the whole module)."""
    component = KUBERNETES_DIR / "components" / name
    return [
        root
        for root in ROOTS
        if component
        in {
            (root / path).resolve()
            for path in yaml.safe_load((root / "kustomization.yaml").read_text()).get(
                "components", []
            )
        }
    ]


def spec_of(obj: Manifest) -> Manifest:
    spec: Manifest = obj["spec"]["template"]["spec"]
    return spec


def pod_labels(obj: Manifest) -> dict[str, str]:
    labels: dict[str, str] = obj["spec"]["template"]["metadata"]["labels"]
    return labels


def ports_by_name(container: Manifest) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def resolve_port(port: int | str, container: Manifest) -> int:
    return ports_by_name(container)[port] if isinstance(port, str) else port


# ---- every combination renders and validates -----------------------------------------------------


def test_every_component_is_rendered_with_every_overlay() -> None:
    """A component nobody renders would rot: each overlay has a test root with each one."""
    combos = set()
    for root in ROOTS:
        kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
        for resource in kustomization.get("resources", []):
            overlay = (root / resource).resolve()
            for component in kustomization.get("components", []):
                combos.add((overlay, (root / component).resolve()))
    for overlay in (DEV, PRODUCTION):
        for component in components():
            assert (overlay, component) in combos, f"no test root renders {overlay} + {component}"


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_renders_one_object_per_kind_and_name(root: Path) -> None:
    objects = render(root)
    keys = [(obj["kind"], obj["metadata"]["name"]) for obj in objects]
    assert keys, "nothing rendered"
    assert len(keys) == len(set(keys)), f"duplicates: {sorted(keys)}"
    assert set(mesh_workloads(objects)) == set(WORKLOADS)


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_every_object_passes_strict_schema_validation(root: Path) -> None:
    errors = [error for obj in render(root) for error in validation_errors(obj)]
    assert not errors, "\n".join(errors)


def _mutated(obj: Manifest, path: list[str | int], value: Any) -> Manifest:
    changed = copy.deepcopy(obj)
    node: Any = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


def test_validation_refuses_what_the_api_server_would() -> None:
    """The validators themselves: an unknown field or a wrong type is an error, CRs included."""
    objects = render(KUBERNETES_DIR / "tests" / "production-with-all-components")
    deployment = find(objects, "Deployment", "order-service")
    scaled = find(objects, "ScaledObject", "payment-service")
    auth = find(objects, "TriggerAuthentication", "rabbitmq")
    database = find(objects, "Database", "products")
    rabbitmq = find(objects, "RabbitmqCluster", "rabbitmq")
    cluster = find(objects, "Cluster", "ecommerce-db")
    refused = [
        _mutated(deployment, ["spec", "template", "spec", "containers", 0, "readinesProbe"], {}),
        _mutated(deployment, ["spec", "template", "spec", "terminationGracePeriodSeconds"], "30"),
        _mutated(scaled, ["spec", "minReplicas"], 2),
        _mutated(scaled, ["spec", "minReplicaCount"], "two"),
        _mutated(auth, ["spec", "secretTargetRef", 0], {"parameter": "host", "name": "x"}),
        _mutated(database, ["spec", "extensions", 0, "nmae"], "pg_trgm"),
        _mutated(rabbitmq, ["spec", "replicas"], "3"),
        _mutated(cluster, ["spec", "managed", "roles", 0, "passwordSecret"], {}),
    ]
    for obj in refused:
        assert validation_errors(obj), f"accepted: {obj['kind']} {obj['spec']}"
    assert not validation_errors(deployment) and not validation_errors(scaled)


@pytest.mark.parametrize("root", DEPLOYABLE, ids=ids(DEPLOYABLE))
def test_everything_lands_in_the_overlays_namespace(root: Path) -> None:
    """Components join after an overlay has set its namespace: a root must set it again."""
    objects = render(root)
    namespaces = of_kind(objects, "Namespace")
    assert len(namespaces) == 1
    expected = namespaces[0]["metadata"]["name"]
    misplaced = [
        f"{obj['kind']}/{obj['metadata']['name']}: {obj['metadata'].get('namespace')}"
        for obj in objects
        if obj["kind"] != "Namespace" and obj["metadata"].get("namespace") != expected
    ]
    assert not misplaced, misplaced
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# ---- images, ports, probes ------------------------------------------------------------------------


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_images_are_the_build_targets_at_the_project_version(root: Path) -> None:
    registry = r"(?:[a-z0-9.-]+(?::\d+)?/)?" if root in PRODUCTION_ROOTS else ""
    for name, workload in mesh_workloads(render(root)).items():
        image = main_container(workload)["image"]
        expected = rf"{registry}ecommerce-mesh/{name}:{re.escape(project_version())}"
        assert re.fullmatch(expected, image), f"{name}: {image}"
        assert main_container(workload)["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_grpc_ports_probes_and_services_agree_with_the_code(root: Path) -> None:
    objects = render(root)
    workloads = mesh_workloads(objects)
    for name in GRPC_SERVICES:
        container = main_container(workloads[name])
        env = literal_env(container, objects)
        port = field_default(settings_class(name), "grpc_port")
        # The image sets GRPC_PORT for its target; the manifest leaves it to the image.
        assert int(env.get("GRPC_PORT", port)) == port, f"{name}: image port {env['GRPC_PORT']}"
        ports = ports_by_name(container)
        assert ports["grpc"] == port, name
        # Readiness follows the database and broker; starting and living are the process's
        # own, so a dependency's outage never restarts a pod.
        assert container["readinessProbe"]["grpc"] == {"port": port}, name
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port, "service": LIVENESS}, (
                f"{name} {probe}"
            )
        metrics = int(env["METRICS_PORT"])
        annotations = workloads[name]["spec"]["template"]["metadata"]["annotations"]
        assert ports["metrics"] == metrics == int(annotations["prometheus.io/port"]), name

        service = find(objects, "Service", name)
        assert service["spec"]["clusterIP"] == "None", f"{name}: gRPC Services are headless"
        assert labels_match(
            {"matchLabels": service["spec"]["selector"]}, pod_labels(workloads[name])
        )
        grpc_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
        assert grpc_port["port"] == resolve_port(grpc_port["targetPort"], container) == port
        for caller in workloads.values():
            caller_env = literal_env(main_container(caller), objects)
            address = caller_env.get(f"{package_of(name).upper()}_ADDR")
            assert address in (None, f"dns:///{name}:{port}"), f"{name}: {address}"
        assert (
            literal_env(main_container(workloads["gateway"]), objects)[
                f"{package_of(name).upper()}_ADDR"
            ]
            == f"dns:///{name}:{port}"
        )


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_gateway_port_probes_service_and_ingress_agree(root: Path) -> None:
    objects = render(root)
    workload = mesh_workloads(objects)["gateway"]
    container = main_container(workload)
    env = literal_env(container, objects)
    port = int(env["GATEWAY_PORT"])
    assert port == ports_by_name(container)["http"] == field_default(GatewaySettings, "port")
    # Every probe is the gateway's own: readiness on /readyz (every upstream SERVING) would
    # take all gateways out of the Ingress when any one service is down.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
        assert resolve_port(container[probe]["httpGet"]["port"], container) == port
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == port

    service = find(objects, "Service", "gateway")
    assert service["spec"].get("clusterIP") != "None" and service["spec"]["type"] == "ClusterIP"
    (http,) = service["spec"]["ports"]
    assert resolve_port(http["targetPort"], container) == port
    backend = find(objects, "Ingress", "gateway")["spec"]["rules"][0]["http"]["paths"][0]
    assert backend["backend"]["service"] == {"name": "gateway", "port": {"name": http["name"]}}


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_shutdown_finishes_within_the_grace_period(root: Path) -> None:
    objects = render(root)
    config = of_kind(objects, "ConfigMap")
    assert any("SHUTDOWN_DEADLINE_SECONDS" in c.get("data", {}) for c in config)
    for name, workload in mesh_workloads(objects).items():
        container = main_container(workload)
        env = literal_env(container, objects)
        deadline = float(env["SHUTDOWN_DEADLINE_SECONDS"])
        assert deadline > float(env["SHUTDOWN_GRACE_SECONDS"]), name
        pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert spec_of(workload)["terminationGracePeriodSeconds"] > pause + deadline, name


# ---- security -----------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_every_pod_meets_the_restricted_standard(root: Path) -> None:
    """Backing services included: the overlays' namespaces enforce it."""
    objects = render(root)
    for workload in pod_templates(objects):
        name = workload["metadata"]["name"]
        spec = spec_of(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        # Service links would set GATEWAY_PORT=tcp://... in every pod beside the gateway.
        assert spec["enableServiceLinks"] is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert not context.get("privileged", False), name
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, name


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_mesh_pods_run_as_the_image_user_and_write_only_to_volumes(root: Path) -> None:
    objects = render(root)
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(objects, "ServiceAccount")}
    for name, workload in mesh_workloads(objects).items():
        spec = spec_of(workload)
        context = spec["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (10001,) * 3
        assert accounts[spec["serviceAccountName"]]["automountServiceAccountToken"] is False
        container = main_container(workload)
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        # Where the image says its processes write: its root filesystem is read-only.
        data_dir = image_env(container["image"])["DATA_DIR"]
        for path in (data_dir, "/tmp"):
            assert "emptyDir" in mounts[path], f"{name}: nothing writable at {path}"


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_user_service_replicas_share_one_key_set(root: Path) -> None:
    """A token one replica signs must verify against the JWKS any other serves."""
    objects = render(root)
    workload = mesh_workloads(objects)["user-service"]
    container = main_container(workload)
    keys_dir = literal_env(container, objects)["JWT_KEYS_DIR"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == keys_dir]
    (volume,) = [v for v in spec_of(workload)["volumes"] if v["name"] == mount["name"]]
    assert mount["readOnly"] is True
    assert volume["secret"]["secretName"].startswith("user-service-jwt-keys")
    assert volume["secret"]["optional"] is False


# ---- environment ----------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_every_variable_set_is_one_the_code_reads(root: Path) -> None:
    objects = render(root)
    for name, workload in mesh_workloads(objects).items():
        unread = set(container_env(main_container(workload), objects)) - env_names_read()
        unread -= OPENTELEMETRY_VARIABLES
        assert not unread, f"{name} sets variables no settings class reads: {sorted(unread)}"


def _names_read_by(cls: type[CommonSettings]) -> set[str]:
    return {name for f in dataclasses.fields(cls) for name in env_names(cls, f.name)}


def _field_type(cls: type[CommonSettings], variable: str) -> Any:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if variable in env_names(cls, field.name):
            return hints[field.name]
    raise KeyError(variable)


def _secret_stand_in(cls: type[CommonSettings], variable: str) -> str:
    """A value of the right shape for a Secret production provides (none is rendered there)."""
    kind = _field_type(cls, variable)
    if dict in (typing.get_origin(kind), kind):
        return json.dumps({client: f"from-a-secret-{client}" for client in CALLING_SERVICES})
    return f"from-a-secret-{variable.lower()}"


def _settings_env(
    cls: type[CommonSettings], container: Manifest, objects: tuple[Manifest, ...]
) -> dict[str, str]:
    """What `cls` reads in that container: the image's variables, then the manifest's, with
    Secrets resolved from the rendering (dev) or stood in for (production)."""
    known = _names_read_by(cls)
    values = {k: v for k, v in literal_env(container, objects).items() if k in known}
    for variable, source in container_env(container, objects).items():
        if source.secret is None or variable not in known:
            continue
        name, key = source.secret
        if find_optional(objects, "Secret", name) is None:
            values[variable] = _secret_stand_in(cls, variable)
        elif key in secret_data(objects, name) or not source.optional:
            values[variable] = secret_data(objects, name)[key]
    return values


def _settings_cases() -> list[Any]:
    cases = []
    for overlay in (DEV, PRODUCTION):
        for workload in WORKLOADS:
            cases.append(pytest.param(overlay, workload, id=f"{overlay.name}-{workload}"))
    return cases


@pytest.mark.parametrize(("overlay", "workload"), _settings_cases())
def test_each_container_environment_loads_with_its_settings(
    overlay: Path, workload: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings the process will build: known names, valid values, no development
    secret outside development, and the migrate Job's own URLs for each service."""
    for name in env_names_read():
        monkeypatch.delenv(name, raising=False)
    objects = render(overlay)
    container = main_container(mesh_workloads(objects)[workload])
    expected_env = Environment.DEVELOPMENT if overlay == DEV else Environment.PRODUCTION
    classes = (
        [settings_class(name) for name in GRPC_SERVICES]
        if workload == MIGRATE
        else [settings_class(workload)]
    )
    for cls in classes:
        # The migrate Job is given the databases only: migrating needs no serving secret.
        load = load_migration_settings if workload == MIGRATE else load_settings
        settings = load(cls, env_file=None, **_settings_env(cls, container, objects))
        assert settings.app_env is expected_env
        if isinstance(settings, ServiceSettings):
            assert settings.migrate_on_start is False
            assert (
                settings.database_url.startswith("postgresql+asyncpg://") or overlay == PRODUCTION
            )


# ---- secrets --------------------------------------------------------------------------------------


def _secret_refs(objects: tuple[Manifest, ...]) -> list[tuple[str, str | None, bool, str]]:
    """Every (Secret, key or None for a whole-Secret volume, optional, variable or volume)."""
    refs: list[tuple[str, str | None, bool, str]] = []
    for workload in pod_templates(objects):
        spec = spec_of(workload)
        for container in spec["containers"]:
            for variable, source in container_env(container, objects).items():
                if source.secret is not None:
                    refs.append((*source.secret, source.optional, variable))
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                secret = volume["secret"]
                refs.append(
                    (secret["secretName"], None, secret.get("optional", False), volume["name"])
                )
    return refs


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_secrets_are_required_but_the_bootstrap_admin(root: Path) -> None:
    for name, key, optional, user in _secret_refs(render(root)):
        assert optional is (user in OPTIONAL_SECRET_VARIABLES), f"{user}: {name}/{key}"


@pytest.mark.parametrize("root", PRODUCTION_ROOTS, ids=ids(PRODUCTION_ROOTS))
def test_production_generates_no_secret_and_documents_each_it_needs(root: Path) -> None:
    objects = render(root)
    assert not of_kind(objects, "Secret")
    readme = (PRODUCTION / "README.md").read_text()
    needed = {(name, key) for name, key, _, _ in _secret_refs(objects)}
    for cluster in of_kind(objects, "Cluster"):
        needed |= {(r["passwordSecret"]["name"], None) for r in cluster["spec"]["managed"]["roles"]}
    for ingress in of_kind(objects, "Ingress"):
        needed |= {(tls["secretName"], None) for tls in ingress["spec"].get("tls", [])}
    for name, key in sorted(needed, key=str):
        assert f"`{name}`" in readme, f"README.md does not list Secret {name}"
        assert key is None or f"`{key}`" in readme, f"README.md does not list {name}/{key}"


@pytest.mark.parametrize("root", DEV_ROOTS, ids=ids(DEV_ROOTS))
def test_dev_generates_every_secret_key_it_references(root: Path) -> None:
    objects = render(root)
    for name, key, _, user in _secret_refs(objects):
        data = secret_data(objects, name)
        assert key is None or key in data, f"{user}: {name} has no key {key}"


def _dev_secret(objects: tuple[Manifest, ...], workload: str, key: str) -> str:
    env = container_env(main_container(mesh_workloads(objects)[workload]), objects)
    source = next(v for v in env.values() if v.secret and v.secret[1] == key)
    assert source.secret is not None
    return secret_data(objects, source.secret[0])[key]


def _env_secret(objects: tuple[Manifest, ...], workload: str, variable: str) -> str:
    source: EnvValue = container_env(main_container(mesh_workloads(objects)[workload]), objects)[
        variable
    ]
    assert source.secret is not None, f"{workload}: {variable} should come from a Secret"
    return secret_data(objects, source.secret[0])[source.secret[1]]


def test_dev_secrets_agree_with_each_other_and_the_backing_services(tmp_path: Path) -> None:
    objects = render(DEV)
    # The user service accepts exactly the secret each calling service presents.
    clients = json.loads(_env_secret(objects, "user-service", "SERVICE_CLIENTS"))
    presented = {
        package_of(name): _env_secret(objects, name, "SERVICE_CLIENT_SECRET")
        for name in GRPC_SERVICES
        if package_of(name) in CALLING_SERVICES
    }
    assert clients == presented and set(clients) == set(CALLING_SERVICES)

    # One database each, on the dev server, with its password, all created by the init script.
    postgres_password = secret_data(objects, _secret_name(objects, "postgres-credentials"))[
        "password"
    ]
    script = "\n".join(find_configmap_data(objects, "postgres-init").values())
    created = set(re.findall(r"CREATE DATABASE (\w+);", script))
    databases = []
    for name in GRPC_SERVICES:
        url = urlsplit(_env_secret(objects, name, "DATABASE_URL"))
        assert (url.scheme, url.hostname, url.port) == ("postgresql+asyncpg", "postgres", 5432)
        assert url.password == postgres_password
        databases.append(url.path.lstrip("/"))
    assert sorted(databases) == sorted(created) and len(created) == len(GRPC_SERVICES)
    find(objects, "Service", "postgres")

    rabbit = secret_data(objects, _secret_name(objects, "rabbitmq-credentials"))
    for name in ("order-service", "payment-service", "notification-service"):
        url = urlsplit(_env_secret(objects, name, "AMQP_URL"))
        assert (url.username, url.password) == (rabbit["username"], rabbit["password"])
        find(objects, "Service", url.hostname or "")
    for name in ("gateway", "product-service", "order-service"):
        find(objects, "Service", urlsplit(_env_secret(objects, name, "REDIS_URL")).hostname or "")
    env = literal_env(main_container(mesh_workloads(objects)["notification-service"]), objects)
    smtp = find(objects, "Service", env["SMTP_HOST"])
    assert int(env["SMTP_PORT"]) in {p["port"] for p in smtp["spec"]["ports"]}

    # Refused by the code anywhere but APP_ENV=development.
    for name in GRPC_SERVICES:
        for key in ("service-client-secret", "page-token-secret"):
            assert _dev_secret(objects, name, key).startswith(INSECURE_DEFAULT_PREFIX)

    keys = secret_data(objects, _secret_name(objects, "user-service-jwt-keys"))
    for file, pem in keys.items():
        (tmp_path / file).write_text(pem)
    assert KeyRing.load(tmp_path).active.kid == max(Path(f).stem for f in keys)


def _secret_name(objects: tuple[Manifest, ...], prefix: str) -> str:
    """A generated Secret's name, hash suffix included."""
    (name,) = [
        str(s["metadata"]["name"])
        for s in of_kind(objects, "Secret")
        if re.fullmatch(rf"{prefix}(-[a-z0-9]+)?", s["metadata"]["name"])
    ]
    return name


def find_configmap_data(objects: tuple[Manifest, ...], prefix: str) -> dict[str, str]:
    (data,) = [
        c.get("data", {})
        for c in of_kind(objects, "ConfigMap")
        if re.fullmatch(rf"{prefix}(-[a-z0-9]+)?", c["metadata"]["name"])
    ]
    return dict(data)


# ---- scaling and disruption -----------------------------------------------------------------------


def _scalers(objects: tuple[Manifest, ...]) -> dict[str, tuple[int, int, str]]:
    """Each autoscaled Deployment's (min, max, scaler kind)."""
    scalers: dict[str, tuple[int, int, str]] = {}
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] not in scalers, f"{target['name']}: two autoscalers"
        scalers[target["name"]] = (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"], "HPA")
    for scaled in of_kind(objects, "ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment"
        assert target["name"] not in scalers, f"{target['name']}: an HPA and a ScaledObject"
        spec = scaled["spec"]
        scalers[target["name"]] = (spec["minReplicaCount"], spec["maxReplicaCount"], "KEDA")
    return scalers


def replica_range(objects: tuple[Manifest, ...], workload: Manifest) -> tuple[int, int]:
    scaled = (
        _scalers(objects).get(workload["metadata"]["name"])
        if workload["kind"] == "Deployment"
        else None
    )
    if scaled:
        return scaled[0], scaled[1]
    count = int(workload["spec"].get("replicas", 1)) if workload["kind"] != "Job" else 1
    return count, count


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_autoscalers_target_existing_deployments_which_leave_them_the_count(root: Path) -> None:
    objects = render(root)
    scalers = _scalers(objects)
    for name, (low, high, kind) in scalers.items():
        deployment = find(objects, "Deployment", name)
        # A count in the Deployment would reset the autoscaler's on every apply.
        assert "replicas" not in deployment["spec"], f"{name} is scaled by {kind}"
        assert 2 <= low <= high, name
    assert {n for n, s in scalers.items() if s[2] == "HPA"} == HPA_WORKLOADS
    keda = {n for n, s in scalers.items() if s[2] == "KEDA"}
    assert keda in (set(), KEDA_WORKLOADS)


@pytest.mark.parametrize("root", ROOTS, ids=ids(ROOTS))
def test_every_replicated_workload_has_a_disruption_budget_that_selects_it(root: Path) -> None:
    objects = render(root)
    workloads = [w for w in pod_templates(objects) if w["kind"] != "Job"]
    budgets = of_kind(objects, "PodDisruptionBudget")
    for budget in budgets:
        selected = [w for w in workloads if labels_match(budget["spec"]["selector"], pod_labels(w))]
        assert len(selected) == 1, f"PDB {budget['metadata']['name']} selects {len(selected)}"
        low, _ = replica_range(objects, selected[0])
        # It must let one pod go, or no node drain ever finishes.
        allowed = budget["spec"].get("maxUnavailable", low - budget["spec"].get("minAvailable", 0))
        assert allowed >= 1, budget["metadata"]["name"]
    for workload in workloads:
        low, _ = replica_range(objects, workload)
        covered = any(labels_match(b["spec"]["selector"], pod_labels(workload)) for b in budgets)
        assert covered or low < 2, f"{workload['metadata']['name']}: {low} replicas, no PDB"


def _max_connections(objects: tuple[Manifest, ...]) -> int:
    for cluster in of_kind(objects, "Cluster"):
        return int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    args = main_container(find(objects, "StatefulSet", "postgres"))["args"]
    (setting,) = [arg for arg in args if arg.startswith("max_connections=")]
    return int(setting.split("=", 1)[1])


@pytest.mark.parametrize("root", DEPLOYABLE, ids=ids(DEPLOYABLE))
def test_postgresql_has_room_for_every_pool_at_the_autoscalers_maximums(root: Path) -> None:
    objects = render(root)
    workloads = mesh_workloads(objects)
    needed = 0.0
    for name in GRPC_SERVICES:
        pool = int(literal_env(main_container(workloads[name]), objects)["DB_POOL_SIZE"])
        needed += replica_range(objects, workloads[name])[1] * pool * CONNECTIONS_PER_POOL_SLOT
    needed += 1  # the migrate Job
    assert needed <= _max_connections(objects) - RESERVED_CONNECTIONS


@pytest.mark.parametrize("root", with_component("keda"), ids=ids(with_component("keda")))
def test_keda_scales_each_consumer_on_its_own_queue_with_its_credentials(root: Path) -> None:
    objects = render(root)
    workloads = mesh_workloads(objects)
    for scaled in of_kind(objects, "ScaledObject"):
        name = scaled["spec"]["scaleTargetRef"]["name"]
        container = main_container(workloads[name])
        namespace = literal_env(container, objects).get("AMQP_NAMESPACE", "")
        (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "rabbitmq"]
        assert package_of(name) in CONSUMERS
        assert trigger["metadata"]["queueName"] == Topology(namespace).queue(package_of(name))
        assert trigger["metadata"]["mode"] == "QueueLength"
        auth = find(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        (host,) = [r for r in auth["spec"]["secretTargetRef"] if r["parameter"] == "host"]
        amqp = container_env(container, objects)["AMQP_URL"].secret
        assert amqp == (host["name"], host["key"]), f"{name}: KEDA reads another broker URL"
        if of_kind(objects, "Secret"):
            assert host["key"] in secret_data(objects, host["name"])


# ---- network policies -----------------------------------------------------------------------------


def _peer_selects(peer: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a policy peer admits a pod of this namespace with `labels`."""
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        # {} is every namespace, this one included.
        return peer["namespaceSelector"] == {} and labels_match(
            {"matchLabels": peer.get("podSelector", {}).get("matchLabels", {})}, labels
        )
    return labels_match(peer["podSelector"], labels)


def _rule_allows(
    rule: Mapping[str, Any],
    peers_key: str,
    labels: Mapping[str, str] | None,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether a rule lets through `port` to or from a pod with `labels` (None: any address)."""
    ports = rule.get("ports")
    if ports is not None and not any(
        p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports
    ):
        return False
    peers = rule.get(peers_key)
    if not peers:
        return True
    return labels is not None and any(_peer_selects(peer, labels) for peer in peers)


def _allows(
    objects: tuple[Manifest, ...],
    direction: str,
    pod: Mapping[str, str],
    other: Mapping[str, str] | None,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether the policies selecting `pod` allow traffic with `other` in `direction`."""
    key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return any(
        _rule_allows(rule, peers, other, port, protocol)
        for policy in of_kind(objects, "NetworkPolicy")
        if labels_match(policy["spec"]["podSelector"], pod)
        and direction in policy["spec"]["policyTypes"]
        for rule in policy["spec"].get(key, [])
    )


NP_ROOTS = with_component("network-policies")


@pytest.mark.parametrize("root", NP_ROOTS, ids=ids(NP_ROOTS))
def test_network_policies_deny_by_default_and_allow_exactly_the_calls_in_the_code(
    root: Path,
) -> None:
    objects = render(root)
    workloads = mesh_workloads(objects)
    denying = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    for name, workload in workloads.items():
        assert any(labels_match(p["spec"]["podSelector"], pod_labels(workload)) for p in denying), (
            name
        )
    calls = grpc_calls_in_code()
    for caller in (*GRPC_SERVICES, "gateway"):
        for callee in GRPC_SERVICES:
            port = field_default(settings_class(callee), "grpc_port")
            source, target = pod_labels(workloads[caller]), pod_labels(workloads[callee])
            allowed = _allows(objects, "Egress", source, target, port) and _allows(
                objects, "Ingress", target, source, port
            )
            assert allowed == (callee in calls[caller]), f"{caller} -> {callee}:{port}"
    # Nobody reaches the migrate Job; everybody reaches the gateway through the Ingress.
    assert not _allows(objects, "Ingress", pod_labels(workloads[MIGRATE]), None, 8000)
    assert _allows(objects, "Ingress", pod_labels(workloads["gateway"]), None, 8000)


# Ports each backing dependency may use beyond its main one (TLS, the other SMTP submissions).
DEPENDENCY_PORTS = {
    "database": ({5432}, set()),
    "broker": ({5672}, {5671}),
    "redis": ({6379}, set()),
    "smtp": (set(), {587, 465, 1025}),
    "dns": ({53}, set()),
    "collector": (set(), {4317, 4318}),
}


def _open_egress_ports(objects: tuple[Manifest, ...], labels: Mapping[str, str]) -> set[int]:
    """Ports the policies selecting a pod open to any address (rules without `to`)."""
    opened: set[int] = set()
    for policy in of_kind(objects, "NetworkPolicy"):
        if not labels_match(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("egress", []):
            if rule.get("to"):
                continue
            assert rule.get("ports"), f"{policy['metadata']['name']}: egress to anything"
            opened |= {int(port["port"]) for port in rule["ports"]}
    return opened


@pytest.mark.parametrize("root", NP_ROOTS, ids=ids(NP_ROOTS))
def test_network_policies_open_only_the_dependencies_each_workload_uses(root: Path) -> None:
    """Egress beyond the mesh, by port: what the workload's settings point at, and no more."""
    objects = render(root)
    for name, workload in mesh_workloads(objects).items():
        container = main_container(workload)
        env = container_env(container, objects)
        uses = {"dns"} | ({"collector"} if name != MIGRATE else set())
        if any(variable.endswith("DATABASE_URL") for variable in env):
            uses.add("database")
        if "AMQP_URL" in env:
            uses.add("broker")
        if "REDIS_URL" in env:
            uses.add("redis")
        required: set[int] = set()
        permitted: set[int] = set()
        for dependency in uses:
            main, extra = DEPENDENCY_PORTS[dependency]
            required |= main
            permitted |= main | extra
        # Every container gets the SMTP settings from the ConfigMap; only one reads them.
        if name != MIGRATE and "SMTP_HOST" in _names_read_by(settings_class(name)):
            required.add(int(literal_env(container, objects)["SMTP_PORT"]))
            permitted |= DEPENDENCY_PORTS["smtp"][1] | required
        labels = pod_labels(workload)
        opened = _open_egress_ports(objects, labels)
        assert required <= opened, f"{name}: closed {sorted(required - opened)}"
        assert opened <= permitted, f"{name}: needlessly open {sorted(opened - permitted)}"
        assert _allows(objects, "Egress", labels, None, 53, "UDP"), f"{name}: no DNS over UDP"
