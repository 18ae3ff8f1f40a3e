"""Alert rules with hysteresis, evaluated on event time as risk values update. Pure module.

A rule watches one risk value (any field of ``monitor.core.riskrecord.FIELDS``: the composite ``score``
or one of its inputs) for pairs matching an exchange and symbol glob (or an asset), with a level per
severity, a ``for`` duration, a resolve level and a cooldown::

    [[alerts.rules]]
    name = "cascade-risk"
    metric = "score"
    exchange = "*"            # glob
    symbol = "BTC-*"          # glob; or asset = "BTC"
    scope = "pair"            # pair (default), venue (the venue-wide row, symbol "*") or any
    op = ">="                 # or "<="
    warning = 0.6
    critical = 0.8
    resolve = 0.5             # hysteresis: firing until the value is back below this
    for_s = 30
    cooldown_s = 300
    summary = "{severity}: cascade risk {value:.2f} on {exchange} {symbol}"

Semantics, per (rule, exchange, symbol), on the values observed at event time ``t``:

* a severity's condition (``value >= level`` for ``>=``, and every ``require`` minimum met: e.g.
  ``require = { liq_rate_60s = 2000 }``) must hold at every observation for ``for_s`` before the
  alert fires at that severity (a missing value, NaN, neither breaks nor extends the run: data
  gaps do not fire or resolve anything; a requirement not met breaks it);
* a firing alert escalates to critical the same way, and never de-escalates: it stays at its
  severity until the value crosses back past ``resolve`` (hysteresis: a value oscillating around
  the warning level, above ``resolve``, keeps one firing alert instead of a flood);
* resolving emits a ``resolved`` event and starts the cooldown: no new firing before
  ``t_resolved + cooldown_s``;
* every transition is an ``AlertEvent`` with a stable fingerprint (blake2b of rule, exchange,
  symbol), so receivers and the dispatcher can group and deduplicate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from monitor.core.alert_rules import SEVERITIES, Rule, render
from monitor.core.alertrecord import AlertEvent, Drivers, fingerprint


@dataclass(slots=True)
class _State:
    since: dict[str, float] = field(default_factory=dict)  # severity -> condition held since
    firing: str | None = None
    started_t: float = math.nan
    quiet_until: float = -math.inf  # cooldown after a resolve


class RuleEngine:
    def __init__(self, rules: Iterable[Rule], *, category: str = "risk") -> None:
        self.rules = list(rules)
        self.category = category  # of every AlertEvent it emits (risk; health: the health watch)
        self._state: dict[tuple[str, str, str], _State] = {}
        self._received_ts = math.nan
        self._drivers_src: Drivers = ()
        self._drivers: tuple[tuple[str, float], ...] | None = None
        self._values: Mapping[str, float] = {}

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
        self._values = values
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
        ok = rule.required(self._values)
        for sev in SEVERITIES:
            lvl = levels[sev]
            if ok and lvl is not None and rule.beyond(v, lvl):
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
            category=self.category,
        )  # fmt: skip

    def active(self, exchange: str, symbol: str) -> bool:
        """Whether an alert of this pair is firing or pending (a condition holding, not yet
        for ``for_s``): the pair must then be evaluated even while it has no events."""
        for rule in self.rules:
            st = self._state.get((rule.name, exchange, symbol))
            if st is not None and (st.firing is not None or st.since):
                return True
        return False

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
