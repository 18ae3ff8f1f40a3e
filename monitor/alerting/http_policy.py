"""The HTTP side of delivering one alert to one sink, as pure decisions: the request each attempt
sends, what a receiver's answer means, and how long to wait before the next attempt. Pure module:
``monitor.alerting.courier`` does the I/O and follows these decisions.

Requests: a POST of the kind's body (``monitor.alerting.payloads``) with ``Content-Type:
application/json``, a ``User-Agent`` and ``X-Cascade-Event-Id``; ``json`` requests are also signed,
afresh at each attempt (``monitor.alerting.signing``).

Answers: 2xx is taken; 408, 429 and 5xx (and network errors, timeouts) are retried after
``Retry-After`` (seconds or an HTTP-date) or, on a 429 whose JSON body has ``retry_after``
(Discord, in seconds), after that; else after the backoff. Any other status is final: the alert
is dead-lettered at once.

Backoff: exponential, ``backoff_initial_s`` doubled per failure up to ``backoff_max_s``, each delay
reduced by a random fraction of itself up to ``jitter`` (so retries of many alerts spread out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final

import orjson

from monitor.alerting.payloads import event_id, payload
from monitor.alerting.secrets import Secret
from monitor.alerting.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from monitor.alerting.sinks import Sink
from monitor.core.alertrecord import AlertEvent

USER_AGENT: Final = "cascade-monitor/0.1"

# ---- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One alert's request to one sink; ``headers(now)`` signs it for this attempt (json)."""

    body: bytes
    event_id: str
    sign_key: Secret | None = None

    def headers(self, now: float) -> dict[str, str]:
        h = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
             EVENT_ID_HEADER: self.event_id}  # fmt: skip
        if self.sign_key is not None:
            ts = str(int(now))
            h[TIMESTAMP_HEADER] = ts
            h[SIGNATURE_HEADER] = sign(self.sign_key.reveal().encode(), ts, self.body)
        return h


def build_request(sink: Sink, alert: AlertEvent) -> Request:
    """The body of ``alert`` for ``sink``, encoded once, and the key that signs it (json only)."""
    body = orjson.dumps(payload(sink, alert))
    return Request(body, event_id(alert), sink.key if sink.kind == "json" else None)


# ---- answers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What one attempt's outcome means: taken, or retried (after the receiver's wait if it said
    one), or final."""

    ok: bool
    retriable: bool
    retry_after_s: float | None  # the receiver's own wait, when it said one
    reason: str  # short, no secrets: "HTTP 503", "ConnectionRefusedError: ..."


def _header(headers: Mapping[str, str], name: str) -> str | None:
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


def parse_retry_after(value: str, now: float) -> float | None:
    """``Retry-After`` as delta seconds (``"120"``, also ``"1.5"``) or an HTTP-date; None if it is
    neither. A date in the past means now (0)."""
    v = value.strip()
    try:
        s = float(v)
    except ValueError:
        pass
    else:
        return s if math.isfinite(s) and s >= 0 else None
    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def body_retry_after(body: bytes) -> float | None:
    """Discord's 429 body: ``{"message": ..., "retry_after": 0.5, "global": false}`` (seconds)."""
    if not body or body[:1] != b"{":
        return None
    try:
        d = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    v = d.get("retry_after") if isinstance(d, dict) else None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        return None
    return float(v)


def judge(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Verdict:
    """What a receiver's answer means for the delivery."""
    if 200 <= status < 300:
        return Verdict(True, False, None, f"HTTP {status}")
    retriable = status in (408, 429) or status >= 500
    after = body_retry_after(body) if status == 429 else None
    if after is None:
        raw = _header(headers, "Retry-After")
        after = parse_retry_after(raw, now) if raw is not None else None
    return Verdict(False, retriable, after if retriable else None, f"HTTP {status}")


# ---- waits ------------------------------------------------------------------------------------


def backoff_s(attempt: int, initial_s: float, max_s: float, jitter: float, u: float) -> float:
    """Delay after the ``attempt``-th failure (1-based): ``min(max, initial * 2**(attempt-1))``,
    reduced by ``jitter * u`` of itself (``u`` uniform in [0, 1))."""
    base = min(max_s, initial_s * 2.0 ** min(attempt - 1, 60))
    return base * (1.0 - jitter * u)
