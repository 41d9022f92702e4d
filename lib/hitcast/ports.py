"""Port checks on this machine, shared by the servers hitcast starts (the SQL endpoint, the standalone cluster)."""
from __future__ import annotations

import socket


def port_in_use(host: str, port: int) -> bool:
    """True when something on this machine already listens on ``host:port`` (or it cannot be bound)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False
