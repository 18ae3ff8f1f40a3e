"""Bybit v5 public linear and inverse streams, as the simulator speaks them. Pure module (sans-I/O).

Paths ``/v5/public/linear`` and ``/v5/public/inverse`` (anything else: HTTP 404); a topic of the
other category's symbols is refused like an unknown one. Client operations (docs/venues.md §2):

* ``{"op":"subscribe","args":[...],"req_id":"..."}`` ->
  ``{"success":true,"ret_msg":"","conn_id":"<id>","req_id":"...","op":"subscribe"}``; ``req_id``
  is echoed only when the client sent one. A request is all-or-nothing; failures:
  unknown topic ``error:handler not found,topic:<t>``, a topic already subscribed on this
  connection ``error:already subscribed,topic:<t>``, and more than 10 args
  ``error:args size >10``. The 10-topics-per-request limit is **UNVERIFIED** for the real venue;
  the simulator enforces it so producers are built to batch.
* ``{"op":"unsubscribe",...}`` likewise; ``{"op":"ping"}`` -> ``ret_msg":"pong"``.
* A connection that sent nothing for ``SPEC.idle_timeout_s`` (600 s) is closed (by the server,
  which applies the spec's rule).

Topics served: ``allLiquidation.<SYM>``, ``publicTrade.<SYM>`` and ``tickers.<SYM>`` (``<SYM>``
upper-case). The inverse socket carries ``allLiquidation`` of the inverse perpetuals ``BTCUSD`` and
``ETHUSD``: every ``INVERSE_EVERY``-th liquidation of BTCUSDT/ETHUSDT in the scenario happens on its
inverse twin instead, sized in whole contracts of 1 USD (``v``; at least one).

* allLiquidation: every 500 ms (wall-clock windows ``[k*500, (k+1)*500)`` ms since the epoch) one
  ``snapshot`` per symbol carrying **all** liquidations of the window, none dropped. ``S`` is the
  **position** side: ``"Buy"`` means a long was liquidated (the reverse of Binance). ``p`` is the
  bankruptcy price, 0.5 % beyond the scenario price (below it for longs); ``v`` the size.
* publicTrade: the trades of one symbol that fall in the same 100 ms tick, in one frame at the end
  of the tick. ``S`` is the taker side, ``L`` the tick direction, ``i`` a deterministic UUID.

* tickers (market context; only with a scenario bound, ``BybitFeed(scenario)``, since the mark
  price comes from its price path): pushed when an event of the symbol arrives and at least
  ``TICKER_MIN_INTERVAL_MS`` (100 ms, Bybit's linear push frequency) after the symbol's previous
  push, so during playback every 100 ms to about 1 s. The state is computed at the event's scenario
  time ``t``: ``markPrice`` = the path at ``t`` (``Scenario.price_at``) to the instrument's decimals;
  ``indexPrice`` the path plus a spot premium growing to ``INDEX_PREMIUM`` through the crash;
  ``fundingRate`` (6 decimals) from ``FUNDING_CALM`` falling to ``FUNDING_CALM + FUNDING_CRASH``;
  ``nextFundingTime`` the next 8-hour boundary of the wall clock; ``openInterest`` starts at
  ``OI_START_LIQ_MULTIPLE`` median liquidations and falls by the size of every liquidation (the
  positions closed), ``openInterestValue`` = open interest x mark (2 decimals); ``lastPrice`` and
  ``tickDirection`` follow the trades. Every connection gets ``type: "snapshot"`` (every field) as
  its first push of a topic after subscribing, then ``type: "delta"`` messages carrying ``symbol``
  and only the fields whose text changed since the previous push (a push with no change is not
  sent). ``cs`` counts pushes per symbol, ``ts`` is the wall clock. Tickers are not in the ledger.

Numbers are fixed to the instrument's decimals (``"16578.50"``, ``"0.010"``), as Bybit prints them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit

import orjson

from monitor.simulator.clientplan import Connection, chunks, compact_json
from monitor.simulator.events import Scenario, SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import INSTRUMENTS, fmt_decimal, instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import (
    Outgoing,
    Reply,
    SnapshotOutgoing,
    VenueSpec,
    snapshot_or_delta,
    stable_uuid,
)

VENUE: Final = "bybit"
PATH: Final = "/v5/public/linear"
INVERSE_PATH: Final = "/v5/public/inverse"
LINEAR: Final = "linear"
INVERSE: Final = "inverse"
INVERSE_TWINS: Final = {"BTCUSDT": "BTCUSD", "ETHUSDT": "ETHUSD"}  # scenario symbol -> inverse
INVERSE_EVERY: Final = 4  # every 4th liquidation of a twinned symbol is an inverse one
LIQUIDATION_PUSH_MS: Final = 500
TRADE_TICK_MS: Final = 100
BANKRUPTCY_OFFSET: Final = 0.005
MAX_ARGS_PER_REQUEST: Final = 10  # UNVERIFIED on the real venue (third-party guide)
TICKERS: Final = "tickers"
TICKER_MIN_INTERVAL_MS: Final = 100  # Bybit: linear tickers pushed every 100 ms at most
INDEX_PREMIUM: Final = 0.0005  # index above mark by up to 5 bp at the end of the crash
FUNDING_CALM: Final = 0.0001  # 1 bp per 8 h
FUNDING_CRASH: Final = -0.0003  # added at full crash progress: -2 bp at the end
FUNDING_INTERVAL_MS: Final = 8 * 3600 * 1000
OI_START_LIQ_MULTIPLE: Final = 50_000  # starting open interest, in median liquidation notionals
_TOPIC_RE: Final = re.compile(r"^(?:allLiquidation|publicTrade|tickers)\.[A-Z0-9]+$")


def valid_topic(topic: str, category: str = LINEAR) -> bool:
    """A topic this category's socket serves: inverse symbols only on the inverse socket."""
    if _TOPIC_RE.match(topic) is None:
        return False
    inverse = topic.partition(".")[2] in _INVERSE_SYMBOLS
    return inverse == (category == INVERSE)


