"""The signature of ``json`` sink requests: HMAC-SHA256 over the attempt's timestamp and the raw
body, with the key shared by the sender (``monitor.alerting.http_policy.Request``, which signs
each attempt afresh) and the receiver (``verify``; ``monitor.alerting.receiver`` is the reference).
Pure module.

The headers of a ``json`` request::

    X-Cascade-Timestamp: <unix seconds, the time of this attempt>
    X-Cascade-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<raw body>")>
    X-Cascade-Event-Id:  <the event id, also in the body>

A receiver recomputes the HMAC over the timestamp header, a ".", and the raw body bytes exactly as
received, compares in constant time, and rejects a timestamp older than its tolerance (say 300 s;
each retry is signed afresh): a request captured and replayed later fails. Deduplicate on the event
id: delivery is at-least-once.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "X-Cascade-Signature"
TIMESTAMP_HEADER: Final = "X-Cascade-Timestamp"
EVENT_ID_HEADER: Final = "X-Cascade-Event-Id"


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>``."""
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(
    key: bytes, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: float = 300.0
) -> bool:
    """A receiver's check (for Python receivers): signature matches and the timestamp is fresh."""
    try:
        age = now - int(timestamp)
    except ValueError:
        return False
    return abs(age) <= tolerance_s and hmac.compare_digest(sign(key, timestamp, body), signature)
