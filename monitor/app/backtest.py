"""``cascade-monitor backtest``: recordings through the live pipeline's code, in one process, on
event time, as fast as the CPU allows.

Each file is a recording (``monitor.core.recording``: ``record``'s files, the simulator's
renderings, the shared real ones). The files are read as streams and merged by receive time;
several files of one venue share that venue's producer, as one producer's connections do. Per
frame, as live:

1. the venue's adapter parses it into the producer's record columns, through the producer's
   duplicate filter (``producers.offline``: the publisher's ``ColumnStore``);
2. the records, each a symbol's rows of the frames received within 100 ms (at most
   ``kafka.max_batch_events``), encoded as the publisher encodes them (``monitor.core.codec``)
   and decoded again, as the consumer receives them;
3. the exchange's ``EventEngine`` (``consumers.engine``: the consumer's state, models, tick
   scheduling, alert rules and default rules from ``--config``), after which the work the event
   clock made due runs.

At the end of the input every held tick closes. The result: the alert transitions in event-time
order, and per pair the events, the liquidation notional by side, the peak 60 s liquidation rate by
side and when, the maximum score and branching ratio (with when), plus per venue the frames, the
frames and items the parser refused (by reason), the repeats dropped and the events the state
skipped. A file that is not a recording, or is cut short, stops the run with a
``RecordingError`` naming the file and line; a venue without an adapter names the file's header.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from consumers.engine import EventEngine, Step
from consumers.ingest import RecordIngest
from consumers.models.score import COMPONENTS
from consumers.readout import RiskRow
from monitor.alerting.rules import RuleEngine
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import Config
from monitor.core.errors import RecordingError
from monitor.core.recording import Frame, Rest, scan_recording
from producers.offline import OfflineCounts, OfflineProducer
from producers.registry import ADAPTERS

SIDES = ("long", "short", "unknown")  # consumers.columns.LIQ_SIDES
# a symbol's events of frames received within this long go in one record (a publisher lingers
# a few ms; more here costs nothing: tick closes wait for the event clock, and a record is
# offered before any later frame's events)
LINGER_NS = 100_000_000
# a series named ``component:<name>`` keeps that score component (consumers.models.score
# COMPONENTS, in [0, 1], NaN: undefined) instead of a risk record field
COMPONENT_PREFIX = "component:"


@dataclass
class PairSummary:
    exchange: str
    symbol: str
    liquidations: int = 0
    trades: int = 0
    liq_notional_usd: dict[str, float] = field(default_factory=dict)  # by side
    peak_rate_60s: dict[str, tuple[float, float]] = field(default_factory=dict)  # side: (USD/s, t)
    max_score: tuple[float, float] = (math.nan, math.nan)  # (value, t)
    max_branching: tuple[float, float] = (math.nan, math.nan)

    def observe(self, t: float, values: dict[str, float]) -> None:
        for side in SIDES:
            v = values.get(f"liq_rate_{side}_60s", math.nan)
            if v > self.peak_rate_60s.get(side, (-math.inf, 0.0))[0]:
                self.peak_rate_60s[side] = (v, t)
        for name, attr in (("score", "max_score"), ("branching_ratio", "max_branching")):
            v = values.get(name, math.nan)
            best = getattr(self, attr)[0]
            if not math.isnan(v) and (math.isnan(best) or v > best):
                setattr(self, attr, (v, t))

    def to_dict(self) -> dict[str, Any]:
        def at(pair: tuple[float, float]) -> dict[str, Any]:
            v, t = pair
            return {"value": _num(v), "event_time_ms": _ms(t)}

        return {
            "exchange": self.exchange, "symbol": self.symbol,
            "liquidations": self.liquidations, "trades": self.trades,
            "liq_notional_usd": {s: self.liq_notional_usd.get(s, 0.0) for s in SIDES},
            "peak_liq_rate_60s_usd_s": {s: at(self.peak_rate_60s.get(s, (math.nan, math.nan)))
                                        for s in SIDES},
            "max_score": at(self.max_score), "max_branching_ratio": at(self.max_branching),
        }  # fmt: skip


@dataclass
class VenueSummary:
    exchange: str
    files: list[str] = field(default_factory=list)
    producer: OfflineCounts = field(default_factory=OfflineCounts)
    skipped: Counter[str] = field(default_factory=Counter)  # by the consumer's state, by reason
    decode_errors: Counter[str] = field(default_factory=Counter)
    repeats_dropped: int = 0  # by the consumer's id window
    suppressed: int = 0

    def to_dict(self) -> dict[str, Any]:
        p = self.producer
        return {
            "exchange": self.exchange, "files": self.files, "frames": p.frames,
            "events": dict(p.events), "parse_errors": dict(p.parse_errors),
            "producer_duplicates": dict(p.duplicates), "instruments": p.instruments,
            "consumer_repeats": self.repeats_dropped, "skipped": dict(self.skipped),
            "decode_errors": dict(self.decode_errors),
        }  # fmt: skip


@dataclass
class BacktestResult:
    transitions: list[AlertEvent]
    pairs: list[PairSummary]
    venues: list[VenueSummary]
    first_ms: int | None = None  # receive time of the first and last frame
    last_ms: int | None = None
    # with ``series=SERIES_FIELDS-like names``: (exchange, symbol) -> (times, {name: values}) of
    # every evaluation (for the detection evaluation's curves)
    series: dict[tuple[str, str], tuple[list[float], dict[str, list[float]]]] = field(
        default_factory=dict
    )


class _Venue:
    """One exchange's producer and consumer engine."""

    def __init__(self, cfg: Config, exchange: str, series: Sequence[str] = ()) -> None:
        self.summary = VenueSummary(exchange)
        self.series_fields = tuple(series)
        # per field, its score component's column (COMPONENT_PREFIX), or -1: a risk record field
        self._component_cols = tuple(
            COMPONENTS.index(f[len(COMPONENT_PREFIX) :]) if f.startswith(COMPONENT_PREFIX) else -1
            for f in self.series_fields
        )
        self.series: dict[str, tuple[list[float], dict[str, list[float]]]] = {}
        self.producer = OfflineProducer(cfg, exchange)
        self.summary.producer = self.producer.counts
        self.pairs: dict[str, PairSummary] = {}
        self._pending_since = 0  # receive time of the oldest row not sent
        self._n_pending = 0
        self.max_batch = cfg.kafka.max_batch_events
        ingest = RecordIngest.from_config(cfg, exchange, on_skip=self._skip, wall_clock=lambda: 0.0)
        rules = RuleEngine(cfg.alerts.rules) if cfg.alerts.enabled and cfg.alerts.rules else None
        c = cfg.consumer
        self.engine: EventEngine[None] = EventEngine(
            ingest, rules, period_s=c.alert_eval_s, lateness_s=c.alert_lateness_s,
            quiet_s=c.alert_quiet_s, refit_interval_s=cfg.risk.refit_interval_s,
            on_row=self._row,
        )  # fmt: skip

    def _skip(self, reason: str, n: int) -> None:
        self.summary.skipped[reason] += n

    def _row(self, t: float, row: RiskRow) -> None:
        pair = self.pairs.get(row.symbol)
        if pair is None:
            pair = self.pairs[row.symbol] = PairSummary(row.exchange, row.symbol)
        pair.observe(t, row.values)
        if self.series_fields:
            got = self.series.get(row.symbol)
            if got is None:
                got = self.series[row.symbol] = ([], {f: [] for f in self.series_fields})
            got[0].append(t)
            comps = row.components
            for f, j in zip(self.series_fields, self._component_cols, strict=True):
                if j < 0:
                    got[1][f].append(row.values.get(f, math.nan))
                else:
                    got[1][f].append(math.nan if comps is None else float(comps[j]))

    def frame(self, data: str | bytes, recv_ns: int, out: list[AlertEvent]) -> None:
        """One frame into the producer's record columns; the records are sent (encoded, decoded,
        offered) once the oldest row is ``LINGER_NS`` of receive time old or they hold
        ``kafka.max_batch_events`` rows, as a publisher would; then the work due runs."""
        if self._n_pending and recv_ns - self._pending_since >= LINGER_NS:
            self.flush(out)
        rows = self.producer.frame(data, recv_ns)
        if not rows:
            return
        if not self._n_pending:
            self._pending_since = recv_ns
        self._n_pending += rows
        if self._n_pending >= self.max_batch:
            self.flush(out)

    def flush(self, out: list[AlertEvent], *, final: bool = False) -> None:
        ingest = self.engine.ingest
        for value in self.producer.records():
            batch, error, _ = ingest.decode(value)
            if batch is None:
                assert error is not None
                self.summary.decode_errors[error] += 1
                continue
            self.engine.offer(batch)
        self._n_pending = 0
        self.step(out, final=final)

    def step(self, out: list[AlertEvent], *, final: bool = False) -> None:
        step: Step[None] = self.engine.step(final=final)
        for done, _ in step.ingested:
            if done.error is not None:
                self.summary.decode_errors[done.error] += 1
            self.summary.repeats_dropped += done.duplicates
        self.summary.suppressed += step.suppressed
        out += step.transitions

    def finish(self) -> list[PairSummary]:
        """Every pair's totals from the state's counters, with the maxima seen at evaluations."""
        state = self.engine.state
        r = state.read(self.engine.clock if math.isfinite(self.engine.clock) else 0.0)
        out = []
        for i, (exchange, symbol) in enumerate(r.keys):
            pair = self.pairs.get(symbol) or PairSummary(exchange, symbol)
            pair.liquidations = int(r.liq_count[i].sum())
            pair.trades = int(r.trd_count[i])
            pair.liq_notional_usd = {s: float(r.liq_notional[i, j]) for j, s in enumerate(SIDES)}
            out.append(pair)
        return out


