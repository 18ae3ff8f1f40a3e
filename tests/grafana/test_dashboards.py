"""The Grafana dashboards (deploy/grafana): the committed JSON is what the generator writes, every
panel says what it shows (description, unit, readable series names, thresholds at the alert
levels), every query reads metrics the monitor defines, a recording rule or a metric listed as
pending; the Kubernetes component carries each dashboard in a ConfigMap the Grafana sidecar picks
up, and the recording rules in a PrometheusRule equal to deploy/prometheus/rules/recording.yml.
The queries are run against a live Prometheus in test_live.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.alerting.payloads import DRILLDOWN_SLUG, DRILLDOWN_UID
from monitor.core.alert_rules import DEFAULT_RULES
from tests.deploy.conftest import kustomize_command
from tests.grafana.boards import (
    DASHBOARDS,
    GRAFANA,
    K8S_DASHBOARDS,
    ROOT,
    RULES,
    dashboards,
    defined_names,
    generator_common,
    metrics_in,
    panels,
    queries,
    recorded_names,
)

GENERATE = GRAFANA / "generate.py"
EXPECTED = {"cascade-overview", "cascade-pair", "cascade-pipeline", "cascade-alerts"}
OVERLAYS = ("production", "all-venues")
SIDECAR_LABEL = ("grafana_dashboard", "1")
APPLY_LIMIT = 262_144  # bytes: kubectl apply's last-applied annotation must hold the ConfigMap


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GENERATE), *args], capture_output=True, text=True,
                          check=False, timeout=120, cwd=ROOT)  # fmt: skip


def test_committed_dashboards_are_what_the_generator_writes(tmp_path: Path) -> None:
    res = generate("--out", str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    made = {f.name: f.read_bytes() for f in tmp_path.glob("*.json")}
    assert {n.removesuffix(".json") for n in made} == EXPECTED
    for folder in (DASHBOARDS, K8S_DASHBOARDS):
        committed = {f.name: f.read_bytes() for f in folder.glob("*.json")}
        assert committed == made, f"{folder} is stale: run python deploy/grafana/generate.py"
    assert generate("--check").returncode == 0
    # --check notices a changed file and a dashboard no longer generated
    (tmp_path / "cascade-pair.json").write_text("{}\n")
    (tmp_path / "old.json").write_text("{}\n")
    res = generate("--check", "--out", str(tmp_path))
    assert res.returncode == 1
    assert "cascade-pair.json" in res.stdout and "old.json (no longer generated)" in res.stdout


def test_every_panel_is_described_with_units_and_readable_series_names() -> None:
    boards = dashboards()
    assert set(boards) == EXPECTED
    for uid, d in boards.items():
        assert d["title"] and d["description"] and d["schemaVersion"] >= 41, uid
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), uid
        for p in panels(d):
            where = f"{uid} / {p['title']}"
            assert len(p["description"]) >= 40, where
            assert p["fieldConfig"]["defaults"]["unit"], where
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert p["targets"], where
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), where
            for t in p["targets"]:  # each label of a legend is checked on live series
                legend = t["legendFormat"]
                assert legend and legend != "__auto" and "__name__" not in legend, where
        names = {v["name"] for v in d["templating"]["list"]}
        assert "datasource" in names, uid


def _thresholds(p: dict[str, Any], column: str | None = None) -> list[float]:
    """The panel's threshold levels, or those of a table column (a field override)."""
    conf = p["fieldConfig"]["defaults"].get("thresholds", {})
    if column is not None:
        (props,) = [o["properties"] for o in p["fieldConfig"]["overrides"]
                    if o["matcher"] == {"id": "byName", "options": column}]  # fmt: skip
        conf = next(x["value"] for x in props if x["id"] == "thresholds")
    return [s["value"] for s in conf.get("steps", []) if s["value"] is not None]


