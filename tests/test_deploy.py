"""The shipped configuration files stay valid for the code that reads them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from monitor.core.config import build, load

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_and_points_at_a_real_cluster() -> None:
    cfg = load(ROOT / "deploy/config/cascade-monitor.toml", environ={})
    assert not cfg.uses_embedded_broker
    assert cfg.kafka.replication_factor == 3
    assert cfg.enabled_exchanges() == ["binance", "bybit"]
    assert cfg.ws_url("binance") == "wss://fstream.binance.com/market"
    assert [r.name for r in cfg.alerts.rules] == ["cascade-risk", "btc-long-liquidations"]
    sinks = {x.name: x for x in cfg.alerts.sinks}
    assert {x.kind for x in sinks.values()} == {"json", "slack", "pagerduty"}
    assert all(x.url is None for x in sinks.values())  # secrets from the environment only


def test_k8s_configmap_config_loads() -> None:

    text = (ROOT / "deploy/k8s/cascade-monitor.yaml").read_text()
    m = re.search(r"cascade-monitor\.toml: \|\n((?:    .*\n)+)", text)
    assert m, "ConfigMap with cascade-monitor.toml not found"
    body = "\n".join(line[4:] for line in m.group(1).splitlines())
    cfg = build(tomllib.loads(body))
    assert cfg.kafka.partitions == 12 and cfg.metrics.host == "0.0.0.0"
    # every deployment runs a real CLI command with a known exchange
    for role, exchange in re.findall(r"args: \[(produce|consume), --exchange, (\w+)", text):
        assert exchange in cfg.exchanges, (role, exchange)
    commands = re.findall(r"args: \[(\w+)", text)
    assert {"produce", "consume", "aggregate", "alerts"} <= set(commands)
    assert [x.kind for x in cfg.alerts.sinks] == ["json"]
