"""The health-topic record: a component's heartbeat with its health figures. Pure module (the
shared contracts layer): every component publishes one every ``health.heartbeat_s``
(``monitor.alerting.heartbeat``), the dispatcher's health watch reads them
(``monitor.alerting.health``). Keyed by ``component``; the value is JSON::

    {"v": 1, "component": "producer binance", "role": "producer", "exchange": "binance",
     "instance": "host:pid:started", "seq": 12, "sent_ts": 1.7e9, "interval_s": 5.0,
     "stopping": false, "counters": {"frames": 1234, ...}, "gauges": {"buffered": 0, ...},
     "streams": [{"kind": "trade", "stage": "producer", "silence_s": 0.4, "rate": 12.5,
                  "return_period_s": 0.1}, ...]}

Counters are cumulative since the instance started (the watch takes increases, and a smaller
value after a larger one as a restart); gauges are the values at ``sent_ts``; a stream's figures
are those of ``monitor.core.freshness`` (null where not learned yet). ``stopping`` is the last
heartbeat of an instance stopped on purpose: the watch forgets it instead of reporting it gone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from monitor.core.errors import CodecError

HEALTH_VERSION: Final = 1
ROLES: Final = ("producer", "consumer", "aggregator", "dispatcher")
STAGES: Final = ("producer", "consumer")


@dataclass(frozen=True, slots=True)
class StreamFigures:
    kind: str  # liquidation | trade | context
    stage: str  # producer (received) | consumer (applied)
    silence_s: float
    rate: float  # learned events/s; NaN until learned
    return_period_s: float  # NaN until learned


@dataclass(frozen=True, slots=True)
class Heartbeat:
    component: str  # "producer binance", "consumer binance", "aggregator", "dispatcher"
    role: str  # ROLES
    exchange: str  # the venue, "" for components of every venue
    instance: str  # host:pid:start, unique per process run
    seq: int
    sent_ts: float  # wall clock, seconds
    interval_s: float
    stopping: bool = False
    counters: Mapping[str, float] = field(default_factory=dict)
    gauges: Mapping[str, float] = field(default_factory=dict)
    streams: tuple[StreamFigures, ...] = ()

    def encode(self) -> bytes:
        return orjson.dumps({
            "v": HEALTH_VERSION, "component": self.component, "role": self.role,
            "exchange": self.exchange, "instance": self.instance, "seq": self.seq,
            "sent_ts": self.sent_ts, "interval_s": self.interval_s, "stopping": self.stopping,
            "counters": {k: _num(v) for k, v in self.counters.items()},
            "gauges": {k: _num(v) for k, v in self.gauges.items()},
            "streams": [{"kind": s.kind, "stage": s.stage, "silence_s": _num(s.silence_s),
                         "rate": _num(s.rate), "return_period_s": _num(s.return_period_s)}
                        for s in self.streams],
        })  # fmt: skip


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _float(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"not a number: {v!r}")
    return float(v)


def decode_heartbeat(raw: bytes) -> Heartbeat:
    """Inverse of ``Heartbeat.encode``; CodecError on anything that is not one."""
    try:
        d = orjson.loads(raw)
        if not isinstance(d, dict) or d.get("v") != HEALTH_VERSION:
            raise TypeError("not a version-1 heartbeat")
        hb = Heartbeat(
            component=str(d["component"]), role=str(d["role"]), exchange=str(d["exchange"]),
            instance=str(d["instance"]), seq=int(d["seq"]), sent_ts=_float(d["sent_ts"]),
            interval_s=_float(d["interval_s"]), stopping=bool(d["stopping"]),
            counters={str(k): _float(v) for k, v in d["counters"].items()},
            gauges={str(k): _float(v) for k, v in d["gauges"].items()},
            streams=tuple(
                StreamFigures(str(s["kind"]), str(s["stage"]), _float(s["silence_s"]),
                              _float(s["rate"]), _float(s["return_period_s"]))
                for s in d["streams"]
            ),
        )  # fmt: skip
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError) as exc:
        raise CodecError(f"not a heartbeat: {exc}") from None
    if hb.role not in ROLES or any(s.stage not in STAGES for s in hb.streams):
        raise CodecError(f"heartbeat: bad role or stage in {hb.component!r}")
    return hb
