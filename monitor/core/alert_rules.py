"""Alert rule settings: the ``[[alerts.rules]]`` tables, validated, and the default rules. Pure
module (the shared contracts layer): the configuration reads rules with it, and
``monitor.alerting.rules.RuleEngine`` evaluates them. A rule watches one risk value (any field of
``monitor.core.riskrecord.FIELDS``) for pairs matching an exchange and symbol glob (or an asset),
with a level per severity, a ``for`` duration, a resolve level and a cooldown (the semantics are in
``monitor.alerting.rules``).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

from monitor.core.errors import ConfigError
from monitor.core.riskrecord import FIELDS, asset_of
from monitor.core.symbols import VENUE_SYMBOL

SEVERITIES: Final = ("warning", "critical")
OPS: Final = (">=", "<=")
_KEYS: Final = frozenset({"name", "metric", "exchange", "symbol", "asset", "op", "warning",
                          "critical", "resolve", "for_s", "cooldown_s", "summary", "labels",
                          "require", "scope"})  # fmt: skip
SCOPES: Final = ("pair", "venue", "any")


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    warning: float | None
    critical: float | None
    resolve: float
    op: str = ">="
    exchange: str = "*"
    symbol: str = "*"
    asset: str | None = None
    for_s: float = 0.0
    cooldown_s: float = 0.0
    summary: str = "{severity}: {metric} {value:.3g} on {exchange} {symbol} ({rule})"
    labels: Mapping[str, str] = field(default_factory=dict)
    # other values that must be at least these for the condition to hold (a missing or NaN one
    # does not hold): a minimum flow, a minimum score coverage
    require: Mapping[str, float] = field(default_factory=dict)
    scope: str = "pair"  # pair: the venues' pairs; venue: venue-wide rows (symbol "*"); any

    def matches(self, exchange: str, symbol: str) -> bool:
        pooled = symbol == VENUE_SYMBOL
        if (self.scope == "pair" and pooled) or (self.scope == "venue" and not pooled):
            return False
        if self.asset is not None and asset_of(symbol) != self.asset:
            return False
        return fnmatch.fnmatchcase(exchange, self.exchange) and fnmatch.fnmatchcase(
            symbol, self.symbol
        )

    def beyond(self, value: float, level: float) -> bool:
        return value >= level if self.op == ">=" else value <= level

    def required(self, values: Mapping[str, float]) -> bool:
        """Whether every ``require`` minimum holds (NaN or missing: not)."""
        return all(values.get(k, math.nan) >= v for k, v in self.require.items())

    def severity(self, value: float) -> str | None:
        """The highest severity whose level ``value`` reaches, or None."""
        if self.critical is not None and self.beyond(value, self.critical):
            return "critical"
        if self.warning is not None and self.beyond(value, self.warning):
            return "warning"
        return None


def rule_from_dict(d: Mapping[str, Any], where: str) -> Rule:
    """One ``[[alerts.rules]]`` table; ConfigError naming the key for anything wrong."""
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} (known: {sorted(_KEYS)})")
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: a non-empty string is required")
    metric = d.get("metric")
    if metric not in FIELDS:
        raise ConfigError(f"{where}.metric {metric!r}: one of {list(FIELDS)}")
    op = d.get("op", ">=")
    if op not in OPS:
        raise ConfigError(f"{where}.op {op!r}: one of {list(OPS)}")

    def number(key: str, default: float | None = None) -> float | None:
        v = d.get(key, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{where}.{key} {v!r}: a finite number is required")
        return float(v)

    warning, critical = number("warning"), number("critical")
    if warning is None and critical is None:
        raise ConfigError(f"{where}: give a warning and/or a critical level")
    resolve = number("resolve")
    if resolve is None:
        raise ConfigError(f"{where}.resolve: required (the hysteresis level)")
    sign = 1.0 if op == ">=" else -1.0
    if warning is not None and critical is not None and sign * (critical - warning) < 0:
        raise ConfigError(f"{where}: critical must be beyond warning for op {op}")
    lowest = warning if warning is not None else critical
    assert lowest is not None
    if sign * (lowest - resolve) <= 0:
        raise ConfigError(f"{where}.resolve {resolve}: must be on the safe side of {lowest}")
    for_s, cooldown_s = number("for_s", 0.0), number("cooldown_s", 0.0)
    assert for_s is not None and cooldown_s is not None
    if for_s < 0 or cooldown_s < 0:
        raise ConfigError(f"{where}: for_s and cooldown_s must be >= 0")
    strs = {k: d.get(k) for k in ("exchange", "symbol", "asset", "summary")}
    for k, v in strs.items():
        if v is not None and not isinstance(v, str):
            raise ConfigError(f"{where}.{k} {v!r}: a string is required")
    labels = d.get("labels", {})
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ConfigError(f"{where}.labels: a table of strings is required")
    require = d.get("require", {})
    if not isinstance(require, Mapping):
        raise ConfigError(f"{where}.require: a table of metric = minimum is required")
    for k, v in require.items():
        if k not in FIELDS:
            raise ConfigError(f"{where}.require.{k}: one of {list(FIELDS)}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{where}.require.{k} {v!r}: a finite number is required")
    scope = d.get("scope", "pair")
    if scope not in SCOPES:
        raise ConfigError(f"{where}.scope {scope!r}: one of {list(SCOPES)}")
    rule = Rule(
        name=name, metric=metric, warning=warning, critical=critical, resolve=resolve, op=op,
        exchange=strs["exchange"] or "*", symbol=strs["symbol"] or "*", asset=strs["asset"],
        for_s=for_s, cooldown_s=cooldown_s, summary=strs["summary"] or Rule.summary,
        labels=dict(labels), require={k: float(v) for k, v in require.items()}, scope=scope,
    )  # fmt: skip
    try:  # the template must render with the documented names
        render(rule, "warning", "x", "X-USDT-PERP", 1.0, ())
    except (KeyError, ValueError, IndexError) as exc:
        raise ConfigError(f"{where}.summary: bad template ({exc!r})") from None
    return rule


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """The ``[[alerts.rules]]`` table of ``rule`` (``rule_from_dict``'s inverse)."""
    d = {f.name: getattr(rule, f.name) for f in fields(rule)}
    d["labels"] = dict(rule.labels)
    d["require"] = dict(rule.require)
    return {k: v for k, v in d.items() if v is not None}


def require_unique_names(names: Iterable[str], where: str) -> None:
    """A ConfigError listing the names that occur more than once among ``where``'s tables."""
    seen = list(names)
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: duplicate name(s) {dup}")


def rules_from_config(tables: Iterable[Mapping[str, Any]]) -> list[Rule]:
    rules = [rule_from_dict(t, f"alerts.rules[{i}]") for i, t in enumerate(tables)]
    require_unique_names((r.name for r in rules), "alerts.rules")
    return rules


# The defaults: each level and its reason in docs/alerts.md (chosen on the training scenarios,
# seeds 2001-2004, and the shared real hours; measured on the evaluation's seeds 1-17)
DEFAULT_RULES: Final = (
    Rule("liquidation-surge", "liq_surge", warning=8.0, critical=20.0, resolve=4.0, for_s=5.0,
         cooldown_s=300.0,
         summary="{severity}: liquidations at {value:.0f}x their normal rate on {exchange} "
                 "{symbol}"),
    Rule("venue-liquidation-surge", "liq_surge", warning=3.0, critical=8.0, resolve=1.5,
         for_s=5.0, cooldown_s=300.0, scope="venue",
         summary="{severity}: {exchange}'s liquidations at {value:.1f}x their normal rate, "
                 "every pair together"),
    Rule("self-exciting-liquidations", "branching_ratio_lower", warning=0.5, critical=0.8,
         resolve=0.35, for_s=10.0, cooldown_s=600.0, require={"liq_surge": 1.5},
         summary="{severity}: self-exciting liquidations on {exchange} {symbol}: branching "
                 "ratio at least {value:.2f}"),
    Rule("cascade-risk", "score", warning=0.7, critical=0.85, resolve=0.55, for_s=30.0,
         cooldown_s=300.0, require={"score_coverage": 0.6, "liq_surge": 3.0},
         summary="{severity}: cascade risk {value:.2f} on {exchange} {symbol} ({drivers})"),
)  # fmt: skip


def render(
    rule: Rule, severity: str, exchange: str, symbol: str, value: float,
    drivers: Iterable[tuple[str, float]],
) -> str:  # fmt: skip
    d = ", ".join(f"{n} {w:.2f}" for n, w in drivers) or "-"
    return rule.summary.format(severity=severity, metric=rule.metric, value=value,
                               exchange=exchange, symbol=symbol, rule=rule.name, drivers=d)  # fmt: skip
