"""A decoded record's columns as NumPy arrays, and the codes the kernels use. Pure module.

``batch_arrays(batch)`` turns one decoded record (``monitor.core.codec.Batch``) into arrays, one
``np.asarray`` call per column; a column that cannot be converted at all raises CodecError before
anything is applied. Unusable values in a convertible column (NaN, negative notional, ...) are left
for ``consumers.models.screening.screen_rows`` to reject row by row.

Sides: liquidations keep three slots, long=0 / short=1 / unknown=2 (a venue that does not say which
position was closed still moved notional); trades keep the taker side, buy=0 / sell=1, so traded
notional and its decayed rates are available per side (VPIN, signed flow). A side string outside
these is coded -1 (and screened out).

Coverage: each liquidation carries the venue's ``coverage`` (``monitor.core.schema.Coverage``),
coded by its position in ``COVERAGES`` (-1: a value this build does not know). ``observed_modes``
turns coverage codes into how the sampling-aware branching ratio reads a pair's liquidations
(docs/risk-models.md §2.5): a feed that keeps one liquidation per window (``SAMPLED_COVERAGES``)
as present/absent per second (``OBS_BINARY``), every other feed as counts per second
(``OBS_COUNTS``), an unknown one too.

Market context (``CONTEXT_FIELDS``) is kept per pair as the latest value of each field;
``derived_context`` fills open interest in USD where the venue gives only base units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from consumers.models.sampled_hawkes import OBS_BINARY, OBS_COUNTS
from monitor.core.codec import Batch
from monitor.core.errors import CodecError
from monitor.core.schema import Coverage, OrderSide, Side

LIQ_SIDES: Final = (Side.LONG.value, Side.SHORT.value, Side.UNKNOWN.value)  # codes 0, 1, 2
TAKER_SIDES: Final = (OrderSide.BUY.value, OrderSide.SELL.value)  # codes 0, 1
_LIQ_CODE: Final = {s: i for i, s in enumerate(LIQ_SIDES)}
_TAKER_CODE: Final = {s: i for i, s in enumerate(TAKER_SIDES)}
COVERAGES: Final = tuple(c.value for c in Coverage)  # codes 0.. in this order; -1: unknown
_COVERAGE_CODE: Final = {s: i for i, s in enumerate(COVERAGES)}
SAMPLED_COVERAGES: Final = frozenset({  # at most one liquidation per window of 1 s is kept
    Coverage.SAMPLED_LATEST_1S, Coverage.SAMPLED_PER_CONTRACT_1S, Coverage.LARGEST_PER_SIDE_1S,
})  # fmt: skip
# observation mode by coverage code + 1 (index 0: unknown, -1)
_MODE_BY_CODE: Final = np.array(
    [OBS_COUNTS] + [OBS_BINARY if c in SAMPLED_COVERAGES else OBS_COUNTS for c in Coverage],
    np.int8,
)
NO_COVERAGE: Final = np.empty(0, np.int8)  # BatchArrays built without coverage codes
NO_COVERAGE.flags.writeable = False

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
PairKey = tuple[str, str]  # (exchange, symbol)


class BatchArrays(NamedTuple):
    """One record's columns as arrays; ``t_*`` in event seconds, ``side`` codes -1 if unknown."""

    exchange: str
    symbol: str
    liq_t: F64
    liq_side: npt.NDArray[np.int8]
    liq_notional: F64
    trd_t: F64
    trd_side: npt.NDArray[np.int8]
    trd_notional: F64
    trd_price: F64
    recv_ns: I64  # liquidations then trades
    # per liquidation, its COVERAGES code (-1: unknown); empty when the caller does not say
    liq_coverage: I8 = NO_COVERAGE

    @property
    def n_events(self) -> int:
        return int(self.liq_t.shape[0] + self.trd_t.shape[0])


# Market-context columns kept per pair (codec names), in this order.
CONTEXT_FIELDS: Final = ("mark", "index", "funding", "oi_base", "oi_usd")


def derived_context(ctx: F64) -> F64:
    """A copy where open interest in USD, when the venue gives only base units (Binance), is
    derived as base x the latest mark price."""
    out = ctx.copy()
    oi_usd, oi_base, mark = (CONTEXT_FIELDS.index(f) for f in ("oi_usd", "oi_base", "mark"))
    missing = np.isnan(out[:, oi_usd])
    out[missing, oi_usd] = out[missing, oi_base] * out[missing, mark]  # NaN stays NaN
    return out


def _codes(col: Sequence[Any], table: dict[str, int]) -> npt.NDArray[np.int8]:
    return np.fromiter((table.get(v, -1) for v in col), dtype=np.int8, count=len(col))


def observed_modes(coverage: I8) -> I8:
    """``OBS_BINARY`` for the sampled coverage codes, ``OBS_COUNTS`` for the others and -1."""
    return _MODE_BY_CODE[coverage.astype(np.intp) + 1]


def batch_arrays(batch: Batch) -> BatchArrays:
    """Convert a decoded record's columns; CodecError if a column cannot be converted."""
    liq, trd = batch.liq, batch.trd
    try:
        if liq:
            liq_t = np.asarray(liq["ts_ms"], dtype=np.int64) / 1000.0
            liq_side = _codes(liq["side"], _LIQ_CODE)
            liq_q = np.asarray(liq["notional_usd"], dtype=np.float64)
            liq_recv = np.asarray(liq["recv_ns"], dtype=np.int64)
            liq_cov = _codes(liq["coverage"], _COVERAGE_CODE)
        else:
            liq_t, liq_q = np.empty(0), np.empty(0)
            liq_side, liq_recv = np.empty(0, np.int8), np.empty(0, np.int64)
            liq_cov = NO_COVERAGE
        if trd:
            trd_t = np.asarray(trd["ts_ms"], dtype=np.int64) / 1000.0
            trd_side = _codes(trd["taker"], _TAKER_CODE)
            trd_q = np.asarray(trd["notional_usd"], dtype=np.float64)
            trd_px = np.asarray(trd["price"], dtype=np.float64)
            recv = np.asarray(trd["recv_ns"], dtype=np.int64)
            recv = np.concatenate((liq_recv, recv)) if liq_recv.size else recv
        else:
            trd_t, trd_q, trd_px = np.empty(0), np.empty(0), np.empty(0)
            trd_side, recv = np.empty(0, np.int8), liq_recv
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"column conversion failed: {exc}") from None
    return BatchArrays(batch.exchange, batch.symbol, liq_t, liq_side, liq_q, trd_t, trd_side, trd_q,
                       trd_px, recv, liq_cov)  # fmt: skip
