"""Binance USD-M futures market streams, as the simulator speaks them. Pure module (sans-I/O).

Routing (2026 URL split, docs/venues.md §1):

* ``/market/ws/<s1>/<s2>``: raw streams, each frame is the bare payload;
  ``/market/stream?streams=<s1>/<s2>``: combined, each frame ``{"stream": name, "data": payload}``.
  ``/market/ws`` and ``/market/stream`` with no streams wait for JSON ``SUBSCRIBE``.
* Legacy paths without ``/market`` (``/ws/...``, ``/stream?...``) complete the handshake and then
  send nothing at all, and answer nothing: the documented silent failure.
* Any other path: HTTP 404. A malformed stream name in a ``/market`` URL: HTTP 400.

Requests: ``SUBSCRIBE``/``UNSUBSCRIBE`` (``{"result":null,"id":N}``), ``LIST_SUBSCRIPTIONS``,
``SET_PROPERTY``/``GET_PROPERTY`` ``combined``. Errors look like Binance's:
``{"error":{"code":2,"msg":"Invalid request: ..."},"id":N}``; invalid JSON is code 3. A request
with one bad stream name is refused whole. More than 10 incoming messages within one second closes
the connection with 1008 "Too many requests"; at most 1024 streams per connection.

Streams served: ``!forceOrder@arr``, ``<sym>@forceOrder``, ``<sym>@aggTrade``, ``<sym>@markPrice@1s``
and ``<sym>@markPrice`` (symbols lower-case in names, upper-case in payloads). Liquidations are sampled like the venue: of the liquidations of one
symbol that happen within a wall-clock second (``[k*1000, (k+1)*1000)`` ms since the epoch), only the
latest is pushed, when that second ends (``E`` = emission time, ``o.T`` = the liquidation's time).
``o.S`` is the forced order's side: SELL closes a long. ``o.ap`` is the scenario price (the average
fill), ``o.p`` a limit price 0.5 % worse; ``q = l = z`` (FILLED). Trades are pushed as they happen,
one aggTrade per scenario trade, ``m = true`` when the taker sold. Numbers in forceOrder are
stripped decimals (``"9910"``), in aggTrade fixed to the tick (``"95000.10"``, ``"0.010"``).

Mark price: at every wall-clock second boundary (``E`` = emission time) one ``markPriceUpdate`` per
symbol on ``<sym>@markPrice@1s``, and on ``<sym>@markPrice`` every third second (its documented
3000 ms cadence). With a scenario (``BinanceFeed(scenario)``, what the server builds), ``i``
(index) is the scenario's price path at the scenario time of ``E``, ``p`` (mark) that price rounded
to the tick, ``P`` the index; marks run to the scenario's end. The scenario time of ``E`` is
``(E - start_ms) * speed`` when both are given, else extrapolated from the latest event (``t`` at
its wall time, at the speed measured between the first and latest events); marks then start after
the first event. Without a scenario (``BinanceFeed()``) ``p`` and ``i`` are the price of the
symbol's latest event (within a tick of the path), for the symbols seen so far, and marks pause
while the venue has had no event for a whole second. Numbers have 8 decimals
(``"95000.10000000"``); ``r`` is ``FUNDING_RATE``; ``T`` the next 8-hour funding boundary (00:00,
08:00, 16:00 UTC) after ``E``. Market-context frames carry no ledger items.
"""

from __future__ import annotations

import itertools
import math
import re
import time
import zlib
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from monitor.simulator.clientplan import Connection, chunks
from monitor.simulator.events import Scenario, SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import INSTRUMENTS, fmt_decimal, instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing, Pings, Reply, Session, VenueSpec

