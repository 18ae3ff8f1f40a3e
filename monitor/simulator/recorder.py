"""Recording of every frame the simulator sends: gzip JSON lines, appended.

One line per frame: ``{"venue": ..., "conn": ..., "sent_ns": ..., "frame": "<the text frame>"}``;
binary frames (HTX's gzip) are stored base64-encoded under ``"frame_b64"`` instead.
Replayable through a producer's parser with no network (tests/.../recorded sessions).
"""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import Any

import orjson


class FrameRecorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: gzip.GzipFile | None = None

    def open(self) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Held open across writes; closed by close().
            self._file = gzip.GzipFile(self.path, "ab")

    def write(self, venue: str, conn: str, sent_ns: int, frame: bytes) -> None:
        if self._file is None:
            raise RuntimeError("recorder is not open")
        line: dict[str, Any] = {"venue": venue, "conn": conn, "sent_ns": sent_ns}
        try:
            line["frame"] = frame.decode()
        except UnicodeDecodeError:
            line["frame_b64"] = base64.b64encode(frame).decode()
        self._file.write(orjson.dumps(line) + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_recording(path: Path) -> list[dict[str, Any]]:
    """All lines of a recording (for tests and replay)."""
    with gzip.open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]
