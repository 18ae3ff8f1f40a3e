"""Recordings are read as a stream; a bad file is a RecordingError naming the file and the line."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from monitor.core.errors import RecordingError
from monitor.core.recording import (
    Frame,
    RecordingWriter,
    Rest,
    read_header,
    read_recording,
    scan_recording,
)

HEADER = {"exchange": "binance", "base_url": "wss://x/market",
          "connections": [{"name": "liquidations", "url": "wss://x/market/ws/a", "subscribe": []}]}  # fmt: skip


def written(tmp_path: Path) -> Path:
    path = tmp_path / "rec.jsonl.gz"
    w = RecordingWriter(path)
    w.open(HEADER)
    w.rest("https://api.x/fapi/v1/exchangeInfo?a=1", b'{"symbols": []}')
    w.frame("liquidations", '{"e":"forceOrder"}', 5)
    w.frame("liquidations", b"\x1f\x8b binary", 7)
    w.close()
    return path


def lines_file(tmp_path: Path, *lines: bytes) -> Path:
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wb") as f:
        for line in lines:
            f.write(line + b"\n")
    return path


def header_line() -> bytes:
    return orjson.dumps({"kind": "header", "version": 1, **HEADER})


def test_a_written_recording_scans_back_in_file_order(tmp_path: Path) -> None:
    path = written(tmp_path)
    items = list(scan_recording(path))
    assert items[0]["exchange"] == "binance"  # type: ignore[index]
    assert items[1:] == [
        Rest("/fapi/v1/exchangeInfo?a=1", b'{"symbols": []}', 2),
        Frame(5, "liquidations", '{"e":"forceOrder"}', 3),
        Frame(7, "liquidations", b"\x1f\x8b binary", 4),
    ]
    assert read_header(path)["connections"][0]["name"] == "liquidations"
    rec = read_recording(path)
    assert rec.frames == {"liquidations": [(5, '{"e":"forceOrder"}'), (7, b"\x1f\x8b binary")]}


@pytest.mark.parametrize(
    ("lines", "where", "what"),
    [
        ([b'{"kind": "frame"}'], ":1:", "header"),
        ([header_line(), b"{not json"], ":2:", "not JSON"),
        ([header_line(), b"[1, 2]"], ":2:", "not a JSON object"),
        ([header_line(), b'{"kind": "frame", "conn": "x", "recv_ns": "5", "text": "a"}'], ":2:",
         "recv_ns"),
        ([header_line(), b'{"kind": "frame", "conn": "x", "recv_ns": 5}'], ":2:", "text or b64"),
        ([header_line(), b'{"kind": "frame", "conn": "x", "recv_ns": 5, "b64": "**"}'], ":2:",
         "base64"),
        ([header_line(), b'{"kind": "note"}'], ":2:", "unknown line kind"),
        ([header_line(), b'{"kind": "rest", "path": 3}'], ":2:", "path or body"),
        ([orjson.dumps({"kind": "header", "version": 1, "connections": []})], ":1:", "exchange"),
        ([orjson.dumps({"kind": "header", "version": 9, **HEADER})], ":1:", "version 1"),
    ],
)  # fmt: skip
def test_bad_lines_name_the_file_and_line(
    tmp_path: Path, lines: list[bytes], where: str, what: str
) -> None:
    path = lines_file(tmp_path, *lines)
    with pytest.raises(RecordingError, match=what) as err:
        list(scan_recording(path))
    assert f"{path}{where}" in str(err.value)


def test_a_truncated_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    good = written(tmp_path).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(RecordingError, match="unreadable") as err:
        list(scan_recording(cut))
    assert str(cut) in str(err.value)
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"kind": "header"}\n')
    with pytest.raises(RecordingError, match="unreadable"):
        list(scan_recording(plain))
    empty = lines_file(tmp_path)
    with pytest.raises(RecordingError, match="empty file"):
        list(scan_recording(empty))