def test_thresholds_sit_at_the_alert_levels() -> None:
    rules = {r.name: r for r in DEFAULT_RULES}
    score = [rules["cascade-risk"].warning, rules["cascade-risk"].critical]
    branching = rules["self-exciting-liquidations"].warning
    lag = re.search(r"cascade_consumer_lag_records\) > (\d+)", (RULES / "cascade.yml").read_text())
    assert lag is not None
    checked = 0
    for d in dashboards().values():
        for p in panels(d):
            exprs = " ".join(t["expr"] for t in p["targets"])
            if exprs.startswith("count"):  # how many pairs, not a level
                continue
            if p["type"] == "table":  # the top-pairs table colours its score and n columns
                assert _thresholds(p, "score") == score, p["title"]
                assert _thresholds(p, "branching ratio")[0] == branching, p["title"]
                checked += 1
                continue
            if re.search(r"\bcascade_(asset_)?cascade_score\b|cascade_score:max|pooled_cascade_score",
                         exprs) and p["type"] in ("timeseries", "stat"):  # fmt: skip
                assert _thresholds(p) == score, p["title"]
                checked += 1
            elif re.search(r"\bcascade_(asset_|pooled_)?branching_ratio\b", exprs):
                assert _thresholds(p)[0] == branching, p["title"]
                checked += 1
            elif "cascade_consumer_lag_records" in exprs:
                assert _thresholds(p) == [int(lag.group(1))], p["title"]
                checked += 1
    assert checked >= 9


def test_every_query_reads_defined_recorded_or_pending_metrics() -> None:
    defined, recorded = defined_names(), recorded_names()
    pending = set(generator_common().PENDING_METRICS)
    assert not pending & defined, "exported now: its panels are checked like any other"
    used: set[str] = set()
    for q in queries():
        names = metrics_in(q.expr)
        assert names, q.key
        unknown = names - defined - recorded - pending - {"ALERTS"}
        assert not unknown, (q.key, unknown)
        used |= names
    # every recording rule is used by a panel, every pending name by at least one
    assert recorded <= used, recorded - used
    assert pending <= used, pending - used
    # the recording rules themselves read only defined metrics and other recorded series
    rules = yaml.safe_load((RULES / "recording.yml").read_text())
    for r in (r for g in rules["groups"] for r in g["rules"]):
        assert metrics_in(r["expr"]) <= defined | recorded, r["record"]


def test_alert_links_point_at_the_drill_down_and_its_variables() -> None:
    pair = dashboards()[DRILLDOWN_UID]
    slug = re.sub(r"[^a-z0-9]+", "-", pair["title"].lower()).strip("-")
    assert slug == DRILLDOWN_SLUG
    variables = {v["name"]: v for v in pair["templating"]["list"]}
    assert {"exchange", "symbol"} <= set(variables)
    assert "$exchange" in variables["symbol"]["query"]
    # the overview's table links there with both variables
    overview = json.dumps(dashboards()["cascade-overview"])
    assert f"/d/{DRILLDOWN_UID}/{DRILLDOWN_SLUG}?var-exchange=" in overview


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    cmd = kustomize_command()
    if cmd is None:
        pytest.skip("neither kubectl nor kustomize is installed (.ci/run installs kustomize)")
    out = {}
    for overlay in OVERLAYS:
        res = subprocess.run([*cmd, str(ROOT / "deploy/k8s/overlays" / overlay)],
                             capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
        assert res.returncode == 0, res.stderr
        out[overlay] = [d for d in yaml.safe_load_all(res.stdout) if d]
    return out


def test_every_dashboard_is_in_a_configmap_the_grafana_sidecar_loads(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    committed = {f.name: f.read_text(encoding="utf-8") for f in DASHBOARDS.glob("*.json")}
    for overlay, docs in rendered.items():
        labelled = [d for d in docs if d["kind"] == "ConfigMap"
                    and d["metadata"].get("labels", {}).get(SIDECAR_LABEL[0]) == SIDECAR_LABEL[1]]  # fmt: skip
        carried = {k: v for d in labelled for k, v in d["data"].items()}
        assert carried == committed, overlay
        for d in labelled:
            assert len(d["data"]) == 1, d["metadata"]["name"]  # one dashboard per ConfigMap
            assert len(json.dumps(d)) < APPLY_LIMIT, d["metadata"]["name"]
            assert not re.search(r"-[a-z0-9]{10}$", d["metadata"]["name"]), "hashed name"


def test_recording_rules_are_in_a_prometheus_rule_equal_to_the_rules_file(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    rules = yaml.safe_load((RULES / "recording.yml").read_text())
    for overlay, docs in rendered.items():
        found = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PrometheusRule"}
        assert found["cascade-monitor-recording"]["spec"] == {"groups": rules["groups"]}, overlay
