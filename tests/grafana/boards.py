"""The shipped dashboards as the tests read them: every query of every panel and annotation, the
generator's table of pending metrics, and every metric name the monitor's code defines."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from consumers.aggregator import ASSET_METRICS, POOLED_METRICS
from monitor.app.run import SupervisorMetrics
from monitor.core.metrics import (
    NAMESPACE,
    RISK_METRICS,
    ConsumerMetrics,
    DispatcherMetrics,
    ProducerMetrics,
)

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
K8S_DASHBOARDS = ROOT / "deploy" / "k8s" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"


def generator_common() -> ModuleType:
    """deploy/grafana/boards/common.py, loaded as the generator loads it (``boards.common``)."""
    if "boards.common" not in sys.modules:
        sys.path.insert(0, str(GRAFANA))
        try:
            spec = importlib.util.find_spec("boards.common")
            assert spec is not None and spec.origin is not None
            assert Path(spec.origin).parent == GRAFANA / "boards", spec.origin
            importlib.import_module("boards.common")
        finally:
            sys.path.remove(str(GRAFANA))
    return sys.modules["boards.common"]


def dashboards() -> dict[str, dict[str, Any]]:
    """uid -> the committed dashboard JSON."""
    out = {}
    for f in sorted(DASHBOARDS.glob("*.json")):
        d = json.loads(f.read_text(encoding="utf-8"))
        out[d["uid"]] = d
    return out


@dataclass(frozen=True)
class Query:
    dashboard: str  # uid
    panel: str  # panel title, or "annotation: <name>"
    ref: str  # refId, or "" for an annotation
    expr: str
    legend: str
    instant: bool

    @property
    def key(self) -> str:
        return (
            f"{self.dashboard} / {self.panel} / {self.ref}"
            if self.ref
            else (f"{self.dashboard} / {self.panel}")
        )


def panels(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row (rows are flat in these dashboards: none is collapsed)."""
    for p in d["panels"]:
        if p["type"] != "row":
            yield p
        else:
            assert not p.get("collapsed") and not p.get("panels"), p["title"]


def queries() -> list[Query]:
    out = []
    for uid, d in dashboards().items():
        for p in panels(d):
            for t in p["targets"]:
                out.append(Query(uid, p["title"], t["refId"], t["expr"], t.get("legendFormat", ""),
                                 bool(t.get("instant"))))  # fmt: skip
        for a in d.get("annotations", {}).get("list", []):
            out.append(
                Query(uid, f"annotation: {a['name']}", "", a["expr"], a["titleFormat"], False)
            )
    return out


KEYWORDS = {"and", "or", "unless", "bool", "offset"}


def metrics_in(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers left once strings, label matchers, ranges,
    groupings, offsets and dashboard variables are taken out, other than function calls and
    keywords."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\$\{[^}]*\}|\$\w+", "", s)
    s = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", s)
    s = re.sub(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    s = re.sub(r"\boffset\s+\S+", "", s)
    found = re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?", s)
    return {m.group(0) for m in found if not m.group(1) and m.group(0) not in KEYWORDS}


def recorded_names() -> set[str]:
    """The series the shipped recording rules create."""
    rules = yaml.safe_load((RULES / "recording.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"]}


def defined_names() -> set[str]:
    """Every sample name the monitor's code can export (metric classes built on a fresh registry,
    the scrape-time risk and asset families), with the suffixes Prometheus stores."""
    reg = CollectorRegistry()
    for cls in (ProducerMetrics, ConsumerMetrics, DispatcherMetrics, SupervisorMetrics):
        cls(reg)
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    for fam in reg.collect():
        names |= {fam.name + s for s in suffixes.get(fam.type, ("",))}
    for m in RISK_METRICS.values():
        names.add(m.name + ("_total" if m.kind == "counter" else ""))
    names |= {f"{NAMESPACE}_asset_{name}" for name, _ in ASSET_METRICS.values()}
    names |= {f"{NAMESPACE}_asset_venues", f"{NAMESPACE}_asset_worst_pair_info"}
    names |= {f"{NAMESPACE}_{name}" for name, _ in POOLED_METRICS.values()}
    return names
