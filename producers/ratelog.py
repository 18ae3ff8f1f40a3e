"""Logging a recurring problem without flooding the log: once per key per interval, with a count
of what was held back. Used by the sessions, the publisher and the pollers."""

from __future__ import annotations

import logging
import time
from typing import Final

LOG_EVERY_S: Final = 10.0


class RateLimitedLog:
    """Log a message per key at most once per ``every_s``, with the number suppressed meanwhile."""

    def __init__(self, logger: logging.Logger, every_s: float = LOG_EVERY_S) -> None:
        self._log = logger
        self._every_s = every_s
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, level: int, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        last, suppressed = self._last.get(key, (-1e18, 0))
        if now - last < self._every_s:
            self._last[key] = (last, suppressed + 1)
            return
        self._last[key] = (now, 0)
        if suppressed:
            msg += " (%d similar suppressed)"
            args = (*args, suppressed)
        self._log.log(level, msg, *args)
