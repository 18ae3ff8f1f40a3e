"""The Prometheus-side alerting (deploy/prometheus, deploy/alertmanager) checked with the real tools
from Debian's packages: promtool checks and unit-tests the rules and the scrape config, amtool checks
the Alertmanager config, and every metric a rule uses is one the monitor exports. The recording
rules the Grafana dashboards query (rules/recording.yml) are checked and unit-tested the same way,
and every Prometheus config of deploy/ loads both rule files.

The tools come from `apt-get install prometheus prometheus-alertmanager` (.ci/run installs them). A
machine without them skips these tests, unless CASCADE_REQUIRE_PROMETHEUS=1 (set by .ci/run) makes
their absence a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from consumers.aggregator import POOLED_METRICS
from monitor.core.metrics import (
    HEALTH_GAUGES,
    MODEL_METRICS,
    NAMESPACE,
    RISK_METRICS,
    ConsumerMetrics,
    DispatcherMetrics,
    HealthMetrics,
    ProducerMetrics,
    for_registry,
)

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES = DEPLOY / "prometheus" / "rules"
N_ALERTS = 21  # cascade-risk 5, cascade-pipeline 2, cascade-health 14


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CASCADE_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(
                f"{name} not installed (apt-get install prometheus prometheus-alertmanager)"
            )
        pytest.skip(f"{name} not installed (apt-get install prometheus prometheus-alertmanager)")
    return path


def run(*args: str, cwd: Path) -> str:
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    promtool = tool("promtool")
    assert f"SUCCESS: {N_ALERTS} rules found" in run(
        promtool, "check", "rules", "cascade.yml", cwd=RULES
    )
    assert "SUCCESS" in run(promtool, "test", "rules", "cascade_test.yml", cwd=RULES)


def test_scrape_config_is_valid() -> None:
    promtool = tool("promtool")
    out = run(promtool, "check", "config", "prometheus.yml", cwd=DEPLOY / "prometheus")
    assert f"SUCCESS: {N_ALERTS} rules found" in out  # the rules file it loads


def test_alertmanager_config_is_valid() -> None:
    amtool = tool("amtool")
    out = run(amtool, "check-config", "alertmanager.yml", cwd=DEPLOY / "alertmanager")
    assert "SUCCESS" in out


def test_rules_use_only_metrics_the_monitor_exports() -> None:
    text = (RULES / "cascade.yml").read_text()
    exprs = re.findall(r"^\s+expr: (.+)$", text, flags=re.MULTILINE)
    assert len(exprs) == N_ALERTS
    used = {m for e in exprs for m in re.findall(r"\b(cascade_[a-z_]+)\b", e)}
    exported = set(RISK_METRICS) | {f"{NAMESPACE}_{n}" for n, _, _ in MODEL_METRICS}
    exported |= set(HEALTH_GAUGES)
    exported |= {f"{NAMESPACE}_{n}" for n, _ in POOLED_METRICS.values()}  # the aggregator's
    registry = CollectorRegistry()  # the pipeline-health metrics every process defines
    for metrics in (ProducerMetrics, ConsumerMetrics, DispatcherMetrics, HealthMetrics):
        for_registry(metrics, registry)
    for fam in registry.collect():
        exported |= {fam.name, f"{fam.name}_total"} if fam.type == "counter" else {fam.name}
    assert used and used <= exported, used - exported


def test_recording_rules_are_valid_and_their_unit_tests_pass() -> None:
    promtool = tool("promtool")
    assert "SUCCESS: 12 rules found" in run(promtool, "check", "rules", "recording.yml", cwd=RULES)
    assert "SUCCESS" in run(promtool, "test", "rules", "recording_test.yml", cwd=RULES)


def test_every_prometheus_config_loads_the_alerting_and_the_recording_rules() -> None:
    configs = [DEPLOY / "prometheus" / "prometheus.yml",
               DEPLOY / "prometheus" / "prometheus-compose.yml",
               DEPLOY / "k8s" / "prometheus-k8s.yml"]  # fmt: skip
    for path in configs:
        rule_files = yaml.safe_load(path.read_text())["rule_files"]
        assert rule_files == ["rules/cascade.yml", "rules/recording.yml"], path
    promtool = tool("promtool")
    for path in configs[:2]:  # Debian's build has no kubernetes_sd for the third
        out = run(promtool, "check", "config", path.name, cwd=path.parent)
        assert f"SUCCESS: {N_ALERTS} rules found" in out and "SUCCESS: 12 rules found" in out, path
