"""The compose stack (deploy/compose/docker-compose.yml) agrees with the code and with its
Prometheus: it is a valid Compose file (the Compose Specification's JSON schema, vendored), every
venue has a producer and a consumer, every cascade-monitor service runs a real CLI command on a
metrics port of its own that Prometheus scrapes, and its environment builds a valid configuration
(real config keys, every venue enabled, the compose Kafka) through monitor.core.config.load.

No container engine runs here: `promtool check config` (Debian's prometheus) is the one tool run;
without it that test is skipped unless CASCADE_REQUIRE_PROMETHEUS=1 (set by .ci/run)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from monitor.alerting.dispatcher import resolve_sinks
from producers.registry import EXCHANGES
from tests.deploy.checks import (
    ROOT,
    VENUE_ROLES,
    build_config,
    service_role,
    sink_secret_env,
)

COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus-compose.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "cascade.yml"  # the alerting rules it loads
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"
STACK = {"kafka", "prometheus", "alertmanager", "grafana"}
SECRET_REF = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*):-\}$")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # merge keys (<<) resolved
    return data


def cascade_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if n not in STACK}


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: container directory -> repository directory."""
    out = {}
    for v in service.get("volumes", []):
        source, target, *_ = v.split(":")
        out[target] = (COMPOSE.parent / source).resolve()
    return out


def metrics_port(args: Any, cfg_port: int) -> int:
    return int(args.metrics_port) if args.metrics_port is not None else cfg_port


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    broken = compose()
    broken["services"]["kafka"]["helthcheck"] = {}
    assert not validator.is_valid(broken)  # the schema is not vacuous


def test_every_venue_has_a_producer_and_a_consumer_next_to_the_stack() -> None:
    expected = {f"{role}-{x}" for role in VENUE_ROLES for x in EXCHANGES}
    assert set(compose()["services"]) == STACK | expected | {"aggregator", "alerts"}


def test_services_run_real_commands_on_their_own_scraped_ports() -> None:
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    scraped = [t for job in prometheus["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]  # fmt: skip
    ports: dict[str, int] = {}
    for name, svc in cascade_services().items():
        role, args = service_role(svc["command"])
        expected = name if role in ("aggregator", "alerts") else f"{role}-{args.exchange}"
        assert name == expected, (name, svc["command"])
        cfg = build_config(svc["environment"], mounts(svc))
        ports[name] = metrics_port(args, cfg.metrics.port)
        assert svc["ports"] == [f"127.0.0.1:{ports[name]}:{ports[name]}"], name
    assert len(set(ports.values())) == len(ports), ports
    assert sorted(scraped) == sorted(f"{n}:{p}" for n, p in ports.items())
    published = [
        p.split(":")[1] for s in compose()["services"].values() for p in s.get("ports", [])
    ]
    assert len(published) == len(set(published)), "two services publish one host port"


def test_environment_builds_the_configuration_for_the_compose_kafka() -> None:
    kafka = compose()["services"]["kafka"]["environment"]
    advertised = dict(x.split("://") for x in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    for name, svc in cascade_services().items():
        env = svc["environment"]
        assert all(isinstance(v, str) for v in env.values()), name  # as the container sees them
        cfg = build_config(env, mounts(svc))  # unknown keys and bad values raise
        assert cfg.bootstrap_servers == advertised["PLAINTEXT"], name
        assert cfg.kafka.replication_factor == 1, name  # one broker
        assert cfg.enabled_exchanges() == list(EXCHANGES), name
        assert cfg.metrics.host == "0.0.0.0", name
        assert svc["depends_on"] == {"kafka": {"condition": "service_healthy"}}, name
    assert "kafka" in kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}


def test_alert_dispatcher_gets_every_sink_secret_and_only_it_does() -> None:
    services = cascade_services()
    alerts = services["alerts"]
    cfg = build_config(alerts["environment"], mounts(alerts))
    passed = {k: m["name"] for k, v in alerts["environment"].items() if (m := SECRET_REF.match(v))}
    assert all(k == v for k, v in passed.items()), passed  # passed through under its own name
    assert set(passed) == set(sink_secret_env(cfg))
    resolve_sinks(cfg, sink_secret_env(cfg))
    for name, svc in services.items():
        if name != "alerts":
            assert not set(passed) & set(svc["environment"]), name


def test_kafka_is_the_version_the_tests_run() -> None:
    pom = (ROOT / "deploy/kafka/pom.xml").read_text()
    (version,) = re.findall(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert compose()["services"]["kafka"]["image"] == f"apache/kafka:{version}"


def test_prometheus_alertmanager_and_grafana_are_wired_to_the_repository() -> None:
    services = compose()["services"]
    prom = services["prometheus"]
    (config,) = [a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file=")]
    (folder,) = [(p, q) for p, q in mounts(prom).items() if config.startswith(p + "/")]
    assert folder[1] / config[len(folder[0]) + 1 :] == PROMETHEUS
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    for rules in prometheus["rule_files"]:
        assert (PROMETHEUS.parent / rules).is_file()
    (am,) = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = am.split(":")
    assert f"127.0.0.1:{port}:{port}" in services[host]["ports"]
    assert mounts(services["alertmanager"]) == {
        "/etc/alertmanager": ROOT / "deploy" / "alertmanager"
    }
    assert mounts(services["grafana"]) == {
        "/etc/grafana/provisioning/datasources": ROOT / "deploy/grafana/provisioning/datasources",
        "/etc/grafana/provisioning/dashboards": ROOT / "deploy/grafana/provisioning/dashboards",
        "/var/lib/grafana/dashboards": ROOT / "deploy/grafana/dashboards",
    }


def test_grafana_provisioning_points_at_the_mounted_dashboards_and_prometheus() -> None:
    provisioning = ROOT / "deploy/grafana/provisioning"
    datasources = sorted((provisioning / "datasources").glob("*.y*ml"))
    providers = sorted((provisioning / "dashboards").glob("*.y*ml"))
    if not datasources or not providers:
        pytest.skip("deploy/grafana/provisioning holds no datasource or dashboard provider yet")
    urls = [d.get("url") for f in datasources
            for d in yaml.safe_load(f.read_text()).get("datasources", [])
            if d.get("type") == "prometheus"]  # fmt: skip
    assert "http://prometheus:9090" in urls, urls
    paths = [p.get("options", {}).get("path") for f in providers
             for p in yaml.safe_load(f.read_text()).get("providers", [])]  # fmt: skip
    assert paths and all(str(p).startswith("/var/lib/grafana/dashboards") for p in paths), paths


def test_compose_prometheus_config_is_valid() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool not installed (apt-get install prometheus)"
        if os.environ.get("CASCADE_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(f"CASCADE_REQUIRE_PROMETHEUS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    res = subprocess.run(
        [promtool, "check", "config", PROMETHEUS.name],
        cwd=PROMETHEUS.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    n_alerts = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {n_alerts} rules found" in res.stdout + res.stderr