_INVERSE_SYMBOLS: Final = frozenset(INVERSE_TWINS.values())


@dataclass(frozen=True, slots=True)
class TickerOutgoing(SnapshotOutgoing):
    """One ticker push: ``payload`` is the delta, ``snapshot`` the full state at the same moment,
    for the connections whose first push of the topic this is."""


class BybitSession:
    def __init__(self, conn_id: str, category: str = LINEAR) -> None:
        self.conn_id = conn_id
        self.category = category
        self._topics: dict[str, None] = {}  # ordered set
        self._primed: set[str] = set()  # ticker topics that had their snapshot on this connection

    @property
    def subscriptions(self) -> Collection[str]:
        return self._topics.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        if type(out) is TickerOutgoing:
            return snapshot_or_delta(out, self._topics.keys(), self._primed)
        return [out.payload for t in out.streams if t in self._topics]

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return self._reply(False, "error:request not json", "", None)
        if not isinstance(req, dict):
            return self._reply(False, "error:request not json object", "", None)
        op = req.get("op")
        rid = req.get("req_id")
        req_id = rid if isinstance(rid, str) else None
        if op == "ping":
            return self._reply(True, "pong", "ping", req_id)
        if op not in ("subscribe", "unsubscribe"):
            return self._reply(False, f"error:unsupported op {op}", str(op or ""), req_id)
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            return self._reply(False, "error:args must be a list of topics", op, req_id)
        if len(args) > MAX_ARGS_PER_REQUEST:
            return self._reply(False, f"error:args size >{MAX_ARGS_PER_REQUEST}", op, req_id)
        for topic in args:
            if not valid_topic(topic, self.category):
                return self._reply(False, f"error:handler not found,topic:{topic}", op, req_id)
            if op == "subscribe" and topic in self._topics:
                return self._reply(False, f"error:already subscribed,topic:{topic}", op, req_id)
        if op == "subscribe":
            self._topics.update(dict.fromkeys(args))
        else:
            for topic in args:
                self._topics.pop(topic, None)
        self._primed.difference_update(args)  # a new subscription starts with a snapshot
        return self._reply(True, "", op, req_id, changed=True)

    def _reply(
        self, ok: bool, msg: str, op: str, req_id: str | None, *, changed: bool = False
    ) -> Reply:
        body: dict[str, Any] = {"success": ok, "ret_msg": msg, "conn_id": self.conn_id}
        if req_id is not None:
            body["req_id"] = req_id
        body["op"] = op
        return Reply(frames=(orjson.dumps(body),), subscriptions_changed=changed)