VENUE: Final = "binance"
SAMPLING_WINDOW_MS: Final = 1000
LIMIT_PRICE_OFFSET: Final = 0.005  # forced-order limit price vs. average fill
MAX_MESSAGES_PER_S: Final = 10
MAX_STREAMS: Final = 1024
ALL_LIQUIDATIONS: Final = "!forceOrder@arr"
MARK_INTERVAL_MS: Final = 1000  # <sym>@markPrice@1s
MARK_SLOW_EVERY: Final = 3  # <sym>@markPrice: every 3000 ms
MARK_DECIMALS: Final = 8
FUNDING_RATE: Final = "0.00010000"  # 1 bp per 8 h, Binance's default (interest-rate only) rate
FUNDING_INTERVAL_MS: Final = 8 * 3600 * 1000
_STREAM_RE: Final = re.compile(
    r"^(?:!forceOrder@arr|[a-z0-9]+@(?:forceOrder|aggTrade|markPrice|markPrice@1s))$"
)
_METHODS: Final = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


class RouteError(Exception):
    """The handshake is refused with an HTTP status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status} {text}")
        self.status = status
        self.text = text


@dataclass(frozen=True, slots=True)
class Route:
    combined: bool
    streams: tuple[str, ...] = ()
    legacy: bool = False  # pre-2026 path: accepted, then silent


def valid_stream(name: str) -> bool:
    return _STREAM_RE.match(name) is not None


def parse_route(path: str) -> Route:
    """Route of a request path (with its query), or RouteError."""
    parts = urlsplit(path)
    p = parts.path
    legacy = not p.startswith("/market/")
    rest = p if legacy else p[len("/market") :]
    if rest == "/ws" or rest.startswith("/ws/"):
        combined = False
        streams = tuple(unquote(s) for s in rest[len("/ws/") :].split("/") if s)
    elif rest == "/stream":
        combined = True
        raw = parse_qs(parts.query).get("streams", [""])[0]
        streams = tuple(s for s in raw.split("/") if s)
    else:
        raise RouteError(404, f"Not Found: {p}")
    if legacy:
        return Route(combined, streams, legacy=True)
    bad = [s for s in streams if not valid_stream(s)]
    if bad:
        raise RouteError(400, f"Invalid request: unknown stream name `{bad[0]}`")
    return Route(combined, streams)


class BinanceSession:
    """One client connection: subscriptions, framing, request handling."""

    def __init__(self, route: Route, conn_id: str) -> None:
        self.conn_id = conn_id
        self.silent = route.legacy
        self.combined = route.combined
        self._streams: dict[str, None] = dict.fromkeys(route.streams)  # ordered set
        self._recent: deque[float] = deque()

    @property
    def subscriptions(self) -> Collection[str]:
        return () if self.silent else self._streams.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        if self.silent:
            return []
        frames = []
        for s in out.streams:
            if s in self._streams:
                frames.append(_wrap(s, out.payload) if self.combined else out.payload)
        return frames

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        if self.silent:
            return Reply()
        self._recent.append(now_s)
        while self._recent and self._recent[0] <= now_s - 1.0:
            self._recent.popleft()
        if len(self._recent) > MAX_MESSAGES_PER_S:
            return Reply(close=(1008, "Too many requests"))
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return _error(3, f"Invalid JSON: {exc}", None)
        if not isinstance(req, dict):
            return _error(2, "Invalid request: expected a JSON object", None)
        rid = req.get("id")
        if "id" not in req:
            return _error(2, "Invalid request: missing field `id`", None)
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int) or rid < 0):
            return _error(2, "Invalid request: request ID must be an unsigned integer", None)
        method = req.get("method")
        if method is None:
            return _error(2, "Invalid request: missing field `method`", rid)
        if method not in _METHODS:
            expected = ", ".join(f"`{m}`" for m in _METHODS)
            return _error(
                2, f"Invalid request: unknown variant `{method}`, expected one of {expected}", rid
            )
        params = req.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return self._subscribe(method, params, rid)
        if method == "LIST_SUBSCRIPTIONS":
            return _result(list(self._streams), rid)
        return self._property(method, params, rid)

    def _subscribe(self, method: str, params: Any, rid: int | None) -> Reply:
        if not isinstance(params, list) or not all(isinstance(s, str) for s in params):
            return _error(2, "Invalid request: invalid type: expected a sequence of strings", rid)
        bad = [s for s in params if not valid_stream(s)]
        if bad:
            return _error(2, f"Invalid request: unknown stream name `{bad[0]}`", rid)
        if method == "SUBSCRIBE":
            if len(self._streams.keys() | set(params)) > MAX_STREAMS:
                return _error(2, f"Invalid request: too many streams (max {MAX_STREAMS})", rid)
            self._streams.update(dict.fromkeys(params))
        else:
            for s in params:
                self._streams.pop(s, None)
        return Reply(frames=_result(None, rid).frames, subscriptions_changed=bool(params))

    def _property(self, method: str, params: Any, rid: int | None) -> Reply:
        if not isinstance(params, list) or not params or params[0] != "combined":
            return _error(0, "Unknown property", rid)
        if method == "GET_PROPERTY":
            return _result(self.combined, rid)
        if len(params) != 2 or not isinstance(params[1], bool):
            return _error(1, "Invalid value type: expected Boolean", rid)
        self.combined = params[1]
        return _result(None, rid)


def _wrap(stream: str, payload: bytes) -> bytes:
    return b'{"stream":' + orjson.dumps(stream) + b',"data":' + payload + b"}"


def _result(result: Any, rid: int | None) -> Reply:
    return Reply(frames=(orjson.dumps({"result": result, "id": rid}),))


def _error(code: int, msg: str, rid: int | None) -> Reply:
    return Reply(frames=(orjson.dumps({"error": {"code": code, "msg": msg}, "id": rid}),))


class BinanceFeed:
    """Scenario events -> aggTrade frames (immediate), sampled forceOrder frames and one
    markPriceUpdate per symbol per second."""

    def __init__(
        self, scenario: Scenario | None = None, *, speed: float | None = None,
        start_ms: float | None = None,
    ) -> None:  # fmt: skip
        """``speed``: scenario seconds per wall second (else measured from the events);
        ``start_ms``: wall time of scenario second 0 (else placed from the events)."""
        if speed is not None and not speed > 0:
            raise ValueError(f"speed = {speed!r}: must be > 0")
        self._scenario = scenario
        self._speed = speed
        self._start_ms = start_ms if scenario is not None else None
        self._keys = itertools.count()
        self._agg_id: dict[str, int] = {}
        self._fill_id: dict[str, int] = {}
        # (symbol, window) -> latest liquidation in that window and its wall time
        self._pending: dict[tuple[str, int], tuple[SimLiquidation, int]] = {}
        self._last_price: dict[str, float] = {}  # symbol -> price of its latest event
        self._first: tuple[float, int] | None = None  # (scenario s, wall ms) of the first event
        self._last: tuple[float, int] | None = None  # ... and of the latest one
        self._next_mark_ms: int | None = None
        if self._start_ms is not None:
            self._next_mark_ms = math.ceil(self._start_ms / MARK_INTERVAL_MS) * MARK_INTERVAL_MS

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        end = self._mark_end_ms()
        if self._next_mark_ms is None or end is None or self._next_mark_ms > end:  # (re)start
            self._next_mark_ms = (now_ms // MARK_INTERVAL_MS + 1) * MARK_INTERVAL_MS
        if self._first is None:
            self._first = (event.t, now_ms)
        self._last = (event.t, now_ms)
        self._last_price[event.venue_symbol] = event.price
        if isinstance(event, SimTrade):
            return [self._agg_trade(event, now_ms)]
        self._pending[(event.venue_symbol, now_ms // SAMPLING_WINDOW_MS)] = (event, now_ms)
        return []

    def next_deadline_ms(self) -> int | None:
        deadlines = [(w + 1) * SAMPLING_WINDOW_MS for _, w in self._pending]
        mark = self._due_mark_ms()
        if mark is not None:
            deadlines.append(mark)
        return min(deadlines, default=None)

    def flush(self, now_ms: int) -> list[Outgoing]:
        due = [k for k in self._pending if (k[1] + 1) * SAMPLING_WINDOW_MS <= now_ms]
        due.sort(key=lambda k: k[1])
        out = [self._force_order(*self._pending.pop(k), now_ms) for k in due]
        mark = self._due_mark_ms()
        if mark is not None and mark <= now_ms:
            second = now_ms // MARK_INTERVAL_MS  # a late flush sends one update, not a backlog
            out += self._mark_prices(now_ms, second % MARK_SLOW_EVERY == 0)
            self._next_mark_ms = (second + 1) * MARK_INTERVAL_MS
        return out

    # ---- mark price: the scenario clock ---------------------------------------------------------

    def _measured_speed(self) -> float | None:
        """Scenario seconds per wall second: given, or between the first and the latest event."""
        if self._speed is not None:
            return self._speed
        if self._first is None or self._last is None:
            return None
        (t0, w0), (t1, w1) = self._first, self._last
        return (t1 - t0) * 1000.0 / (w1 - w0) if w1 > w0 and t1 > t0 else None

    def _scenario_time(self, wall_ms: int) -> float:
        """Scenario second at ``wall_ms``: from ``start_ms``, else extrapolated from the latest
        event (its lateness is the only error, a millisecond or so of wall time)."""
        if self._start_ms is not None:
            return (wall_ms - self._start_ms) * (self._speed or 1.0) / 1000.0
        assert self._last is not None
        t, at = self._last
        speed = self._measured_speed()
        return t if speed is None else t + (wall_ms - at) * speed / 1000.0

    def _mark_end_ms(self) -> float | None:
        """Last wall time that gets a mark: the scenario's end when it can be placed, else the
        end of the second of the latest event."""
        sc = self._scenario
        if sc is not None and self._start_ms is not None:
            return self._start_ms + sc.duration_s * 1000.0 / (self._speed or 1.0)
        if self._last is None:
            return None
        t, at = self._last
        speed = self._measured_speed()
        if sc is not None and speed is not None:
            return at + (sc.duration_s - t) * 1000.0 / speed
        return (at // MARK_INTERVAL_MS + 1) * MARK_INTERVAL_MS

    def _due_mark_ms(self) -> int | None:
        end = self._mark_end_ms()
        if self._next_mark_ms is None or end is None or self._next_mark_ms > end:
            return None
        return self._next_mark_ms

    def _mark_prices(self, now_ms: int, slow: bool) -> list[Outgoing]:
        sc = self._scenario
        if sc is not None:
            t = self._scenario_time(now_ms)
            prices = {s: sc.price_at(s, t) for s in sc.symbols}
        else:
            prices = self._last_price
        next_funding = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        out = []
        for sym, index in prices.items():
            mark = fmt_decimal(instrument(sym).round_price(index), MARK_DECIMALS)
            idx = fmt_decimal(index, MARK_DECIMALS)
            payload = {"e": "markPriceUpdate", "E": now_ms, "s": sym, "p": mark, "i": idx,
                       "P": idx, "r": FUNDING_RATE, "T": next_funding}  # fmt: skip
            name = f"{sym.lower()}@markPrice"
            streams = (f"{name}@1s", name) if slow else (f"{name}@1s",)
            out.append(Outgoing(streams, orjson.dumps(payload), (), ()))
        return out

    def _agg_trade(self, tr: SimTrade, now_ms: int) -> Outgoing:
        sym = tr.venue_symbol
        spec = instrument(sym)
        a = self._agg_id.get(sym, 2_000_000_000 + zlib.crc32(sym.encode()) % 100_000_000)
        f = self._fill_id.get(sym, 5_000_000_000 + zlib.crc32(sym.encode()) % 100_000_000)
        last = f + a % 3  # 1 to 3 fills per aggregate
        self._agg_id[sym], self._fill_id[sym] = a + 1, last + 1
        price, qty = spec.price_text(tr.price), spec.qty_text(tr.qty)
        payload = {"e": "aggTrade", "E": now_ms, "s": sym, "a": a, "p": price, "q": qty,
                   "f": f, "l": last, "T": now_ms, "m": tr.taker_side == "sell"}  # fmt: skip
        item = SentTrade(VENUE, sym, tr.taker_side, qty, price, now_ms, str(a))
        return Outgoing(
            (f"{sym.lower()}@aggTrade",), orjson.dumps(payload), (next(self._keys),), (item,)
        )

    def _force_order(self, liq: SimLiquidation, t_ms: int, now_ms: int) -> Outgoing:
        sym = liq.venue_symbol
        spec = instrument(sym)
        long = liq.liquidated_side == "long"
        limit = (
            spec.round_price(liq.price * (1 - LIMIT_PRICE_OFFSET), "floor")
            if long
            else spec.round_price(liq.price * (1 + LIMIT_PRICE_OFFSET), "ceil")
        )
        qty = spec.qty_text(liq.qty, strip=True)
        avg = spec.price_text(liq.price, strip=True)
        order = {"s": sym, "S": "SELL" if long else "BUY", "o": "LIMIT", "f": "IOC", "q": qty,
                 "p": spec.price_text(limit, strip=True), "ap": avg, "X": "FILLED", "l": qty,
                 "z": qty, "T": t_ms}  # fmt: skip
        payload = orjson.dumps({"e": "forceOrder", "E": now_ms, "o": order})
        item = SentLiquidation(VENUE, sym, liq.liquidated_side, qty, avg, t_ms)
        return Outgoing(
            (ALL_LIQUIDATIONS, f"{sym.lower()}@forceOrder"), payload, (next(self._keys),), (item,)
        )


def _route(path: str) -> tuple[int, str] | None:
    try:
        parse_route(path)
    except RouteError as exc:
        return exc.status, exc.text + "\n"
    return None


OPEN_INTEREST_PATH: Final = "/fapi/v1/openInterest"
OPEN_INTEREST_NOTIONAL_USD: Final = 2e9  # per symbol, in base units at the start price


def rest(path: str) -> tuple[int, bytes] | None:
    """``GET /fapi/v1/openInterest?symbol=BTCUSDT``: the venue's shape, with a constant open
    interest worth about $2B at the symbol's start price (in base units on the lot grid)."""
    parts = urlsplit(path)
    if parts.path != OPEN_INTEREST_PATH:
        return None
    symbol = parse_qs(parts.query).get("symbol", [""])[0]
    try:
        spec = instrument(symbol)
    except (KeyError, ValueError):
        return 400, orjson.dumps({"code": -1121, "msg": "Invalid symbol."})
    oi = round(OPEN_INTEREST_NOTIONAL_USD / spec.start_price / spec.lot) * spec.lot
    body = {"openInterest": f"{oi:.{spec.qty_decimals}f}", "symbol": symbol,
            "time": time.time_ns() // 1_000_000}  # fmt: skip
    return 200, orjson.dumps(body)


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``liquidations`` on ``/ws/!forceOrder@arr``; ``trades`` on a combined stream of each
    symbol's ``@aggTrade`` and ``@markPrice@1s`` (subscribed by URL, no requests), 1024 streams a
    connection (``trades-2``, ...)."""
    streams = [f"{s.lower()}{x}" for s in syms for x in ("@aggTrade", "@markPrice@1s")]
    out = [Connection("liquidations", f"{base}/ws/{ALL_LIQUIDATIONS}")]
    for i, shard in enumerate(chunks(streams, MAX_STREAMS)):
        name = "trades" if i == 0 else f"trades-{i + 1}"
        out.append(Connection(name, f"{base}/stream?streams={'/'.join(shard)}"))
    return out


def _pinged(session: Session) -> bool:
    """Protocol pings go to every connection but the silent legacy ones."""
    return isinstance(session, BinanceSession) and not session.silent


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path="/market",
    route=_route,
    new_session=lambda path, conn_id: BinanceSession(parse_route(path), conn_id),
    new_feed=BinanceFeed,
    new_feed_for=BinanceFeed,  # marks on the scenario's price path
    rest=rest,
    activity=1.0,
    scenario_order=0,
    in_default_scenario=True,
    venue_symbol=lambda symbol: symbol if symbol in INSTRUMENTS else None,
    liquidations_as_trades=False,
    client_plan=client_plan,
    rest_paths=(),
    pings=Pings(interval_s=180.0, timeout_s=600.0, applies_to=_pinged),  # no pong in 10 min: out
)
