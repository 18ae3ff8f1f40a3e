"""HTX USDT-margined swaps, as the simulator speaks them. Pure module (sans-I/O).

One port serves the three endpoints (docs/venues.md §6): ``/linear-swap-ws`` (market data,
trades), ``/linear-swap-notification`` (liquidations, funding rates) and ``/ws_index`` (mark price
and index klines); any other path: HTTP 404. REST on the same port:
``GET /linear-swap-api/v1/swap_contract_info`` lists the simulated contracts and
``GET /linear-swap-api/v1/swap_open_interest[?contract_code=<CODE>]`` answers their open interest.
**Every frame the server sends (replies, pings, market data) is GZIP-compressed binary**; clients
send plain JSON.

* Market endpoint: ``{"sub": "market.<CODE>.trade.detail", "id": "x"}`` ->
  ``{"id": "x", "status": "ok", "subbed": "<topic>", "ts": ...}``; an unknown topic ->
  ``{"id": "x", "status": "error", "err-code": "bad-request", "err-msg": "invalid topic <t>", ...}``;
  ``unsub`` likewise (``unsubbed``). Heartbeat: the server sends ``{"ping": n}``, the client must
  answer ``{"pong": n}``.
* ws_index endpoint: the same requests and heartbeat for ``market.<CODE>.mark_price.<period>`` and
  ``market.<CODE>.index.<period>`` (any documented period is accepted; only ``1min`` klines are
  pushed).
* Notification endpoint: ``{"op": "sub", "cid": "c", "topic": "public.<CODE|*>.liquidation_orders"}``
  (or ``.funding_rate``) -> ``{"op": "sub", "cid": "c", "topic": ..., "ts": ..., "err-code": 0}``;
  ``business_type`` is optional (``swap`` or ``all``). Errors carry a non-zero ``err-code`` and
  ``err-msg``: 2014 for a contract subscribed after the wildcard of the same topic (documented:
  "small scope before large"), 2001 for an invalid topic (code UNVERIFIED). Heartbeat:
  ``{"op": "ping", "ts": "n"}`` -> ``{"op": "pong", "ts": "n"}``.
* All three: a ping every ``PING_INTERVAL_S``; after ``MAX_MISSED_PINGS`` unanswered pings in a
  row the connection is closed (the real count is "several", UNVERIFIED). A pong echoing any
  outstanding ping answers them all.

Feed: every scenario event is pushed at once, one frame per event. Quantities are quantized to
whole contracts (``contract_size``: BTC 0.001, ETH 0.01, SOL 1, DOGE 100); an event that rounds to zero
contracts is not sent. Liquidations: ``direction`` is the order side (sell closes a long),
``offset`` "close", ``price`` the bankruptcy price 0.5 % beyond the scenario price, ``volume``
contracts, ``amount`` coin, ``trade_turnover`` = volume x contract_size x price (the ledger's own
product, so the ledger notional equals it exactly). Trades (``trade.detail``): ``amount`` =
contracts, ``quantity`` = coin (names swapped vs. liquidations), ``direction`` = taker side.
Numbers are JSON numbers. Ledger items use the HTX spelling (``BTC-USDT``).

Market context (``HtxFeed(price_at)``, what the server builds with the scenario's price path),
pushed on a contract's scenario events (also those too small for a contract), at most one push
per topic and contract every ``KLINE_PUSH_MS`` (1 s, both klines) and ``FUNDING_PUSH_MS`` (5 s;
HTX's real cadence is not documented, UNVERIFIED). A push carries the values at the scenario time
of the triggering event and ``ts`` its wall time; contexts are not market items, so they are not in
the ledger.

* ``market.<CODE>.mark_price.1min``: a 1-minute kline of the wall clock (``id`` its start in
  seconds), ``close`` = the scenario path rounded to the tick (without a path: the event's own
  price), ``open``/``high``/``low`` over the pushes of that minute; ``vol``, ``count``,
  ``amount``, ``trade_turnover`` are ``"0"``; prices are decimal strings.
* ``market.<CODE>.index.1min``: likewise, ``close`` = the path plus a spot premium growing to
  ``INDEX_PREMIUM`` with the drawdown ``g`` (0 calm, 1 at the scenario's full drop), with two more
  decimals than the tick; ``count`` is the integer 0 (as the documented example).
* ``public.<CODE>.funding_rate`` (also carried on ``public.*.funding_rate``): ``funding_rate`` 1 bp
  in the calm, falling with ``g`` to -4 bp, printed with 18 decimals like HTX; ``funding_time`` the
  wall minute; ``settlement_time`` the next 8-hour UTC boundary (HTX settles at 00:00, 08:00,
  16:00 GMT+8, the same instants); ``estimated_rate`` null (deprecated).
* open interest (REST): a constant ``volume`` of whole contracts worth ``OI_USD_START`` at the
  start price, ``amount`` = volume x contract_size, ``value`` = amount x start price (the answer
  is stateless, like Binance's), ``ts`` the wall clock; an unknown ``contract_code``: HTX's error
  answer (``status`` error, ``err_code`` 1332).
"""

