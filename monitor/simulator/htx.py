"""HTX USDT-margined swaps, as the simulator speaks them. Pure module (sans-I/O).

One port serves both endpoints (exchange-feeds.md s6): ``/linear-swap-ws`` (market data, trades) and
``/linear-swap-notification`` (liquidations); any other path: HTTP 404. REST on the same port:
``GET /linear-swap-api/v1/swap_contract_info`` lists the simulated contracts. **Every frame the
server sends (replies, pings, market data) is GZIP-compressed binary**; clients send plain JSON.

* Market endpoint: ``{"sub": "market.<CODE>.trade.detail", "id": "x"}`` ->
  ``{"id": "x", "status": "ok", "subbed": "<topic>", "ts": ...}``; an unknown topic ->
  ``{"id": "x", "status": "error", "err-code": "bad-request", "err-msg": "invalid topic <t>", ...}``;
  ``unsub`` likewise (``unsubbed``). Heartbeat: the server sends ``{"ping": n}``, the client must
  answer ``{"pong": n}``.
* Notification endpoint: ``{"op": "sub", "cid": "c", "topic": "public.<CODE|*>.liquidation_orders"}``
  -> ``{"op": "sub", "cid": "c", "topic": ..., "ts": ..., "err-code": 0}``; ``business_type`` is
  optional (``swap`` or ``all``). Errors carry a non-zero ``err-code`` and ``err-msg``: 2014 for a
  contract subscribed after the wildcard (documented: "small scope before large"), 2001 for an
  invalid topic (code UNVERIFIED). Heartbeat: ``{"op": "ping", "ts": "n"}`` -> ``{"op": "pong",
  "ts": "n"}``.
* Both: a ping every ``PING_INTERVAL_S``; after ``MAX_MISSED_PINGS`` unanswered pings in a row the
  connection is closed (the real count is "several", UNVERIFIED). A pong echoing any outstanding
  ping answers them all.

Feed: every scenario event is pushed at once, one frame per event. Quantities are quantized to
whole contracts (``contract_size``: BTC 0.001, ETH 0.01, SOL 1); an event that rounds to zero
contracts is not sent. Liquidations: ``direction`` is the order side (sell closes a long),
``offset`` "close", ``price`` the bankruptcy price 0.5 % beyond the scenario price, ``volume``
contracts, ``amount`` coin, ``trade_turnover`` = volume x contract_size x price (the ledger's own
product, so the ledger notional equals it exactly). Trades (``trade.detail``): ``amount`` =
contracts, ``quantity`` = coin (names swapped vs. liquidations), ``direction`` = taker side.
Numbers are JSON numbers. Ledger items use the HTX spelling (``BTC-USDT``).
"""

from __future__ import annotations

import gzip
import itertools
import re
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.instruments import fmt_decimal, instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimTrade
from monitor.simulator.wire import Outgoing, Reply, Session, VenueSpec

VENUE: Final = "htx"
MARKET_PATH: Final = "/linear-swap-ws"
NOTIFICATION_PATH: Final = "/linear-swap-notification"
CONTRACT_INFO_PATH: Final = "/linear-swap-api/v1/swap_contract_info"
PING_INTERVAL_S: Final = 5.0
MAX_MISSED_PINGS: Final = 3
TICK_S: Final = 1.0
BANKRUPTCY_OFFSET: Final = 0.005
WILDCARD_TOPIC: Final = "public.*.liquidation_orders"
_TRADE_RE: Final = re.compile(r"^market\.[A-Z0-9]+-USDT\.trade\.detail$")
_LIQ_RE: Final = re.compile(r"^public\.(\*|[A-Z0-9]+-USDT)\.liquidation_orders$")


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
                if not isinstance(topic, str) or _TRADE_RE.match(topic) is None:
                    return _status_error(rid, "bad-request", f"invalid topic {topic}", ts)
                if op == "sub":
                    self._topics[topic] = None
                else:
                    self._topics.pop(topic, None)
                body = {"id": rid, "status": "ok", done: topic, "ts": ts}
                return Reply(frames=(_frame(body),), subscriptions_changed=True)
        return _status_error(rid, "bad-request", "invalid request", ts)


class HtxNotificationSession(_HtxSession):
    """``/linear-swap-notification``: ``op`` sub/unsub of ``public.<CODE|*>.liquidation_orders``."""

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
        m = _LIQ_RE.match(topic) if isinstance(topic, str) else None
        if m is None or req.get("business_type", "swap") not in ("swap", "all"):
            return _op_reply(head, ts, 2001, f"invalid topic {topic}")
        assert isinstance(topic, str)
        if op == "unsub":
            self._topics.pop(topic, None)
            return _op_reply(head, ts, 0, None, changed=True)
        if m.group(1) != "*" and WILDCARD_TOPIC in self._topics:
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
    """Scenario events -> one gzip frame each, pushed at once (no batching)."""

    def __init__(self) -> None:
        self._keys = itertools.count()
        self._tick_id: dict[str, int] = {}

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        c = contract(event.venue_symbol)
        contracts = round(event.qty / c.contract_size)
        if contracts <= 0:
            return []
        if isinstance(event, SimTrade):
            return [self._trade(event, c, contracts, now_ms)]
        return [self._liquidation(event.liquidated_side, event.price, c, contracts, now_ms)]

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


# ---- hosting ---------------------------------------------------------------------------------


def route(path: str) -> tuple[int, str] | None:
    p = urlsplit(path).path
    return None if p in (MARKET_PATH, NOTIFICATION_PATH) else (404, f"Not Found: {p}")


def new_session(path: str, conn_id: str) -> Session:
    if urlsplit(path).path == NOTIFICATION_PATH:
        return HtxNotificationSession(conn_id)
    return HtxMarketSession(conn_id)


def contract_info_body() -> bytes:
    data = [{"symbol": c.base, "contract_code": c.code, "contract_size": c.contract_size,
             "price_tick": instrument(sym).tick, "contract_status": 1, "business_type": "swap",
             "contract_type": "swap", "pair": c.code, "trade_partition": "USDT"}
            for sym, c in CONTRACTS.items()]  # fmt: skip
    return orjson.dumps({"status": "ok", "data": data})


_CONTRACT_INFO: Final = contract_info_body()


def rest(path: str) -> tuple[int, bytes] | None:
    return (200, _CONTRACT_INFO) if urlsplit(path).path == CONTRACT_INFO_PATH else None


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path="",
    route=route,
    new_session=new_session,
    new_feed=HtxFeed,
    binary=True,
    tick_s=TICK_S,
    rest=rest,
)
