"""RiskState: pair ids, capacity, column conversion and validation, read-out, snapshot."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.columns import LIQ_SIDES, batch_arrays
from consumers.state import RiskState
from monitor.core.codec import Batch, decode_batch, encode_batch
from monitor.core.errors import CodecError
from monitor.core.schema import Event, Liquidation, MarketContext, Trade
from tests.consumers.consumer_refs import FlowRef, VolRef, liq, trade


def _record(events: list[Event]) -> Batch:
    return decode_batch(encode_batch(events))


class Skips:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, reason: str, n: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_apply_and_snapshot_exact_values() -> None:
    clock = Clock(5000.0)
    st_ = RiskState(8, vol_interval_s=1.0, vol_lambda=0.5, wall_clock=clock)
    n = st_.apply(
        _record(
            [
                liq("BTC-USDT-PERP", "long", 100.0, 1_000_000),
                liq("BTC-USDT-PERP", "short", 30.0, 1_000_000),
                liq("BTC-USDT-PERP", "long", 50.0, 1_000_000),
                trade("BTC-USDT-PERP", "buy", 100.0, 1000.0, 1_000_100),
                trade("BTC-USDT-PERP", "sell", 110.0, 500.0, 1_001_200),
            ]
        )
    )
    assert n == 5
    assert st_.n_pairs == 1 and st_.pair_id("binance", "BTC-USDT-PERP") == 0
    # the event clock: last event time (1001.2 s), then wall time since it was reached
    assert st_.now_s() == 1001.2
    clock.t += 8.5
    assert st_.now_s() == 1001.2 + 8.5
    (row,) = st_.snapshot(1010.0)
    assert (row.exchange, row.symbol) == ("binance", "BTC-USDT-PERP")
    assert row.liq_notional_long == 150.0 and row.liq_notional_short == 30.0
    assert row.liquidations == (2, 1, 0)
    assert row.rate("long", 10) == (100.0 / 10 + 50.0 / 10) * math.exp(-(1010.0 - 1000.0) / 10)
    assert row.rate(1, 300) == (30.0 / 300) * math.exp(-(1010.0 - 1000.0) / 300)
    assert row.rate("unknown", 60) == 0.0
    assert row.trade_notional_usd == 1500.0 and row.trades == 2
    assert row.last_price == 110.0
    # interval 1000 closed by the trade in 1001, then 1001..1009 closed at read-out time:
    # 1001 with ln(110/100), 1002..1009 empty
    v1 = 0.5 * 0.0 + 0.5 * math.log(100.0 / 100.0) ** 2
    v = (0.5 * v1 + 0.5 * math.log(110.0 / 100.0) ** 2) * 0.5**8
    assert row.volatility == math.sqrt(v)


def test_no_trade_means_nan_price_and_volatility() -> None:
    st_ = RiskState(4)
    st_.apply(_record([liq("ETH-USDT-PERP", "unknown", 7.0, 5_000)]))
    (row,) = st_.snapshot(5.0)
    assert math.isnan(row.last_price) and math.isnan(row.volatility)
    assert row.liq_notional_usd == (0.0, 0.0, 7.0) and row.liquidations == (0, 0, 1)
    assert row.rate("unknown", 10) == 0.7


def test_pair_capacity_overflow_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    skips = Skips()
    st_ = RiskState(2, on_skip=skips)
    for sym in ("A-USDT-PERP", "B-USDT-PERP"):
        assert st_.apply(_record([liq(sym, "long", 1.0, 1000)])) == 1
    with caplog.at_level(logging.WARNING, logger="consumers.state"):
        for _ in range(3):
            evs: list[Event] = [liq("C-USDT-PERP", "long", 1.0, 1000)]
            evs.append(trade("C-USDT-PERP", "buy", 10.0, 5.0, 1000))
            assert st_.apply(_record(evs)) == 0
        assert st_.apply(_record([liq("D-USDT-PERP", "short", 1.0, 1000)])) == 0
    assert skips.counts == {"pair_capacity": 7}
    assert st_.n_pairs == 2 and st_.pair_id("binance", "C-USDT-PERP") is None
    msgs = [r.getMessage() for r in caplog.records if "capacity" in r.getMessage()]
    assert len(msgs) == 2 and "C-USDT-PERP" in msgs[0] and "D-USDT-PERP" in msgs[1]
    assert [r.symbol for r in st_.snapshot(2.0)] == ["A-USDT-PERP", "B-USDT-PERP"]
    # existing pairs still work at capacity
    assert st_.apply(_record([liq("B-USDT-PERP", "long", 2.0, 2000)])) == 1


def test_invalid_values_are_skipped_row_by_row() -> None:
    skips = Skips()
    st_ = RiskState(4, on_skip=skips)
    b = _record(
        [
            liq("X-USDT-PERP", "long", 10.0, 1000),
            liq("X-USDT-PERP", "long", math.nan, 1000),  # orjson writes null -> NaN
            liq("X-USDT-PERP", "short", -5.0, 1000),
            trade("X-USDT-PERP", "buy", 0.0, 3.0, 1000),  # price 0
            trade("X-USDT-PERP", "buy", 10.0, math.inf, 1000),
            trade("X-USDT-PERP", "sell", 10.0, 4.0, 1000),
        ]
    )
    b.liq["side"][0] = "sideways"  # an unknown side string
    b.liq["side"].append("short")
    for col in b.liq:
        if col != "side":
            b.liq[col].append(b.liq[col][0])
    assert st_.apply(b) == 2  # the appended short liquidation and the sell trade
    assert skips.counts == {"invalid_value": 5}
    (row,) = st_.snapshot(1.0)
    assert row.liq_notional_usd == (0.0, 10.0, 0.0) and row.trade_notional_usd == 4.0
    assert row.last_price == 10.0


def test_bad_columns_raise_codec_error_and_leave_state_untouched() -> None:
    st_ = RiskState(4)
    b = _record([liq("X-USDT-PERP", "long", 10.0, 1000)])
    b.liq["ts_ms"][0] = None
    with pytest.raises(CodecError):
        batch_arrays(b)
    with pytest.raises(CodecError):
        st_.apply(b)
    b.liq["ts_ms"][0] = "soon"
    with pytest.raises(CodecError):
        st_.apply(b)
    assert st_.n_pairs == 0


def test_apply_arrays_checks_dtypes() -> None:
    st_ = RiskState(4)
    a = batch_arrays(_record([liq("X-USDT-PERP", "long", 10.0, 1000)]))
    with pytest.raises(TypeError):
        st_.apply_arrays(a._replace(liq_notional=a.liq_notional.astype(np.float32)))
    with pytest.raises(TypeError):
        st_.apply_arrays(a._replace(liq_side=a.liq_side.astype(np.int64)))


def test_bytes_per_pair() -> None:
    # liquidations 3 sides x (3 rates + t_last + cum + count), trades 2 sides x the same,
    # price/volatility 5 words, market context 5 values + time, latest event time, and one byte
    # for the latest liquidation's coverage: 8 * (18 + 12 + 5 + 6 + 1) + 1
    st = RiskState(16)
    assert st.bytes_per_pair - st.models.bytes_per_pair == 337
    one = RiskState(16, horizons=(10.0,))
    assert one.bytes_per_pair - one.models.bytes_per_pair == 8 * (3 * 4 + 2 * 4 + 5 + 6 + 1) + 1
    # the models: the Hawkes event buffer (times and marks, 4096 per pair) dominates; the
    # sampling-aware fit keeps 8 * (32 warm-start + 13 output + phase + window end) + 1 (mode)
    assert st.models.sampled.bytes_per_pair == 8 * (32 + 13 + 2) + 1
    assert 4096 * 16 < st.models.bytes_per_pair < 4096 * 16 + 16_000


symbols = st.sampled_from(["A-USDT-PERP", "B-USDT-PERP", "C-USDT-PERP", "D-USDT-PERP"])


@st.composite
def records(draw: st.DrawFn) -> list[list[Event]]:
    out = []
    for _ in range(draw(st.integers(1, 30))):
        sym = draw(symbols)
        evs: list[Event] = []
        for _ in range(draw(st.integers(1, 8))):
            ts = 1_700_000_000_000 + draw(st.integers(0, 600_000))
            q = float(draw(st.integers(0, 10**6)))
            if draw(st.booleans()):
                evs.append(liq(sym, draw(st.sampled_from(LIQ_SIDES)), q, ts))
            else:
                px = draw(st.sampled_from([99.5, 100.0, 100.25, 101.0]))
                evs.append(trade(sym, draw(st.sampled_from(["buy", "sell"])), px, q, ts))
        out.append(evs)
    return out


@settings(deadline=None, max_examples=100)
@given(recs=records(), capacity=st.integers(1, 4), tol=st.sampled_from([0.0, 5.0, 120.0, 1e9]))
def test_state_matches_references_through_the_codec(
    recs: list[list[Event]], capacity: int, tol: float
) -> None:
    skips = Skips()
    st_ = RiskState(capacity, vol_interval_s=1.0, vol_lambda=0.94, on_skip=skips,
                    late_tolerance_s=tol)  # fmt: skip
    flow, vol = FlowRef(st_.horizons_s), VolRef(1.0, 0.94)
    ids: dict[str, int] = {}
    latest: dict[str, float] = {}
    skipped = late = 0
    for evs in recs:
        st_.apply(_record(evs))
        sym = evs[0].symbol
        if sym not in ids and len(ids) < capacity:
            ids[sym] = len(ids)
        if sym not in ids:
            skipped += len(evs)
            continue
        # a record's liquidation rows, then its trade rows (the codec's columns), each row
        # checked against the pair's latest time before the record and earlier rows of its kind
        base = latest.get(sym, -math.inf)
        for kind in (Liquidation, Trade):
            running = base
            for e in evs:
                if not isinstance(e, kind):
                    continue
                t = e.ts_ms / 1000.0
                running = max(running, t)
                if t < running - tol:
                    late += 1  # older than the pair's latest by more than the tolerance: dropped
                    continue
                latest[sym] = max(latest.get(sym, -math.inf), t)
                if isinstance(e, Liquidation):
                    p = ids[sym]
                    flow.add(p, LIQ_SIDES.index(e.liquidated_side.value), t, e.notional_usd)
                else:
                    vol.trade(ids[sym], t, e.price)
    assert skips.counts.get("pair_capacity", 0) == skipped
    assert skips.counts.get("too_late", 0) == late
    now = 1_700_000_000.0 + 700.0
    rows = {r.symbol: r for r in st_.snapshot(now)}
    assert set(rows) == set(ids)
    for sym, p in ids.items():
        r = rows[sym]
        for j in range(3):
            assert r.liq_notional_usd[j] == flow.cum.get((p, j), 0.0)
            assert r.liquidations[j] == flow.count.get((p, j), 0)
            for h, tau in enumerate(st_.horizons_s):
                want = flow.rate(p, j, h, now)
                assert math.isclose(r.rate(j, tau), want, rel_tol=1e-9, abs_tol=1e-290)
        want_var = vol.variance_at(p, now)
        if math.isnan(want_var):
            assert math.isnan(r.volatility)
        else:
            assert math.isclose(r.volatility**2, want_var, rel_tol=1e-9, abs_tol=1e-300)


def test_market_context_keeps_the_latest_value_of_each_field() -> None:

    def ctx(ts: int, **kw: float | None) -> MarketContext:
        fields: dict[str, float | None] = dict.fromkeys(
            ("mark_price", "index_price", "funding_rate", "open_interest_base",
             "open_interest_usd"), None)  # fmt: skip
        fields.update(kw)
        return MarketContext("okx", "BTC-USDT-PERP", "BTC-USDT-SWAP", next_funding_ms=None,
                             ts_ms=ts, received_ns=ts * 10**6, **fields)  # type: ignore[arg-type]  # fmt: skip

    state = RiskState(4)
    batch = decode_batch(encode_batch([
        ctx(1000, mark_price=95000.5, funding_rate=0.0001),
        ctx(2000, open_interest_base=10.0, open_interest_usd=950005.0),
        ctx(1500, mark_price=1.0, index_price=94990.0),  # late: only fills the unknown index
        ctx(3000, mark_price=94000.0, funding_rate=float("nan")),  # NaN never overwrites
    ]))  # fmt: skip
    assert state.apply_context(batch) == 4
    (row,) = state.snapshot(state.now_s())
    assert (row.mark_price, row.funding_rate, row.open_interest_usd) == (94000.0, 0.0001, 950005.0)
    r = state.read(state.now_s())
    assert r.context[0].tolist() == [94000.0, 94990.0, 0.0001, 10.0, 950005.0]


def test_open_interest_in_usd_is_derived_from_base_and_mark_when_missing() -> None:
    base = {"exchange": "binance", "symbol": "BTC-USDT-PERP", "venue_symbol": "BTCUSDT",
            "index_price": None, "funding_rate": None, "next_funding_ms": None,
            "open_interest_usd": None}  # fmt: skip
    state = RiskState(4)
    batch = decode_batch(encode_batch([
        MarketContext(**base, mark_price=None, open_interest_base=10.5, ts_ms=1000,
                      received_ns=1),  # type: ignore[arg-type]
        MarketContext(**base, mark_price=95000.0, open_interest_base=None, ts_ms=2000,
                      received_ns=2),  # type: ignore[arg-type]
    ]))  # fmt: skip
    state.apply_context(batch)
    (row,) = state.snapshot(state.now_s())
    assert row.open_interest_usd == 10.5 * 95000.0
    assert RiskState(4).read(0.0).context.shape == (0, 5)
