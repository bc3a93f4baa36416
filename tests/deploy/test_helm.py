"""The Helm chart: lints, renders valid Kubernetes objects, and runs Venus the way production needs."""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import config_sample
from tests.deploy.helm import CHART, KUBERNETES_VERSION, ROOT, Helm, find
from venus_grpc.settings import Settings, load_settings

Manifests = list[dict[str, Any]]
# Not part of Kubernetes: the Prometheus operator's CRD, checked field by field below instead.
CUSTOM_KINDS = {"ServiceMonitor"}
STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                   "app.kubernetes.io/managed-by", "helm.sh/chart")


def _gateway(manifests: Manifests) -> dict[str, Any]:
    """The Venus Deployment (not the canary's)."""
    [deployment] = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["labels"]
                    ["app.kubernetes.io/component"] == "gateway"]
    return deployment


def _container(manifests: Manifests) -> dict[str, Any]:
    return _gateway(manifests)["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def _env(manifests: Manifests) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(manifests).get("env", [])}


def _values(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("values", ["default", "full"])
def test_helm_lint_passes(helm: Helm, full_values: Path, values: str) -> None:
    """`helm lint --strict` finds nothing to warn about, with default values and with every option on."""
    files = ["--values", str(full_values)] if values == "full" else []
    done = helm.run("lint", "--strict", str(CHART), "--kube-version", KUBERNETES_VERSION, *files)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", ["default", "full"])
def test_every_manifest_is_a_valid_kubernetes_object(request: pytest.FixtureRequest, values: str) -> None:
    """Each rendered object validates against the Kubernetes schemas, strictly (no unknown field)."""
    manifests: Manifests = request.getfixturevalue(f"{values}_manifests")
    for manifest in manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['kind']} {manifest['metadata']['name']}: {str(exc).splitlines()[0]}")


def test_default_values_render_a_production_set(default_manifests: Manifests) -> None:
    """By default: Deployment, Service, ConfigMap, ServiceAccount, autoscaler and disruption budget."""
    kinds = sorted(m["kind"] for m in default_manifests)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service",
                     "ServiceAccount"]


def test_every_option_renders_its_object(full_manifests: Manifests) -> None:
    """With everything on, the headless Service, ServiceMonitor and NetworkPolicy appear too."""
    headless = find(full_manifests, "Service", "venus-prod-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert [p["name"] for p in headless["spec"]["ports"]] == ["grpc"]
    monitor = find(full_manifests, "ServiceMonitor", "venus-prod")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s",
                                             "scrapeTimeout": "10s"}]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    policy = find(full_manifests, "NetworkPolicy")
    assert [rule["ports"][0]["port"] for rule in policy["spec"]["ingress"]] == ["grpc", "http", "metrics"]


def test_every_object_carries_the_standard_labels(full_manifests: Manifests) -> None:
    """Every object has the app.kubernetes.io labels, and the selectors pick the pods."""
    for manifest in full_manifests:
        labels = manifest["metadata"]["labels"]
        assert all(key in labels for key in STANDARD_LABELS), (manifest["kind"], labels)
    deployment = _gateway(full_manifests)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for service in (m for m in full_manifests if m["kind"] == "Service" and not _is_canary(m)):
        assert service["spec"]["selector"].items() <= pod_labels.items()
    assert pod_labels["cost-center"] == "analytics"


def _is_canary(manifest: dict[str, Any]) -> bool:
    return bool(manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "canary")


