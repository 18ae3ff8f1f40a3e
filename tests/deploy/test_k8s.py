"""The Kubernetes manifests (deploy/k8s) render with kustomize, validate against the Kubernetes
API schemas (kubernetes-validate, strict) and the vendored CRDs of KEDA and the Prometheus
Operator, and agree with the code: every Deployment runs a real CLI command, every venue has its
component, ports, topics, consumer groups and the KEDA bounds come from the configuration the
pods actually load."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from monitor.alerting.dispatcher import resolve_sinks
from monitor.core.config import Config
from producers.registry import EXCHANGES
from tests.deploy.checks import (
    K8S,
    KEDA_KAFKA_FROM_ENV,
    KEDA_KAFKA_KEYS,
    OVERLAYS,
    ROOT,
    VENUE_ROLES,
    Render,
    build_config,
    crd_schemas,
    service_role,
    sink_secret_env,
    strict_openapi,
)

# The Kubernetes version the core kinds are validated against (kubernetes-validate's schemas,
# pinned in pyproject.toml's test extras).
KUBERNETES_VERSION = "1.32.0"
CORE_KINDS = {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}
CUSTOM_KINDS = {"PrometheusRule", "ScaledObject", "ServiceMonitor"}
EXCHANGE_LABEL = "cascade-monitor/exchange"
ROLE_LABEL = "app.kubernetes.io/component"

Doc = dict[str, Any]


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(deployment: Doc) -> Doc:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def pod_config(deployment: Doc, docs: list[Doc], tmp: Path) -> Config:
    """The configuration the Deployment's container builds: its environment (ConfigMap keys
    resolved from the rendering; the Secret's keys, which the rendering does not hold, given
    placeholder values) and its mounted ConfigMaps, written out under ``tmp``."""
    spec = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    maps = by_kind(docs, "ConfigMap")
    env: dict[str, str] = {}
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("configMapKeyRef")
        env[e["name"]] = maps[ref["name"]]["data"][ref["key"]] if ref else e["value"]
    mounts: dict[str, Path] = {}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for m in c["volumeMounts"]:
        cm = volumes[m["name"]].get("configMap")
        if cm is not None:
            folder = tmp / deployment["metadata"]["name"] / m["name"]
            folder.mkdir(parents=True)
            for key, text in maps[cm["name"]]["data"].items():
                (folder / key).write_text(text)
            mounts[m["mountPath"]] = folder
    cfg = build_config(env, mounts)
    if any("secretRef" in f for f in c.get("envFrom", [])):
        resolve_sinks(cfg, sink_secret_env(cfg))
    return cfg


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_namespaced_with_no_placeholder_left(render: Render, overlay: str) -> None:
    docs = render(overlay)
    assert {d["kind"] for d in docs} == CORE_KINDS | CUSTOM_KINDS
    assert "EXCHANGE" not in yaml.safe_dump_all(docs)
    assert {d["metadata"].get("namespace") for d in docs} == {"cascade-monitor"}
    ids = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(ids) == len(set(ids))


def test_every_venue_has_a_component_and_the_overlays_pick_theirs(render: Render) -> None:
    components = {p.parent.name for p in (K8S / "components").glob("*/kustomization.yaml")}
    assert components == set(EXCHANGES)

    def venues(overlay: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for d in by_kind(render(overlay), "Deployment").values():
            role = d["metadata"]["labels"][ROLE_LABEL]
            if role in VENUE_ROLES:
                out.setdefault(role, set()).add(d["metadata"]["labels"][EXCHANGE_LABEL])
        return out

    assert venues("all-venues") == {r: set(EXCHANGES) for r in VENUE_ROLES}
    assert venues("production") == {r: {"binance", "bybit"} for r in VENUE_ROLES}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_kinds_validate_against_the_kubernetes_api(render: Render, overlay: str) -> None:
    docs = [d for d in render(overlay) if d["kind"] in CORE_KINDS]
    for d in docs:
        kubernetes_validate.validate(d, KUBERNETES_VERSION, strict=True)
    # the validator is not vacuous: a misspelt field fails
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_validate_against_the_vendored_crds(render: Render, overlay: str) -> None:
    schemas = crd_schemas()
    assert set(schemas) == CUSTOM_KINDS
    docs = [d for d in render(overlay) if d["kind"] in CUSTOM_KINDS]
    for d in docs:
        assert schemas[d["kind"]].errors(d) == [], (d["kind"], d["metadata"]["name"])
    # the schemas are not vacuous: a misspelt field and a wrong type fail
    so = copy.deepcopy(next(d for d in docs if d["kind"] == "ScaledObject"))
    so["spec"]["maxReplicasCount"] = so["spec"].pop("maxReplicaCount")
    so["spec"]["pollingInterval"] = "15s"
    errors = schemas["ScaledObject"].errors(so)
    assert len(errors) == 2 and any("maxReplicasCount" in e for e in errors), errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_run_real_commands_with_the_configuration_they_load(
    render: Render, overlay: str, tmp_path: Path
) -> None:
    docs = render(overlay)
    services, monitors = by_kind(docs, "Service"), by_kind(docs, "ServiceMonitor")
    budgets, deployments = by_kind(docs, "PodDisruptionBudget"), by_kind(docs, "Deployment")
    roles = set()
    for name, d in deployments.items():
        c, labels = container(d), d["spec"]["template"]["metadata"]["labels"]
        role, args = service_role(c["args"])
        roles.add(role)
        assert labels[ROLE_LABEL] == role, name
        if role in VENUE_ROLES:
            assert name == f"{role}-{args.exchange}" and labels[EXCHANGE_LABEL] == args.exchange
        cfg = pod_config(d, docs, tmp_path)
        assert not cfg.uses_embedded_broker and cfg.metrics.host == "0.0.0.0", name
        port = args.metrics_port or cfg.metrics.port
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": port}, name
        annotations = d["spec"]["template"]["metadata"]["annotations"]  # prometheus-k8s.yml
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port)}
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                            ("readinessProbe", "/readyz")):  # fmt: skip
            assert c[probe]["httpGet"] == {"path": path, "port": "metrics"}, (name, probe)
        for bound in ("requests", "limits"):
            assert set(c["resources"][bound]) == {"cpu", "memory"}, (name, bound)
        assert d["spec"]["selector"]["matchLabels"] == labels
        assert selects(labels, d["metadata"]["labels"]), name
        pods = [other for other in deployments.values()
                if selects(d["spec"]["selector"]["matchLabels"],
                           other["spec"]["template"]["metadata"]["labels"])]  # fmt: skip
        assert pods == [d], f"{name}: its selector matches other Deployments' pods"
        # its Service exposes the metrics port, its ServiceMonitor scrapes that Service, its
        # PodDisruptionBudget covers its pods
        svc = services[name]
        assert svc["spec"]["selector"] == labels and svc["spec"]["publishNotReadyAddresses"]
        assert svc["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics"}]
        sm = monitors[name]
        hits = [s for s in services.values() if selects(sm["spec"]["selector"]["matchLabels"],
                                                        s["metadata"]["labels"])]  # fmt: skip
        assert hits == [svc], name
        assert [e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"]
        assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
        assert budgets[name]["spec"]["selector"]["matchLabels"] == labels
        assert budgets[name]["spec"]["maxUnavailable"] == 1
        if role == "producer":
            assert d["spec"]["replicas"] == 1
        if role == "consumer":
            assert "replicas" not in d["spec"], f"{name}: KEDA owns its replica count"
    assert roles == {"producer", "consumer", "aggregator", "alerts"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_consumers_scale_on_their_own_group_lag_up_to_the_partition_count(
    render: Render, overlay: str, tmp_path: Path
) -> None:
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    consumers = {n: d for n, d in deployments.items() if n.startswith("consumer-")}
    scaled = by_kind(docs, "ScaledObject")
    assert set(scaled) == set(consumers)
    for name, so in scaled.items():
        target = deployments[so["spec"]["scaleTargetRef"]["name"]]
        assert target is consumers[name]
        assert so["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        exchange = service_role(container(target)["args"])[1].exchange
        cfg = pod_config(target, docs, tmp_path)
        assert so["spec"]["minReplicaCount"] == 1
        assert so["spec"]["maxReplicaCount"] == cfg.kafka.partitions == 12
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        plain = {k for k in meta if not k.endswith("FromEnv")}
        from_env = {k.removesuffix("FromEnv") for k in meta if k.endswith("FromEnv")}
        assert plain <= KEDA_KAFKA_KEYS and from_env <= KEDA_KAFKA_FROM_ENV, meta
        assert meta["consumerGroup"] == cfg.group_id(exchange) == f"cascade-risk.{exchange}"
        assert meta["topic"] == cfg.topic(exchange) == f"cascade.events.{exchange}"
        env = {e["name"] for e in container(target)["env"]}
        assert meta["bootstrapServersFromEnv"] in env
        assert meta["bootstrapServersFromEnv"] == "CASCADE_MONITOR__KAFKA__BOOTSTRAP_SERVERS"
        assert int(meta["lagThreshold"]) > 0
        assert meta["offsetResetPolicy"] == "earliest"  # the consumers' auto_offset_reset


def test_prometheus_rule_holds_the_rules_file_verbatim(render: Render) -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/cascade.yml").read_text())
    for overlay in OVERLAYS:
        rule = by_kind(render(overlay), "PrometheusRule")["cascade-monitor"]
        assert rule["spec"] == {"groups": rules["groups"]}, overlay


def test_alert_dispatcher_reads_its_sink_secrets_from_the_secret(render: Render) -> None:
    alerts = by_kind(render("production"), "Deployment")["alerts"]
    assert container(alerts)["envFrom"] == [{"secretRef": {"name": "cascade-alert-secrets"}}]
    for d in by_kind(render("production"), "Deployment").values():
        if d is not alerts:
            assert "envFrom" not in container(d), d["metadata"]["name"]


def test_strict_crd_schema_refuses_unknown_fields_but_keeps_preserved_ones() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    v = jsonschema.Draft4Validator(strict_openapi(schema))
    assert v.is_valid({"a": 1, "free": {"anything": [1]}})
    assert not v.is_valid({"a": 1, "b": 2})


def test_pods_run_as_the_image_user_with_a_writable_kernel_cache(render: Render) -> None:
    dockerfile = (ROOT / "deploy/compose/Dockerfile").read_text()
    (uid, gid) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)[0]
    for name, d in by_kind(render("all-venues"), "Deployment").items():
        spec = d["spec"]["template"]["spec"]
        ctx = spec["securityContext"]
        assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["runAsNonRoot"]) == (
            int(uid),
            int(gid),
            True,
        ), name
        c = container(d)
        assert c["securityContext"]["readOnlyRootFilesystem"], name
        # numba's `cache=True` kernels need a writable NUMBA_CACHE_DIR: on an emptyDir
        cache = {e["name"]: e.get("value") for e in c["env"]}["NUMBA_CACHE_DIR"]
        empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        assert any(
            m["name"] in empty and cache.startswith(m["mountPath"] + "/") for m in c["volumeMounts"]
        ), name
