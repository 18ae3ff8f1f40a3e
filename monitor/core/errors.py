"""The project's exception tree.

MonitorError
├── ConfigError          bad configuration: a clear message naming the key, never retried
├── CodecError           a Kafka record that is not a valid event batch (counted, skipped)
├── ParseError           an exchange frame that cannot be normalized (counted, skipped)
│                        ``reason`` is a short, bounded label used in metrics
├── UnknownSymbolError   a venue symbol that cannot be mapped to a canonical pair
├── RecordingError       a recording file that cannot be read: names the file and the line
└── BrokerError          the embedded broker cannot be started, stopped or reached
                         (``retriable`` says whether trying again may help)
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error this project raises on purpose."""

    retriable: bool = False


class ConfigError(MonitorError):
    pass


class CodecError(MonitorError):
    pass


class ParseError(MonitorError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class UnknownSymbolError(ParseError):
    def __init__(self, venue_symbol: str) -> None:
        super().__init__("unknown_symbol", venue_symbol)
        self.venue_symbol = venue_symbol


class RecordingError(MonitorError):
    def __init__(self, path: object, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class BrokerError(MonitorError):
    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable
