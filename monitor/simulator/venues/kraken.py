"""Kraken Futures websocket (``/ws/v1``), as the simulator speaks it. Pure module (sans-I/O).

Path ``/ws/v1`` (anything else: HTTP 404). Client messages (docs/venues.md §10):

* ``{"event":"subscribe","feed":"trade","product_ids":[...]}`` -> ``{"event":"subscribed",
  "feed":"trade","product_ids":[...]}``, then one ``trade_snapshot`` per product (empty: the
  simulator keeps no history). ``{"event":"subscribe","feed":"heartbeat"}`` -> ``subscribed``
  (the simulator sends no heartbeat messages; trades keep the connection busy).
  ``{"event":"subscribe","feed":"ticker","product_ids":[...]}`` -> ``subscribed`` (no snapshot
  message: the first ``ticker`` is complete anyway). ``unsubscribe`` likewise (``unsubscribed``).
  An unknown feed: ``{"event":"error","message":"Invalid feed"}``; an unknown product: ``"Invalid
  product id"``; bad JSON: ``"Json Error"``.

Products: BTCUSDT -> ``PF_XBTUSD`` (tick 0.5, qty lot 0.0001 BTC), ETHUSDT -> ``PF_ETHUSD``
(tick 0.1, lot 0.001), SOLUSDT -> ``PF_SOLUSD`` (tick 0.01, lot 0.01), DOGEUSDT -> ``PF_DOGEUSD``
(tick 0.00001, lot 1); ``qty`` in base coin.

Trades: one ``trade`` message per scenario event, ``seq`` counting per product from 1,
``side`` the taker side. A scenario liquidation is a trade of ``type`` ``liquidation`` whose taker
is the liquidated position's closing order (sell for a long). The feed does not say which side
was liquidated, so its ledger item is a SentLiquidation with side ``unknown`` (and a SentTrade).

Market context (``ticker``; only with a price path, ``KrakenFeed(price_at)``, as the server builds
it from the scenario): one ``ticker`` message per product on a scenario event of the product when
at least ``TICKER_PUSH_MS`` (1 s: Kraken throttles ticker messages to one a second) passed since
its previous one, every field each time, in the venue's field order, valued at the event's
scenario time ``t``; ``time`` is its wall time. With ``g`` the drawdown (0 calm, 1 at the
scenario's full drop):

* ``markPrice``: the path at ``t`` to one decimal more than the tick; ``index`` the path plus a
  spot premium of ``INDEX_PREMIUM`` x ``g``; ``premium`` their difference in percent;
* ``relative_funding_rate`` (a fraction per one-hour interval): ``FUNDING_CALM`` falling by
  ``FUNDING_CRASH`` x ``g / 2`` (the rate fixed for the running hour lags the market);
  ``relative_funding_rate_prediction`` the same at ``g``; ``funding_rate`` and
  ``funding_rate_prediction`` those times the index (USD per base unit, NOT fractions). A rate
  that rounds to zero is left out, as Kraken does; ``next_funding_rate_time`` the next whole hour
  of the wall clock, in epoch ms (what the venue sends, though documented as a duration);
* ``openInterest``: ``OI_USD_START`` at the start price in base units, growing ``OI_DRIFT_PER_S``
  per scenario second and shrinking by ``OI_CRASH_DROP`` x ``g``, on the lot grid;
* ``bid``/``ask`` the mark floored/ceiled to the tick; ``last``, ``change``, ``volume`` and
  ``volumeQuote`` from the trades sent; ``tag`` perpetual, ``dtm`` and ``maturityTime`` 0.

Tickers are not market items: they are not in the ledger.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.clientplan import Connection, compact_json
from monitor.simulator.events import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import InstrumentSpec
from monitor.simulator.ledger import SentItem, SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec, stable_uuid

VENUE: Final = "kraken"
PATH: Final = "/ws/v1"
PRODUCTS: Final = {
    "BTCUSDT": InstrumentSpec("PF_XBTUSD", 95000.0, 0.06, 1, 5, 4, 1, 0.0, 0.0),
    "ETHUSDT": InstrumentSpec("PF_ETHUSD", 3300.0, 0.08, 1, 1, 3, 1, 0.0, 0.0),
    "SOLUSDT": InstrumentSpec("PF_SOLUSD", 190.0, 0.11, 2, 1, 2, 1, 0.0, 0.0),
    "DOGEUSDT": InstrumentSpec("PF_DOGEUSD", 0.34, 0.11, 5, 1, 0, 1, 0.0, 0.0),
}
_IDS: Final = frozenset(p.venue_symbol for p in PRODUCTS.values())
_FEEDS: Final = frozenset({"trade", "ticker"})
TICKER_PUSH_MS: Final = 1000
INDEX_PREMIUM: Final = 0.0015  # index above the mark by up to 15 bp at the scenario's full drop
FUNDING_CALM: Final = 0.0000125  # per hour (1 bp per 8 hours)
FUNDING_CRASH: Final = -0.0001  # added at full drawdown (g = 1)
FUNDING_INTERVAL_MS: Final = 3600 * 1000
OI_USD_START: Final = {"BTCUSDT": 2.5e8, "ETHUSDT": 8.0e7, "SOLUSDT": 2.0e7, "DOGEUSDT": 1.0e7}
OI_DRIFT_PER_S: Final = 2e-5
OI_CRASH_DROP: Final = 0.2
# base units, bid and ask
BOOK_SIZE: Final = {"BTCUSDT": 1.5, "ETHUSDT": 20.0, "SOLUSDT": 400.0, "DOGEUSDT": 200_000.0}
PAIRS: Final = {
    "BTCUSDT": "XBT:USD",
    "ETHUSDT": "ETH:USD",
    "SOLUSDT": "SOL:USD",
    "DOGEUSDT": "DOGE:USD",
}


def product(venue_symbol: str) -> InstrumentSpec:
    try:
        return PRODUCTS[venue_symbol]
    except KeyError:
        raise ValueError(f"no Kraken Futures product for {venue_symbol!r}") from None


def route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, "Not Found")


class KrakenSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._streams: dict[str, None] = {}  # "trade:<product>", "heartbeat"

    @property
    def subscriptions(self) -> Collection[str]:
        return self._streams.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._streams for s in out.streams) else []

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return _event("error", message="Json Error")
        if not isinstance(req, dict) or req.get("event") not in ("subscribe", "unsubscribe"):
            return _event("error", message="Invalid event")
        sub = req["event"] == "subscribe"
        feed = req.get("feed")
        done = "subscribed" if sub else "unsubscribed"
        if feed == "heartbeat":
            self._toggle("heartbeat", sub)
            return Reply((_dumps({"event": done, "feed": feed}),), None, True)
        if feed not in _FEEDS:
            return _event("error", message="Invalid feed")
        ids = req.get("product_ids")
        if not isinstance(ids, list) or not ids or not all(i in _IDS for i in ids):
            return _event("error", message="Invalid product id")
        for pid in ids:
            self._toggle(f"{feed}:{pid}", sub)
        frames = [_dumps({"event": done, "feed": feed, "product_ids": ids})]
        if sub and feed == "trade":
            frames += [
                _dumps({"feed": "trade_snapshot", "product_id": p, "trades": []}) for p in ids
            ]
        return Reply(tuple(frames), None, True)

    def _toggle(self, stream: str, on: bool) -> None:
        if on:
            self._streams[stream] = None
        else:
            self._streams.pop(stream, None)


def _dumps(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def _event(event: str, **fields: Any) -> Reply:
    return Reply((_dumps({"event": event, **fields}),))


class _Stats:
    __slots__ = ("first", "last", "volume", "volume_quote")

    def __init__(self, price: float) -> None:
        self.first = self.last = price
        self.volume = 0.0  # base units
        self.volume_quote = 0.0  # USD


class KrakenFeed:
    """Scenario events -> one ``trade`` message each; liquidations typed ``liquidation``; with a
    price path (``price_at(venue_symbol, t)``, ``Scenario.price_at``) also ``ticker`` messages."""

    def __init__(self, price_at: Callable[[str, float], float] | None = None) -> None:
        self._price_at = price_at
        self._stats: dict[str, _Stats] = {}  # product -> its trades so far
        self._ticker_ms: dict[str, int] = {}  # product -> wall ms of its last ticker
        self._keys = itertools.count()
        self._seq: dict[str, int] = {}

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        spec = product(event.venue_symbol)
        pid = spec.venue_symbol
        seq = self._seq.get(pid, 0) + 1
        self._seq[pid] = seq
        price, qty = spec.round_price(event.price), spec.round_qty(event.qty)
        uid = stable_uuid(VENUE, pid, str(seq))
        if isinstance(event, SimTrade):
            side, kind = event.taker_side, "fill"
        else:
            side, kind = ("sell" if event.liquidated_side == "long" else "buy"), "liquidation"
        item = {"feed": "trade", "product_id": pid, "uid": uid, "side": side, "type": kind,
                "seq": seq, "time": now_ms, "qty": qty, "price": price}  # fmt: skip
        qty_text, price_text = spec.qty_text(qty, strip=True), spec.price_text(price, strip=True)
        sent: tuple[SentItem, ...] = (
            SentTrade(VENUE, pid, side, qty_text, price_text, now_ms, uid),
        )
        if isinstance(event, SimLiquidation):
            sent += (SentLiquidation(VENUE, pid, "unknown", qty_text, price_text, now_ms),)
        keys = tuple(next(self._keys) for _ in sent)
        st = self._stats.get(pid)
        if st is None:
            st = self._stats[pid] = _Stats(price)
        st.last = price
        st.volume += qty
        st.volume_quote += qty * price
        out = [Outgoing((f"trade:{pid}",), orjson.dumps(item), keys, sent)]
        if self._price_at is not None:
            out += self._ticker(event, now_ms)
        return out

    def _ticker(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        pid = product(event.venue_symbol).venue_symbol
        last = self._ticker_ms.get(pid)
        if last is not None and now_ms - last < TICKER_PUSH_MS:
            return []
        self._ticker_ms[pid] = now_ms
        body = self.ticker_message(event, now_ms)
        return [Outgoing((f"ticker:{pid}",), orjson.dumps(body), (), ())]  # not in the ledger

    def ticker_message(self, event: SimEvent, now_ms: int) -> dict[str, Any]:
        """The ``ticker`` message of the event's product at its scenario time (module doc)."""
        assert self._price_at is not None
        sym = event.venue_symbol
        spec = product(sym)
        pid = spec.venue_symbol
        path = self._price_at(sym, event.t)
        g = max(0.0, 1.0 - path / spec.start_price) / spec.drop
        decimals = spec.price_decimals + 1
        mark = round(path, decimals)
        index = round(path * (1.0 + INDEX_PREMIUM * g), decimals)
        rate = round(FUNDING_CALM + FUNDING_CRASH * g / 2.0, 10) + 0.0
        predicted = round(FUNDING_CALM + FUNDING_CRASH * g, 10) + 0.0
        oi_base = (OI_USD_START[sym] / spec.start_price * (1.0 + OI_DRIFT_PER_S * event.t)
                   * (1.0 - OI_CRASH_DROP * g))  # fmt: skip
        st = self._stats.get(pid)
        msg: dict[str, Any] = {"time": now_ms, "product_id": pid}
        if rate:  # Kraken leaves a zero funding field out
            msg["funding_rate"] = round(rate * index, 10)
        if predicted:
            msg["funding_rate_prediction"] = round(predicted * index, 10)
        if rate:
            msg["relative_funding_rate"] = rate
        if predicted:
            msg["relative_funding_rate_prediction"] = predicted
        msg.update({
            "next_funding_rate_time": (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS,
            "feed": "ticker",
            "bid": spec.round_price(mark, "floor"),
            "ask": spec.round_price(mark, "ceil"),
            "bid_size": BOOK_SIZE[sym],
            "ask_size": BOOK_SIZE[sym],
            "volume": 0.0 if st is None else round(st.volume, spec.qty_decimals),
            "dtm": 0,
            "leverage": "50x",
            "index": index,
            "premium": round((mark / index - 1.0) * 100.0, 2) + 0.0,
            "last": mark if st is None else st.last,
            "change": 0.0 if st is None else round((st.last / st.first - 1.0) * 100.0, 4) + 0.0,
            "suspended": False,
            "tag": "perpetual",
            "pair": PAIRS[sym],
            "openInterest": spec.round_qty(oi_base),
            "markPrice": mark,
            "maturityTime": 0,
            "post_only": False,
            "volumeQuote": 0.0 if st is None else round(st.volume_quote, 2),
        })  # fmt: skip
        return msg

    def next_deadline_ms(self) -> int | None:
        return None

    def flush(self, now_ms: int) -> list[Outgoing]:
        return []


def _new_session(path: str, conn_id: str) -> KrakenSession:
    return KrakenSession(conn_id)


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``public``: ``trade`` and ``ticker`` of the products, and ``heartbeat``; no socket without
    products."""
    if not syms:
        return []
    frames = (
        compact_json({"event": "subscribe", "feed": "trade", "product_ids": list(syms)}),
        compact_json({"event": "subscribe", "feed": "ticker", "product_ids": list(syms)}),
        compact_json({"event": "subscribe", "feed": "heartbeat"}),
    )
    return [Connection("public", base, frames)]


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=route,
    new_session=_new_session,
    new_feed=KrakenFeed,
    new_feed_for=lambda scenario: KrakenFeed(scenario.price_at),  # tickers from its price path
    activity=0.2,
    scenario_order=8,
    in_default_scenario=False,
    venue_symbol=lambda symbol: PRODUCTS[symbol].venue_symbol if symbol in PRODUCTS else None,
    liquidations_as_trades=True,  # a liquidation is a trade of type ``liquidation``
    client_plan=client_plan,
    rest_paths=(),
)
