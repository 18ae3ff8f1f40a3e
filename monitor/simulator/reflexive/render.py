"""Write a scenario as every venue would have published it: one recording per venue. Pure logic,
offline and deterministic (files only: no sockets, no clock, no asyncio).

For each venue the venue's own pure ``Feed`` (``SPECS[venue].new_feed_for(scenario)``, else
``new_feed()``) is driven on a virtual wall clock exactly as ``server.ExchangeSimulator`` drives
it: scenario second ``t`` is wall time ``start_ms + floor(1000 t)``; at each step the clock jumps to
the next event or the feed's next deadline, whichever comes first, the events due are handed to
``on_event`` and then ``flush`` runs. So each venue's sampling applies as live (Binance's latest
liquidation per symbol per second, Bybit's 500 ms batches, ...). ``start_ms`` is derived from the
seed (``start_ms_for``).

Before the first event, one pure ``Session`` per connection of ``plans.connections`` is opened
and sent its subscribe requests (``SUBSCRIBE_SPACING_MS`` apart, ending ``SUBSCRIBE_LEAD_MS``
before the start); the replies are recorded, then every frame ``session.frames_for(out)`` yields.
A frame's ``recv_ns`` is its virtual send time plus ``LATENCY_MS``. The header lists the
connections (name, URL, subscribe frames), like ``cascade-monitor record``; ``rest`` lines hold
the instrument metadata the venue serves (``spec.rest``) on the paths its adapter GETs
(``spec.rest_paths``, every page where the venue pages its listing: ``spec.rest_next_page``), so
a replay or a backtest can load contract sizes. Server-initiated
heartbeats (HTX pings, Deribit test requests) are not rendered: no client answers them.

The scenario's ground truth goes beside the recordings as ``<name>.truth.json``, with the wall
clock of its onset and peak minute added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from monitor.core.recording import RecordingWriter, path_of
from monitor.simulator.events import Scenario, SimEvent
from monitor.simulator.ledger import Ledger
from monitor.simulator.reflexive import plans
from monitor.simulator.reflexive.assemble import ReflexiveScenario
from monitor.simulator.reflexive.families import ALL_VENUES, FAMILIES, SYMBOLS
from monitor.simulator.reflexive.listing import venue_symbol
from monitor.simulator.venues import SPECS
from monitor.simulator.wire import Outgoing, Session

BASE_EPOCH_MS: Final = 1_735_689_600_000  # 2025-01-01T00:00:00Z
LATENCY_MS: Final = 5
SUBSCRIBE_LEAD_MS: Final = 2_000
SUBSCRIBE_SPACING_MS: Final = 150  # HTX takes 40 requests a second, Binance 10 messages
TAIL_MS: Final = 60_000  # deadlines later than this after the scenario's end are not flushed
MAX_PAGES: Final = 50


def start_ms_for(seed: int) -> int:
    """Wall time of scenario second 0: a whole hour of 2025 chosen by the seed."""
    return BASE_EPOCH_MS + (seed % 8760) * 3_600_000


@dataclass
class VenueRendering:
    venue: str
    path: Path
    frames: int = 0
    ledger: Ledger = field(default_factory=Ledger)  # market items written, as the server keeps


class _Sink:
    """The writer and the open sessions of one venue's recording."""

    def __init__(self, writer: RecordingWriter, binary: bool, rendering: VenueRendering) -> None:
        self.writer = writer
        self.binary = binary
        self.rendering = rendering
        self.sessions: list[tuple[str, Session]] = []

    def write(self, conn: str, frame: bytes, sent_ms: int) -> None:
        data: str | bytes = frame if self.binary else frame.decode()
        self.writer.frame(conn, data, (sent_ms + LATENCY_MS) * 1_000_000)
        self.rendering.frames += 1

    def dispatch(self, outs: Iterable[Outgoing], now_ms: int) -> None:
        for out in outs:
            sent = False
            for conn, session in self.sessions:
                for frame in session.frames_for(out):
                    self.write(conn, frame, now_ms)
                    sent = True
            if sent and out.keys:
                self.rendering.ledger.record(self.rendering.venue, out.keys, out.items)


def rest_documents(venue: str) -> list[tuple[str, bytes]]:
    """``(path?query, body)`` of the instrument metadata the venue's adapter loads: each of its
    ``rest_paths``, followed page by page (``rest_next_page``, at most ``MAX_PAGES`` documents)."""
    spec = SPECS[venue]
    rest = spec.rest
    out: list[tuple[str, bytes]] = []
    if rest is None:
        return out
    for first in spec.rest_paths:
        path: str | None = first
        while path is not None and len(out) < MAX_PAGES:
            answer = rest(path)
            if answer is None or answer[0] != 200:
                raise ValueError(f"{venue}: the simulator does not serve {path}")
            out.append((path, answer[1]))
            path = spec.rest_next_page(first, answer[1]) if spec.rest_next_page else None
    return out


