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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

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


def read_recording(path: Path) -> Recording:
    with gzip.open(path, "rb") as f:
        lines = [orjson.loads(line) for line in f if line.strip()]
    if not lines or lines[0].get("kind") != "header" or lines[0].get("version") != VERSION:
        raise ValueError(f"{path}: not a cascade-monitor recording (version {VERSION})")
    rec = Recording(header=lines[0])
    for doc in lines[1:]:
        if doc["kind"] == "rest":
            rec.rest[doc["path"]] = doc["body"].encode()
        elif doc["kind"] == "frame":
            data: str | bytes = doc["text"] if "text" in doc else base64.b64decode(doc["b64"])
            rec.frames.setdefault(doc["conn"], []).append((doc["recv_ns"], data))
    return rec
