"""Free loopback ports for servers to bind later, without the race of
binding port 0 and handing the port over.

A port found by binding port 0 and released comes from the kernel's
ephemeral range, from which every connection's own port is drawn too, so a
connection made before the server binds it can take it first. These come
from just below that range instead, and a run never hands out one twice.

Run as a program, it prints N such ports on one line (scripts/profile-callgrind).
"""

from __future__ import annotations

import random
import socket
import sys

PORTS_BELOW_EPHEMERAL = 8192
_ports_given: set[int] = set()


def free_port() -> int:
    """A loopback port free now, for a server to bind later: from just below
    the ephemeral range (the module says why), never the same one twice in a
    run; where there is no room below the range, one the kernel picks."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            below = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        below = 32768
    if below < 1024 + PORTS_BELOW_EPHEMERAL:  # no room below: the kernel picks
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    candidates = list(range(below - PORTS_BELOW_EPHEMERAL, below))
    random.shuffle(candidates)
    for port in candidates:
        if port in _ports_given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise OSError(f"no free port from {below - PORTS_BELOW_EPHEMERAL} to {below}")


if __name__ == "__main__":
    print(*(free_port() for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1)))
