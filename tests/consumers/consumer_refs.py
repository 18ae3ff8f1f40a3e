"""Slow, obvious pure-Python references for the consumer kernels, and event builders for tests."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.schema import (
    Coverage,
    Liquidation,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
)

# ---- decayed flow: the closed form -------------------------------------------------------------


@dataclass
class FlowRef:
    """Keeps every event; rates are the closed-form sum, independent of arrival order."""

    taus: Sequence[float]
    events: dict[tuple[int, int], list[tuple[float, float]]] = field(default_factory=dict)
    cum: dict[tuple[int, int], float] = field(default_factory=dict)
    count: dict[tuple[int, int], int] = field(default_factory=dict)

    def add(self, pair: int, side: int, t: float, q: float) -> None:
        key = (pair, side)
        self.events.setdefault(key, []).append((t, q))
        self.cum[key] = self.cum.get(key, 0.0) + q  # arrival order
        self.count[key] = self.count.get(key, 0) + 1

    def t_last(self, pair: int, side: int) -> float:
        evs = self.events.get((pair, side))
        return max(t for t, _ in evs) if evs else -math.inf

    def rate(self, pair: int, side: int, h: int, now: float) -> float:
        """sum_i (q_i/tau) exp(-(now - t_i)/tau), read at max(now, last event time)."""
        tau = self.taus[h]
        at = max(now, self.t_last(pair, side))
        return sum(
            (q / tau) * math.exp(-(at - t) / tau) for t, q in self.events.get((pair, side), [])
        )


# ---- price and EWMA volatility: walk every interval --------------------------------------------


@dataclass
class _PairVol:
    interval: int | None = None
    last: float = 0.0
    ref: float = 0.0
    s2: float = 0.0
    n: int = 0


@dataclass
class VolRef:
    dt: float
    lam: float
    pairs: dict[int, _PairVol] = field(default_factory=dict)

    def _close(self, st: _PairVol, k: int) -> None:
        """Close interval st.interval with its return, then every empty interval before k."""
        assert st.interval is not None
        r = math.log(st.last / st.ref)
        st.s2 = self.lam * st.s2 + (1 - self.lam) * r**2
        st.n += 1
        for _ in range(k - st.interval - 1):
            st.s2 = self.lam * st.s2 + (1 - self.lam) * 0.0**2  # an empty interval: return 0
            st.n += 1

    def trade(self, pair: int, t: float, price: float) -> None:
        st = self.pairs.setdefault(pair, _PairVol())
        k = math.floor(t / self.dt)
        if st.interval is None:
            st.interval, st.last, st.ref = k, price, price
        elif k == st.interval:
            st.last = price
        elif k > st.interval:
            self._close(st, k)
            st.ref, st.last, st.interval = st.last, price, k

    def variance_at(self, pair: int, now: float) -> float:
        st = self.pairs.get(pair)
        if st is None or st.interval is None:
            return math.nan
        k = math.floor(now / self.dt)
        if k > st.interval:
            tmp = _PairVol(st.interval, st.last, st.ref, st.s2, st.n)
            self._close(tmp, k)
            return tmp.s2
        return st.s2 if st.n > 0 else math.nan


# ---- events ------------------------------------------------------------------------------------

EXCHANGE = "binance"


def venue(symbol: str) -> str:
    return symbol.replace("-PERP", "").replace("-", "")


def liq(
    symbol: str,
    side: str,
    notional: float,
    ts_ms: int,
    *,
    recv_ns: int | None = None,
    exchange: str = EXCHANGE,
    price: float = 100.0,
    coverage: Coverage = Coverage.COMPLETE,
) -> Liquidation:
    return Liquidation(
        exchange=exchange, symbol=symbol, venue_symbol=venue(symbol),
        liquidated_side=Side(side), order_side=OrderSide.SELL if side == "long" else OrderSide.BUY,
        price=price, price_kind=PriceKind.AVG_FILL, qty_raw=notional / price,
        qty_unit=QtyUnit.BASE, contract_multiplier=1.0, qty_base=notional / price,
        notional_usd=notional, coverage=coverage, ts_ms=ts_ms,
        received_ns=recv_ns if recv_ns is not None else ts_ms * 1_000_000,
        event_id=f"l{ts_ms}{side}{notional}",
    )  # fmt: skip


def trade(
    symbol: str,
    taker: str,
    price: float,
    notional: float,
    ts_ms: int,
    *,
    recv_ns: int | None = None,
    exchange: str = EXCHANGE,
) -> Trade:
    return Trade(
        exchange=exchange, symbol=symbol, venue_symbol=venue(symbol),
        taker_side=OrderSide(taker), price=price, qty_raw=notional, qty_unit=QtyUnit.USD,
        contract_multiplier=1.0, qty_base=notional / price if price else 0.0, notional_usd=notional,
        is_liquidation=False, ts_ms=ts_ms,
        received_ns=recv_ns if recv_ns is not None else ts_ms * 1_000_000,
        trade_id=f"t{ts_ms}{taker}{notional}",
    )  # fmt: skip


# ---- /metrics ----------------------------------------------------------------------------------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of generate_latest(registry), parsed back: (name, labels) -> value."""
    text = generate_latest(registry).decode()
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {lab: v for (n, lab), v in samples.items() if n == name}


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(lab)[label] for lab in series(samples, name)}


def sum_by(samples: Samples, name: str, keys: Iterable[str]) -> dict[tuple[str, ...], float]:
    keys = tuple(keys)
    out: dict[tuple[str, ...], float] = {}
    for lab, v in series(samples, name).items():
        d = dict(lab)
        k = tuple(d[x] for x in keys)
        out[k] = out.get(k, 0.0) + v
    return out