class _TickerState:
    __slots__ = ("cs", "fields", "oi_units", "pushed_ms")

    def __init__(self, oi_units: int) -> None:
        self.oi_units = oi_units  # open interest in units of the quantity's last decimal
        self.cs = 0
        self.pushed_ms: int | None = None
        self.fields: dict[str, str] = {}  # the state as last pushed


class BybitFeed:
    """Scenario events -> batched publicTrade and allLiquidation snapshots; with a scenario bound,
    tickers snapshots and deltas from its price path."""

    def __init__(self, scenario: Scenario | None = None) -> None:
        self._scenario = scenario
        self._tickers: dict[str, _TickerState] = {}
        self._keys = itertools.count()
        # (kind, symbol, window end ms) -> [(key, item dict, ledger item)]
        self._pending: dict[
            tuple[str, str, int], list[tuple[int, dict[str, Any], SentTrade | SentLiquidation]]
        ] = {}
        self._last_price: dict[str, tuple[float, str]] = {}  # symbol -> (price, last tick dir)
        self._trade_seq: dict[str, int] = {}

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        key = next(self._keys)
        sent: SentTrade | SentLiquidation
        if isinstance(event, SimTrade):
            end = (now_ms // TRADE_TICK_MS + 1) * TRADE_TICK_MS
            bucket = ("publicTrade", event.venue_symbol, end)
            item, sent = self._trade(event, now_ms)
        else:
            end = (now_ms // LIQUIDATION_PUSH_MS + 1) * LIQUIDATION_PUSH_MS
            twin = INVERSE_TWINS.get(event.venue_symbol)
            if twin is not None and key % INVERSE_EVERY == INVERSE_EVERY - 1:
                item, sent = self._liquidation(event, now_ms, twin)
            else:
                item, sent = self._liquidation(event, now_ms)
            bucket = ("allLiquidation", sent.venue_symbol, end)
        self._pending.setdefault(bucket, []).append((key, item, sent))
        if self._scenario is None or event.venue_symbol not in self._scenario.paths:
            return []
        return self._ticker(event, now_ms)

    def next_deadline_ms(self) -> int | None:
        return min((end for _, _, end in self._pending), default=None)

    def flush(self, now_ms: int) -> list[Outgoing]:
        due = sorted((b for b in self._pending if b[2] <= now_ms), key=lambda b: b[2])
        out = []
        for bucket in due:
            kind, sym, _ = bucket
            entries = self._pending.pop(bucket)
            topic = f"{kind}.{sym}"
            payload = {"topic": topic, "type": "snapshot", "ts": now_ms,
                       "data": [item for _, item, _ in entries]}  # fmt: skip
            out.append(
                Outgoing(
                    (topic,),
                    orjson.dumps(payload),
                    tuple(k for k, _, _ in entries),
                    tuple(s for _, _, s in entries),
                )
            )
        return out

    def _trade(self, tr: SimTrade, now_ms: int) -> tuple[dict[str, Any], SentTrade]:
        sym = tr.venue_symbol
        spec = instrument(sym)
        seq = self._trade_seq.get(sym, 0)
        self._trade_seq[sym] = seq + 1
        trade_id = stable_uuid(VENUE, sym, str(seq))
        prev = self._last_price.get(sym)
        if prev is None or tr.price == prev[0]:
            direction = (
                "ZeroPlusTick" if prev is None or prev[1].endswith("PlusTick") else "ZeroMinusTick"
            )
        else:
            direction = "PlusTick" if tr.price > prev[0] else "MinusTick"
        self._last_price[sym] = (tr.price, direction)
        side = "Sell" if tr.taker_side == "sell" else "Buy"
        price, qty = spec.price_text(tr.price), spec.qty_text(tr.qty)
        item = {"T": now_ms, "s": sym, "S": side, "v": qty, "p": price, "L": direction,
                "i": trade_id, "BT": False}  # fmt: skip
        return item, SentTrade(VENUE, sym, tr.taker_side, qty, price, now_ms, trade_id)

    def _liquidation(
        self, liq: SimLiquidation, now_ms: int, inverse: str | None = None
    ) -> tuple[dict[str, Any], SentLiquidation]:
        """A linear item, or with ``inverse`` (the twin's symbol) an inverse one: ``v`` in whole
        contracts of 1 USD."""
        spec = instrument(liq.venue_symbol)
        long = liq.liquidated_side == "long"
        bankruptcy = (
            spec.round_price(liq.price * (1 - BANKRUPTCY_OFFSET), "floor")
            if long
            else spec.round_price(liq.price * (1 + BANKRUPTCY_OFFSET), "ceil")
        )
        price = spec.price_text(bankruptcy)
        sym = inverse or liq.venue_symbol
        if inverse is None:
            qty = spec.qty_text(liq.qty)
            sent = SentLiquidation(VENUE, sym, liq.liquidated_side, qty, price, now_ms)
        else:
            qty = str(max(1, round(liq.qty * bankruptcy)))
            sent = SentLiquidation(VENUE, sym, liq.liquidated_side, qty, price, now_ms, 1.0, True)
        # Position side: "Buy" = a long position was liquidated.
        item = {"T": now_ms, "s": sym, "S": "Buy" if long else "Sell", "v": qty, "p": price}
        return item, sent

    # ---- tickers ------------------------------------------------------------------------------

    def _ticker(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        sym = event.venue_symbol
        spec = instrument(sym)
        state = self._tickers.get(sym)
        if state is None:
            oi_usd = OI_START_LIQ_MULTIPLE * spec.liq_notional_usd
            oi_units = round(oi_usd / spec.start_price * 10**spec.qty_decimals)
            state = self._tickers[sym] = _TickerState(oi_units)
        if isinstance(event, SimLiquidation):  # the liquidated position is closed
            lot_units = spec.lot_units
            state.oi_units = max(
                lot_units, state.oi_units - round(event.qty * 10**spec.qty_decimals)
            )
        if state.pushed_ms is not None and now_ms - state.pushed_ms < TICKER_MIN_INTERVAL_MS:
            return []
        fields = self._ticker_fields(sym, event.t, now_ms, state)
        changed = {k: v for k, v in fields.items() if state.fields.get(k) != v}
        if not changed:
            return []
        state.fields = fields
        state.pushed_ms = now_ms
        state.cs += 1
        topic = f"{TICKERS}.{sym}"
        delta = {"symbol": sym, **changed}

        def frame(kind: str, data: dict[str, str]) -> bytes:
            return orjson.dumps(
                {"topic": topic, "type": kind, "data": data, "cs": state.cs, "ts": now_ms}
            )

        return [
            TickerOutgoing(
                (topic,), frame("delta", delta), (), (), snapshot=frame("snapshot", fields)
            )
        ]

    def _ticker_fields(
        self, sym: str, t: float, now_ms: int, state: _TickerState
    ) -> dict[str, str]:
        """The full ticker at scenario second ``t``, as text, in the documented field order."""
        sc = self._scenario
        assert sc is not None
        spec = instrument(sym)
        crash_s = sc.duration_s - sc.crash_start_s
        u = min(max((t - sc.crash_start_s) / crash_s, 0.0), 1.0) if crash_s > 0 else 0.0
        path = sc.price_at(sym, t)
        mark = spec.price_text(path)
        oi_text = fmt_decimal(state.oi_units / 10**spec.qty_decimals, spec.qty_decimals)
        fields = {"symbol": sym}
        last = self._last_price.get(sym)
        if last is not None:
            fields["tickDirection"] = last[1]
            fields["lastPrice"] = spec.price_text(last[0])
        fields["markPrice"] = mark
        fields["indexPrice"] = spec.price_text(path * (1.0 + INDEX_PREMIUM * u))
        fields["openInterest"] = oi_text
        fields["openInterestValue"] = f"{float(oi_text) * float(mark):.2f}"
        fields["nextFundingTime"] = str((now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS)
        fields["fundingRate"] = f"{round(FUNDING_CALM + FUNDING_CRASH * u, 6) + 0.0:.6f}"
        return fields


def _route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path in (PATH, INVERSE_PATH) else (404, f"Not Found: {path}\n")


def _category(path: str) -> str:
    return INVERSE if urlsplit(path).path == INVERSE_PATH else LINEAR


INSTRUMENTS_PATH: Final = "/v5/market/instruments-info"
# Listed besides the scenario's symbols: one that trades (its liquidations must be subscribed, and
# stay quiet), one that is not trading and one not quoted in USDT (both must be left out).
EXTRA_LISTED: Final = (
    {"symbol": "DOGEUSDT", "contractType": "LinearPerpetual", "status": "Trading",
     "baseCoin": "DOGE", "quoteCoin": "USDT", "settleCoin": "USDT"},
    {"symbol": "LUNAUSDT", "contractType": "LinearPerpetual", "status": "Closed",
     "baseCoin": "LUNA", "quoteCoin": "USDT", "settleCoin": "USDT"},
    {"symbol": "BTCPERP", "contractType": "LinearPerpetual", "status": "Trading",
     "baseCoin": "BTC", "quoteCoin": "PERP", "settleCoin": "USDC"},
)  # fmt: skip


PAGE_ROWS: Final = 2  # smaller pages than the venue's (limit 1000), so every run follows cursors


def rest(path: str) -> tuple[int, bytes] | None:
    """``GET /v5/market/instruments-info?category=linear|inverse[&cursor=c]``: the scenario's
    symbols and a few more (linear), or the inverse twins, ``PAGE_ROWS`` per page,
    ``nextPageCursor`` naming the next page ("" on the last)."""
    url = urlsplit(path)
    if url.path != INSTRUMENTS_PATH:
        return None
    query = dict(parse_qsl(url.query))
    category = query.get("category", LINEAR)
    if category == INVERSE:
        rows = [
            {"symbol": s, "contractType": "InversePerpetual", "status": "Trading",
             "baseCoin": s.removesuffix("USD"), "quoteCoin": "USD", "settleCoin": s[:-3]}
            for s in INVERSE_TWINS.values()
        ]  # fmt: skip
    else:
        rows = [
            {"symbol": s, "contractType": "LinearPerpetual", "status": "Trading",
             "baseCoin": s.removesuffix("USDT"), "quoteCoin": "USDT", "settleCoin": "USDT"}
            for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
        ] + list(EXTRA_LISTED)  # fmt: skip
    cursor = query.get("cursor", "")
    if cursor and not (cursor.startswith("page") and cursor[4:].isdigit()):
        body = {"retCode": 10001, "retMsg": "invalid cursor", "result": {}, "time": 1}
        return 200, orjson.dumps(body)
    page = int(cursor[4:]) if cursor else 0
    chunk = rows[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
    more = (page + 1) * PAGE_ROWS < len(rows)
    body = {"retCode": 0, "retMsg": "OK",
            "result": {"category": category, "list": chunk,
                       "nextPageCursor": f"page{page + 1}" if more else ""}, "time": 1}  # fmt: skip
    return 200, orjson.dumps(body)


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``public``: every symbol's ``allLiquidation``, ``publicTrade`` and ``tickers`` topics, 10 a
    request (``req_id`` ``sub-N``); ``inverse`` on ``INVERSE_PATH``: ``allLiquidation`` of the
    inverse perpetuals listed (``INVERSE_TWINS``). The producer's socket for listed symbols outside
    the scenario is left out: no liquidation of the scenario goes there."""

    def frames(topics: list[str]) -> tuple[str, ...]:
        return tuple(compact_json({"op": "subscribe", "args": a, "req_id": f"sub-{i + 1}"})
                     for i, a in enumerate(chunks(topics, MAX_ARGS_PER_REQUEST)))  # fmt: skip

    topics = [f"{c}.{s}" for c in ("allLiquidation", "publicTrade", TICKERS) for s in syms]
    inverse = [f"allLiquidation.{s}" for s in dict.fromkeys(INVERSE_TWINS.values())]
    out = [Connection("public", base, frames(topics))] if topics else []
    inverse_url = base.removesuffix(PATH) + INVERSE_PATH
    return out + ([Connection("inverse", inverse_url, frames(inverse))] if inverse else [])


def _next_page(first: str, body: bytes) -> str | None:
    """The listing's next page: ``first`` with the body's ``nextPageCursor`` ("" on the last)."""
    cursor = orjson.loads(body).get("result", {}).get("nextPageCursor") or ""
    return f"{first}&cursor={quote(str(cursor), safe='')}" if cursor else None


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=_route,
    new_session=lambda path, conn_id: BybitSession(conn_id, _category(path)),
    new_feed=BybitFeed,
    new_feed_for=BybitFeed,  # with the scenario: tickers from its price path
    rest=rest,
    activity=0.8,
    scenario_order=1,
    in_default_scenario=True,
    venue_symbol=lambda symbol: symbol if symbol in INSTRUMENTS else None,
    liquidations_as_trades=False,
    client_plan=client_plan,
    rest_paths=tuple(f"{INSTRUMENTS_PATH}?category={c}&limit=1000" for c in (LINEAR, INVERSE)),
    rest_next_page=_next_page,
    idle_timeout_s=600.0,  # no ping or message for 10 minutes: closed
)
