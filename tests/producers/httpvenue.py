"""A scriptable local HTTP venue for REST tests: answers GETs from a list of (status, body)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HttpVenue:
    """``answers``: consumed in order; the last one repeats. ``paths``: every path requested."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes]] = [(200, b"{}")]
        self.paths: list[str] = []
        self.base = ""

    @property
    def requests(self) -> int:
        return len(self.paths)


@contextmanager
def http_venue() -> Iterator[HttpVenue]:
    venue = HttpVenue()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            venue.paths.append(self.path)
            status, body = venue.answers.pop(0) if len(venue.answers) > 1 else venue.answers[0]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    venue.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield venue
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