from __future__ import annotations

import gzip
import itertools
import re
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, urlsplit

import orjson

from monitor.simulator.clientplan import Connection, compact_json
from monitor.simulator.events import SimEvent, SimTrade
from monitor.simulator.instruments import fmt_decimal, instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing, Reply, Session, VenueSpec

VENUE: Final = "htx"
MARKET_PATH: Final = "/linear-swap-ws"
NOTIFICATION_PATH: Final = "/linear-swap-notification"
INDEX_PATH: Final = "/ws_index"
CONTRACT_INFO_PATH: Final = "/linear-swap-api/v1/swap_contract_info"
OPEN_INTEREST_PATH: Final = "/linear-swap-api/v1/swap_open_interest"
PING_INTERVAL_S: Final = 5.0
MAX_MISSED_PINGS: Final = 3
TICK_S: Final = 1.0
BANKRUPTCY_OFFSET: Final = 0.005
WILDCARD_TOPIC: Final = "public.*.liquidation_orders"
FUNDING_WILDCARD_TOPIC: Final = "public.*.funding_rate"
KLINE_PUSH_MS: Final = 1000
FUNDING_PUSH_MS: Final = 5000
FUNDING_INTERVAL_MS: Final = 8 * 3600 * 1000
FUNDING_CALM: Final = 0.0001
FUNDING_CRASH: Final = -0.0005  # added at full drawdown (g = 1)
INDEX_PREMIUM: Final = 0.0005  # index above the mark by up to 5 bp at full drawdown
OI_USD_START: Final = {"BTCUSDT": 1.2e9, "ETHUSDT": 5.0e8, "SOLUSDT": 1.5e8, "DOGEUSDT": 1.0e8}
_TRADE_RE: Final = re.compile(r"^market\.[A-Z0-9]+-USDT\.trade\.detail$")
_KLINE_RE: Final = re.compile(
    r"^market\.[A-Z0-9]+-USDT\.(?:mark_price|index)"
    r"\.(?:1min|5min|15min|30min|60min|4hour|1day|1week|1mon)$"
)
_PUBLIC_RE: Final = re.compile(r"^public\.(\*|[A-Z0-9]+-USDT)\.(liquidation_orders|funding_rate)$")


@dataclass(frozen=True, slots=True)
class Contract:
    code: str  # BTC-USDT
    base: str
    contract_size: float
    size_decimals: int


CONTRACTS: Final = {
    "BTCUSDT": Contract("BTC-USDT", "BTC", 0.001, 3),
    "ETHUSDT": Contract("ETH-USDT", "ETH", 0.01, 2),
    "SOLUSDT": Contract("SOL-USDT", "SOL", 1.0, 0),
    "DOGEUSDT": Contract("DOGE-USDT", "DOGE", 100.0, 0),
}


def contract(venue_symbol: str) -> Contract:
    try:
        return CONTRACTS[venue_symbol]
    except KeyError:
        raise ValueError(f"no simulated HTX contract for {venue_symbol!r}") from None


def gz(payload: bytes) -> bytes:
    """What goes on the wire: deterministic gzip (mtime 0)."""
    return gzip.compress(payload, compresslevel=5, mtime=0)


