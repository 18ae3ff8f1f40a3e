"""Bybit v5 public linear stream, as the simulator speaks it. Pure module (sans-I/O).

Path ``/v5/public/linear`` (anything else: HTTP 404). Client operations (exchange-feeds.md §2):

* ``{"op":"subscribe","args":[...],"req_id":"..."}`` ->
  ``{"success":true,"ret_msg":"","conn_id":"<id>","req_id":"...","op":"subscribe"}``; ``req_id``
  is echoed only when the client sent one. A request is all-or-nothing; failures:
  unknown topic ``error:handler not found,topic:<t>``, a topic already subscribed on this
  connection ``error:already subscribed,topic:<t>``, and more than 10 args
  ``error:args size >10``. The 10-topics-per-request limit is **UNVERIFIED** for the real venue;
  the simulator enforces it so producers are built to batch.
* ``{"op":"unsubscribe",...}`` likewise; ``{"op":"ping"}`` -> ``ret_msg":"pong"``.
* The server closes a connection that sent nothing for ``bybit_idle_timeout_s`` (the server does
  that, not this module).

Topics served: ``allLiquidation.<SYM>`` and ``publicTrade.<SYM>`` (``<SYM>`` upper-case).

* allLiquidation: every 500 ms (wall-clock windows ``[k*500, (k+1)*500)`` ms since the epoch) one
  ``snapshot`` per symbol carrying **all** liquidations of the window, none dropped. ``S`` is the
  **position** side: ``"Buy"`` means a long was liquidated (the reverse of Binance). ``p`` is the
  bankruptcy price, 0.5 % beyond the scenario price (below it for longs); ``v`` the size.
* publicTrade: the trades of one symbol that fall in the same 100 ms tick, in one frame at the end
  of the tick. ``S`` is the taker side, ``L`` the tick direction, ``i`` a deterministic UUID.

Numbers are fixed to the instrument's decimals (``"16578.50"``, ``"0.010"``), as Bybit prints them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.instruments import instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec, stable_uuid

VENUE: Final = "bybit"
PATH: Final = "/v5/public/linear"
LIQUIDATION_PUSH_MS: Final = 500
TRADE_TICK_MS: Final = 100
BANKRUPTCY_OFFSET: Final = 0.005
MAX_ARGS_PER_REQUEST: Final = 10  # UNVERIFIED on the real venue (third-party guide)
_TOPIC_RE: Final = re.compile(r"^(?:allLiquidation|publicTrade)\.[A-Z0-9]+$")


def valid_topic(topic: str) -> bool:
    return _TOPIC_RE.match(topic) is not None


class BybitSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._topics: dict[str, None] = {}  # ordered set

    @property
    def subscriptions(self) -> Collection[str]:
        return self._topics.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
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
            if not valid_topic(topic):
                return self._reply(False, f"error:handler not found,topic:{topic}", op, req_id)
            if op == "subscribe" and topic in self._topics:
                return self._reply(False, f"error:already subscribed,topic:{topic}", op, req_id)
        if op == "subscribe":
            self._topics.update(dict.fromkeys(args))
        else:
            for topic in args:
                self._topics.pop(topic, None)
        return self._reply(True, "", op, req_id, changed=True)

    def _reply(
        self, ok: bool, msg: str, op: str, req_id: str | None, *, changed: bool = False
    ) -> Reply:
        body: dict[str, Any] = {"success": ok, "ret_msg": msg, "conn_id": self.conn_id}
        if req_id is not None:
            body["req_id"] = req_id
        body["op"] = op
        return Reply(frames=(orjson.dumps(body),), subscriptions_changed=changed)


class BybitFeed:
    """Scenario events -> batched publicTrade and allLiquidation snapshots."""

    def __init__(self) -> None:
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
            bucket = ("allLiquidation", event.venue_symbol, end)
            item, sent = self._liquidation(event, now_ms)
        self._pending.setdefault(bucket, []).append((key, item, sent))
        return []

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
        self, liq: SimLiquidation, now_ms: int
    ) -> tuple[dict[str, Any], SentLiquidation]:
        sym = liq.venue_symbol
        spec = instrument(sym)
        long = liq.liquidated_side == "long"
        bankruptcy = (
            spec.round_price(liq.price * (1 - BANKRUPTCY_OFFSET), "floor")
            if long
            else spec.round_price(liq.price * (1 + BANKRUPTCY_OFFSET), "ceil")
        )
        price, qty = spec.price_text(bankruptcy), spec.qty_text(liq.qty)
        # Position side: "Buy" = a long position was liquidated.
        item = {"T": now_ms, "s": sym, "S": "Buy" if long else "Sell", "v": qty, "p": price}
        return item, SentLiquidation(VENUE, sym, liq.liquidated_side, qty, price, now_ms)


def _route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, f"Not Found: {path}\n")


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=_route,
    new_session=lambda path, conn_id: BybitSession(conn_id),
    new_feed=BybitFeed,
)