def _frames(
    path: Path, venues: dict[str, _Venue], cfg: Config, series: Sequence[str]
) -> Iterator[tuple[int, Frame]]:
    """A recording's frames in file order; its header picks (or creates) the venue, its REST
    answers install instrument metadata as they come."""
    items = scan_recording(path)
    header = next(items)
    assert isinstance(header, dict)
    exchange = header["exchange"]
    if exchange not in ADAPTERS:
        raise RecordingError(path, 1, f"unknown venue {exchange!r} (known: {sorted(ADAPTERS)})")
    venue = venues.get(exchange)
    if venue is None:
        venue = venues[exchange] = _Venue(cfg, exchange, series)
    venue.summary.files.append(str(path))
    for item in items:
        if isinstance(item, Rest):
            venue.producer.rest(item.path, item.body)
        elif isinstance(item, Frame):
            yield item.recv_ns, item


def _tagged(i: int, frames: Iterator[tuple[int, Frame]]) -> Iterator[tuple[int, int, Frame]]:
    for recv, frame in frames:
        yield recv, i, frame


def backtest(cfg: Config, files: Sequence[Path], *, series: Sequence[str] = ()) -> BacktestResult:
    """Run ``files`` through the pipeline's code (see the module docstring). ``series``: risk
    record fields, or ``component:<name>`` score components, to keep at every evaluation of
    every pair (``BacktestResult.series``)."""
    if not files:
        raise ValueError("no recordings given")
    bad = [f for f in series if f.startswith(COMPONENT_PREFIX)
           and f[len(COMPONENT_PREFIX) :] not in COMPONENTS]  # fmt: skip
    if bad:
        raise ValueError(f"unknown score component(s) {bad}; known: {list(COMPONENTS)}")
    venues: dict[str, _Venue] = {}
    exchange_of: list[str] = []
    streams = []
    for i, path in enumerate(files):
        header = next(iter(scan_recording(path)))  # fail fast on a file that is not one
        assert isinstance(header, dict)
        exchange_of.append(str(header["exchange"]))
        streams.append(_tagged(i, _frames(path, venues, cfg, series)))
    transitions: list[AlertEvent] = []
    first = last = None
    for recv_ns, i, frame in heapq.merge(*streams, key=lambda x: (x[0], x[1])):
        venue = venues[exchange_of[i]]
        venue.frame(frame.data, recv_ns, transitions)
        first = recv_ns if first is None else first
        last = recv_ns
    pairs: list[PairSummary] = []
    for venue in venues.values():
        venue.flush(transitions, final=True)
        pairs += venue.finish()
    transitions.sort(key=lambda e: (e.t, e.exchange, e.symbol, e.rule))
    return BacktestResult(
        transitions, pairs, [v.summary for v in venues.values()],
        None if first is None else first // 1_000_000, None if last is None else last // 1_000_000,
        {(x, sym): v for x, venue in venues.items() for sym, v in venue.series.items()},
    )  # fmt: skip


