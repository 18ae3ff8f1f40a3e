"""The recording format of ``cascade-monitor record`` / ``replay``: raw frames as received.

gzip JSON lines. The first line is a header::

    {"kind": "header", "version": 1, "exchange": "bybit", "base_url": "wss://...",
     "connections": [{"name": "public", "url": "wss://.../v5/public/linear",
                      "subscribe": ["{...}"]}]}

then ``{"kind": "rest", "path": "/api/...?...", "body": "..."}`` for each instrument-metadata
response the adapter needed, and one ``{"kind": "frame", "conn": name, "recv_ns": int, "text": str}``
per frame (``"b64"`` instead of ``"text"`` for binary frames, e.g. HTX's gzip).
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.core.errors import RecordingError

VERSION: Final = 1


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class RecordingWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: gzip.GzipFile | None = None
        self.frames = 0

    def open(self, header: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = gzip.GzipFile(self.path, "wb")  # held open across writes; close() ends it
        self._line({"kind": "header", "version": VERSION, **header})

    def _line(self, doc: dict[str, Any]) -> None:
        if self._file is None:
            raise RuntimeError("recording is not open")
        self._file.write(orjson.dumps(doc) + b"\n")

    def rest(self, url: str, body: bytes) -> None:
        self._line({"kind": "rest", "path": path_of(url), "body": body.decode()})

    def frame(self, conn: str, frame: str | bytes, received_ns: int) -> None:
        doc: dict[str, Any] = {"kind": "frame", "conn": conn, "recv_ns": received_ns}
        if isinstance(frame, str):
            doc["text"] = frame
        else:
            doc["b64"] = base64.b64encode(frame).decode()
        self._line(doc)
        self.frames += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True, slots=True)
class Frame:
    """One recorded frame: where it came from and when it was received."""

    recv_ns: int
    conn: str
    data: str | bytes
    line: int  # its line in the file (1-based), for messages


@dataclass(frozen=True, slots=True)
class Rest:
    """One recorded REST answer (instrument metadata): ``path`` with its query."""

    path: str
    body: bytes
    line: int


@dataclass
class Recording:
    header: dict[str, Any]
    rest: dict[str, bytes] = field(default_factory=dict)  # path?query -> body
    frames: dict[str, list[tuple[int, str | bytes]]] = field(default_factory=dict)  # conn -> ...

    @property
    def exchange(self) -> str:
        return str(self.header["exchange"])

    def connections(self) -> Iterator[dict[str, Any]]:
        yield from self.header["connections"]


def read_header(path: Path) -> dict[str, Any]:
    """The header of a recording (RecordingError naming the file and line if it is not one)."""
    header = next(iter(scan_recording(path)))
    assert isinstance(header, dict)  # scan_recording yields the header first, or raises
    return header


def scan_recording(path: Path) -> Iterator[dict[str, Any] | Rest | Frame]:
    """The header, then every REST answer and frame in file order, read as a stream (a large
    recording is never held in memory). Anything that is not a valid recording line, a file that
    is not gzip or is cut short, raises RecordingError naming the file and the line."""
    line = 0
    try:
        with gzip.open(path, "rb") as f:
            for raw in f:
                line += 1
                if not raw.strip():
                    continue
                try:
                    doc = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise RecordingError(path, line, f"not JSON ({exc})") from None
                if not isinstance(doc, dict):
                    raise RecordingError(path, line, "not a JSON object")
                if line == 1:
                    yield _header(path, doc)
                else:
                    yield _item(path, line, doc)
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, cut short, unreadable
        raise RecordingError(path, line + 1 if line else None, f"unreadable: {exc}") from None
    if line == 0:
        raise RecordingError(path, None, "empty file: not a cascade-monitor recording")


def _header(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") != "header" or doc.get("version") != VERSION:
        raise RecordingError(path, 1, f"not a cascade-monitor recording header (version {VERSION})")
    exchange, conns = doc.get("exchange"), doc.get("connections")
    if not isinstance(exchange, str) or not exchange:
        raise RecordingError(path, 1, "header without an exchange")
    if not isinstance(conns, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in conns
    ):
        raise RecordingError(path, 1, "header connections must be a list of named objects")
    return doc


def _item(path: Path, line: int, doc: dict[str, Any]) -> Rest | Frame:
    kind = doc.get("kind")
    if kind == "frame":
        conn, recv_ns = doc.get("conn"), doc.get("recv_ns")
        if not isinstance(conn, str) or type(recv_ns) is not int or recv_ns <= 0:
            raise RecordingError(path, line, "frame without a connection name or recv_ns")
        if isinstance(doc.get("text"), str):
            return Frame(recv_ns, conn, doc["text"], line)
        if isinstance(doc.get("b64"), str):
            try:
                return Frame(recv_ns, conn, base64.b64decode(doc["b64"], validate=True), line)
            except ValueError:
                raise RecordingError(path, line, "frame b64 is not base64") from None
        raise RecordingError(path, line, "frame without text or b64")
    if kind == "rest":
        rest_path, body = doc.get("path"), doc.get("body")
        if not isinstance(rest_path, str) or not isinstance(body, str):
            raise RecordingError(path, line, "rest line without path or body")
        return Rest(rest_path, body.encode(), line)
    raise RecordingError(path, line, f"unknown line kind {kind!r}")


def read_recording(path: Path) -> Recording:
    """A whole recording in memory (``scan_recording``'s errors)."""
    items = scan_recording(path)
    rec = Recording(header=next(items))  # type: ignore[arg-type]
    for item in items:
        if isinstance(item, Rest):
            rec.rest[item.path] = item.body
        elif isinstance(item, Frame):
            rec.frames.setdefault(item.conn, []).append((item.recv_ns, item.data))
    return rec