def test_the_canary_runs_apart_from_the_gateway_pods(full_manifests: Manifests) -> None:
    """No Venus selector picks a canary pod; the canary reaches Venus with the CA, its client cert and key file."""
    canary = find(full_manifests, "Deployment", "venus-prod-canary")
    canary_pod_labels = canary["spec"]["template"]["metadata"]["labels"]
    selectors = [m["spec"]["selector"] for m in full_manifests if m["kind"] == "Service" and not _is_canary(m)]
    selectors += [_gateway(full_manifests)["spec"]["selector"]["matchLabels"],
                  find(full_manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                  find(full_manifests, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]]
    assert all(not selector.items() <= canary_pod_labels.items() for selector in selectors)
    args = canary["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--target=venus-prod:50051" in args and "--interval-s=5" in args
    assert {"--ca-path=/etc/venus/tls/ca.crt", "--client-cert-path=/etc/venus/canary-tls/tls.crt",
            "--api-key-path=/etc/venus/canary-key/api-key"} <= set(args)
    grpc_from = find(full_manifests, "NetworkPolicy")["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {k: canary_pod_labels[k] for k in
                                            ("app.kubernetes.io/name", "app.kubernetes.io/instance")}}} in grpc_from
    assert find(full_manifests, "ServiceMonitor", "venus-prod-canary")["spec"]["endpoints"][0]["port"] == "metrics"


def test_a_canary_without_a_client_certificate_is_refused_under_mtls(helm: Helm, tmp_path: Path) -> None:
    """With mTLS on the canary could never connect: rendering fails and says what is missing."""
    values = "tls:\n  existingSecret: t\n  clientCaKey: ca.crt\ncanary:\n  enabled: true\n"
    done = helm.template(_values(tmp_path, values), expect_ok=False)
    assert done.returncode != 0
    assert "canary.clientTlsSecret: with mTLS on, the canary needs a client certificate" in done.stderr


def test_probes_are_native_grpc_health_checks(default_manifests: Manifests) -> None:
    """Startup, readiness and liveness call grpc.health.v1 on the gRPC port; readiness asks for the service."""
    container = _container(default_manifests)
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    assert port == Settings().port
    assert container["readinessProbe"]["grpc"] == {"port": port, "service": "venus.v1.IngestService"}
    assert container["livenessProbe"]["grpc"] == {"port": port, "service": ""}
    startup = container["startupProbe"]
    assert startup["grpc"] == {"port": port, "service": ""}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "Kafka may take a while to connect"


def test_the_http_port_is_off_by_default(default_manifests: Manifests) -> None:
    """As in the service, the HTTP port is opened only when asked for: no container or Service port."""
    assert "http" not in {p["name"] for p in _container(default_manifests)["ports"]}
    assert "http" not in {p["name"] for p in find(default_manifests, "Service")["spec"]["ports"]}


def test_with_http_on_the_port_is_exposed_and_fenced(full_manifests: Manifests) -> None:
    """config.httpEnabled opens the HTTP port in the pod, the Service (https with TLS) and the NetworkPolicy."""
    data = find(full_manifests, "ConfigMap")["data"]
    assert data["VENUS_HTTP_ENABLED"] == "true"
    container_port = {"name": "http", "containerPort": int(data["VENUS_HTTP_PORT"]), "protocol": "TCP"}
    assert container_port in _container(full_manifests)["ports"]
    [service_port] = [p for p in find(full_manifests, "Service", "venus-prod")["spec"]["ports"] if p["name"] == "http"]
    assert service_port == {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP",
                            "appProtocol": "https"}
    [rule] = [r for r in find(full_manifests, "NetworkPolicy")["spec"]["ingress"] if r["ports"][0]["port"] == "http"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}]


