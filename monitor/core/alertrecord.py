"""The alerts-topic record: an alert transition (``AlertEvent``), its encoding and its stable
fingerprint. Pure module (the shared contracts layer): consumers emit these, the dispatcher reads
them back.

``category`` says what an alert is about: ``risk`` (the market: the consumers' rules) or
``health`` (the pipeline itself: the health watch, ``monitor.alerting.health``); a record without
one (written before the field existed) is a risk alert."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from monitor.core.alert_rules import SEVERITIES
from monitor.core.errors import CodecError

CATEGORIES: Final = ("risk", "health")


def fingerprint(rule: str, exchange: str, symbol: str) -> str:
    return hashlib.blake2b(f"{rule}\0{exchange}\0{symbol}".encode(), digest_size=8).hexdigest()


Drivers = Iterable[tuple[str, float]] | Callable[[], Iterable[tuple[str, float]]]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    fingerprint: str
    rule: str
    status: str  # "firing" | "resolved"
    severity: str
    exchange: str
    symbol: str
    metric: str
    value: float
    t: float  # event time of the transition, seconds
    started_t: float  # when the firing alert started
    summary: str
    labels: Mapping[str, str]
    drivers: tuple[tuple[str, float], ...] = ()  # score components that drove it, largest first
    received_ts: float = math.nan  # wall-clock receive time of the triggering event (latency)
    category: str = "risk"  # risk | health (CATEGORIES)

    def encode(self) -> bytes:
        """The alerts-topic value (JSON); the record key is the fingerprint."""
        d = {f: getattr(self, f) for f in self.__slots__}
        d["drivers"] = [list(x) for x in self.drivers]
        return orjson.dumps(d, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_alert(raw: bytes) -> AlertEvent:
    """Inverse of ``AlertEvent.encode``; CodecError on anything that is not one."""
    try:
        d = orjson.loads(raw)
        if not isinstance(d, dict):
            raise TypeError("not an object")
        d["drivers"] = tuple((str(n), float(w)) for n, w in d.get("drivers", ()))
        d["labels"] = {str(k): str(v) for k, v in d["labels"].items()}
        for f in ("value", "t", "started_t", "received_ts"):
            d[f] = math.nan if d.get(f) is None else float(d[f])
        ev = AlertEvent(**d)
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError) as exc:
        raise CodecError(f"not an alert event: {exc}") from None
    if ev.status not in ("firing", "resolved") or ev.severity not in SEVERITIES:
        raise CodecError(f"alert event: bad status/severity {ev.status!r}/{ev.severity!r}")
    if ev.category not in CATEGORIES:
        raise CodecError(f"alert event: bad category {ev.category!r}")
    return ev