def _frame(body: dict[str, Any]) -> bytes:
    return gz(orjson.dumps(body))


# ---- sessions --------------------------------------------------------------------------------


class _HtxSession:
    """Subscriptions and the server heartbeat shared by both endpoints."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._topics: dict[str, None] = {}  # ordered set
        self._next_ping_s: float | None = None
        self._outstanding: list[object] = []  # unanswered ping tokens

    @property
    def subscriptions(self) -> Collection[str]:
        return self._topics.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._topics for s in out.streams) else []

    def tick(self, now_s: float) -> Reply:
        if self._next_ping_s is None:
            self._next_ping_s = now_s + PING_INTERVAL_S
            return Reply()
        if now_s < self._next_ping_s:
            return Reply()
        if len(self._outstanding) >= MAX_MISSED_PINGS:
            return Reply(close=(1008, "heartbeat timeout"))
        self._next_ping_s = now_s + PING_INTERVAL_S
        token = self._token(now_s)
        self._outstanding.append(token)
        return Reply(frames=(_frame(self._ping(token)),))

    def _pong(self, token: object) -> Reply:
        if token in self._outstanding:
            self._outstanding.clear()
        return Reply()

    def _token(self, now_s: float) -> object:
        return int(now_s * 1000)

    def _ping(self, token: object) -> dict[str, Any]:
        raise NotImplementedError

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        raise NotImplementedError


class HtxMarketSession(_HtxSession):
    """``/linear-swap-ws``: ``sub``/``unsub`` of ``market.<CODE>.trade.detail``."""

    topic_re: ClassVar[re.Pattern[str]] = _TRADE_RE

    def _ping(self, token: object) -> dict[str, Any]:
        return {"ping": token}

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        ts = int(now_s * 1000)
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            req = None
        if not isinstance(req, dict):
            return _status_error(None, "bad-request", "invalid json", ts)
        if "pong" in req:
            return self._pong(req["pong"])
        rid = req.get("id")
        for op, done in (("sub", "subbed"), ("unsub", "unsubbed")):
            if op in req:
                topic = req[op]
                if not isinstance(topic, str) or self.topic_re.match(topic) is None:
                    return _status_error(rid, "bad-request", f"invalid topic {topic}", ts)
                if op == "sub":
                    self._topics[topic] = None
                else:
                    self._topics.pop(topic, None)
                body = {"id": rid, "status": "ok", done: topic, "ts": ts}
                return Reply(frames=(_frame(body),), subscriptions_changed=True)
        return _status_error(rid, "bad-request", "invalid request", ts)


class HtxIndexSession(HtxMarketSession):
    """``/ws_index``: ``sub``/``unsub`` of ``market.<CODE>.mark_price|index.<period>``."""

    topic_re: ClassVar[re.Pattern[str]] = _KLINE_RE


class HtxNotificationSession(_HtxSession):
    """``/linear-swap-notification``: ``op`` sub/unsub of ``public.<CODE|*>.liquidation_orders``
    and ``public.<CODE|*>.funding_rate``."""

    def _token(self, now_s: float) -> object:
        return str(int(now_s * 1000))

    def _ping(self, token: object) -> dict[str, Any]:
        return {"op": "ping", "ts": token}

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        ts = int(now_s * 1000)
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            req = None
        if not isinstance(req, dict):
            return _op_reply({"op": "error"}, ts, 2002, "invalid json")
        op = req.get("op")
        if op == "pong":
            return self._pong(req.get("ts"))
        if op not in ("sub", "unsub"):
            return _op_reply({"op": "error"}, ts, 2002, f"invalid op {op}")
        head: dict[str, Any] = {"op": op}
        if "cid" in req:
            head["cid"] = req["cid"]
        topic = req.get("topic")
        head["topic"] = topic
        m = _PUBLIC_RE.match(topic) if isinstance(topic, str) else None
        if m is None or req.get("business_type", "swap") not in ("swap", "all"):
            return _op_reply(head, ts, 2001, f"invalid topic {topic}")
        assert isinstance(topic, str)
        if op == "unsub":
            self._topics.pop(topic, None)
            return _op_reply(head, ts, 0, None, changed=True)
        if m.group(1) != "*" and f"public.*.{m.group(2)}" in self._topics:
            return _op_reply(head, ts, 2014, "subscribe a small scope before a large one")
        self._topics[topic] = None
        return _op_reply(head, ts, 0, None, changed=True)


def _status_error(rid: object, code: str, msg: str, ts: int) -> Reply:
    body = {"id": rid, "status": "error", "err-code": code, "err-msg": msg, "ts": ts}
    return Reply(frames=(_frame(body),))


def _op_reply(
    head: dict[str, Any], ts: int, code: int, msg: str | None, *, changed: bool = False
) -> Reply:
    body = {**head, "ts": ts, "err-code": code}
    if msg is not None:
        body["err-msg"] = msg
    return Reply(frames=(_frame(body),), subscriptions_changed=changed)


# ---- feed ------------------------------------------------------------------------------------


class HtxFeed:
    """Scenario events -> one gzip frame each, pushed at once (no batching), and throttled market
    context pushes. ``price_at(venue_symbol, t)`` is the scenario's price path
    (``Scenario.price_at``); without it the mark price is the event's own price."""

    def __init__(self, price_at: Callable[[str, float], float] | None = None) -> None:
        self._price_at = price_at
        self._keys = itertools.count()
        self._tick_id: dict[str, int] = {}
        self._pushed_ms: dict[str, int] = {}  # context topic -> wall ms of its last push
        self._klines: dict[str, tuple[int, str, str, str]] = {}  # topic -> (id, open, high, low)

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        c = contract(event.venue_symbol)
        out = self._context(event, c, now_ms)
        contracts = round(event.qty / c.contract_size)
        if contracts <= 0:
            return out  # below one contract: no such order, but the prices still move
        if isinstance(event, SimTrade):
            out.append(self._trade(event, c, contracts, now_ms))
        else:
            out.append(self._liquidation(event.liquidated_side, event.price, c, contracts, now_ms))
        return out

    def next_deadline_ms(self) -> int | None:
        return None

    def flush(self, now_ms: int) -> list[Outgoing]:
        return []

    def _trade(self, tr: SimTrade, c: Contract, contracts: int, now_ms: int) -> Outgoing:
        spec = instrument(tr.venue_symbol)
        price_text = spec.price_text(spec.round_price(tr.price))
        qty_text = fmt_decimal(contracts * c.contract_size, c.size_decimals)
        tick_id = self._tick_id.get(c.code, 100_000_000 + zlib.crc32(c.code.encode()) % 10**8)
        self._tick_id[c.code] = tick_id + 1
        price, qty = float(price_text), float(qty_text)
        topic = f"market.{c.code}.trade.detail"
        item = {"amount": contracts, "ts": now_ms, "id": tick_id * 10000, "price": price,
                "direction": tr.taker_side, "quantity": qty,
                "trade_turnover": round(qty * price, 8)}  # fmt: skip
        body = {"ch": topic, "ts": now_ms, "tick": {"id": tick_id, "ts": now_ms, "data": [item]}}
        sent = SentTrade(VENUE, c.code, tr.taker_side, qty_text, price_text, now_ms,
                         str(tick_id * 10000))  # fmt: skip
        return Outgoing((topic,), _frame(body), (next(self._keys),), (sent,))

    def _liquidation(
        self, side: str, market: float, c: Contract, contracts: int, now_ms: int
    ) -> Outgoing:
        spec = instrument(c.base + "USDT")
        long = side == "long"
        bankruptcy = (
            spec.round_price(market * (1 - BANKRUPTCY_OFFSET), "floor")
            if long
            else spec.round_price(market * (1 + BANKRUPTCY_OFFSET), "ceil")
        )
        price_text = spec.price_text(bankruptcy)
        sent = SentLiquidation(VENUE, c.code, side, str(contracts), price_text, now_ms,
                               multiplier=c.contract_size)  # fmt: skip
        amount = float(fmt_decimal(contracts * c.contract_size, c.size_decimals))
        topic = f"public.{c.code}.liquidation_orders"
        item = {"symbol": c.base, "contract_code": c.code, "direction": "sell" if long else "buy",
                "offset": "close", "volume": contracts, "price": float(price_text),
                "created_at": now_ms, "amount": amount, "trade_turnover": sent.notional,
                "contract_type": "swap", "pair": c.code, "business_type": "swap"}  # fmt: skip
        body = {"op": "notify", "topic": topic, "ts": now_ms, "data": [item]}
        return Outgoing((topic, WILDCARD_TOPIC), _frame(body), (next(self._keys),), (sent,))

    # ---- market context ---------------------------------------------------------------------

    def _due(self, topic: str, now_ms: int, interval_ms: int) -> bool:
        last = self._pushed_ms.get(topic)
        if last is not None and now_ms - last < interval_ms:
            return False
        self._pushed_ms[topic] = now_ms
        return True

    def _context(self, event: SimEvent, c: Contract, now_ms: int) -> list[Outgoing]:
        mark_topic = f"market.{c.code}.mark_price.1min"
        index_topic = f"market.{c.code}.index.1min"
        funding_topic = f"public.{c.code}.funding_rate"
        due = (
            self._due(mark_topic, now_ms, KLINE_PUSH_MS),
            self._due(index_topic, now_ms, KLINE_PUSH_MS),
            self._due(funding_topic, now_ms, FUNDING_PUSH_MS),
        )
        if not any(due):
            return []
        sym = event.venue_symbol
        spec = instrument(sym)
        price = self._price_at(sym, event.t) if self._price_at is not None else event.price
        g = max(0.0, 1.0 - price / spec.start_price) / spec.drop
        out = []
        if due[0]:
            mark = spec.price_text(spec.round_price(price))
            out.append(self._kline(mark_topic, mark, now_ms, {"count": "0", "trade_turnover": "0"}))
        if due[1]:
            index = fmt_decimal(price * (1.0 + INDEX_PREMIUM * g), spec.price_decimals + 2)
            out.append(self._kline(index_topic, index, now_ms, {"count": 0}))
        if due[2]:
            rate = round(FUNDING_CALM + FUNDING_CRASH * min(g, 1.0), 10) + 0.0
            settlement = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
            item = {"symbol": c.base, "contract_code": c.code, "fee_asset": "USDT",
                    "funding_time": str(now_ms // 60_000 * 60_000), "funding_rate": f"{rate:.18f}",
                    "settlement_time": str(settlement), "estimated_rate": None}  # fmt: skip
            body = {"op": "notify", "topic": funding_topic, "ts": now_ms, "data": [item]}
            out.append(Outgoing((funding_topic, FUNDING_WILDCARD_TOPIC), _frame(body), (), ()))
        return out

    def _kline(self, topic: str, close: str, now_ms: int, extra: dict[str, Any]) -> Outgoing:
        """The topic's current 1-minute kline (wall clock) closing at ``close``."""
        minute = now_ms // 60_000 * 60
        prev = self._klines.get(topic)
        if prev is None or prev[0] != minute:
            prev = (minute, close, close, close)
        x = float(close)
        high = close if x > float(prev[2]) else prev[2]
        low = close if x < float(prev[3]) else prev[3]
        self._klines[topic] = (minute, prev[1], high, low)
        tick = {"id": minute, "open": prev[1], "close": close, "high": high, "low": low,
                "amount": "0", "vol": "0", **extra}  # fmt: skip
        body = {"ch": topic, "ts": now_ms, "tick": tick}
        return Outgoing((topic,), _frame(body), (), ())  # not a market item: not in the ledger


# ---- hosting ---------------------------------------------------------------------------------


def route(path: str) -> tuple[int, str] | None:
    p = urlsplit(path).path
    return None if p in (MARKET_PATH, NOTIFICATION_PATH, INDEX_PATH) else (404, f"Not Found: {p}")


def new_session(path: str, conn_id: str) -> Session:
    p = urlsplit(path).path
    if p == NOTIFICATION_PATH:
        return HtxNotificationSession(conn_id)
    if p == INDEX_PATH:
        return HtxIndexSession(conn_id)
    return HtxMarketSession(conn_id)


def contract_info_body() -> bytes:
    data = [{"symbol": c.base, "contract_code": c.code, "contract_size": c.contract_size,
             "price_tick": instrument(sym).tick, "contract_status": 1, "business_type": "swap",
             "contract_type": "swap", "pair": c.code, "trade_partition": "USDT"}
            for sym, c in CONTRACTS.items()]  # fmt: skip
    return orjson.dumps({"status": "ok", "data": data})


_CONTRACT_INFO: Final = contract_info_body()


def open_interest_item(venue_symbol: str) -> dict[str, Any]:
    """The constant open interest of a contract: whole contracts worth ``OI_USD_START`` at the
    start price; ``amount`` and ``value`` exact decimals of them."""
    c = contract(venue_symbol)
    spec = instrument(venue_symbol)
    volume = round(OI_USD_START[venue_symbol] / spec.start_price / c.contract_size)
    amount = fmt_decimal(volume * c.contract_size, c.size_decimals)
    value = fmt_decimal(float(amount) * spec.start_price, c.size_decimals + spec.price_decimals)
    return {"volume": volume, "amount": float(amount), "symbol": c.base, "value": float(value),
            "contract_code": c.code, "trade_amount": 0, "trade_volume": 0, "trade_turnover": 0,
            "business_type": "swap", "pair": c.code, "contract_type": "swap"}  # fmt: skip


def open_interest_body(query: str) -> bytes:
    """``swap_open_interest``: one contract (``contract_code``) or all of them."""
    ts = time.time_ns() // 1_000_000
    codes = parse_qs(query).get("contract_code")
    if codes is None:
        data = [open_interest_item(sym) for sym in CONTRACTS]
    else:
        data = [open_interest_item(s) for s, c in CONTRACTS.items() if c.code == codes[0].upper()]
        if not data:
            body = {"status": "error", "err_code": 1332, "err_msg": "The contract doesn't exist.",
                    "ts": ts}  # fmt: skip
            return orjson.dumps(body)
    return orjson.dumps({"status": "ok", "data": data, "ts": ts})


def rest(path: str) -> tuple[int, bytes] | None:
    parts = urlsplit(path)
    if parts.path == CONTRACT_INFO_PATH:
        return 200, _CONTRACT_INFO
    if parts.path == OPEN_INTEREST_PATH:
        return 200, open_interest_body(parts.query)
    return None


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``liquidations`` (notification endpoint): the liquidation wildcard for ``business_type``
    swap, then each contract's funding rate; ``trades`` (market endpoint) and ``context`` (index
    endpoint: mark and index 1-minute klines); one topic a request."""
    liq = {"op": "sub", "cid": "liq-1", "topic": WILDCARD_TOPIC, "business_type": "swap"}
    funding = [{"op": "sub", "cid": f"funding-{i}", "topic": f"public.{c}.funding_rate"}
               for i, c in enumerate(syms, start=1)]  # fmt: skip
    out = [Connection("liquidations", base + NOTIFICATION_PATH,
                      tuple(compact_json(d) for d in (liq, *funding)))]  # fmt: skip
    if syms:
        trades = tuple(compact_json({"sub": f"market.{c}.trade.detail", "id": f"trades-{i}"})
                       for i, c in enumerate(syms, start=1))  # fmt: skip
        context = tuple(compact_json({"sub": f"market.{c}.{k}.1min", "id": f"{n}-{i}"})
                        for i, c in enumerate(syms, start=1)
                        for k, n in (("mark_price", "mark"), ("index", "index")))  # fmt: skip
        out.append(Connection("trades", base + MARKET_PATH, trades))
        out.append(Connection("context", base + INDEX_PATH, context))
    return out


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path="",
    route=route,
    new_session=new_session,
    new_feed=HtxFeed,
    new_feed_for=lambda scenario: HtxFeed(scenario.price_at),
    binary=True,
    tick_s=TICK_S,
    rest=rest,
    activity=0.4,
    scenario_order=5,
    in_default_scenario=False,
    venue_symbol=lambda symbol: CONTRACTS[symbol].code if symbol in CONTRACTS else None,
    liquidations_as_trades=False,
    client_plan=client_plan,
    rest_paths=(CONTRACT_INFO_PATH,),
)