def render_venue(
    scenario: Scenario, venue: str, path: Path, *, start_ms: int, name: str = ""
) -> VenueRendering:
    """Write ``venue``'s recording of ``scenario`` to ``path``."""
    spec = SPECS[venue]
    feed = spec.new_feed_for(scenario) if spec.new_feed_for else spec.new_feed()
    syms = [v for s in scenario.symbols if (v := venue_symbol(venue, s)) is not None]
    t_sub = start_ms - SUBSCRIBE_LEAD_MS
    conns = plans.connections(venue, syms, t_sub / 1000.0)
    rendering = VenueRendering(venue, path)
    writer = RecordingWriter(path)
    writer.open({
        "exchange": venue,
        "base_url": plans.base_url(venue),
        "connections": [{"name": c.name, "url": c.url, "subscribe": list(c.subscribe)}
                        for c in conns],
        "scenario": {"name": name, "seed": scenario.seed, "start_ms": start_ms,
                     "duration_s": scenario.duration_s, "symbols": syms},
    })  # fmt: skip
    try:
        for rest_path, body in rest_documents(venue):
            writer.rest(plans.REST_HOST + rest_path, body)
        sink = _Sink(writer, spec.binary, rendering)
        n_frames = sum(len(c.subscribe) for c in conns)
        t = t_sub - n_frames * SUBSCRIBE_SPACING_MS
        for c in conns:
            session = spec.new_session(path_of(c.url), c.name)
            sink.sessions.append((c.name, session))
            for frame in c.subscribe:
                t += SUBSCRIBE_SPACING_MS
                for reply in session.handle(frame, t / 1000.0).frames:
                    sink.write(c.name, reply, t)
        _play(feed, [e for e in scenario.events if e.venue == venue], sink, start_ms,
              start_ms + int(scenario.duration_s * 1000) + TAIL_MS)  # fmt: skip
    finally:
        writer.close()
    return rendering


def _play(feed: Any, events: Sequence[SimEvent], sink: _Sink, start_ms: int, end_ms: int) -> None:
    """The server's playback loop (``ExchangeSimulator._play``) on the virtual clock."""
    at = [start_ms + int(e.t * 1000) for e in events]
    i, n = 0, len(events)
    while True:
        deadline = feed.next_deadline_ms()
        if deadline is not None and deadline > end_ms:
            deadline = None
        if i < n:
            now = at[i] if deadline is None else min(deadline, at[i])
        elif deadline is not None:
            now = deadline
        else:
            return
        outs: list[Outgoing] = []
        while i < n and at[i] <= now:
            outs += feed.on_event(events[i], now)
            i += 1
        outs += feed.flush(now)
        sink.dispatch(outs, now)


def truth_document(scenario: ReflexiveScenario, start_ms: int, files: dict[str, str]) -> bytes:
    doc = scenario.truth.to_dict()
    tr = scenario.truth
    doc["wall_clock"] = {
        "start_ms": start_ms,
        "onset_ms": None if tr.onset_s is None else start_ms + int(tr.onset_s * 1000),
        "peak_minute_ms": None if tr.peak_minute_s is None else start_ms + int(tr.peak_minute_s * 1000),
    }  # fmt: skip
    doc["recordings"] = files
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def render_scenario(
    scenario: ReflexiveScenario, out_dir: Path, venues: Sequence[str] | None = None,
    *, name: str | None = None,
) -> list[Path]:  # fmt: skip
    """One recording per venue (``<name>.<venue>.jsonl.gz``) and ``<name>.truth.json``; returns
    the recordings' paths, then the truth's."""
    name = name or f"{scenario.family}-{scenario.seed}"
    start_ms = start_ms_for(scenario.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for venue in venues if venues is not None else scenario.venues:
        path = out_dir / f"{name}.{venue}.jsonl.gz"
        render_venue(scenario, venue, path, start_ms=start_ms, name=name)
        paths.append(path)
    truth = out_dir / f"{name}.truth.json"
    truth.write_bytes(
        truth_document(scenario, start_ms, {p.name.split(".")[-3]: p.name for p in paths})
    )
    return [*paths, truth]


def generate_scenarios(
    out_dir: Path, families: Sequence[str], n: int, *, first_seed: int = 0,
    venues: Sequence[str] = ALL_VENUES, symbols: Sequence[str] = SYMBOLS,
) -> list[Path]:  # fmt: skip
    """``n`` scenarios, seeds ``first_seed``, ``first_seed + 1``, ..., cycling through
    ``families``, each on ``venues`` and ``symbols``, rendered into ``out_dir``; returns the truth
    files."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"families {unknown or families}: known {sorted(FAMILIES)}")
    truths = []
    for i in range(n):
        family = families[i % len(families)]
        scenario = FAMILIES[family](first_seed + i, venues=venues, symbols=symbols)
        truths.append(render_scenario(scenario, out_dir)[-1])
    return truths
