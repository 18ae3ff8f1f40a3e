"""Event ids a consumer has applied, so a venue's replay or a producer restart adds nothing.

Pure module (stdlib only). The producers drop repeats they see themselves, but their memory dies
with them: after a producer restart, a venue's replay on subscribe (OKX's first
``liquidation-orders`` push, BitMEX's ``partial`` of open forced orders, snapshots of recent
trades) reaches Kafka again. The consumer is where the events are counted, so it keeps the ids it
applied, per pair and per kind (liquidation event ids, trade ids), for a window of that pair's
event time, and drops a record's events whose id it has seen. The window is rebuilt on start
from Kafka history together with the state (the warm-up replay runs the same filter), so a
restarted consumer drops the same repeats as one that never stopped.

Window, per pair: ids whose event time is within ``window_s`` of the newest event time seen for
that pair. Any event older than the pair's newest by more than the state's late tolerance is
dropped by ``RiskState`` anyway (``too_late``), so a window at least that long covers every repeat
that could still be counted; liquidations keep a longer one (BitMEX re-emits an open forced order
with its receipt time, minutes after the insert). Memory is bounded by a per-pair cap on ids
(``max_ids``): past it, the oldest ids go first.

Cost: a record whose ids are all new (nearly all) is checked and added by two C-level passes
(``dict.keys().isdisjoint`` and ``dict.update``); pruning is amortised (a pair's table is swept
when it has doubled since the last sweep).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from monitor.core.codec import Batch
from monitor.core.errors import CodecError

MIN_SWEEP: Final = 1024  # a pair's table is not swept below this many ids


@dataclass(slots=True)
class _Ids:
    seen: dict[Any, int]  # id -> event time, ms
    newest_ms: int = -(2**62)
    sweep_at: int = MIN_SWEEP


class EventIdWindow:
    """The applied ids of one consumer's pairs (see the module docstring)."""

    def __init__(self, liq_window_s: float, trade_window_s: float, max_ids: int = 500_000) -> None:
        if not (liq_window_s > 0 and trade_window_s > 0 and max_ids > 0):
            raise ValueError("windows and max_ids must be > 0")
        self._windows_ms = (int(liq_window_s * 1000), int(trade_window_s * 1000))
        self.max_ids = max_ids
        self._pairs: dict[tuple[str, str, int], _Ids] = {}

    def __len__(self) -> int:
        """Ids held, all pairs and kinds."""
        return sum(len(x.seen) for x in self._pairs.values())

    def filter(self, batch: Batch) -> tuple[Batch, int, int]:
        """``batch`` without the liquidations and trades already applied (or repeated within
        it), and the counts dropped (liquidations, trades). The kept ids are remembered. The
        record's ``ts_ms`` columns must be integers (``batch_arrays`` checks them); an id that is
        not a string or a number is a CodecError."""
        try:
            liq, n_liq = self._columns(batch, batch.liq, 0)
            trd, n_trd = self._columns(batch, batch.trd, 1)
        except TypeError as exc:  # an unhashable id (a list, an object)
            raise CodecError(f"id column: {exc}") from None
        if not (n_liq or n_trd):
            return batch, 0, 0
        out = Batch(batch.exchange, batch.symbol, batch.venue_symbol, liq, trd, batch.ctx)
        return out, n_liq, n_trd

    def _columns(
        self, batch: Batch, cols: dict[str, list[Any]], kind: int
    ) -> tuple[dict[str, list[Any]], int]:
        if not cols:
            return cols, 0
        ids: list[Any] = cols["id"]
        ts: list[int] = cols["ts_ms"]
        key = (batch.exchange, batch.symbol, kind)
        entry = self._pairs.get(key)
        if entry is None:
            entry = self._pairs[key] = _Ids({})
        seen = entry.seen
        newest = max(ts)
        entry.newest_ms = max(entry.newest_ms, newest)
        if seen.keys().isdisjoint(ids):
            before = len(seen)
            seen.update(zip(ids, ts, strict=True))
            if len(seen) - before == len(ids):  # all new, none repeated within the record
                self._maybe_sweep(entry, kind)
                return cols, 0
            keep = _first_occurrences(ids)  # repeats within the record only
        else:
            keep = []
            for i, (event_id, t) in enumerate(zip(ids, ts, strict=True)):
                if event_id not in seen:
                    seen[event_id] = t
                    keep.append(i)
        self._maybe_sweep(entry, kind)
        dropped = len(ids) - len(keep)
        if not keep:
            return {}, dropped
        return {name: [col[i] for i in keep] for name, col in cols.items()}, dropped

    def _maybe_sweep(self, entry: _Ids, kind: int) -> None:
        seen = entry.seen
        if len(seen) < entry.sweep_at:
            return
        horizon = entry.newest_ms - self._windows_ms[kind]
        kept = {k: t for k, t in seen.items() if t >= horizon}
        if len(kept) > self.max_ids:  # a flood within the window: the newest max_ids stay
            newest = sorted(kept.items(), key=lambda kv: kv[1])[-self.max_ids :]
            kept = dict(newest)
        entry.seen = kept
        entry.sweep_at = max(MIN_SWEEP, 2 * len(kept))


def _first_occurrences(ids: Sequence[Any]) -> list[int]:
    """Indices of the first occurrence of each id."""
    seen: set[Any] = set()
    keep = []
    for i, event_id in enumerate(ids):
        if event_id not in seen:
            seen.add(event_id)
            keep.append(i)
    return keep