def test_with_http_on_the_probes_stay_native_grpc(full_manifests: Manifests) -> None:
    """/readyz reports what gRPC health does; probes keep asking gRPC health, which works whatever TLS asks."""
    container = _container(full_manifests)
    assert container["readinessProbe"]["grpc"]["service"] == "venus.v1.IngestService"
    assert all("httpGet" not in container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe"))


def test_with_tls_the_probes_use_the_plaintext_health_port(full_manifests: Manifests) -> None:
    """The kubelet's gRPC probe speaks plaintext only, so with TLS on it asks Venus's health-only port."""
    container = _container(full_manifests)
    health_port = int(find(full_manifests, "ConfigMap")["data"]["VENUS_HEALTH_PORT"])
    assert {"name": "health", "containerPort": health_port, "protocol": "TCP"} in container["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == health_port


@pytest.mark.parametrize("values", ["default", "full"])
def test_termination_grace_outlasts_the_pre_stop_pause_and_the_shutdown_grace(
        request: pytest.FixtureRequest, full_values: Path, values: str) -> None:
    """SIGKILL comes after the preStop pause, Venus's shutdown grace and the supervisor's 5 s kill margin."""
    manifests: Manifests = request.getfixturevalue(f"{values}_manifests")
    pod = _gateway(manifests)["spec"]["template"]["spec"]
    pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    config = yaml.safe_load(full_values.read_text())["config"] if values == "full" else {}
    grace = float(config.get("shutdownGraceS", Settings().shutdown_grace_s))
    assert pause >= 5
    assert pod["terminationGracePeriodSeconds"] > pause + grace + 5


def test_a_too_short_termination_grace_is_refused(helm: Helm, tmp_path: Path) -> None:
    """terminationGracePeriodSeconds below pause + shutdown grace fails the render, naming the minimum."""
    done = helm.template(_values(tmp_path, "terminationGracePeriodSeconds: 20\n"), expect_ok=False)
    assert done.returncode != 0
    assert "terminationGracePeriodSeconds=20 is too short: at least" in done.stderr
    assert "= 35" in done.stderr


def test_a_service_monitor_without_metrics_is_refused(helm: Helm, tmp_path: Path) -> None:
    """Asking for a ServiceMonitor while /metrics is off fails the render rather than scrape nothing."""
    done = helm.template(_values(tmp_path, "serviceMonitor:\n  enabled: true\nconfig:\n  metricsEnabled: false\n"),
                         expect_ok=False)
    assert done.returncode != 0
    assert "serviceMonitor.enabled needs config.metricsEnabled" in done.stderr


def test_the_container_is_locked_down(default_manifests: Manifests) -> None:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities, bounded resources."""
    pod = find(default_manifests, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp, "workers write their metrics files to /tmp"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_every_setting_reaches_the_service_as_it_was_written(full_manifests: Manifests) -> None:
    """Each config key becomes VENUS_<NAME> in the ConfigMap, and Venus reads back exactly that value."""
    data = find(full_manifests, "ConfigMap")["data"]
    fields = dataclasses.fields(Settings)
    assert set(data) == {f"VENUS_{f.name.upper()}" for f in fields}
    settings = load_settings(environ=data)
    for f in fields:
        read, written = getattr(settings, f.name), config_sample(f)
        if isinstance(read, tuple | frozenset):
            read = sorted(str(item) for item in read)
            written = sorted(str(ipaddress.ip_network(item)) if f.name == "trusted_proxies" else item
                             for item in written)
        assert read == written, f.name


def test_pods_roll_when_a_setting_changes(helm: Helm, tmp_path: Path, default_manifests: Manifests) -> None:
    """A changed setting changes the pod template's config checksum, so a Deployment rollout follows."""
    changed = helm.render(_values(tmp_path, "config:\n  logLevel: DEBUG\n"))

    def checksum(manifests: Manifests) -> str:
        return _gateway(manifests)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]  # type: ignore[no-any-return]
    assert checksum(changed) != checksum(default_manifests)


@pytest.mark.parametrize(("cpu_limit", "workers"), [("2", "2"), ("1500m", "1"), ("500m", "1"), ("4000m", "4")])
def test_workers_follow_the_cpu_limit(helm: Helm, tmp_path: Path, cpu_limit: str, workers: str) -> None:
    """Unset, config.workers becomes one worker per whole CPU of the limit, and at least one."""
    manifests = helm.render(_values(tmp_path, f"resources:\n  limits:\n    cpu: {cpu_limit!r}\n    memory: 1Gi\n"))
    assert find(manifests, "ConfigMap")["data"]["VENUS_WORKERS"] == workers


def test_connections_are_recycled_by_default(default_manifests: Manifests) -> None:
    """The chart sets a max connection age so that clients rebalance over pods the autoscaler adds."""
    data = find(default_manifests, "ConfigMap")["data"]
    settings = load_settings(environ=data)
    assert 0 < settings.max_connection_age_s <= 600
    assert settings.max_connection_age_grace_s > 0


def test_secrets_are_mounted_read_only_and_named_in_the_environment(full_manifests: Manifests) -> None:
    """TLS and API-key Secrets are read-only files whose paths Venus gets; Kafka credentials come as env."""
    container = _container(full_manifests)
    pod = _gateway(full_manifests)["spec"]["template"]["spec"]
    env = _env(full_manifests)
    assert env["VENUS_TLS_CERT_PATH"] == "/etc/venus/tls/tls.crt"
    assert env["VENUS_TLS_KEY_PATH"] == "/etc/venus/tls/tls.key"
    assert env["VENUS_TLS_CLIENT_CA_PATH"] == "/etc/venus/tls/ca.crt"
    assert env["VENUS_API_KEYS_PATH"] == "/etc/venus/api-keys/api-keys"
    assert env["VENUS_KAFKA_SASL_USERNAME"] == {"secretKeyRef": {"name": "venus-kafka", "key": "username"}}
    assert env["VENUS_KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "venus-kafka", "key": "password"}}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["tls"]["readOnly"] is mounts["api-keys"]["readOnly"] is True
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"tls": "venus-tls", "api-keys": "venus-api-keys"}


@pytest.mark.parametrize(("values", "complaint"), [
    ("replicaCount: two\n", "replicaCount"),
    ("replicas: 3\n", "replicas"),
    ("config:\n  maxEventsPerBatch: '1000'\n", "maxEventsPerBatch"),
    ("config:\n  kafkaCompression: brotli\n", "kafkaCompression"),
    ("config:\n  kafka_bootstrap: kafka:9092\n", "kafka_bootstrap"),
    ("config:\n  port: 70000\n", "port"),
    ("config:\n  shutdownGraceS: 0\n", "shutdownGraceS"),
    ("autoscaling:\n  enabled: yes please\n", "enabled"),
    ("geoip:\n  updater:\n    editionIds: GeoLite2-City\n", "editionIds"),
    ("geoip:\n  updater:\n    frequencyHours: 0\n", "frequencyHours"),
])
def test_the_schema_rejects_wrong_types_and_unknown_keys(helm: Helm, tmp_path: Path, values: str,
                                                         complaint: str) -> None:
    """A misspelt key, a value of the wrong type or out of bounds fails before anything renders, naming the key."""
    done = helm.template(_values(tmp_path, values), expect_ok=False)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert complaint in done.stderr


def test_geoip_options_are_off_by_default(default_manifests: Manifests) -> None:
    """Unless asked, no GeoIP volume or sidecar is added and Venus uses its bundled database."""
    pod = _gateway(default_manifests)["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert "VENUS_GEOIP_DB_PATH" not in _env(default_manifests)
    assert "VENUS_GEOIP_DB_PATH" not in find(default_manifests, "ConfigMap")["data"]


@pytest.mark.parametrize("source", [{"secret": {"secretName": "geoip-city"}}, {"configMap": {"name": "geoip-city"}},
                                    {"persistentVolumeClaim": {"claimName": "geoip", "readOnly": True}}])
def test_a_mounted_geoip_database_is_the_one_venus_reads(helm: Helm, tmp_path: Path, source: dict[str, Any]) -> None:
    """geoip.volume (a Secret, a ConfigMap or any volume) is mounted read-only; VENUS_GEOIP_DB_PATH names the file."""
    values = {"geoip": {"volume": source, "file": "GeoIP2-City.mmdb"}}
    manifests = helm.render(_values(tmp_path, yaml.safe_dump(values)))
    pod = _gateway(manifests)["spec"]["template"]["spec"]
    assert {"name": "geoip", **source} in pod["volumes"]
    assert {"name": "geoip", "mountPath": "/etc/venus/geoip", "readOnly": True} in _container(manifests)["volumeMounts"]
    assert _env(manifests)["VENUS_GEOIP_DB_PATH"] == "/etc/venus/geoip/GeoIP2-City.mmdb"
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_geoip_updater_downloads_into_a_volume_venus_reads(full_manifests: Manifests) -> None:
    """geoipupdate runs as a native sidecar with the MaxMind Secret, writing into an emptyDir Venus reads."""
    pod = _gateway(full_manifests)["spec"]["template"]["spec"]
    [sidecar] = pod["initContainers"]
    assert sidecar["name"] == "geoipupdate" and sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "ghcr.io/maxmind/geoipupdate:v8.0.0"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in sidecar["env"]}
    assert env == {"GEOIPUPDATE_ACCOUNT_ID": {"secretKeyRef": {"name": "maxmind", "key": "account-id"}},
                   "GEOIPUPDATE_LICENSE_KEY": {"secretKeyRef": {"name": "maxmind", "key": "license-key"}},
                   "GEOIPUPDATE_EDITION_IDS": "GeoIP2-City", "GEOIPUPDATE_FREQUENCY": "12",
                   "GEOIPUPDATE_DB_DIR": "/usr/share/GeoIP"}
    assert {"name": "geoip", "mountPath": "/usr/share/GeoIP"} in sidecar["volumeMounts"]
    assert sidecar["securityContext"] == _container(full_manifests)["securityContext"]
    assert {"name": "geoip", "emptyDir": {"sizeLimit": "512Mi"}} in pod["volumes"]
    venus_mount = {"name": "geoip", "mountPath": "/etc/venus/geoip", "readOnly": True}
    assert venus_mount in _container(full_manifests)["volumeMounts"]
    assert _env(full_manifests)["VENUS_GEOIP_DB_PATH"] == "/etc/venus/geoip/GeoIP2-City.mmdb"


def test_venus_starts_once_the_updater_has_downloaded_the_database(full_manifests: Manifests) -> None:
    """The sidecar is started only when the database file is there, so Venus never starts without it."""
    [sidecar] = _gateway(full_manifests)["spec"]["template"]["spec"]["initContainers"]
    probe = sidecar["startupProbe"]
    assert probe["exec"]["command"] == ["test", "-s", "/usr/share/GeoIP/GeoIP2-City.mmdb"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 300, "a first download may take minutes"


@pytest.mark.parametrize(("values", "complaint"), [
    ("geoip:\n  updater:\n    enabled: true\n", "geoip.updater.existingSecret: the updater needs"),
    ("geoip:\n  volume: {secret: {secretName: g}}\n  updater: {enabled: true, existingSecret: m}\n",
     "geoip.volume and geoip.updater.enabled: choose one"),
    ("config:\n  geoipDbPath: /data/city.mmdb\ngeoip:\n  volume: {secret: {secretName: g}}\n",
     "config.geoipDbPath: leave it unset"),
])
def test_contradictory_geoip_options_are_refused(helm: Helm, tmp_path: Path, values: str, complaint: str) -> None:
    """An updater without credentials, or two sources for the database, fails the render and says why."""
    done = helm.template(_values(tmp_path, values), expect_ok=False)
    assert done.returncode != 0
    assert complaint in done.stderr


def test_the_install_notes_show_how_to_reach_the_service(helm: Helm, full_values: Path) -> None:
    """NOTES.txt gives the in-cluster address and a port-forward + grpcurl session, with TLS when it is on."""
    plain = helm.notes()
    assert "venus.ingest.svc:50051" in plain
    assert "kubectl --namespace ingest port-forward svc/venus 50051:50051" in plain
    assert "grpcurl -plaintext 127.0.0.1:50051 list" in plain
    tls = helm.notes(full_values)
    assert "dns:///venus-prod-headless.ingest.svc:50051" in tls
    assert "grpcurl -insecure 127.0.0.1:50051 list" in tls
    assert "curl -k https://127.0.0.1:8080/readyz" in tls and "/readyz" not in plain


def test_the_chart_version_follows_the_package(default_manifests: Manifests) -> None:
    """The chart's appVersion, and so the default image tag, is the version of the venus-gateway package."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == version
    assert _container(default_manifests)["image"].endswith(f":{version}")
