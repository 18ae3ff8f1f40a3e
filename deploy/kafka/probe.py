"""Helpers for kafka.sh, standard library only.

``probe.py ports N``       N distinct free TCP ports on 127.0.0.1, one per line.
``probe.py cluster-id``    a random KRaft cluster id (16 random bytes, URL-safe base64, no padding,
                           never starting with '-', as Kafka's own Uuid.randomUuid() ensures).
``probe.py wait HOST:PORT PID TIMEOUT_S``
                           exit 0 once the broker at HOST:PORT answers a Metadata request listing
                           at least one live broker: a KRaft broker lists itself only once it has
                           caught up with the metadata log and been unfenced, so it can then create
                           topics and serve produce and fetch. Exit 2 if process PID has gone,
                           1 on time-out.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import sys
import time
from pathlib import Path

METADATA_KEY, METADATA_VERSION = 3, 4  # v4 is the oldest Metadata version Kafka 4.x serves


def free_ports(n: int) -> list[int]:
    """Ports the kernel hands out for port 0, all held open at once so they are distinct."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def cluster_id() -> str:
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        data += chunk
    return data


def live_brokers(host: str, port: int, timeout_s: float = 2.0) -> int:
    """Number of live brokers in the answer to one Metadata v4 request for no topics."""
    client_id = b"kafka.sh-probe"
    request = (
        struct.pack(">hhih", METADATA_KEY, METADATA_VERSION, 1, len(client_id))
        + client_id
        + struct.pack(">ib", 0, 0)  # topics: empty array; allow_auto_topic_creation: false
    )
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        body = _recv_exact(sock, size)
    correlation_id, _throttle_ms, brokers = struct.unpack(">iii", body[:12])
    if correlation_id != 1:
        raise ConnectionError(f"unexpected correlation id {correlation_id}")
    return int(brokers)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_ready(address: str, pid: int, timeout_s: float) -> int:
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _running(pid):
            return 2
        try:
            if live_brokers(host, int(port)) > 0:
                return 0
        except (OSError, struct.error):
            pass  # not listening yet, or not serving requests yet
        time.sleep(0.1)
    return 1


def main(argv: list[str]) -> int:
    match argv:
        case ["ports", n]:
            print("\n".join(map(str, free_ports(int(n)))))
            return 0
        case ["cluster-id"]:
            print(cluster_id())
            return 0
        case ["wait", address, pid, timeout_s]:
            return wait_ready(address, int(pid), float(timeout_s))
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
