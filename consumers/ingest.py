"""One Kafka record value -> the risk state: decode, drop repeats, convert, apply. Pure module.

The consumer service (Kafka I/O, offsets, warm-up) and the backtest (recordings, no Kafka) both
turn records into state through ``RecordIngest.apply``, so a backtest computes exactly what the
live consumer computes:

1. ``decode_batch`` (a ``CodecError`` is reported as ``empty`` / ``invalid``);
2. the record's exchange must be the consumer's (``wrong_exchange``);
3. ``batch_arrays`` (``bad_column`` when a column cannot be converted);
4. ``EventIdWindow.filter`` drops the liquidations and trades already applied (venue replays,
   producer restarts), in warm-up replay too, so the window is rebuilt with the state;
5. ``RiskState.apply_arrays`` and ``apply_context`` (``replay``: decayed state only).

The caller counts and logs what it reports (``Ingested``): the service in Prometheus metrics, the
backtest in its summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from consumers.columns import batch_arrays
from consumers.dedup import EventIdWindow
from consumers.models.bundle import ModelParams
from consumers.state import RiskState
from monitor.core.codec import Batch, decode_batch
from monitor.core.config import Config
from monitor.core.errors import CodecError

_NO_RECV = np.empty(0, np.int64)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one record did. ``error`` is a decode-error reason (then nothing was applied)."""

    liquidations: int = 0  # applied (live) or rebuilt (replay)
    trades: int = 0
    contexts: int = 0
    duplicates: int = 0  # liquidations and trades dropped as already applied
    events: int = 0  # events the record carried (applied, skipped by the state, duplicates)
    recv_ns: npt.NDArray[np.int64] = field(default_factory=lambda: _NO_RECV)  # of those kept
    batch: Batch | None = None  # the decoded record, repeats removed
    error: str | None = None
    detail: str = ""


class RecordIngest:
    """Applies one exchange's records to ``state`` through an ``EventIdWindow``."""

    def __init__(self, exchange: str, state: RiskState, dedup: EventIdWindow) -> None:
        self.exchange = exchange
        self.state = state
        self.dedup = dedup

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        exchange: str,
        *,
        on_skip: Callable[[str, int], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> RecordIngest:
        """The state and id window a consumer of ``exchange`` runs with ``cfg``."""
        c = cfg.consumer
        state = RiskState(
            c.max_pairs, vol_interval_s=c.vol_interval_s, vol_lambda=c.vol_lambda,
            on_skip=on_skip, wall_clock=wall_clock, late_tolerance_s=c.late_tolerance_s,
            models=ModelParams.from_config(cfg.risk),
        )  # fmt: skip
        return cls(
            exchange, state, EventIdWindow(c.dedup_liquidation_window_s, c.dedup_trade_window_s)
        )

    def decode(self, value: bytes | None) -> tuple[Batch | None, str | None, str]:
        """Steps 1-2: ``(batch, None, "")``, or ``(None, reason, detail)``."""
        if not value:
            return None, "empty", "empty record value"
        try:
            batch = decode_batch(value)
        except CodecError as exc:
            return None, "invalid", str(exc)
        if batch.exchange != self.exchange:
            return None, "wrong_exchange", batch.exchange
        return batch, None, ""

    def apply(self, value: bytes | None, *, replay: bool = False) -> Ingested:
        batch, error, detail = self.decode(value)
        if batch is None:
            return Ingested(error=error, detail=detail)
        return self.apply_batch(batch, replay=replay)

    def apply_batch(self, batch: Batch, *, replay: bool = False) -> Ingested:
        """Steps 3-5 on a decoded record of this exchange (columns are converted first, so the
        id window only ever sees valid records)."""
        try:
            arrays = batch_arrays(batch)
            batch, dup_liq, dup_trd = self.dedup.filter(batch)
            dups = dup_liq + dup_trd
            if dups:  # rare: convert what is left
                arrays = batch_arrays(batch)
        except CodecError as exc:
            return Ingested(error="bad_column", detail=str(exc))
        applied = self.state.apply_arrays(arrays, replay=replay)
        contexts = self.state.apply_context(batch)
        return Ingested(
            liquidations=applied.liquidations,
            trades=applied.trades,
            contexts=contexts,
            duplicates=dups,
            events=arrays.n_events + batch.n_contexts + dups,
            recv_ns=arrays.recv_ns,
            batch=batch,
        )