def transition_dict(ev: AlertEvent) -> dict[str, Any]:
    """One ``--out`` line: the keys the issue names, plus context."""
    return {
        "event_time_ms": _ms(ev.t), "rule": ev.rule, "state": ev.status,
        "severity": ev.severity, "exchange": ev.exchange, "symbol": ev.symbol,
        "value": _num(ev.value), "metric": ev.metric, "started_ms": _ms(ev.started_t),
        "fingerprint": ev.fingerprint, "summary": ev.summary,
    }  # fmt: skip


def write_jsonl(path: Path, result: BacktestResult) -> None:
    with path.open("wb") as f:
        for ev in result.transitions:
            f.write(orjson.dumps(transition_dict(ev)) + b"\n")


def format_result(result: BacktestResult, top: int = 25) -> str:
    """The transitions, the ``top`` pairs by liquidation notional, and the venues, as text."""
    lines = [f"alert transitions: {len(result.transitions)}"]
    for ev in result.transitions:
        lines.append(f"  {_iso(ev.t)}  {ev.status:<8} {ev.severity:<8} {ev.exchange:<11} "
                     f"{ev.symbol:<22} {ev.rule:<28} {ev.value:.4g}")  # fmt: skip
    pairs = sorted(result.pairs, key=lambda p: -sum(p.liq_notional_usd.values()))
    shown = pairs[:top]
    lines.append(f"pairs: {len(pairs)} ({len(shown)} shown, by liquidation notional)")
    lines.append(f"  {'exchange':<11} {'symbol':<22} {'liqs':>6} {'trades':>8} {'long USD':>12} "
                 f"{'short USD':>12} {'peak 60s long USD/s (at)':>34} "
                 f"{'peak 60s short USD/s (at)':>34} {'max score (at)':>32} "
                 f"{'max n (at)':>32}")  # fmt: skip
    for p in shown:

        def peak(side: str, p: PairSummary = p) -> str:
            v, t = p.peak_rate_60s.get(side, (math.nan, math.nan))
            return _at(v, t, ".4g")

        lines.append(
            f"  {p.exchange:<11} {p.symbol:<22} {p.liquidations:>6} {p.trades:>8} "
            f"{p.liq_notional_usd.get('long', 0.0):>12,.0f} "
            f"{p.liq_notional_usd.get('short', 0.0):>12,.0f} {peak('long'):>34} "
            f"{peak('short'):>34} {_at(*p.max_score, '.3f'):>32} "
            f"{_at(*p.max_branching, '.3f'):>32}"
        )
    for v in result.venues:
        d = v.to_dict()
        lines.append(f"{v.exchange}: frames {d['frames']}, events {d['events']}, parse errors "
                     f"{d['parse_errors']}, producer duplicates {d['producer_duplicates']}, "
                     f"consumer repeats {d['consumer_repeats']}, skipped {d['skipped']}, "
                     f"decode errors {d['decode_errors']}")  # fmt: skip
    return "\n".join(lines)


def _at(v: float, t: float, fmt: str) -> str:
    return "-" if math.isnan(v) else f"{v:{fmt}} ({_iso(t)})"


def _iso(t: float) -> str:
    if not math.isfinite(t):
        return "-"
    ms = round(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _ms(t: float) -> int | None:
    return None if not math.isfinite(t) else round(t * 1000)


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None
