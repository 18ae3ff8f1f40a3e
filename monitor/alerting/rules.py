"""Alert rules with hysteresis, evaluated on event time as risk values update. Pure module.

A rule watches one risk value (any field of ``monitor.riskrecord.FIELDS``: the composite ``score``
or one of its inputs) for pairs matching an exchange and symbol glob (or an asset), with a level per
severity, a ``for`` duration, a resolve level and a cooldown::

    [[alerts.rules]]
    name = "cascade-risk"
    metric = "score"
    exchange = "*"            # glob
    symbol = "BTC-*"          # glob; or asset = "BTC"
    op = ">="                 # or "<="
    warning = 0.6
    critical = 0.8
    resolve = 0.5             # hysteresis: firing until the value is back below this
    for_s = 30
    cooldown_s = 300
    summary = "{severity}: cascade risk {value:.2f} on {exchange} {symbol}"

Semantics, per (rule, exchange, symbol), on the values observed at event time ``t``:

* a severity's condition (``value >= level`` for ``>=``) must hold at every observation for
  ``for_s`` before the alert fires at that severity (a missing value, NaN, neither breaks nor
  extends the run: data gaps do not fire or resolve anything);
* a firing alert escalates to critical the same way, and never de-escalates: it stays at its
  severity until the value crosses back past ``resolve`` (hysteresis: a value oscillating around
  the warning level, above ``resolve``, keeps one firing alert instead of a flood);
* resolving emits a ``resolved`` event and starts the cooldown: no new firing before
  ``t_resolved + cooldown_s``;
* every transition is an ``AlertEvent`` with a stable fingerprint (blake2b of rule, exchange,
  symbol), so receivers and the dispatcher can group and deduplicate.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

import orjson

from monitor.errors import CodecError, ConfigError
from monitor.riskrecord import FIELDS, asset_of

SEVERITIES: Final = ("warning", "critical")
OPS: Final = (">=", "<=")
_KEYS: Final = frozenset({"name", "metric", "exchange", "symbol", "asset", "op", "warning",
                          "critical", "resolve", "for_s", "cooldown_s", "summary", "labels"})  # fmt: skip


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

    def matches(self, exchange: str, symbol: str) -> bool:
        if self.asset is not None and asset_of(symbol) != self.asset:
            return False
        return fnmatch.fnmatchcase(exchange, self.exchange) and fnmatch.fnmatchcase(
            symbol, self.symbol
        )

    def beyond(self, value: float, level: float) -> bool:
        return value >= level if self.op == ">=" else value <= level

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
    rule = Rule(
        name=name, metric=metric, warning=warning, critical=critical, resolve=resolve, op=op,
        exchange=strs["exchange"] or "*", symbol=strs["symbol"] or "*", asset=strs["asset"],
        for_s=for_s, cooldown_s=cooldown_s, summary=strs["summary"] or Rule.summary,
        labels=dict(labels),
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


DEFAULT_RULES: Final = (
    Rule("cascade-risk", "score", warning=0.6, critical=0.8, resolve=0.5, for_s=30.0,
         cooldown_s=300.0,
         summary="{severity}: cascade risk {value:.2f} on {exchange} {symbol} ({drivers})"),
    Rule("self-exciting-liquidations", "branching_ratio", warning=0.9, critical=None,
         resolve=0.8, for_s=120.0, cooldown_s=600.0),
)  # fmt: skip


def fingerprint(rule: str, exchange: str, symbol: str) -> str:
    return hashlib.blake2b(f"{rule}\0{exchange}\0{symbol}".encode(), digest_size=8).hexdigest()


def render(
    rule: Rule, severity: str, exchange: str, symbol: str, value: float,
    drivers: Iterable[tuple[str, float]],
) -> str:  # fmt: skip
    d = ", ".join(f"{n} {w:.2f}" for n, w in drivers) or "-"
    return rule.summary.format(severity=severity, metric=rule.metric, value=value,
                               exchange=exchange, symbol=symbol, rule=rule.name, drivers=d)  # fmt: skip


Drivers = Iterable[tuple[str, float]] | Callable[[], Iterable[tuple[str, float]]]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    fingerprint: str
    rule: str
    status: str  # "firing" | "resolved"
    severity: str
    exchange: str
    symbol: str
    metric: str
    value: float
    t: float  # event time of the transition, seconds
    started_t: float  # when the firing alert started
    summary: str
    labels: Mapping[str, str]
    drivers: tuple[tuple[str, float], ...] = ()  # score components that drove it, largest first
    received_ts: float = math.nan  # wall-clock receive time of the triggering event (latency)

    def encode(self) -> bytes:
        """The alerts-topic value (JSON); the record key is the fingerprint."""
        d = {f: getattr(self, f) for f in self.__slots__}
        d["drivers"] = [list(x) for x in self.drivers]
        return orjson.dumps(d, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_alert(raw: bytes) -> AlertEvent:
    """Inverse of ``AlertEvent.encode``; CodecError on anything that is not one."""
    try:
        d = orjson.loads(raw)
        if not isinstance(d, dict):
            raise TypeError("not an object")
        d["drivers"] = tuple((str(n), float(w)) for n, w in d.get("drivers", ()))
        d["labels"] = {str(k): str(v) for k, v in d["labels"].items()}
        for f in ("value", "t", "started_t", "received_ts"):
            d[f] = math.nan if d.get(f) is None else float(d[f])
        ev = AlertEvent(**d)
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError) as exc:
        raise CodecError(f"not an alert event: {exc}") from None
    if ev.status not in ("firing", "resolved") or ev.severity not in SEVERITIES:
        raise CodecError(f"alert event: bad status/severity {ev.status!r}/{ev.severity!r}")
    return ev


@dataclass(slots=True)
class _State:
    since: dict[str, float] = field(default_factory=dict)  # severity -> condition held since
    firing: str | None = None
    started_t: float = math.nan
    quiet_until: float = -math.inf  # cooldown after a resolve


class RuleEngine:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        self._state: dict[tuple[str, str, str], _State] = {}
        self._received_ts = math.nan
        self._drivers_src: Drivers = ()
        self._drivers: tuple[tuple[str, float], ...] | None = None

    def observe(
        self, t: float, exchange: str, symbol: str, values: Mapping[str, float],
        drivers: Drivers = (), received_ts: float = math.nan,
    ) -> list[AlertEvent]:  # fmt: skip
        """Feed one pair's values at event time ``t``; returns the transitions. ``drivers`` (the
        score components behind the values) may be a callable: it is then called only when a
        transition needs them. ``received_ts`` (wall clock of the triggering event's receipt)
        rides along for latency measurement."""
        out: list[AlertEvent] = []
        self._drivers_src, self._drivers = drivers, None
        self._received_ts = received_ts
        for rule in self.rules:
            if not rule.matches(exchange, symbol):
                continue
            v = values.get(rule.metric, math.nan)
            if math.isnan(v):
                continue
            key = (rule.name, exchange, symbol)
            st = self._state.get(key)
            if st is None:
                st = self._state[key] = _State()
            ev = self._step(rule, st, t, exchange, symbol, v)
            if ev is not None:
                out.append(ev)
        return out

    def _step(
        self, rule: Rule, st: _State, t: float, exchange: str, symbol: str, v: float,
    ) -> AlertEvent | None:  # fmt: skip
        levels = {"warning": rule.warning, "critical": rule.critical}
        for sev in SEVERITIES:
            lvl = levels[sev]
            if lvl is not None and rule.beyond(v, lvl):
                st.since.setdefault(sev, t)
            else:
                st.since.pop(sev, None)
        if st.firing is not None:
            if not rule.beyond(v, rule.resolve) or v == rule.resolve:
                ev = self._event(rule, st, "resolved", st.firing, t, exchange, symbol, v)
                st.firing, st.since, st.quiet_until = None, {}, t + rule.cooldown_s
                return ev
            if st.firing == "warning" and _held(st, "critical", t, rule.for_s):
                st.firing = "critical"
                return self._event(rule, st, "firing", "critical", t, exchange, symbol, v)
            return None
        if t < st.quiet_until:
            return None
        for sev in reversed(SEVERITIES):
            if _held(st, sev, t, rule.for_s):
                st.firing, st.started_t = sev, t
                return self._event(rule, st, "firing", sev, t, exchange, symbol, v)
        return None

    def _event(
        self, rule: Rule, st: _State, status: str, sev: str, t: float, exchange: str, symbol: str,
        v: float,
    ) -> AlertEvent:  # fmt: skip
        if self._drivers is None:
            src = self._drivers_src
            self._drivers = tuple(src() if callable(src) else src)
        drv = self._drivers
        return AlertEvent(
            fingerprint=fingerprint(rule.name, exchange, symbol), rule=rule.name, status=status,
            severity=sev, exchange=exchange, symbol=symbol, metric=rule.metric, value=v, t=t,
            started_t=st.started_t, summary=render(rule, sev, exchange, symbol, v, drv),
            labels=dict(rule.labels), drivers=drv, received_ts=self._received_ts,
        )  # fmt: skip

    def firing(self) -> dict[str, str]:
        """fingerprint -> severity of every firing alert."""
        return {
            fingerprint(r, x, s): st.firing
            for (r, x, s), st in self._state.items()
            if st.firing is not None
        }


def _held(st: _State, sev: str, t: float, for_s: float) -> bool:
    since = st.since.get(sev)
    return since is not None and t - since >= for_s
