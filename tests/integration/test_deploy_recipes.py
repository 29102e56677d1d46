"""deploy/: the recipes beyond one machine, checked without a cluster, an image build or AWS.

Every YAML file parses and every Kubernetes object in it is well-formed; the receiver's probes
hit /healthz on the port its Service targets; every container runs as its image's non-root user;
secrets are only referred to. The UI is reached only through oauth2-proxy (GitHub organisation and
team) in front of the chart's webserver and of its read-only webserver; no recipe starts the
webserver beyond loopback without one. The instance configs load through Dagster on this machine's
PostgreSQL: the one the Helm chart renders from deploy/kubernetes/values.yaml, and
deploy/ecs/dagster.yaml with its EcsRunLauncher built. The Containerfile installs with
scripts/install.sh, the script `make env` runs.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VALUES = DEPLOY / "kubernetes" / "values.yaml"
UI_AUTH = DEPLOY / "kubernetes" / "ui-auth.yaml"
ECS_INSTANCE = DEPLOY / "ecs" / "dagster.yaml"
CONTAINERFILE = DEPLOY / "Containerfile"
# The repository's run concurrency (dagster.yaml), which every deployment keeps.
PARTITION_LIMIT = {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
# Variables that hold a secret: only ever set from a Secret (Kubernetes) or Secrets Manager (ECS).
# (A name ending in _ARN holds where a secret is, not the secret.)
SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSWORD|PRIVATE_KEY|DATABASE_URL|AWS_ACCESS_KEY")


def holds_secret(name: str) -> bool:
    return bool(SECRET_NAMES.search(name)) and not name.endswith("_ARN")


def documents(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kubernetes_objects() -> list[dict]:
    """Every object of the plain manifests (values.yaml is the chart's input, not a manifest)."""
    return [doc for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")) if path != VALUES for doc in documents(path)]


def find(kind: str, name: str) -> dict:
    [found] = [o for o in kubernetes_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def pinned(package: str) -> str:
    """The version pyproject.toml pins a dependency to."""
    [version] = re.findall(rf'"{re.escape(package)}==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    return version


def workspace_module() -> str:
    [location] = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    return location["python_module"]["module_name"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not (line.strip() or current):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        logical.append(current)
        current = ""
    assert not current, "a continuation runs off the end of the file"
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text.strip() else "") for text in logical]


# --- every file parses -----------------------------------------------------------------------


def test_every_yaml_file_under_deploy_parses():
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert {VALUES, ECS_INSTANCE, DEPLOY / "kubernetes" / "receiver.yaml", UI_AUTH} <= set(files)
    for path in files:
        assert documents(path), f"{path} holds no document"


def test_every_kubernetes_object_names_its_api_kind_and_name():
    objects = kubernetes_objects()
    assert {o.get("kind") for o in objects} >= {"Deployment", "Service", "ServiceAccount", "Ingress", "NetworkPolicy"}
    for obj in objects:
        assert isinstance(obj.get("apiVersion"), str) and obj["apiVersion"], obj
        assert isinstance(obj.get("kind"), str) and obj["kind"], obj
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj.get("metadata", {}).get("name", "")), obj


# --- the webhook receiver --------------------------------------------------------------------


def test_receiver_probes_hit_healthz_on_the_port_the_service_targets():
    deployment = find("Deployment", "manager-pipeline-receiver")
    service = find("Service", "manager-pipeline-receiver")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    [container] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    def resolve(port):
        return ports[port] if isinstance(port, str) else port

    [service_port] = service["spec"]["ports"]
    target = resolve(service_port["targetPort"])
    assert target in ports.values()
    argv = container["command"] + container.get("args", [])
    assert argv[:2] == ["manager-pipeline", "serve-webhooks"]
    assert int(argv[argv.index("--port") + 1]) == target
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/healthz", probe
        assert resolve(check["port"]) == target, probe


def test_receiver_takes_its_secrets_from_the_release_secrets():
    container = find("Deployment", "manager-pipeline-receiver")["spec"]["template"]["spec"]["containers"][0]
    from_secrets = {source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source}
    [deployment] = yaml.safe_load(VALUES.read_text())["dagster-user-deployments"]["deployments"]
    # The same Secret as the code location and its runs (MANAGER_DATABASE_URL, GitHub credentials).
    assert {secret["name"] for secret in deployment["envSecrets"]} <= from_secrets
    assert "manager-pipeline-webhook" in from_secrets
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["MANAGER_CONFIG"]["value"] == deployment_env(deployment)["MANAGER_CONFIG"]
    # The image: the code location's, so both read the same manager.yaml.
    image = deployment["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"


def deployment_env(deployment: dict) -> dict[str, str]:
    return {variable["name"]: variable.get("value") for variable in deployment["env"]}


def test_secrets_are_only_referred_to():
    """No variable that holds a secret has a value written in deploy/: Secrets, IRSA, ECS secrets."""
    values = yaml.safe_load(VALUES.read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    env_lists = [deployment["env"]] + [
        container.get("env", [])
        for obj in kubernetes_objects()
        if obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
    ]
    for env in env_lists:
        for variable in env:
            assert not (holds_secret(variable["name"]) and "value" in variable), variable["name"]
    assert not any(holds_secret(name) for name in deployment_env(deployment))
    # AWS through the service account's role (IRSA), not keys.
    annotations = values["dagster-user-deployments"]["serviceAccount"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    ecs = yaml.safe_load(ECS_INSTANCE.read_text())["run_launcher"]["config"]
    assert not any(holds_secret(name) for name in ecs["env_vars"])
    assert all(set(secret["valueFrom"]) == {"env"} for secret in ecs["secrets"])


# --- non-root everywhere ---------------------------------------------------------------------


def manager_image() -> tuple[str, str]:
    """(repository, tag) of the manager's image: the code location's (values.yaml)."""
    [deployment] = yaml.safe_load(VALUES.read_text())["dagster-user-deployments"]["deployments"]
    return deployment["image"]["repository"], deployment["image"]["tag"]


def image_user() -> int:
    [user] = [args for instruction, args in instructions(CONTAINERFILE) if instruction == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit(), "USER by number, so Kubernetes' runAsNonRoot can check it"
    return int(uid)


# The user of each other image the manifests run, by number (oauth2-proxy's: distroless `nonroot`).
OTHER_IMAGE_USERS = {"quay.io/oauth2-proxy/oauth2-proxy": 65532}


def assert_non_root(pod_security: dict, container_security: dict, where: str, user: int | None = None) -> None:
    merged = {**pod_security, **container_security}
    assert merged.get("runAsNonRoot") is True, where
    assert merged.get("runAsUser") == (user or image_user()), where
    assert merged.get("allowPrivilegeEscalation") is False, where
    assert "ALL" in merged.get("capabilities", {}).get("drop", []), where


def test_every_container_runs_as_the_images_non_root_user():
    assert image_user() != 0
    for obj in kubernetes_objects():
        if obj["kind"] != "Deployment":
            continue
        spec = obj["spec"]["template"]["spec"]
        for container in spec["containers"]:
            repository = container["image"].rsplit(":", 1)[0]
            user = OTHER_IMAGE_USERS[repository] if repository != manager_image()[0] else image_user()
            assert user != 0
            assert_non_root(
                spec.get("securityContext", {}), container.get("securityContext", {}), obj["metadata"]["name"], user
            )
    receiver = find("Deployment", "manager-pipeline-receiver")["spec"]["template"]["spec"]
    assert receiver["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    # Read-only root: what the receiver writes (MANAGER_HOME, DAGSTER_HOME under it, /tmp) is a volume.
    env = {v["name"]: v["value"] for v in receiver["containers"][0]["env"]}
    mounts = [m["mountPath"] for m in receiver["containers"][0]["volumeMounts"]]
    for path in (env["MANAGER_HOME"], env["DAGSTER_HOME"], "/tmp"):
        assert any(path == m or path.startswith(m + "/") for m in mounts), path

    values = yaml.safe_load(VALUES.read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert_non_root(deployment["podSecurityContext"], deployment["securityContext"], "code server")
    run = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    assert_non_root(run["podSpecConfig"]["securityContext"], run["containerConfig"]["securityContext"], "run pods")
    # The code server's and its runs' working directories: a volume (the runs get it through
    # includeConfigInLaunchedRuns).
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    mounted = {m["mountPath"] for m in deployment["volumeMounts"]}
    assert deployment_env(deployment)["MANAGER_HOME"] in mounted


# --- the Helm values -------------------------------------------------------------------------

CHART_KEYS = {
    "global", "nameOverride", "fullnameOverride", "rbacEnabled", "imagePullSecrets", "dagsterWebserver",
    "computeLogManager", "pythonLogs", "dagster-user-deployments", "scheduler", "runLauncher", "postgresql",
    "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress",
    "dagsterDaemon", "busybox", "extraManifests", "migrate", "telemetry", "serviceAccount", "retention",
    "additionalInstanceConfig", "concurrency",
}  # fmt: skip
# helm/dagster/charts/dagster-user-deployments/values.yaml: a deployment's keys.
USER_DEPLOYMENT_KEYS = {
    "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "port", "includeConfigInLaunchedRuns", "env",
    "envConfigMaps", "envSecrets", "labels", "volumes", "volumeMounts", "initContainers", "sidecarContainers",
    "annotations", "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext", "resources",
    "schedulerName", "readinessProbe", "livenessProbe", "startupProbe", "service",
}  # fmt: skip
# The chart's runLauncher.config.k8sRunLauncher keys.
K8S_RUN_LAUNCHER_KEYS = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
    "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
    "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
RUN_K8S_CONFIG_KEYS = {"containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"}
# dagsterWebserver's keys (helm/dagster/schema/schema/charts/dagster/subschema/webserver.py, and
# initContainerResources, which the webserver's template reads).
WEBSERVER_KEYS = {
    "replicaCount", "image", "nameOverride", "pathPrefix", "service", "workspace", "env", "envConfigMaps",
    "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "readinessProbe", "livenessProbe", "startupProbe", "annotations",
    "enableReadOnly", "dbStatementTimeout", "dbPoolRecycle", "logLevel", "schedulerName", "volumeMounts", "volumes",
    "initContainerResources",
}  # fmt: skip


def test_helm_values_are_the_charts_pinned_to_our_dagster():
    values = yaml.safe_load(VALUES.read_text())
    assert set(values) <= CHART_KEYS, set(values) - CHART_KEYS
    assert set(values["dagsterWebserver"]) <= WEBSERVER_KEYS, set(values["dagsterWebserver"]) - WEBSERVER_KEYS
    for deployment in values["dagster-user-deployments"]["deployments"]:
        assert set(deployment) <= USER_DEPLOYMENT_KEYS, set(deployment) - USER_DEPLOYMENT_KEYS
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert set(k8s) <= K8S_RUN_LAUNCHER_KEYS, set(k8s) - K8S_RUN_LAUNCHER_KEYS
    assert set(k8s["runK8sConfig"]) <= RUN_K8S_CONFIG_KEYS
    version = pinned("dagster")
    assert f"--version {version}" in VALUES.read_text()
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert values[component]["image"]["tag"] == version, component
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    queue = values["dagsterDaemon"]["runCoordinator"]
    assert queue["enabled"] and queue["type"] == "QueuedRunCoordinator"
    assert PARTITION_LIMIT in queue["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    [deployment] = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == workspace_module()
    assert deployment["port"] > 0


def chart_instance(values: dict, release: str = "dagster", namespace: str = "manager-pipeline") -> dict:
    """The dagster.yaml that the chart's instance ConfigMap renders from these values, for the
    settings these values use (helm/dagster/templates/configmap-instance.yaml and its helpers)."""
    fullname = release if "dagster" in release else f"{release}-dagster"
    pg = values["postgresql"]
    pg_config = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "params": pg.get("postgresqlParams") or {},
        }
    }
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or namespace,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": fullname,
        "dagster_home": values["global"]["dagsterHome"],
        "instance_config_map": f"{fullname}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "env_config_maps": [f"{fullname}-pipeline-env"] + [m["name"] for m in k8s.get("envConfigMaps", [])],
        "env_secrets": [s["name"] for s in k8s.get("envSecrets", [])],
        "run_k8s_config": {_snake(key): value for key, value in (k8s.get("runK8sConfig") or {}).items()},
    }
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    return {
        "scheduler": {"module": "dagster._core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": pg_config,
        },
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher},
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": pg_config},
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": pg_config,
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": queued["maxConcurrentRuns"],
                "tag_concurrency_limits": queued["tagConcurrencyLimits"],
                "dequeue_interval_seconds": queued["dequeueIntervalSeconds"],
                "dequeue_use_threads": queued["dequeueUseThreads"],
                "dequeue_num_workers": queued["dequeueNumWorkers"],
            },
        },
        "run_monitoring": {"enabled": True, "start_timeout_seconds": 300, "poll_interval_seconds": 120},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def load(home: Path, config: dict) -> DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    dagster_instance_config(str(home))  # the schema of dagster.yaml, as Dagster checks it
    return DagsterInstance.from_config(str(home))


def assert_one_run_per_partition(instance: DagsterInstance) -> None:
    coordinator = instance.run_coordinator
    assert isinstance(coordinator, QueuedRunCoordinator)
    # The limits as the daemon applies them: from the `concurrency` block, or the run coordinator's config.
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 10
    assert [dict(limit) for limit in queue.tag_concurrency_limits] == [PARTITION_LIMIT]
    assert (coordinator.dequeue_interval_seconds, coordinator.dequeue_use_threads) == (1, True)
    assert coordinator.dequeue_num_workers == 4


def test_the_charts_instance_loads_through_dagster(database, tmp_path, monkeypatch):
    values = yaml.safe_load(VALUES.read_text())
    config = chart_instance(values)
    # The chart's PostgreSQL settings, pointed at this machine's server for the test.
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        config[storage]["config"]["postgres_db"] |= {
            "hostname": "127.0.0.1",
            "username": "postgres",
            "db_name": database,
        }
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")
    instance = load(tmp_path / "k8s", config)
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_runs() == []  # its tables are there: Dagster created them
        assert_one_run_per_partition(instance)
        launcher = instance.get_ref().run_launcher_data
        assert (launcher.module_name, launcher.class_name) == ("dagster_k8s", "K8sRunLauncher")
    finally:
        instance.dispose()


def test_the_charts_k8s_run_launcher_config_fits_dagster_k8s():
    """The launcher itself is not built: it loads the cluster's credentials as it starts. Its
    config is checked against dagster-k8s's schema instead; that package is in the image, not in
    the development environment, so this is skipped where it is absent."""
    k8s = pytest.importorskip("dagster_k8s", reason="dagster-k8s is installed in the image only")
    from dagster._config import process_config, resolve_to_config_type

    config = chart_instance(yaml.safe_load(VALUES.read_text()))["run_launcher"]["config"]
    result = process_config(resolve_to_config_type(k8s.K8sRunLauncher.config_type()), config)
    assert result.success, [error.message for error in result.errors]


# --- the UI behind a login -------------------------------------------------------------------

PROXY_IMAGE = "quay.io/oauth2-proxy/oauth2-proxy"
# What oauth2-proxy reads its credentials from: Secrets, never an argument or a written value.
PROXY_SECRETS = ("OAUTH2_PROXY_CLIENT_ID", "OAUTH2_PROXY_CLIENT_SECRET", "OAUTH2_PROXY_COOKIE_SECRET")


def release_name() -> str:
    """The Helm release of values.yaml's install command: the chart names the webserver's Services after it."""
    [release] = re.findall(r"helm upgrade --install (\S+) dagster/dagster", VALUES.read_text())
    return release


def webserver_service(read_only: bool) -> tuple[str, int]:
    """(name, port) of the chart's webserver Service, or of the read-only one (helm/dagster/templates:
    `dagster.webserver.fullname` in helpers/_helpers.tpl, helpers/_service-webserver.tpl)."""
    webserver = yaml.safe_load(VALUES.read_text())["dagsterWebserver"]
    name = f"{release_name()}-{webserver.get('nameOverride') or 'webserver'}"[:63].rstrip("-")
    return name + ("-read-only" if read_only else ""), webserver.get("service", {}).get("port", 80)


def webserver_pod_labels(read_only: bool) -> dict[str, str]:
    """The labels the chart puts on a webserver's pods (`dagster.selectorLabels`, `component`)."""
    component = "dagster-webserver-read-only" if read_only else "dagster-webserver"
    return {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": release_name(), "component": component}


def proxy_flags(container: dict) -> dict[str, str]:
    pairs = [arg.removeprefix("--").split("=", 1) for arg in container.get("command", [])[1:] + container["args"]]
    assert all(len(pair) == 2 for pair in pairs), "every flag as --name=value"
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), "no flag given twice"
    return dict(pairs)


def proxies() -> dict[bool, tuple[dict, dict]]:
    """The oauth2-proxy Deployment and container in front of each webserver, by read_only."""
    found = {}
    for obj in kubernetes_objects():
        if obj["kind"] != "Deployment":
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            if container["image"].rsplit(":", 1)[0] == PROXY_IMAGE:
                upstream = urlparse(proxy_flags(container)["upstream"])
                target = (upstream.hostname, upstream.port)
                [read_only] = [ro for ro in (False, True) if target == webserver_service(ro)]
                assert read_only not in found, "one proxy per webserver"
                found[read_only] = (obj, container)
    assert set(found) == {False, True}, "a proxy in front of the webserver and of the read-only webserver"
    return found


def selects(selector: dict, labels: dict) -> bool:
    return selector.items() <= labels.items()


def ingress_backends() -> list[tuple[str | None, str]]:
    """(host, Service name) of every route of every Ingress of the manifests."""
    routes = []
    for ingress in (o for o in kubernetes_objects() if o["kind"] == "Ingress"):
        if "defaultBackend" in ingress["spec"]:
            routes.append((None, ingress["spec"]["defaultBackend"]["service"]["name"]))
        for rule in ingress["spec"].get("rules", []):
            for path in rule["http"]["paths"]:
                routes.append((rule.get("host"), path["backend"]["service"]["name"]))
    return routes


def test_the_read_only_webserver_is_enabled():
    webserver = yaml.safe_load(VALUES.read_text())["dagsterWebserver"]
    assert webserver["enableReadOnly"] is True
    assert webserver_service(read_only=True) == ("dagster-webserver-read-only", 80)


def test_only_the_proxies_are_exposed_outside_the_cluster():
    values = yaml.safe_load(VALUES.read_text())
    # The chart's own ingress would route to the webserver itself; its Services stay cluster-internal.
    assert values["ingress"]["enabled"] is False
    assert values["dagsterWebserver"].get("service", {}).get("type", "ClusterIP") == "ClusterIP"
    proxy_services = {}
    for read_only, (deployment, container) in proxies().items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        [service] = [
            o for o in kubernetes_objects() if o["kind"] == "Service" and selects(o["spec"]["selector"], pod_labels)
        ]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        [port] = service["spec"]["ports"]
        assert ports[port["targetPort"]] == int(proxy_flags(container)["http-address"].rsplit(":", 1)[1])
        proxy_services[service["metadata"]["name"]] = read_only
    for service in (o for o in kubernetes_objects() if o["kind"] == "Service"):
        if service["spec"].get("type", "ClusterIP") != "ClusterIP":
            assert service["metadata"]["name"] in proxy_services, service["metadata"]["name"]
    routes = ingress_backends()
    assert routes and all(name in proxy_services for _, name in routes), routes
    # Each proxy is reached, on the host its GitHub OAuth App calls back to.
    for read_only, (_, container) in proxies().items():
        [name] = [name for name, ro in proxy_services.items() if ro == read_only]
        callback = urlparse(proxy_flags(container)["redirect-url"])
        assert callback.scheme == "https" and callback.path == "/oauth2/callback"
        assert (callback.hostname, name) in routes


def test_only_its_proxy_reaches_a_webserver_inside_the_cluster():
    policies = [o for o in kubernetes_objects() if o["kind"] == "NetworkPolicy"]
    pod_labels = {ro: d["spec"]["template"]["metadata"]["labels"] for ro, (d, _) in proxies().items()}
    for read_only, proxy_labels in pod_labels.items():
        webserver = webserver_pod_labels(read_only)
        covering = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], webserver)]
        assert covering, f"no NetworkPolicy selects {webserver}"
        for policy in covering:
            assert "Ingress" in policy["spec"]["policyTypes"]
            for rule in policy["spec"].get("ingress", []):
                assert rule.get("from"), "a rule without `from` admits every pod"
                assert [port["port"] for port in rule["ports"]] == [webserver_service(read_only)[1]]
                for peer in rule["from"]:
                    assert set(peer) == {"podSelector"}, peer  # no namespaceSelector or ipBlock
                    assert selects(peer["podSelector"]["matchLabels"], proxy_labels)
                    assert not selects(peer["podSelector"]["matchLabels"], pod_labels[not read_only])


def test_the_proxies_sign_in_with_github_limited_to_the_organisation_and_team():
    for read_only, (_, container) in proxies().items():
        flags = proxy_flags(container)
        assert container["image"].rsplit(":", 1)[1].startswith("v"), "oauth2-proxy pinned to a release tag"
        assert flags["provider"] == "github"
        assert flags["github-org"], "limited to an organisation"
        upstream = urlparse(flags["upstream"])
        assert upstream.scheme == "http" and (upstream.hostname, upstream.port) == webserver_service(read_only)
        assert flags["cookie-secure"] == "true"
        # The UI that launches applies: the platform team only.
        if not read_only:
            assert flags["github-team"], "the full UI is limited to a team"
        for skip in ("skip-auth-regex", "skip-auth-route", "github-user", "authenticated-emails-file"):
            assert skip not in flags, f"--{skip} lets someone past the organisation and team"


def test_the_proxies_secrets_are_referred_to():
    secrets = {}
    for read_only, (_, container) in proxies().items():
        flags = proxy_flags(container)
        assert not any(re.search("secret|client-id", name) for name in flags), flags
        env = {variable["name"]: variable for variable in container["env"]}
        for name in PROXY_SECRETS:
            assert set(env[name]) == {"name", "valueFrom"} and "secretKeyRef" in env[name]["valueFrom"], name
        cookie = env["OAUTH2_PROXY_COOKIE_SECRET"]["valueFrom"]["secretKeyRef"]
        secrets[read_only] = (cookie["name"], cookie["key"])
    # A session of the read-only UI is never one of the full UI.
    assert secrets[False] != secrets[True]


def test_the_manager_declares_the_proxy_it_links_to():
    """Where the manager's links point beyond loopback, MANAGER_UI_AUTH=proxy says a login is in front,
    the address is one of the proxies' hosts, and doctor's UI check agrees (its anonymous probe aside)."""
    from manager_pipeline.doctor.result import Status
    from manager_pipeline.doctor.ui import check_ui

    [deployment] = yaml.safe_load(VALUES.read_text())["dagster-user-deployments"]["deployments"]
    receiver = find("Deployment", "manager-pipeline-receiver")["spec"]["template"]["spec"]["containers"][0]
    hosts = {host for host, _ in ingress_backends()}
    for env in (deployment_env(deployment), {v["name"]: v.get("value") for v in receiver["env"]}):
        assert env["MANAGER_UI_AUTH"] == "proxy"
        assert urlparse(env["DAGSTER_WEBSERVER_URL"]).hostname in hosts
        assert check_ui(env["DAGSTER_WEBSERVER_URL"], env, probe=lambda url: False).status is Status.OK


def test_no_recipe_starts_the_webserver_beyond_loopback():
    """The ECS tasks and the image's commands: `dagster-webserver` on the task's loopback, its proxy beside it."""
    commands = [
        line[line.index("dagster-webserver") :]
        for path in (CONTAINERFILE, ECS_INSTANCE)
        for line in path.read_text().splitlines()
        if "dagster-webserver -" in line
    ]
    assert commands
    for command in commands:
        assert re.search(r"-h 127\.0\.0\.1\b", command) and "0.0.0.0" not in command, command
    ecs = ECS_INSTANCE.read_text()
    assert "dagster-webserver --read-only" in ecs and PROXY_IMAGE in ecs
    assert re.search(r"--github-org=\S+", ecs) and re.search(r"--github-team=\S+", ecs)


# --- ECS -------------------------------------------------------------------------------------


def test_the_ecs_instance_loads_with_its_run_launcher_built(database, tmp_path, monkeypatch):
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": database,
        "MANAGER_RUN_LOG_GROUP": "/ecs/manager-pipeline-runs",
        "MANAGER_RUN_EXECUTION_ROLE_ARN": "arn:aws:iam::111122223333:role/manager-pipeline-execution",
        "MANAGER_RUN_TASK_ROLE_ARN": "arn:aws:iam::111122223333:role/manager-pipeline",
        "DAGSTER_PG_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pg",
        "MANAGER_DATABASE_URL_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db",
        "GITHUB_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:gh",
        # boto3 clients need a region to be built; no request is made.
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    instance = load(tmp_path / "ecs", yaml.safe_load(ECS_INSTANCE.read_text()))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_runs() == []
        assert_one_run_per_partition(instance)
        from dagster_aws.ecs import EcsRunLauncher

        launcher = instance.run_launcher
        assert isinstance(launcher, EcsRunLauncher)
        assert launcher.task_role_arn == env["MANAGER_RUN_TASK_ROLE_ARN"]
        assert launcher.execution_role_arn == env["MANAGER_RUN_EXECUTION_ROLE_ARN"]
        assert {s["name"]: s["valueFrom"] for s in launcher.secrets} == {
            "DAGSTER_PG_PASSWORD": env["DAGSTER_PG_PASSWORD_SECRET_ARN"],
            "MANAGER_DATABASE_URL": env["MANAGER_DATABASE_URL_SECRET_ARN"],
            "GITHUB_TOKEN": env["GITHUB_TOKEN_SECRET_ARN"],
        }
        assert launcher.secrets_tags == []  # only the secrets named, never every tagged one
        # A run task opens the same storage: what its settings read from the environment reaches it.
        storage = yaml.safe_load(ECS_INSTANCE.read_text())["storage"]
        needed = set(re.findall(r"'env': '(\w+)'", str(storage)))
        passed = set(launcher.env_vars) | {s["name"] for s in launcher.secrets}
        assert needed and needed <= passed, needed - passed
    finally:
        instance.dispose()


# --- the image -------------------------------------------------------------------------------


def test_the_containerfile_installs_with_the_script_make_env_runs():
    steps = instructions(CONTAINERFILE)
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11-slim-bookworm")
    runs = [args for instruction, args in steps if instruction == "RUN"]
    [install] = [run for run in runs if "scripts/install.sh" in run]
    assert "--no-test" in shlex.split(install)
    assert any("gcc" in shlex.split(run) for run in runs), "the Terraform launcher is built with gcc"
    # The script runs as root (the tools it builds are then only read); USER comes after it.
    order = [instruction for instruction, _ in steps]
    assert order.index("USER") > max(i for i, (instruction, args) in enumerate(steps) if instruction == "RUN")
    assert image_user() != 0
    env = " ".join(args for instruction, args in steps if instruction == "ENV")
    for variable in ("MANAGER_TOOLS_DIR", "MANAGER_HOME", "MANAGER_CONFIG", "DAGSTER_HOME"):
        assert re.search(rf"\b{variable}=/", env), variable
    # dagster-k8s, in the Dagster family's version (that of dagster-aws in pyproject.toml).
    [k8s_arg] = [
        args for instruction, args in steps if instruction == "ARG" and args.startswith("DAGSTER_K8S_VERSION=")
    ]
    assert k8s_arg.split("=", 1)[1] == pinned("dagster-aws")
    # The default command: the code server of workspace.yaml's module.
    [cmd] = [json.loads(args) for instruction, args in steps if instruction == "CMD"]
    assert cmd[:3] == ["dagster", "api", "grpc"] and workspace_module() in cmd
    assert not any(instruction == "ENTRYPOINT" for instruction, _ in steps)

    # The same script is what `make env` runs.
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", makefile, re.M)
    assert stamp and "scripts/install.sh" in stamp.group(1)
    script = (ROOT / "scripts" / "install.sh").read_text()
    assert 'manager-pipeline" setup' in script or "manager-pipeline setup" in script
    assert "'.[test]'" in script and "--no-test" in script
